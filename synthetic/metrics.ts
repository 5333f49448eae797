/**
 * Ground-truth quality metrics of an SAE trained on synthetic data, as SAELens's
 * `sae_lens/synthetic/evals.py` defines them (SynthSAEBench), in plain TS on host arrays:
 *
 * - **MCC** (mean correlation coefficient): |cos| between every decoder row and every true
 *   feature, an *optimal* one-to-one matching (Hungarian algorithm, {@link linearSumAssignment},
 *   minimising Σ(1 − |cos|), as scipy's `linear_sum_assignment`), the mean |cos| over the
 *   min(latents, features) matched pairs.
 * - **uniqueness**: distinct best-matching true features (argmax |cos| per latent) ÷ latents.
 * - **classification**: each latent is a detector of its best-matching true feature (argmax
 *   |cos|, not the MCC matching — as SAELens); per latent TP/FP/FN/TN of "latent > 0" against
 *   "feature fires", precision TP/(TP+FP), recall TP/(TP+FN), F1, accuracy (0 where undefined),
 *   averaged over all latents (dead ones included, with 0).
 * - **explained variance** 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) (variance about the mean).
 * - **L0** (mean latents > 0 per sample), **true L0**, **dead latents** (never > 0 over the eval
 *   samples), **shrinkage** mean ‖x̂‖/‖x‖ over samples with ‖x‖ > 1e-6.
 * - **MMCS**: mean over true features of the best |cos| with any decoder row (the older
 *   superposition metric, sae_anchors §6).
 * @module
 */

import { SyntheticError } from "./errors.ts";
import type { SparseCodes } from "./model.ts";

function rowsOf(a: ArrayLike<number>, d: number, what: string): number {
  if (!Number.isSafeInteger(d) || d < 1 || a.length % d !== 0) {
    throw new SyntheticError(`${what}: ${a.length} values are not rows of width d = ${d}`);
  }
  return a.length / d;
}

function rowNorms(a: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += a[i * d + j] ** 2;
    out[i] = Math.max(Math.sqrt(s), 1e-8); // SAELens clamps norms at 1e-8
  }
  return out;
}

/**
 * |cos| between every row of `a [na, d]` and every row of `b [nb, d]`, row-major `[na, nb]`
 * (zero rows give 0).
 *
 * @example
 * ```ts
 * import { absCosineMatrix } from "./metrics.ts";
 * const m = absCosineMatrix(Float32Array.of(3, 0, 1, 1), Float32Array.of(0, -2, 1, 0), 2);
 * // rows (3,0),(1,1) against (0,-2),(1,0)
 * if (m[0] !== 0 || m[1] !== 1 || Math.abs(m[2] - Math.SQRT1_2) > 1e-12) throw new Error();
 * ```
 */
export function absCosineMatrix(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  d: number,
): Float64Array {
  const na = rowsOf(a, d, "absCosineMatrix a"), nb = rowsOf(b, d, "absCosineMatrix b");
  const an = rowNorms(a, na, d), bn = rowNorms(b, nb, d);
  const out = new Float64Array(na * nb);
  const bt = new Float64Array(nb * d);
  for (let j = 0; j < nb; j++) for (let c = 0; c < d; c++) bt[j * d + c] = b[j * d + c] / bn[j];
  const ar = new Float64Array(d);
  for (let i = 0; i < na; i++) {
    for (let c = 0; c < d; c++) ar[c] = a[i * d + c] / an[i];
    for (let j = 0; j < nb; j++) {
      let s = 0;
      const o = j * d;
      for (let c = 0; c < d; c++) s += ar[c] * bt[o + c];
      out[i * nb + j] = Math.abs(s);
    }
  }
  return out;
}

