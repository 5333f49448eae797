/**
 * The trainer's W&B metric dictionaries (spec §5.2, §5.3) and the step-period predicates that
 * decide when they are logged. Plain-TS references: the statistics are accumulated in float64
 * from float32 inputs; the GPU path may pass its own reduced scalars via `stats`.
 * @module
 */

import { _requireInt, TrainingError } from "./errors.ts";
import { logFeatureSparsity } from "./firing_stats.ts";

/** The per-batch reconstruction/sparsity statistics of the log dict. */
export interface ReconstructionStats {
  /** 1 − mean_t ‖x̂_t − x_t‖² / mean_t ‖x_t − x̄‖². */
  explainedVariance: number;
  /** mean_t [1 − ‖x̂_t − x_t‖² / ‖x_t − x̄‖²]. */
  explainedVarianceLegacy: number;
  /** Unbiased std of the per-token legacy values (NaN for one token, like torch). */
  explainedVarianceLegacyStd: number;
  /** mean_t #(f_t ≠ 0). */
  l0: number;
}

/**
 * Computes {@link ReconstructionStats} from row-major x, x̂ `[n, dIn]` and f `[n, dSae]`
 * (x̄ = batch mean of x).
 *
 * @example
 * ```ts
 * import { reconstructionStats } from "./metrics.ts";
 * const s = reconstructionStats(
 *   Float32Array.of(-1, 0, 0, 2, 1, 1), Float32Array.of(0, 0, 0, 2, 0.5, 1),
 *   Float32Array.of(0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1), 3, 2, 4,
 * );
 * if (s.explainedVariance !== 0.6875 || s.l0 !== 2) throw new Error("spec §5.2 vector");
 * ```
 */
export function reconstructionStats(
  x: Float32Array,
  xHat: Float32Array,
  featureActs: Float32Array,
  n: number,
  dIn: number,
  dSae: number,
): ReconstructionStats {
  _requireInt(n, "n", 1);
  _requireInt(dIn, "dIn", 1);
  _requireInt(dSae, "dSae", 1);
  const check = (name: string, arr: Float32Array, width: number) => {
    if (arr.length < n * width) {
      throw new TrainingError(`${name} has ${arr.length} floats, expected >= ${n}·${width}`);
    }
  };
  check("x", x, dIn);
  check("xHat", xHat, dIn);
  check("featureActs", featureActs, dSae);

  const mean = new Float64Array(dIn); // per-call scratch, O(dIn)
  for (let t = 0; t < n; t++) for (let j = 0; j < dIn; j++) mean[j] += x[t * dIn + j];
  for (let j = 0; j < dIn; j++) mean[j] /= n;

  const legacy = new Float64Array(n); // per-token values, for a two-pass std
  let l2Sum = 0, varSum = 0, legacySum = 0, firing = 0;
  for (let t = 0; t < n; t++) {
    let l2 = 0, v = 0;
    for (let j = 0, k = t * dIn; j < dIn; j++, k++) {
      const e = xHat[k] - x[k], c = x[k] - mean[j];
      l2 += e * e;
      v += c * c;
    }
    legacy[t] = 1 - l2 / v;
    l2Sum += l2;
    varSum += v;
    legacySum += legacy[t];
    for (let i = 0, k = t * dSae; i < dSae; i++, k++) if (featureActs[k] !== 0) firing++;
  }
  const legacyMean = legacySum / n;
  let sq = 0;
  for (let t = 0; t < n; t++) sq += (legacy[t] - legacyMean) ** 2;
  return {
    explainedVariance: 1 - (l2Sum / n) / (varSum / n),
    explainedVarianceLegacy: legacyMean,
    explainedVarianceLegacyStd: n > 1 ? Math.sqrt(sq / (n - 1)) : NaN,
    l0: firing / n,
  };
}

/** A scalar or a lazily evaluated scalar (SAELens `_unwrap_item` accepts callables). */
export type LoggedValue = number | (() => number);

/** Inputs of {@link trainStepLogDict}. */
export interface TrainStepLogInput {
  /** SAE input x `[n, dIn]` (omit when `stats` is given). */
  x?: Float32Array;
  /** SAE output x̂ `[n, dIn]`. */
  xHat?: Float32Array;
  /** Feature activations f `[n, dSae]`. */
  featureActs?: Float32Array;
  /** Rows in the batch. */
  n?: number;
  /** Input width. */
  dIn?: number;
  /** Number of features. */
  dSae?: number;
  /** Precomputed statistics (e.g. reduced on the GPU) instead of x/xHat/featureActs. */
  stats?: ReconstructionStats;
  /** Total loss. */
  loss: number;
  /** Loss parts by name (`mse_loss`, `l1_loss`, …). */
  losses: Record<string, LoggedValue>;
  /** Extra training metrics by name (`topk_threshold`, …). */
  metrics?: Record<string, LoggedValue>;
  /** The optimiser's lr used for this step. */
  lr: number;
  /** Samples (tokens) trained on so far. */
  nTrainingSamples: number;
  /** Current coefficient values by name (`l1`, `l0`, …). */
  coefficients: Record<string, number>;
  /** Mean forward passes since each feature fired. */
  meanPassesSinceFired: number;
  /** Dead-feature count, or the dead mask to count. */
  deadFeatures: number | Uint8Array;
}

