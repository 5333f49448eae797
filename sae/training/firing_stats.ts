/**
 * Dead-feature and firing-frequency bookkeeping of the v6 trainer (spec §3.10), as a plain-TS
 * reference: a feature "fires" on a row when its activation is non-zero (NaN counts as firing,
 * like torch's `.bool()`). Arrays are float32 like SAELens' tensors, so checkpoints agree.
 * @module
 */

import { _requireInt, TrainingError } from "./errors.ts";

/** Serializable state (the trainer-state fields SAELens saves). */
export interface FiringStatsState {
  /** `act_freq_scores`: firings per feature in the current sparsity window. */
  actFreqScores: Float32Array;
  /** `n_forward_passes_since_fired` per feature. */
  nForwardPassesSinceFired: Float32Array;
  /**
   * `n_frac_active_samples`: rows seen in the current window. SAELens adds the configured batch
   * size per step even when a batch is shorter; saeflow counts the real rows, so feature
   * sparsity and the dead-feature decisions stay exact (equal for full batches).
   */
  nFracActiveSamples: number;
}

const EPS_F32 = Math.fround(1e-10);

/**
 * Firing statistics of one SAE: call {@link FiringStats.update} (dense feature activations) or
 * {@link FiringStats.updateFromCounts} (per-feature firing counts, e.g. reduced on the GPU) once
 * per train step, {@link FiringStats.resetWindow} at each sparsity-window boundary.
 *
 * @example
 * ```ts
 * import { FiringStats } from "./firing_stats.ts";
 * const stats = new FiringStats(3, 2);
 * stats.update(Float32Array.of(0, 1, 0, 0, 2, 0), 2); // rows [0,1,0] and [0,2,0]
 * stats.update(new Float32Array(6), 2);
 * // passes since fired [2, 1, 2]; feature 1 fired on 2 of 4 samples
 * if (stats.featureSparsity()[1] !== 0.5 || stats.deadCount(1) !== 2) throw new Error("bad stats");
 * ```
 */
export class FiringStats {
  /** Number of features. */
  readonly dSae: number;
  /** Configured `train_batch_size_tokens`: the rows a step counts when none are given. */
  readonly trainBatchSizeSamples: number;
  /** See {@link FiringStatsState.actFreqScores}. */
  actFreqScores: Float32Array;
  /** See {@link FiringStatsState.nForwardPassesSinceFired}. */
  nForwardPassesSinceFired: Float32Array;
  /** See {@link FiringStatsState.nFracActiveSamples}. */
  nFracActiveSamples = 0;
  readonly #counts: Uint32Array; // per-step scratch, reused

  /** Zeroed statistics for `dSae` features. */
  constructor(dSae: number, trainBatchSizeSamples: number) {
    _requireInt(dSae, "dSae", 1);
    _requireInt(trainBatchSizeSamples, "trainBatchSizeSamples", 1);
    this.dSae = dSae;
    this.trainBatchSizeSamples = trainBatchSizeSamples;
    this.actFreqScores = new Float32Array(dSae);
    this.nForwardPassesSinceFired = new Float32Array(dSae);
    this.#counts = new Uint32Array(dSae);
  }

  /** Records one step from dense row-major `[nRows, dSae]` feature activations. */
  update(featureActs: Float32Array, nRows: number): void {
    _requireInt(nRows, "nRows", 0);
    const d = this.dSae;
    if (featureActs.length < nRows * d) {
      throw new TrainingError(
        `featureActs has ${featureActs.length} floats, expected >= nRows·dSae = ${nRows * d}`,
      );
    }
    const counts = this.#counts;
    counts.fill(0);
    for (let r = 0; r < nRows; r++) {
      const base = r * d;
      for (let i = 0; i < d; i++) if (featureActs[base + i] !== 0) counts[i]++;
    }
    this.updateFromCounts(counts, nRows);
  }

  /**
   * Records one step of `nRows` rows (default: the configured batch size) from per-feature counts
   * of rows on which each feature fired.
   */
  updateFromCounts(firingCounts: ArrayLike<number>, nRows = this.trainBatchSizeSamples): void {
    _requireInt(nRows, "nRows", 0);
    if (firingCounts.length !== this.dSae) {
      throw new TrainingError(
        `firingCounts has length ${firingCounts.length}, expected dSae = ${this.dSae}`,
      );
    }
    const passes = this.nForwardPassesSinceFired, freq = this.actFreqScores;
    for (let i = 0; i < this.dSae; i++) {
      const c = firingCounts[i];
      passes[i] = c > 0 ? 0 : passes[i] + 1;
      freq[i] += c; // one f32 rounding per step, like `act_freq_scores += counts`
    }
    this.nFracActiveSamples += nRows;
  }