/**
 * An optimal assignment for a rectangular cost matrix `cost [nRows, nCols]` (row-major),
 * minimising the total cost over min(nRows, nCols) pairs with each row and column used at most
 * once (scipy `linear_sum_assignment`): the Hungarian algorithm with potentials and shortest
 * augmenting paths, O(min² · max). Returns the column of each row (−1 when unassigned, which
 * happens only with more rows than columns).
 *
 * @example
 * ```ts
 * import { linearSumAssignment } from "./metrics.ts";
 * // The classic 3×3 example: the optimum 4 + 2 + 5 = 11 is not the greedy choice.
 * const cost = Float64Array.of(4, 1, 3, 2, 0, 5, 3, 2, 2);
 * const a = linearSumAssignment(cost, 3, 3);
 * if (a.join() !== "1,0,2") throw new Error(`got ${a}`);
 * ```
 */
export function linearSumAssignment(
  cost: ArrayLike<number>,
  nRows: number,
  nCols: number,
): Int32Array {
  if (!Number.isSafeInteger(nRows) || !Number.isSafeInteger(nCols) || nRows < 0 || nCols < 0) {
    throw new SyntheticError(`linearSumAssignment: shape [${nRows}, ${nCols}] is not valid`);
  }
  if (cost.length !== nRows * nCols) {
    throw new SyntheticError(
      `linearSumAssignment: ${cost.length} costs for a [${nRows}, ${nCols}] matrix`,
    );
  }
  for (let i = 0; i < cost.length; i++) {
    if (!Number.isFinite(cost[i])) {
      throw new SyntheticError(`linearSumAssignment: cost ${i} is ${cost[i]}, expected finite`);
    }
  }
  const result = new Int32Array(nRows).fill(-1);
  if (nRows === 0 || nCols === 0) return result;
  // Work on n ≤ m: transpose when there are more rows than columns.
  const t = nRows > nCols;
  const n = t ? nCols : nRows, m = t ? nRows : nCols;
  const a = (i: number, j: number) => t ? cost[j * nCols + i] : cost[i * nCols + j];
  const u = new Float64Array(n + 1), v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1), way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity, j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  for (let j = 1; j <= m; j++) {
    if (p[j] === 0) continue;
    if (t) result[j - 1] = p[j] - 1;
    else result[p[j] - 1] = j - 1;
  }
  return result;
}

/** MCC and the matching it came from. */
export interface MccResult {
  /** Mean |cos| over the matched pairs, in [0, 1]. */
  mcc: number;
  /** True feature matched to each latent (−1 when unmatched: more latents than features). */
  matching: Int32Array;
  /** |cos| of each latent with its matched feature (0 when unmatched). */
  matchedCos: Float64Array;
}

/**
 * SAELens `mean_correlation_coefficient` of decoder rows `learned [nLatents, d]` against true
 * features `truth [nFeatures, d]`: an optimal one-to-one matching on |cos| (Hungarian), then the
 * mean matched |cos|.
 *
 * @example
 * ```ts
 * import { meanCorrelationCoefficient } from "./metrics.ts";
 * const truth = Float32Array.of(1, 0, 0, 1);
 * // Latent 0 is (1,1)/√2, latent 1 is e2: the optimum pairs 0↔e1 and 1↔e2, (0.707 + 1) / 2
 * // (the other matching scores (0.707 + 0) / 2).
 * const r = meanCorrelationCoefficient(Float32Array.of(1, 1, 0, 1), truth, 2);
 * if (Math.abs(r.mcc - (Math.SQRT1_2 + 1) / 2) > 1e-12 || r.matching.join() !== "0,1") throw new Error();
 * ```
 */
export function meanCorrelationCoefficient(
  learned: ArrayLike<number>,
  truth: ArrayLike<number>,
  d: number,
): MccResult {
  const nl = rowsOf(learned, d, "MCC learned"), nf = rowsOf(truth, d, "MCC truth");
  const cos = absCosineMatrix(learned, truth, d);
  const costs = new Float64Array(cos.length);
  for (let i = 0; i < cos.length; i++) costs[i] = 1 - cos[i];
  const matching = linearSumAssignment(costs, nl, nf);
  const matchedCos = new Float64Array(nl);
  let sum = 0, pairs = 0;
  for (let l = 0; l < nl; l++) {
    if (matching[l] < 0) continue;
    matchedCos[l] = cos[l * nf + matching[l]];
    sum += matchedCos[l];
    pairs++;
  }
  return { mcc: pairs === 0 ? 0 : sum / pairs, matching, matchedCos };
}

