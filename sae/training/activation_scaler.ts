/**
 * `normalize_activations = "expected_average_only_in"` support (spec §5.1): the trainer estimates
 * s = √d_in / mean_batches(mean_rows ‖x‖) once, multiplies every training batch by s, and folds
 * s into the weights at the end. Mirrors SAELens's `ActivationScaler` (scaling factor only).
 * @module
 */

import { _requireInt, TrainingError } from "./errors.ts";
import { describeValue } from "../../util/errors.ts";

/**
 * A batch of activation rows as they travel from the activation store through the mixing buffer
 * to the trainer: `nRows` rows of `dIn` float32 values, row-major in `acts`
 * (`acts.length >= nRows·dIn`; only the first `nRows·dIn` entries are used), plus optionally the
 * id of the token each row was read at (`tokenIds.length >= nRows`).
 */
export interface ActivationBatch {
  /** Row-major `[nRows, dIn]` activations. */
  acts: Float32Array;
  /** Number of rows. */
  nRows: number;
  /** Token id per row, permuted together with the rows. */
  tokenIds?: Int32Array;
}

/** A batch source: an iterator/iterable (sync or async) of batches or bare row-major arrays. */
export type BatchSource =
  | Iterator<ActivationBatch | Float32Array>
  | AsyncIterator<ActivationBatch | Float32Array>
  | Iterable<ActivationBatch | Float32Array>
  | AsyncIterable<ActivationBatch | Float32Array>;

/**
 * Mean L2 norm of the first `nRows` rows of a row-major `[nRows, dIn]` array (accumulated in
 * float64).
 *
 * @example
 * ```ts
 * import { meanRowNorm } from "./activation_scaler.ts";
 * if (meanRowNorm(Float32Array.of(3, 4, 0, 0), 2, 2) !== 2.5) throw new Error("(5 + 0) / 2");
 * ```
 */
export function meanRowNorm(acts: Float32Array, nRows: number, dIn: number): number {
  _requireInt(nRows, "nRows", 1);
  _requireInt(dIn, "dIn", 1);
  if (acts.length < nRows * dIn) {
    throw new TrainingError(
      `acts has ${acts.length} floats, expected >= nRows·dIn = ${nRows * dIn}`,
    );
  }
  let total = 0;
  for (let r = 0; r < nRows; r++) {
    let sq = 0;
    for (let j = r * dIn, end = j + dIn; j < end; j++) sq += acts[j] * acts[j];
    total += Math.sqrt(sq);
  }
  return total / nRows;
}

function iteratorOf(source: BatchSource) {
  const s = source as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
  if (typeof s[Symbol.asyncIterator] === "function") return s[Symbol.asyncIterator]!();
  if (typeof s[Symbol.iterator] === "function") return s[Symbol.iterator]!();
  return source as Iterator<unknown> | AsyncIterator<unknown>;
}

/**
 * Mean over `nBatches` batches of each batch's mean row norm. Pulls exactly `nBatches` batches
 * with `next()` and never closes the source, so a generator can keep feeding training after it
 * (the estimation batches are consumed, not trained on, as in SAELens).
 *
 * @example
 * ```ts
 * import { meanNormOverBatches } from "./activation_scaler.ts";
 * const norms = await meanNormOverBatches([Float32Array.of(3, 4), Float32Array.of(6, 8)], 2, 2);
 * if (norms !== 7.5) throw new Error("(5 + 10) / 2");
 * ```
 */
export async function meanNormOverBatches(
  source: BatchSource,
  dIn: number,
  nBatches: number,
): Promise<number> {
  _requireInt(nBatches, "nBatches", 1);
  const it = iteratorOf(source);
  let sum = 0;
  for (let i = 0; i < nBatches; i++) {
    const step = await it.next();
    if (step.done) {
      throw new TrainingError(
        `norm estimation got ${i} batches from the data source, expected ${nBatches}`,
      );
    }
    const b = step.value as ActivationBatch | Float32Array;
    const acts = b instanceof Float32Array ? b : b.acts;
    const rows = b instanceof Float32Array ? Math.floor(b.length / dIn) : b.nRows;
    sum += meanRowNorm(acts, rows, dIn);
  }
  return sum / nBatches;
}