  /** 1 where `nForwardPassesSinceFired > deadFeatureWindow` (written into `out` when given). */
  deadMask(deadFeatureWindow: number, out?: Uint8Array): Uint8Array {
    const mask = out ?? new Uint8Array(this.dSae);
    if (mask.length < this.dSae) {
      throw new TrainingError(`dead mask buffer has length ${mask.length}, expected ${this.dSae}`);
    }
    const passes = this.nForwardPassesSinceFired;
    for (let i = 0; i < this.dSae; i++) mask[i] = passes[i] > deadFeatureWindow ? 1 : 0;
    return mask;
  }

  /** Number of dead features (`sparsity/dead_features`). */
  deadCount(deadFeatureWindow: number): number {
    let n = 0;
    for (const p of this.nForwardPassesSinceFired) if (p > deadFeatureWindow) n++;
    return n;
  }

  /** Mean of `nForwardPassesSinceFired` (`sparsity/mean_passes_since_fired`). */
  meanPassesSinceFired(): number {
    let sum = 0;
    for (const p of this.nForwardPassesSinceFired) sum += p;
    return sum / this.dSae;
  }

  /** `act_freq_scores / n_frac_active_samples` in float32 (NaN before the first step). */
  featureSparsity(out?: Float32Array): Float32Array {
    const dst = out ?? new Float32Array(this.dSae);
    const n = Math.fround(this.nFracActiveSamples); // torch casts the int divisor to f32
    for (let i = 0; i < this.dSae; i++) dst[i] = this.actFreqScores[i] / n;
    return dst;
  }

  /** log10(sparsity + 1e-10) in float32 — what `sparsity.safetensors` stores. */
  logFeatureSparsity(out?: Float32Array): Float32Array {
    return logFeatureSparsity(this.featureSparsity(out), out);
  }

  /** Starts a new sparsity window (zeroes the firing counts and samples, not the passes). */
  resetWindow(): void {
    this.actFreqScores.fill(0);
    this.nFracActiveSamples = 0;
  }

  /** A copy of the state for checkpoints. */
  stateDict(): FiringStatsState {
    return {
      actFreqScores: this.actFreqScores.slice(),
      nForwardPassesSinceFired: this.nForwardPassesSinceFired.slice(),
      nFracActiveSamples: this.nFracActiveSamples,
    };
  }

  /** Restores {@link FiringStats.stateDict}'s output (copying the arrays). */
  loadStateDict(state: FiringStatsState): void {
    for (const key of ["actFreqScores", "nForwardPassesSinceFired"] as const) {
      if (state[key]?.length !== this.dSae) {
        throw new TrainingError(
          `firing stats state ${key} has length ${
            state[key]?.length
          }, expected dSae = ${this.dSae}`,
        );
      }
    }
    _requireInt(state.nFracActiveSamples, "firing stats state nFracActiveSamples", 0);
    this.actFreqScores = Float32Array.from(state.actFreqScores);
    this.nForwardPassesSinceFired = Float32Array.from(state.nForwardPassesSinceFired);
    this.nFracActiveSamples = state.nFracActiveSamples;
  }
}

/**
 * log10(sparsity + 1e-10) element-wise in float32 (SAELens `_log_feature_sparsity`); finite for
 * zero sparsity (≈ −10). Writes into `out` when given (may alias the input).
 *
 * @example
 * ```ts
 * import { logFeatureSparsity } from "./firing_stats.ts";
 * const v = logFeatureSparsity(Float32Array.of(0, 0.01));
 * if (!Number.isFinite(v[0]) || Math.abs(v[1] + 2) > 1e-6) throw new Error("bad log10");
 * ```
 */
export function logFeatureSparsity(sparsity: Float32Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(sparsity.length);
  for (let i = 0; i < sparsity.length; i++) {
    dst[i] = Math.log10(Math.fround(sparsity[i] + EPS_F32));
  }
  return dst;
}
