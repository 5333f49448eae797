import { assert, assertClose, assertEquals, assertThrows } from "../../assert.ts";
import {
  isPeriodicStep,
  reconstructionStats,
  sparsityWindowLogDict,
  trainStepLogDict,
} from "../../../sae/training/metrics.ts";
import { TrainingError } from "../../../sae/training/errors.ts";

// spec §5.2 vector
const X = Float32Array.of(-1, 0, 0, 2, 1, 1);
const X_HAT = Float32Array.of(0, 0, 0, 2, 0.5, 1);
const F = Float32Array.of(0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1);

Deno.test("train step log dict: spec vector, exact keys in SAELens order", () => {
  const dict = trainStepLogDict({
    x: X,
    xHat: X_HAT,
    featureActs: F,
    n: 3,
    dIn: 2,
    dSae: 4,
    loss: 0.5,
    losses: { mse_loss: 0.25, l1_loss: 0.1 },
    metrics: { topk_threshold: 0.5 },
    lr: 2e-4,
    nTrainingSamples: 123,
    coefficients: { l1: 5 },
    meanPassesSinceFired: 1.5,
    deadFeatures: 2,
  });
  assertEquals(Object.keys(dict), [
    "losses/overall_loss",
    "metrics/explained_variance_legacy",
    "metrics/explained_variance_legacy_std",
    "metrics/explained_variance",
    "metrics/l0",
    "sparsity/mean_passes_since_fired",
    "sparsity/dead_features",
    "details/current_learning_rate",
    "details/n_training_samples",
    "details/l1_coefficient",
    "losses/mse_loss",
    "losses/l1_loss",
    "metrics/topk_threshold",
  ]);
  assertEquals(dict["metrics/explained_variance"], 0.6875);
  assertEquals(dict["metrics/explained_variance_legacy"], 0.75);
  assertClose(dict["metrics/explained_variance_legacy_std"], 0.25, 1e-15);
  assertEquals(dict["metrics/l0"], 2.0);
  assertEquals(dict["losses/overall_loss"], 0.5);
  assertEquals(dict["losses/l1_loss"], 0.1);
  assertEquals(dict["sparsity/mean_passes_since_fired"], 1.5);
  assertEquals(dict["sparsity/dead_features"], 2);
  assertEquals(dict["details/current_learning_rate"], 2e-4);
  assertEquals(dict["details/n_training_samples"], 123);
  assertEquals(dict["details/l1_coefficient"], 5);
  assertEquals(dict["metrics/topk_threshold"], 0.5);
});

Deno.test("train step log dict: precomputed stats, dead mask, lazy values", () => {
  const stats = reconstructionStats(X, X_HAT, F, 3, 2, 4);
  const dict = trainStepLogDict({
    stats,
    loss: 1,
    losses: { mse_loss: () => 0.75 },
    metrics: { eager: 1.5, lazy: () => 2.5 },
    lr: 1e-3,
    nTrainingSamples: 8,
    coefficients: { l0: 2, l1: 3 },
    meanPassesSinceFired: 0,
    deadFeatures: Uint8Array.of(1, 0, 1, 1),
  });
  assertEquals(dict["metrics/explained_variance"], 0.6875);
  assertEquals(dict["sparsity/dead_features"], 3);
  assertEquals(dict["losses/mse_loss"], 0.75);
  assertEquals(dict["metrics/lazy"], 2.5);
  assertEquals(dict["details/l0_coefficient"], 2);
  assertThrows(
    () =>
      trainStepLogDict({
        x: X,
        loss: 0,
        losses: {},
        lr: 0,
        nTrainingSamples: 0,
        coefficients: {},
        meanPassesSinceFired: 0,
        deadFeatures: 0,
      }),
    TrainingError,
    "either stats or all of",
  );
});

Deno.test("reconstruction stats: perfect reconstruction, single token, shape errors", () => {
  const perfect = reconstructionStats(X, X, F, 3, 2, 4);
  assertEquals(perfect.explainedVariance, 1);
  assertEquals(perfect.explainedVarianceLegacy, 1);
  assertEquals(perfect.explainedVarianceLegacyStd, 0);
  const one = reconstructionStats(
    Float32Array.of(1, 2),
    Float32Array.of(1, 2),
    Float32Array.of(3),
    1,
    2,
    1,
  );
  assert(Number.isNaN(one.explainedVarianceLegacyStd), "unbiased std of one value is NaN");
  assertEquals(one.l0, 1);
  assertThrows(() => reconstructionStats(X, X_HAT, F, 3, 2, 5), TrainingError, "featureActs");
});

Deno.test("sparsity window dict: thresholds, mean log10 and histogram values", () => {
  const sparsity = Float32Array.of(0, 1e-7, 5e-6, 0.5);
  const d = sparsityWindowLogDict(sparsity);
  assertEquals(d["sparsity/below_1e-5"], 3);
  assertEquals(d["sparsity/below_1e-6"], 2);
  const hist = d["plots/feature_density_line_chart"];
  assert(hist instanceof Float32Array && hist.length === 4);
  assertClose(hist[0], -10, 1e-5);
  const expectedMean = (-10 + Math.log10(1e-7 + 1e-10) + Math.log10(5e-6) + Math.log10(0.5)) / 4;
  assertClose(d["metrics/mean_log10_feature_sparsity"], expectedMean, 1e-5);
  assertEquals(Object.keys(d), [
    "metrics/mean_log10_feature_sparsity",
    "plots/feature_density_line_chart",
    "sparsity/below_1e-5",
    "sparsity/below_1e-6",
  ]);
});

Deno.test("periodic steps: (step + 1) % period === 0", () => {
  const hits = Array.from({ length: 10 }, (_, s) => s).filter((s) => isPeriodicStep(s, 4));
  assertEquals(hits, [3, 7]);
  assertThrows(() => isPeriodicStep(1, 0), TrainingError, "period");
});
