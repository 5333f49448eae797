/**
 * Synthetic activations with a known sparse dictionary in superposition (spec sae_anchors §6):
 * x = Σ_i f_i d_i over random unit directions d_i (more features than dimensions), each feature
 * active independently with a small probability and a uniform magnitude. A good SAE recovers
 * the dictionary: the mean over true features of the best cosine similarity to a learned decoder
 * row ("MMCS", {@link meanMaxCosineSimilarity}) approaches 1. The SynthSAEBench-style generator
 * (Zipfian firing, hierarchy, correlations, streamed as a source stage) and its ground-truth
 * metrics live in the top-level `synthetic/` folder.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { TrainingError } from "./errors.ts";
import { Mulberry32 } from "../../util/rng.ts";

/** Options of {@link SyntheticActivations}. */
export interface SyntheticOptions {
  /** Activation width d. */
  dIn: number;
  /** Number of true features (> dIn for superposition). */
  nFeatures: number;
  /** Expected number of active features per row (activation probability = this / nFeatures). */
  meanActive?: number;
  /** Magnitudes of active features are uniform in [lo, hi) (default [0.5, 1.5)). */
  magnitude?: [number, number];
  /** Seed of the dictionary and of the sample stream (default 0). */
  seed?: number;
}

/**
 * A reproducible generator of synthetic superposition data.
 *
 * @example
 * ```ts
 * import { SyntheticActivations } from "./synthetic.ts";
 * const gen = new SyntheticActivations({ dIn: 4, nFeatures: 8, meanActive: 2, seed: 1 });
 * const x = gen.batch(16); // Float32Array [16 * 4]
 * if (x.length !== 64 || gen.dictionary.length !== 32) throw new Error();
 * ```
 */
export class SyntheticActivations {
  /** Row-major `[nFeatures, dIn]` unit-norm feature directions. */
  readonly dictionary: Float32Array;
  /** Activation width. */
  readonly dIn: number;
  /** Number of ground-truth features. */
  readonly nFeatures: number;
  readonly #p: number;
  readonly #lo: number;
  readonly #hi: number;
  /** The sample stream's generator (its state is checkpointable via `getState`/`setState`). */
  readonly rng: Mulberry32;

  /** Draws the dictionary and seeds the sample stream from `options`. */
  constructor(options: SyntheticOptions) {
    const { dIn, nFeatures } = options;
    const meanActive = options.meanActive ?? 3;
    const [lo, hi] = options.magnitude ?? [0.5, 1.5];
    if (
      !Number.isSafeInteger(dIn) || dIn < 1 || !Number.isSafeInteger(nFeatures) || nFeatures < 1
    ) {
      throw new TrainingError(
        `synthetic data: dIn ${dIn} and nFeatures ${nFeatures} must be positive integers`,
      );
    }
    if (!(meanActive > 0 && meanActive <= nFeatures)) {
      throw new TrainingError(
        `synthetic data: meanActive is ${meanActive}, expected (0, nFeatures]`,
      );
    }
    if (!(lo >= 0 && hi > lo)) {
      throw new TrainingError(`synthetic data: magnitude [${lo}, ${hi}) must satisfy 0 <= lo < hi`);
    }
    this.dIn = dIn;
    this.nFeatures = nFeatures;
    this.#p = meanActive / nFeatures;
    this.#lo = lo;
    this.#hi = hi;
    const seed = options.seed ?? 0;
    const dictRng = new Mulberry32(seed * 2 + 1);
    this.dictionary = new Float32Array(nFeatures * dIn);
    for (let i = 0; i < nFeatures; i++) {
      const row = new Float64Array(dIn);
      let norm = 0;
      for (let j = 0; j < dIn; j++) {
        row[j] = gaussian(dictRng);
        norm += row[j] * row[j];
      }
      norm = Math.sqrt(norm);
      for (let j = 0; j < dIn; j++) this.dictionary[i * dIn + j] = row[j] / norm;
    }
    this.rng = new Mulberry32(seed * 2 + 2);
  }

  /** `nRows` samples, row-major `[nRows, dIn]`. */
  batch(nRows: number): Float32Array {
    const { dIn, nFeatures } = this;
    const out = new Float32Array(nRows * dIn);
    const acc = new Float64Array(dIn);
    for (let r = 0; r < nRows; r++) {
      acc.fill(0);
      for (let i = 0; i < nFeatures; i++) {
        if (this.rng.nextFloat() >= this.#p) continue;
        const f = this.#lo + (this.#hi - this.#lo) * this.rng.nextFloat();
        for (let j = 0; j < dIn; j++) acc[j] += f * this.dictionary[i * dIn + j];
      }
      out.set(acc, r * dIn);
    }
    return out;
  }

  /** An async stream of `nBatches` GPU batches `[nRows, dIn]` (unbounded when omitted). */
  async *stream(gpu: Gpu, nRows: number, nBatches = Infinity): AsyncGenerator<Tensor> {
    for (let b = 0; b < nBatches; b++) {
      yield Tensor.from(this.batch(nRows), [nRows, this.dIn], { gpu });
      await Promise.resolve();
    }
  }
}

/** Standard normal via Box–Muller. */
function gaussian(rng: Mulberry32): number {
  const u = 1 - rng.nextFloat(); // (0, 1]
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * MMCS: the mean over the rows of `truth` `[nTrue, d]` of the largest cosine similarity with any
 * row of `learned` `[nLearned, d]` (zero rows of `learned` are skipped).
 *
 * @example
 * ```ts
 * import { meanMaxCosineSimilarity } from "./synthetic.ts";
 * const truth = Float32Array.of(1, 0, 0, 1);
 * const learned = Float32Array.of(0, 2, 3, 0, 1, 1);
 * if (Math.abs(meanMaxCosineSimilarity(truth, learned, 2) - 1) > 1e-12) throw new Error();
 * ```
 */
export function meanMaxCosineSimilarity(
  truth: Float32Array,
  learned: Float32Array,
  d: number,
): number {
  if (truth.length % d !== 0 || learned.length % d !== 0 || truth.length === 0) {
    throw new TrainingError(
      `meanMaxCosineSimilarity: arrays of ${truth.length} and ${learned.length} values are not ` +
        `non-empty multiples of d = ${d}`,
    );
  }
  const nTrue = truth.length / d, nLearned = learned.length / d;
  const norms = new Float64Array(nLearned);
  for (let k = 0; k < nLearned; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += learned[k * d + j] ** 2;
    norms[k] = Math.sqrt(s);
  }
  let total = 0;
  for (let i = 0; i < nTrue; i++) {
    let tn = 0;
    for (let j = 0; j < d; j++) tn += truth[i * d + j] ** 2;
    tn = Math.sqrt(tn);
    let best = -1;
    for (let k = 0; k < nLearned; k++) {
      if (norms[k] === 0) continue;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += truth[i * d + j] * learned[k * d + j];
      best = Math.max(best, dot / (tn * norms[k]));
    }
    total += best;
  }
  return total / nTrue;
}