/**
 * The best-matching true feature of each latent: argmax over features of |cos| (first on ties).
 *
 * @example
 * ```ts
 * import { bestMatches } from "./metrics.ts";
 * const m = bestMatches(Float32Array.of(0, 1, 1, 0.1), Float32Array.of(1, 0, 0, -1), 2);
 * if (m.join() !== "1,0") throw new Error();
 * ```
 */
export function bestMatches(
  learned: ArrayLike<number>,
  truth: ArrayLike<number>,
  d: number,
): Int32Array {
  const nl = rowsOf(learned, d, "bestMatches learned"), nf = rowsOf(truth, d, "bestMatches truth");
  const cos = absCosineMatrix(learned, truth, d);
  const out = new Int32Array(nl);
  for (let l = 0; l < nl; l++) {
    let best = 0;
    for (let f = 1; f < nf; f++) if (cos[l * nf + f] > cos[l * nf + best]) best = f;
    out[l] = best;
  }
  return out;
}

/**
 * SAELens `feature_uniqueness`: the number of distinct {@link bestMatches} ÷ the number of
 * latents (1 = every latent tracks a different true feature).
 *
 * @example
 * ```ts
 * import { featureUniqueness } from "./metrics.ts";
 * // Two latents both closest to e1, one to e2: 2 distinct of 3.
 * const u = featureUniqueness(Float32Array.of(1, 0, 1, 0.2, 0, 1), Float32Array.of(1, 0, 0, 1), 2);
 * if (Math.abs(u - 2 / 3) > 1e-12) throw new Error();
 * ```
 */
export function featureUniqueness(
  learned: ArrayLike<number>,
  truth: ArrayLike<number>,
  d: number,
): number {
  const m = bestMatches(learned, truth, d);
  return m.length === 0 ? 0 : new Set(m).size / m.length;
}

/**
 * MMCS: the mean over true features of the largest |cos| with any decoder row.
 *
 * @example
 * ```ts
 * import { meanMaxCosine } from "./metrics.ts";
 * if (meanMaxCosine(Float32Array.of(0, 2, 3, 0), Float32Array.of(1, 0, 0, 1), 2) !== 1) throw new Error();
 * ```
 */
export function meanMaxCosine(
  learned: ArrayLike<number>,
  truth: ArrayLike<number>,
  d: number,
): number {
  const nl = rowsOf(learned, d, "MMCS learned"), nf = rowsOf(truth, d, "MMCS truth");
  const cos = absCosineMatrix(truth, learned, d);
  let sum = 0;
  for (let f = 0; f < nf; f++) {
    let best = 0;
    for (let l = 0; l < nl; l++) best = Math.max(best, cos[f * nl + l]);
    sum += best;
  }
  return sum / nf;
}

/** Means over latents of the per-latent detector scores (see the module doc). */
export interface ClassificationMetrics {
  /** Mean precision TP / (TP + FP). */
  precision: number;
  /** Mean recall TP / (TP + FN). */
  recall: number;
  /** Mean F1 2PR / (P + R). */
  f1: number;
  /** Mean accuracy (TP + TN) / samples. */
  accuracy: number;
}

/** Everything {@link SyntheticMetrics.result} reports (SAELens `SyntheticDataEvalResult`). */
export interface SyntheticEvalResult {
  /** Samples evaluated. */
  samples: number;
  /** Mean true features firing per sample. */
  trueL0: number;
  /** Mean latents > 0 per sample. */
  saeL0: number;
  /** Latents never > 0 over the samples. */
  deadLatents: number;
  /** Mean ‖x̂‖ / ‖x‖. */
  shrinkage: number;
  /** 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²). */
  explainedVariance: number;
  /** Optimal-matching MCC of decoder rows and true features. */
  mcc: number;
  /** Distinct best matches ÷ latents. */
  uniqueness: number;
  /** Mean over true features of the best |cos| with a decoder row. */
  mmcs: number;
  /** Per-latent detector scores, averaged. */
  classification: ClassificationMetrics;
  /** Per latent: precision, recall, F1 against its best match, and that match. */
  perLatent: { precision: Float64Array; recall: Float64Array; f1: Float64Array; match: Int32Array };
}