const unwrap = (v: LoggedValue) => typeof v === "function" ? v() : v;

/**
 * SAELens' per-step W&B dict (`build_train_step_log_dict`), same keys in the same order:
 * `losses/overall_loss`, `metrics/explained_variance_legacy`, `…_legacy_std`,
 * `metrics/explained_variance`, `metrics/l0`, `sparsity/mean_passes_since_fired`,
 * `sparsity/dead_features`, `details/current_learning_rate`, `details/n_training_samples`,
 * `details/<coef>_coefficient`…, `losses/<name>`…, `metrics/<name>`….
 *
 * @example
 * ```ts
 * import { trainStepLogDict } from "./metrics.ts";
 * const d = trainStepLogDict({
 *   stats: { explainedVariance: 0.9, explainedVarianceLegacy: 0.8, explainedVarianceLegacyStd: 0.1, l0: 5 },
 *   loss: 1, losses: { mse_loss: 1 }, lr: 3e-4, nTrainingSamples: 4096,
 *   coefficients: { l1: 5 }, meanPassesSinceFired: 0, deadFeatures: 0,
 * });
 * if (d["details/l1_coefficient"] !== 5) throw new Error("missing coefficient");
 * ```
 */
export function trainStepLogDict(input: TrainStepLogInput): Record<string, number> {
  let stats = input.stats;
  if (stats === undefined) {
    const { x, xHat, featureActs, n, dIn, dSae } = input;
    if (!x || !xHat || !featureActs || n === undefined || dIn === undefined || dSae === undefined) {
      throw new TrainingError(
        "trainStepLogDict needs either stats or all of x, xHat, featureActs, n, dIn, dSae",
      );
    }
    stats = reconstructionStats(x, xHat, featureActs, n, dIn, dSae);
  }
  let dead = input.deadFeatures;
  if (typeof dead !== "number") {
    let count = 0;
    for (const m of dead) if (m) count++;
    dead = count;
  }
  const dict: Record<string, number> = {
    "losses/overall_loss": input.loss,
    "metrics/explained_variance_legacy": stats.explainedVarianceLegacy,
    "metrics/explained_variance_legacy_std": stats.explainedVarianceLegacyStd,
    "metrics/explained_variance": stats.explainedVariance,
    "metrics/l0": stats.l0,
    "sparsity/mean_passes_since_fired": input.meanPassesSinceFired,
    "sparsity/dead_features": dead,
    "details/current_learning_rate": input.lr,
    "details/n_training_samples": input.nTrainingSamples,
  };
  for (const [name, v] of Object.entries(input.coefficients)) {
    dict[`details/${name}_coefficient`] = v;
  }
  for (const [name, v] of Object.entries(input.losses)) dict[`losses/${name}`] = unwrap(v);
  for (const [name, v] of Object.entries(input.metrics ?? {})) dict[`metrics/${name}`] = unwrap(v);
  return dict;
}

/** The sparsity-window dict (spec §5.3); the histogram key holds the log10 values. */
export interface SparsityWindowLog {
  /** Mean of log10(sparsity + 1e-10). */
  "metrics/mean_log10_feature_sparsity": number;
  /** log10(sparsity + 1e-10) per feature (a W&B histogram in SAELens). */
  "plots/feature_density_line_chart": Float32Array;
  /** Features firing on fewer than 1e-5 of samples. */
  "sparsity/below_1e-5": number;
  /** Features firing on fewer than 1e-6 of samples. */
  "sparsity/below_1e-6": number;
}

/**
 * SAELens' `_build_sparsity_log_dict` from per-feature firing fractions (float32 thresholds,
 * as torch compares a float32 tensor with a Python float).
 *
 * @example
 * ```ts
 * import { sparsityWindowLogDict } from "./metrics.ts";
 * const d = sparsityWindowLogDict(Float32Array.of(0, 0.1));
 * if (d["sparsity/below_1e-6"] !== 1) throw new Error("one feature never fired");
 * ```
 */
export function sparsityWindowLogDict(featureSparsity: Float32Array): SparsityWindowLog {
  const logs = logFeatureSparsity(featureSparsity);
  let sum = 0;
  for (const v of logs) sum += v;
  const below5 = Math.fround(1e-5), below6 = Math.fround(1e-6);
  let n5 = 0, n6 = 0;
  for (const s of featureSparsity) {
    if (s < below5) n5++;
    if (s < below6) n6++;
  }
  return {
    "metrics/mean_log10_feature_sparsity": sum / logs.length,
    "plots/feature_density_line_chart": logs,
    "sparsity/below_1e-5": n5,
    "sparsity/below_1e-6": n6,
  };
}

/**
 * True at steps where `(step + 1) % period === 0` — SAELens' test for the sparsity window
 * reset (period `feature_sampling_window`, checked *before* the step), train-metric logging
 * (`wandb_log_frequency`) and evals (`wandb_log_frequency · eval_every_n_wandb_logs`).
 *
 * @example
 * ```ts
 * import { isPeriodicStep } from "./metrics.ts";
 * if (!isPeriodicStep(999, 1000) || isPeriodicStep(1000, 1000)) throw new Error("off by one");
 * ```
 */
export function isPeriodicStep(nTrainingSteps: number, period: number): boolean {
  _requireInt(period, "period", 1);
  return (nTrainingSteps + 1) % period === 0;
}