/**
 * Estimates SAELens' norm scaling factor s = √dIn / mean batch norm over `nBatches` batches
 * (default 1,000 like `n_batches_for_norm_estimate`), so scaled rows have mean norm √dIn.
 *
 * @example
 * ```ts
 * import { estimateNormScalingFactor } from "./activation_scaler.ts";
 * const twos = new Float32Array(10 * 64).fill(2); // every row has norm 16
 * const s = await estimateNormScalingFactor([twos, twos], 64, 2);
 * if (s !== 0.5) throw new Error("√64 / 16");
 * ```
 */
export async function estimateNormScalingFactor(
  source: BatchSource,
  dIn: number,
  nBatches = 1000,
): Promise<number> {
  const meanNorm = await meanNormOverBatches(source, dIn, nBatches);
  if (!(meanNorm > 0) || !Number.isFinite(meanNorm)) {
    throw new TrainingError(
      `mean activation norm over ${nBatches} batches is ${meanNorm}, expected a finite value > 0`,
    );
  }
  return Math.sqrt(dIn) / meanNorm;
}

/** JSON form of the scaler (`activation_scaler.json` in SAELens checkpoints). */
export interface ActivationScalerJson {
  /** The factor, or null when activations are not scaled. */
  scaling_factor: number | null;
}

/**
 * Applies (and persists) the norm scaling factor. `scale`/`unscale` compute in float32 like
 * torch (`acts * s` with s rounded to float32) and write into `out` when given — pass the
 * input itself for in-place use in the hot loop.
 *
 * @example
 * ```ts
 * import { ActivationScaler } from "./activation_scaler.ts";
 * const scaler = new ActivationScaler(2);
 * const x = Float32Array.of(1, -3);
 * const y = scaler.scale(x); // [2, -6]
 * if (scaler.unscale(y)[1] !== -3) throw new Error("round trip");
 * ```
 */
export class ActivationScaler {
  /** The factor s, or null for no scaling. */
  scalingFactor: number | null;

  /** Creates a scaler with factor `scalingFactor` (null = identity). */
  constructor(scalingFactor: number | null = null) {
    if (scalingFactor !== null && !(Number.isFinite(scalingFactor) && scalingFactor !== 0)) {
      throw new TrainingError(
        `ActivationScaler: scaling factor ${scalingFactor}, expected a finite non-zero number or null`,
      );
    }
    this.scalingFactor = scalingFactor;
  }

  /** x·s (a copy unless `out` is given; `acts` itself when there is no factor and no `out`). */
  scale(acts: Float32Array, out?: Float32Array): Float32Array {
    return this.#apply(acts, out, false);
  }

  /** x/s, the inverse of {@link ActivationScaler.scale}. */
  unscale(acts: Float32Array, out?: Float32Array): Float32Array {
    return this.#apply(acts, out, true);
  }

  /** Sets the factor from `nBatches` batches of `source` (see {@link estimateNormScalingFactor}). */
  async estimateScalingFactor(dIn: number, source: BatchSource, nBatches = 1000): Promise<void> {
    this.scalingFactor = await estimateNormScalingFactor(source, dIn, nBatches);
  }

  /** `{scaling_factor}` as SAELens writes it. */
  toJSON(): ActivationScalerJson {
    return { scaling_factor: this.scalingFactor };
  }

  /** Reads {@link ActivationScaler.toJSON}'s form (validating the field). */
  static fromJSON(json: unknown): ActivationScaler {
    const factor = (json as Partial<ActivationScalerJson> | null)?.scaling_factor;
    if (factor !== null && (typeof factor !== "number" || !Number.isFinite(factor))) {
      throw new TrainingError(
        `activation scaler json scaling_factor is ${
          describeValue(factor)
        }, expected a number or null`,
      );
    }
    return new ActivationScaler(factor);
  }

  #apply(acts: Float32Array, out: Float32Array | undefined, inverse: boolean): Float32Array {
    if (out !== undefined && out.length < acts.length) {
      throw new TrainingError(`out has ${out.length} floats, expected >= ${acts.length}`);
    }
    if (this.scalingFactor === null) {
      if (out === undefined) return acts;
      if (out !== acts) out.set(acts);
      return out;
    }
    const dst = out ?? new Float32Array(acts.length);
    const s = Math.fround(this.scalingFactor);
    // float32 products/quotients computed in float64 and rounded once are exactly torch's f32 ops
    if (inverse) { for (let i = 0; i < acts.length; i++) dst[i] = acts[i] / s; }
    else for (let i = 0; i < acts.length; i++) dst[i] = acts[i] * s;
    return dst;
  }
}