/**
 * Streaming accumulator of the sample-dependent metrics over batches, plus the decoder-only ones
 * at the end.
 *
 * @example
 * ```ts
 * import { SyntheticMetrics } from "./metrics.ts";
 * // 2 true features = 2 latents = e1, e2 in 2 dims; a perfect SAE on 2 samples.
 * const truth = Float32Array.of(1, 0, 0, 1);
 * const m = new SyntheticMetrics({ decoder: truth, truth, dIn: 2 });
 * const codes = {
 *   rows: 2, rowPtr: Uint32Array.of(0, 1, 2), index: Uint32Array.of(0, 1),
 *   value: Float32Array.of(2, 3), block: 0, stream: 0, noiseKey: 0,
 * };
 * const x = Float32Array.of(2, 0, 0, 3);
 * m.add({ x, xHat: x, latents: Float32Array.of(2, 0, 0, 3), codes });
 * const r = m.result();
 * if (r.mcc !== 1 || r.explainedVariance !== 1 || r.classification.f1 !== 1 || r.saeL0 !== 1) {
 *   throw new Error(JSON.stringify(r));
 * }
 * ```
 */
export class SyntheticMetrics {
  readonly #decoder: ArrayLike<number>;
  readonly #truth: ArrayLike<number>;
  readonly #d: number;
  readonly #nl: number;
  readonly #nf: number;
  readonly #match: Int32Array;
  readonly #tp: Float64Array;
  readonly #fp: Float64Array;
  readonly #fn: Float64Array;
  readonly #fired: Uint8Array;
  readonly #sumX: Float64Array;
  #sumSq = 0;
  #sumResid = 0;
  #samples = 0;
  #trueActive = 0;
  #saeActive = 0;
  #shrinkSum = 0;
  #shrinkN = 0;

  /** `decoder [nLatents, dIn]` (W_dec rows), `truth [nFeatures, dIn]` (the dictionary). */
  constructor(init: { decoder: ArrayLike<number>; truth: ArrayLike<number>; dIn: number }) {
    this.#d = init.dIn;
    this.#nl = rowsOf(init.decoder, init.dIn, "SyntheticMetrics decoder");
    this.#nf = rowsOf(init.truth, init.dIn, "SyntheticMetrics truth");
    this.#decoder = init.decoder;
    this.#truth = init.truth;
    this.#match = bestMatches(init.decoder, init.truth, init.dIn);
    this.#tp = new Float64Array(this.#nl);
    this.#fp = new Float64Array(this.#nl);
    this.#fn = new Float64Array(this.#nl);
    this.#fired = new Uint8Array(this.#nl);
    this.#sumX = new Float64Array(init.dIn);
  }

