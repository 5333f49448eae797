// SAETrainerConfig: defaults, validation, derivation from the runner config; the synthetic data
// generator's basic properties.

import { runnerConfigFromDict, trainerConfigFromRunner } from "../../../pipeline/runner_config.ts";
import {
  createTrainerConfig,
  totalSteps,
  trainerConfigToDict,
} from "../../../sae/training/trainer_config.ts";
import { meanMaxCosineSimilarity, SyntheticActivations } from "../../../sae/training/synthetic.ts";
import { TrainingError } from "../../../sae/training/errors.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../../assert.ts";

Deno.test("createTrainerConfig: SAELens defaults and derived step count", () => {
  const cfg = createTrainerConfig({ totalTrainingSamples: 2_000_000, trainBatchSizeSamples: 4096 });
  assertEquals(
    [cfg.lr, cfg.lrEnd, cfg.lrSchedulerName, cfg.adamBeta1, cfg.adamBeta2],
    [3e-4, null, "constant", 0.9, 0.999],
  );
  assertEquals([cfg.deadFeatureWindow, cfg.featureSamplingWindow, cfg.logEvery], [1000, 2000, 10]);
  assertEquals([cfg.nCheckpoints, cfg.checkpointPath, cfg.saveFinalCheckpoint], [0, null, false]);
  assertEquals(cfg.nBatchesForNormEstimate, 1000);
  assertEquals(totalSteps(cfg), 488);
  assertEquals(trainerConfigToDict(cfg).total_training_samples, 2_000_000);
});

Deno.test("createTrainerConfig rejects bad values with the field name", () => {
  const base = { totalTrainingSamples: 100, trainBatchSizeSamples: 10 };
  const cases: [Record<string, unknown>, string][] = [
    [{ trainBatchSizeSamples: 0 }, "trainBatchSizeSamples is 0"],
    [{ lr: -1 }, "lr is -1"],
    [{ adamBeta1: 1 }, "adamBeta1 is 1"],
    [{ lrSchedulerName: "linear" }, 'lrSchedulerName is "linear"'],
    [{ logEvery: 0 }, "logEvery is 0"],
    [{ totalTrainingSamples: 5 }, "expected at least one training step"],
    [{ wandbLogFrequency: 5 }, "unknown key(s) wandbLogFrequency"],
  ];
  for (const [fields, msg] of cases) {
    assertThrows(() => createTrainerConfig({ ...base, ...fields } as never), TrainingError, msg);
  }
});

Deno.test("trainerConfigFromRunner maps the runner's fields (§1.6 to_sae_trainer_config)", () => {
  const runner = runnerConfigFromDict({
    sae: { architecture: "standard", d_in: 8, d_sae: 16 },
    training_tokens: 1000,
    train_batch_size_tokens: 10,
    lr: 1e-3,
    adam_beta1: 0,
    n_checkpoints: 2,
    checkpoint_path: "ck",
    save_final_checkpoint: true,
    logger: { wandb_log_frequency: 5, eval_every_n_wandb_logs: 7 },
  }, { runId: "r1" });
  const cfg = trainerConfigFromRunner(runner);
  assertEquals([cfg.totalTrainingSamples, cfg.trainBatchSizeSamples], [1000, 10]);
  assertEquals([cfg.lr, cfg.lrEnd, cfg.adamBeta1], [1e-3, 1e-4, 0]);
  assertEquals([cfg.nCheckpoints, cfg.checkpointPath, cfg.saveFinalCheckpoint], [2, "ck/r1", true]);
  assertEquals([cfg.logEvery, cfg.evalEveryNLogs], [5, 7]);
  assertEquals(
    trainerConfigFromRunner(runner, { nBatchesForNormEstimate: 3 }).nBatchesForNormEstimate,
    3,
  );
});

Deno.test("SyntheticActivations: unit dictionary, sparse reproducible samples, MMCS", () => {
  const gen = new SyntheticActivations({ dIn: 8, nFeatures: 16, meanActive: 2, seed: 3 });
  for (let i = 0; i < 16; i++) {
    assertClose(Math.hypot(...gen.dictionary.subarray(i * 8, i * 8 + 8)), 1, 1e-6);
  }
  const again = new SyntheticActivations({ dIn: 8, nFeatures: 16, meanActive: 2, seed: 3 });
  assertEquals(gen.batch(5), again.batch(5));
  assertEquals(meanMaxCosineSimilarity(gen.dictionary, gen.dictionary, 8) > 1 - 1e-9, true);
  // Rows are sums of ~2 unit directions with magnitudes in [0.5, 1.5): mean norm well inside (0, 4).
  const x = gen.batch(2000);
  let norm = 0, zero = 0;
  for (let r = 0; r < 2000; r++) {
    const n = Math.hypot(...x.subarray(r * 8, r * 8 + 8));
    norm += n / 2000;
    if (n === 0) zero++;
  }
  assert(norm > 1 && norm < 2.5, `mean norm ${norm}`);
  assertClose(zero / 2000, (1 - 2 / 16) ** 16, 0.02); // P(no feature active)
  assertThrows(
    () => new SyntheticActivations({ dIn: 4, nFeatures: 8, magnitude: [1, 1] }),
    TrainingError,
  );
});