  /**
   * Adds a batch: inputs `x [rows, dIn]`, reconstructions `xHat [rows, dIn]`, latents
   * `[rows, nLatents]` and the ground-truth codes of the same rows.
   */
  add(batch: {
    x: ArrayLike<number>;
    xHat: ArrayLike<number>;
    latents: ArrayLike<number>;
    codes: SparseCodes;
  }): void {
    const d = this.#d, nl = this.#nl, nf = this.#nf;
    const { x, xHat, latents, codes } = batch;
    const rows = codes.rows;
    if (x.length !== rows * d || xHat.length !== rows * d || latents.length !== rows * nl) {
      throw new SyntheticError(
        `SyntheticMetrics.add: expected x and xHat of ${rows}×${d} and latents of ${rows}×${nl} ` +
          `values, got ${x.length}, ${xHat.length} and ${latents.length}`,
      );
    }
    const active = new Uint8Array(nf);
    const match = this.#match;
    for (let r = 0; r < rows; r++) {
      for (let e = codes.rowPtr[r]; e < codes.rowPtr[r + 1]; e++) {
        if (codes.index[e] >= nf) {
          throw new SyntheticError(
            `SyntheticMetrics.add: code names feature ${codes.index[e]}, there are ${nf}`,
          );
        }
        active[codes.index[e]] = 1;
      }
      this.#trueActive += codes.rowPtr[r + 1] - codes.rowPtr[r];
      const lo = r * nl;
      for (let l = 0; l < nl; l++) {
        const fires = latents[lo + l] > 0;
        const gt = active[match[l]] === 1;
        if (fires) {
          this.#saeActive++;
          this.#fired[l] = 1;
          if (gt) this.#tp[l]++;
          else this.#fp[l]++;
        } else if (gt) this.#fn[l]++;
      }
      for (let e = codes.rowPtr[r]; e < codes.rowPtr[r + 1]; e++) active[codes.index[e]] = 0;
      let xx = 0, hh = 0;
      for (let c = 0; c < d; c++) {
        const xv = x[r * d + c], hv = xHat[r * d + c];
        this.#sumX[c] += xv;
        xx += xv * xv;
        hh += hv * hv;
        this.#sumResid += (xv - hv) ** 2;
      }
      this.#sumSq += xx;
      const xn = Math.sqrt(xx);
      if (xn > 1e-6) {
        this.#shrinkSum += Math.sqrt(hh) / xn;
        this.#shrinkN++;
      }
    }
    this.#samples += rows;
  }

  /** The metrics over everything added (MCC and uniqueness from the decoder alone). */
  result(): SyntheticEvalResult {
    const n = this.#samples, nl = this.#nl, d = this.#d;
    const precision = new Float64Array(nl), recall = new Float64Array(nl);
    const f1 = new Float64Array(nl);
    let sp = 0, sr = 0, sf = 0, sa = 0;
    for (let l = 0; l < nl; l++) {
      const tp = this.#tp[l], fp = this.#fp[l], fn = this.#fn[l];
      precision[l] = tp + fp > 0 ? tp / (tp + fp) : 0;
      recall[l] = tp + fn > 0 ? tp / (tp + fn) : 0;
      f1[l] = precision[l] + recall[l] > 0
        ? 2 * precision[l] * recall[l] / (precision[l] + recall[l])
        : 0;
      sp += precision[l];
      sr += recall[l];
      sf += f1[l];
      sa += n > 0 ? (n - fp - fn) / n : 0;
    }
    let ev = 0;
    if (n > 0) {
      let meanSq = 0;
      for (let c = 0; c < d; c++) meanSq += (this.#sumX[c] / n) ** 2;
      const variance = this.#sumSq / n - meanSq;
      ev = variance < 1e-10
        ? (this.#sumResid < 1e-10 ? 1 : 0)
        : 1 - (this.#sumResid / n) / variance;
    }
    let dead = 0;
    for (let l = 0; l < nl; l++) if (!this.#fired[l]) dead++;
    const uniq = nl === 0 ? 0 : new Set(this.#match).size / nl;
    return {
      samples: n,
      trueL0: n > 0 ? this.#trueActive / n : 0,
      saeL0: n > 0 ? this.#saeActive / n : 0,
      deadLatents: dead,
      shrinkage: this.#shrinkN > 0 ? this.#shrinkSum / this.#shrinkN : 0,
      explainedVariance: ev,
      mcc: meanCorrelationCoefficient(this.#decoder, this.#truth, d).mcc,
      uniqueness: uniq,
      mmcs: meanMaxCosine(this.#decoder, this.#truth, d),
      classification: {
        precision: nl ? sp / nl : 0,
        recall: nl ? sr / nl : 0,
        f1: nl ? sf / nl : 0,
        accuracy: nl ? sa / nl : 0,
      },
      perLatent: { precision, recall, f1, match: this.#match },
    };
  }
}
