/**
 * A synthetic model of activations with known ground truth, after SAELens's SynthSAEBench
 * (`sae_lens/synthetic`, spec sae_anchors §6). A dictionary of `nFeatures` unit-norm directions
 * in `dIn` dimensions (more features than dimensions, random Gaussian directions, so nearly
 * orthogonal: |cos| ≈ √(2/(π·dIn)) on average); every sample is x = Σ_i f_i·d_i + bias + noise
 * over the features that fire in it, with
 *
 * - **Zipfian firing probabilities**: p_i ∝ 1/(i+1)^exponent rescaled to [minProb, maxProb]
 *   (feature 0 the most frequent);
 * - a **hierarchy** ({@link HierarchyConfig}): a child fires only with its parent, the children
 *   of one parent are mutually exclusive, children's base probabilities compensated;
 * - **low-rank correlations** between firings: a Gaussian copula whose correlation matrix is
 *   F·Fᵀ + diag(1 − ‖F_i‖²) with F `[nFeatures, rank]` ~ N(0, scale²) (SAELens
 *   `generate_random_low_rank_correlation_matrix`): feature i fires when F_i·u + s_i·e_i >
 *   Φ̄⁻¹(p_i), u ~ N(0, I_rank), e_i ~ N(0, 1), s_i = √(1 − ‖F_i‖²), so its marginal stays p_i;
 * - **magnitudes** max(0, μ_i + σ_i·z): μ_i linear from `meanStart` (feature 0) to `meanEnd`,
 *   σ_i drawn once per feature from a folded normal |N(stdMean, stdStd²)|;
 * - optional constant **bias** (a random direction of norm `biasNorm`) and i.i.d. Gaussian
 *   **noise** of standard deviation `noiseStd` per coordinate.
 *
 * The host samples the sparse codes (vectorised typed-array loops, O(nFeatures · (1 + rank))
 * per row; the defaults below follow SynthSAEBench-16k); `decodeCodes` turns them into
 * `[rows, dIn]` on the GPU. Sampling is deterministic: block b of stream s depends only on
 * (seed, s, b), so any block can be regenerated alone (which is how a run resumes).
 * @module
 */

import { fastUpperTail, normalUpperTailInverse, upperTailTable } from "./normal.ts";
import { GaussianSource, Mulberry32 } from "../util/rng.ts";
import { SyntheticError } from "./errors.ts";
import {
  buildHierarchy,
  compensatedProbabilities,
  type FeatureHierarchy,
  type HierarchyConfig,
} from "./hierarchy.ts";

export type { FeatureHierarchy, HierarchyConfig };

/** Zipfian firing probabilities (SAELens `ZipfianFiringProbabilityConfig`). */
export interface ZipfConfig {
  /** Power-law exponent (default 0.5). */
  exponent?: number;
  /** Probability of feature 0 (default 0.4). */
  maxProb?: number;
  /** Probability of the last feature (default 5e-4). */
  minProb?: number;
}

/** Low-rank correlations between firings (SAELens `LowRankCorrelationConfig`). */
export interface CorrelationConfig {
  /** Rank of the factor F. */
  rank: number;
  /** Standard deviation of F's entries (`correlation_scale`, default 0.1). */
  scale?: number;
}

/** Magnitudes of firing features. */
export interface MagnitudeConfig {
  /** Mean magnitude of feature 0 (default 5, SynthSAEBench `LinearMagnitudeConfig(5, 4)`). */
  meanStart?: number;
  /** Mean magnitude of the last feature (default 4). */
  meanEnd?: number;
  /** Location of the folded normal the per-feature σ_i is drawn from (default 0.5). */
  stdMean?: number;
  /** Scale of that folded normal (default 0.5; 0 makes every σ_i = |stdMean|). */
  stdStd?: number;
}

/** Everything that defines a synthetic model (one seed fixes every random choice). */
export interface SyntheticConfig {
  /** Activation width d (SAELens `hidden_dim`). */
  dIn: number;
  /** Ground-truth features (more than `dIn` for superposition). */
  nFeatures: number;
  /** Firing probabilities (Zipfian). */
  firing?: ZipfConfig;
  /** Feature hierarchy; null or absent for none. */
  hierarchy?: HierarchyConfig | null;
  /** Correlated firing; null or absent for independent features. */
  correlation?: CorrelationConfig | null;
  /** Magnitudes. */
  magnitude?: MagnitudeConfig;
  /** Norm of the constant bias added to every sample (default 0: none). */
  biasNorm?: number;
  /** Standard deviation of Gaussian noise per coordinate (default 0: none). */
  noiseStd?: number;
  /** Seed of every random choice (default 0). */
  seed?: number;
}

/**
 * SynthSAEBench-16k's recipe (SAELens docs `synthsaebench.md`) at a chosen size: Zipf exponent
 * 0.5 from 0.4 to 5e-4, hierarchy of branching 4 and depth 3 with all children mutually
 * exclusive and compensated probabilities, rank-25 correlations of scale 0.1 (rank capped at
 * nFeatures/4), magnitudes linear 5 → 4 with folded-normal(0.5, 0.5) spreads. `roots` defaults
 * to nFeatures/128 (128 at 16,384 features). The benchmark model itself also has a bias of norm
 * 0.5 and an orthogonalised dictionary; here the bias is left to the caller and the dictionary
 * stays random.
 *
 * @example
 * ```ts
 * import { synthSaeBenchConfig } from "./model.ts";
 * const cfg = synthSaeBenchConfig({ nFeatures: 16384, dIn: 768 });
 * if (cfg.hierarchy?.roots !== 128 || cfg.correlation?.rank !== 25) throw new Error();
 * ```
 */
export function synthSaeBenchConfig(
  size: { nFeatures: number; dIn: number; roots?: number; seed?: number },
): SyntheticConfig {
  const { nFeatures, dIn } = size;
  return {
    dIn,
    nFeatures,
    firing: { exponent: 0.5, maxProb: 0.4, minProb: 5e-4 },
    hierarchy: {
      roots: size.roots ?? Math.max(1, Math.floor(nFeatures / 128)),
      branching: 4,
      depth: 3,
      mutuallyExclusivePortion: 1,
      compensateProbabilities: true,
    },
    correlation: { rank: Math.max(1, Math.min(25, Math.floor(nFeatures / 4))), scale: 0.1 },
    magnitude: { meanStart: 5, meanEnd: 4, stdMean: 0.5, stdStd: 0.5 },
    seed: size.seed ?? 0,
  };
}

/**
 * One block of sparse ground-truth codes in CSR form: row r's firing features are
 * `index[rowPtr[r] … rowPtr[r+1])` in increasing order, with magnitudes `value[…]` (all > 0).
 */
export interface SparseCodes {
  /** Rows in the block. */
  rows: number;
  /** `[rows + 1]` offsets into `index` / `value`. */
  rowPtr: Uint32Array;
  /** Feature index of every entry. */
  index: Uint32Array;
  /** Magnitude of every entry. */
  value: Float32Array;
  /** Block number within its stream. */
  block: number;
  /** Stream the block belongs to (0: training, 1: evaluation, or any other). */
  stream: number;
  /** 32-bit key of this block's noise (used by `decodeCodes` and its reference). */
  noiseKey: number;
}

/** A 32-bit integer hash (lowbias32 by Chris Wellons). */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The seed of block `block` of stream `stream` for model seed `seed`. */
function blockSeed(seed: number, stream: number, block: number): number {
  const hi = Math.floor(block / 4294967296);
  let h = mix32((seed >>> 0) ^ 0x3c6ef372);
  h = mix32(h ^ Math.imul(stream >>> 0, 0x9e3779b9));
  h = mix32(h ^ hi);
  return mix32(h ^ (block >>> 0));
}

function checkInt(v: unknown, name: string, min: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new SyntheticError(`synthetic config ${name} is ${v}, expected an integer >= ${min}`);
  }
  return v;
}

function checkNum(v: unknown, name: string, ok: (x: number) => boolean, want: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
    throw new SyntheticError(`synthetic config ${name} is ${v}, expected ${want}`);
  }
  return v;
}

/**
 * Zipfian probabilities of `n` features (SAELens `zipfian_firing_probabilities`): 1/(i+1)^a
 * rescaled linearly so that the first is `maxProb` and the last `minProb`.
 *
 * @example
 * ```ts
 * import { zipfProbabilities } from "./model.ts";
 * const p = zipfProbabilities(3, 1, 0.5, 0.1); // 1, 1/2, 1/3 → 0.5, 0.2, 0.1
 * if (Math.abs(p[1] - 0.2) > 1e-12 || p[0] !== 0.5 || Math.abs(p[2] - 0.1) > 1e-12) throw new Error();
 * ```
 */
export function zipfProbabilities(
  n: number,
  exponent: number,
  maxProb: number,
  minProb: number,
): Float64Array {
  const p = new Float64Array(n);
  if (n === 1) {
    p[0] = maxProb;
    return p;
  }
  const last = 1 / n ** exponent;
  for (let i = 0; i < n; i++) {
    const raw = 1 / (i + 1) ** exponent;
    p[i] = minProb + (maxProb - minProb) * (raw - last) / (1 - last);
  }
  return p;
}

/**
 * The synthetic model: its dictionary, probabilities, hierarchy, correlation factor and
 * magnitudes, and the sampler of sparse code blocks.
 *
 * @example
 * ```ts
 * import { SyntheticModel } from "./model.ts";
 * const m = new SyntheticModel({ dIn: 16, nFeatures: 64, seed: 3 });
 * const codes = m.sampleBlock(0, 100);
 * const again = m.sampleBlock(0, 100); // same seed, stream and block: same codes
 * if (codes.rowPtr[100] !== again.rowPtr[100] || codes.index.join() !== again.index.join()) {
 *   throw new Error("not deterministic");
 * }
 * if (!(codes.rowPtr[100] > 0)) throw new Error("nothing fired");
 * ```
 */
export class SyntheticModel {
  /** The config with defaults filled in. */
  readonly cfg: Readonly<SyntheticConfig>;
  /** Activation width. */
  readonly dIn: number;
  /** Number of ground-truth features. */
  readonly nFeatures: number;
  /** Row-major `[nFeatures, dIn]` unit-norm feature directions (SAELens `feature_vectors`). */
  readonly dictionary: Float32Array;
  /** `[dIn]` constant bias of every sample (zeros when `biasNorm` is 0). */
  readonly bias: Float32Array;
  /** Target firing probability of each feature (the Zipfian values). */
  readonly firingProbabilities: Float64Array;
  /** Probabilities the features are sampled with before the hierarchy (compensated). */
  readonly baseProbabilities: Float64Array;
  /** Mean magnitude μ_i of each feature. */
  readonly meanMagnitudes: Float64Array;
  /** Magnitude spread σ_i of each feature. */
  readonly stdMagnitudes: Float64Array;
  /** The hierarchy, or null. */
  readonly hierarchy: FeatureHierarchy | null;
  /** Row-major `[nFeatures, rank]` correlation factor F, or null. */
  readonly correlationFactor: Float64Array | null;
  /** Rank of F (0 without correlations). */
  readonly rank: number;
  /** Per-coordinate noise standard deviation. */
  readonly noiseStd: number;
  readonly #seed: number;
  /** Copula thresholds Φ̄⁻¹(base p_i). */
  readonly #threshold: Float64Array;
  /** 1 / √(1 − ‖F_i‖²). */
  readonly #invS: Float64Array;
  /** Features without a parent (roots and features outside the hierarchy), ascending. */
  readonly #top: Int32Array;
  /** Top features grouped by base probability in (q/2, q], q = 2^-b (independent sampling). */
  readonly #buckets: { features: Int32Array; q: number; invLogMiss: number }[] = [];

  /** Draws everything from `cfg` (validated first; a {@link SyntheticError} names the field). */
  constructor(cfg: SyntheticConfig) {
    const dIn = checkInt(cfg.dIn, "dIn", 1);
    const n = checkInt(cfg.nFeatures, "nFeatures", 1);
    const seed = checkInt(cfg.seed ?? 0, "seed", 0);
    const z = cfg.firing ?? {};
    const exponent = checkNum(z.exponent ?? 0.5, "firing.exponent", (x) => x > 0, "> 0");
    const maxProb = checkNum(
      z.maxProb ?? 0.4,
      "firing.maxProb",
      (x) => x > 0 && x <= 1,
      "in (0, 1]",
    );
    const minProb = checkNum(
      z.minProb ?? 5e-4,
      "firing.minProb",
      (x) => x > 0 && x <= maxProb,
      `in (0, maxProb = ${maxProb}]`,
    );
    const mag = cfg.magnitude ?? {};
    const meanStart = checkNum(mag.meanStart ?? 5, "magnitude.meanStart", (x) => x > 0, "> 0");
    const meanEnd = checkNum(mag.meanEnd ?? 4, "magnitude.meanEnd", (x) => x > 0, "> 0");
    const stdMean = checkNum(mag.stdMean ?? 0.5, "magnitude.stdMean", () => true, "a number");
    const stdStd = checkNum(mag.stdStd ?? 0.5, "magnitude.stdStd", (x) => x >= 0, ">= 0");
    const biasNorm = checkNum(cfg.biasNorm ?? 0, "biasNorm", (x) => x >= 0, ">= 0");
    this.noiseStd = checkNum(cfg.noiseStd ?? 0, "noiseStd", (x) => x >= 0, ">= 0");
    let rank = 0, scale = 0;
    if (cfg.correlation) {
      rank = checkInt(cfg.correlation.rank, "correlation.rank", 1);
      scale = checkNum(cfg.correlation.scale ?? 0.1, "correlation.scale", (x) => x >= 0, ">= 0");
    }
    if (n * dIn > 2 ** 28) {
      throw new SyntheticError(
        `synthetic config nFeatures × dIn is ${n * dIn}, expected at most 2^28 (1 GiB of f32)`,
      );
    }
    this.cfg = {
      ...cfg,
      firing: { exponent, maxProb, minProb },
      magnitude: { meanStart, meanEnd, stdMean, stdStd },
      biasNorm,
      noiseStd: this.noiseStd,
      seed,
    };
    this.dIn = dIn;
    this.nFeatures = n;
    this.#seed = seed;
    this.rank = rank;

    // Dictionary: Gaussian rows, normalised (seed stream 1).
    const g = new GaussianSource(new Mulberry32(mix32(seed ^ 0x1000001)));
    this.dictionary = new Float32Array(n * dIn);
    const row = new Float64Array(dIn);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dIn; j++) {
        row[j] = g.next();
        s += row[j] * row[j];
      }
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < dIn; j++) this.dictionary[i * dIn + j] = row[j] * inv;
    }
    this.bias = new Float32Array(dIn);
    if (biasNorm > 0) {
      let s = 0;
      for (let j = 0; j < dIn; j++) {
        row[j] = g.next();
        s += row[j] * row[j];
      }
      for (let j = 0; j < dIn; j++) this.bias[j] = row[j] * biasNorm / Math.sqrt(s);
    }

    this.firingProbabilities = zipfProbabilities(n, exponent, maxProb, minProb);
    this.hierarchy = cfg.hierarchy
      ? buildHierarchy(n, cfg.hierarchy, new Mulberry32(mix32(seed ^ 0x3000003)))
      : null;
    this.baseProbabilities = this.hierarchy && cfg.hierarchy?.compensateProbabilities !== false
      ? compensatedProbabilities(this.firingProbabilities, this.hierarchy)
      : Float64Array.from(this.firingProbabilities);

    this.meanMagnitudes = new Float64Array(n);
    this.stdMagnitudes = new Float64Array(n);
    const gm = new GaussianSource(new Mulberry32(mix32(seed ^ 0x2000002)));
    for (let i = 0; i < n; i++) {
      this.meanMagnitudes[i] = n === 1
        ? meanStart
        : meanStart + (meanEnd - meanStart) * i / (n - 1);
      this.stdMagnitudes[i] = Math.abs(stdMean + stdStd * gm.next());
    }

    const byBucket = new Map<number, number[]>();
    const top: number[] = [];
    for (let i = 0; i < n; i++) {
      if (this.hierarchy && this.hierarchy.parent[i] >= 0) continue;
      top.push(i);
      const p = this.baseProbabilities[i];
      if (!(p > 0)) continue;
      const b = p >= 1 ? 0 : Math.min(1074, Math.floor(-Math.log2(p)));
      const list = byBucket.get(b) ?? [];
      list.push(i);
      byBucket.set(b, list);
    }
    this.#top = Int32Array.from(top);
    for (const b of [...byBucket.keys()].sort((x, y) => x - y)) {
      const q = 2 ** -b;
      this.#buckets.push({
        features: Int32Array.from(byBucket.get(b)!),
        q,
        invLogMiss: q >= 1 ? 0 : 1 / Math.log1p(-q),
      });
    }
    this.#threshold = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.#threshold[i] = normalUpperTailInverse(this.baseProbabilities[i]);
    }
    this.#invS = new Float64Array(n).fill(1);
    this.correlationFactor = null;
    if (rank > 0) {
      const f = new Float64Array(n * rank);
      const gc = new GaussianSource(new Mulberry32(mix32(seed ^ 0x4000004)));
      let maxSq = 0;
      for (let i = 0; i < n * rank; i++) f[i] = gc.next() * scale;
      const sq = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s += f[i * rank + k] ** 2;
        sq[i] = s;
        maxSq = Math.max(maxSq, s);
      }
      // As SAELens: keep every diagonal term ≥ 0.01 by shrinking F as a whole.
      if (1 - maxSq < 0.01) {
        const shrink = Math.sqrt(0.99 / maxSq);
        for (let i = 0; i < f.length; i++) f[i] *= shrink;
        for (let i = 0; i < n; i++) sq[i] *= shrink * shrink;
      }
      for (let i = 0; i < n; i++) this.#invS[i] = 1 / Math.sqrt(1 - sq[i]);
      this.correlationFactor = f;
    }
  }

  /**
   * Σ of the target probabilities: the expected number of firing features per sample without a
   * hierarchy. With one it is an upper bound (children's compensated probabilities are capped
   * at 1, and mutual exclusion drops siblings); measure the true L0 from samples.
   */
  targetL0(): number {
    let s = 0;
    for (const p of this.firingProbabilities) s += p;
    return s;
  }

  /**
   * The sparse codes of block `block` (rows `[block·rows, (block+1)·rows)` of stream `stream`).
   * Depends only on (seed, stream, block, rows).
   */
  sampleBlock(block: number, rows: number, stream = 0): SparseCodes {
    if (!Number.isSafeInteger(block) || block < 0) {
      throw new SyntheticError(`sampleBlock: block is ${block}, expected an integer >= 0`);
    }
    if (!Number.isSafeInteger(rows) || rows < 1 || rows > 2 ** 24) {
      throw new SyntheticError(`sampleBlock: rows is ${rows}, expected an integer in [1, 2^24]`);
    }
    if (!Number.isSafeInteger(stream) || stream < 0 || stream >= 2 ** 32) {
      throw new SyntheticError(`sampleBlock: stream is ${stream}, expected a uint32`);
    }
    const bs = blockSeed(this.#seed, stream, block);
    const rng = new Mulberry32(bs);
    const gauss = new GaussianSource(rng);
    const n = this.nFeatures, rank = this.rank;
    const base = this.baseProbabilities, thr = this.#threshold, invS = this.#invS;
    const F = this.correlationFactor, tab = upperTailTable();
    const h = this.hierarchy, hSize = h?.size ?? 0;
    const mean = this.meanMagnitudes, std = this.stdMagnitudes;
    const top = this.#top, buckets = this.#buckets;
    const fired = new Int32Array(n); // top-level features that fire in the row, ascending
    const queue = new Int32Array(n); // active hierarchy features, breadth first (= ascending)
    const val = new Float64Array(n); // magnitude of each active hierarchy feature in the row
    const u = new Float64Array(Math.max(1, rank));
    const rowPtr = new Uint32Array(rows + 1);
    let cap = Math.max(16, Math.ceil(rows * (this.targetL0() * 1.5 + 4)));
    let index = new Uint32Array(cap), value = new Float32Array(cap);
    let nnz = 0;
    // P(feature i fires | u): Φ̄((t_i − F_i·u) / s_i) with the copula, else its base probability.
    const prob = (i: number): number => {
      if (!F) return base[i];
      let w = 0;
      const o = i * rank;
      for (let k = 0; k < rank; k++) w += F[o + k] * u[k];
      return fastUpperTail(tab, (thr[i] - w) * invS[i]);
    };
    const magnitude = (f: number, parentValue: number, parentMean: number): number => {
      let v = mean[f] + std[f] * gauss.next();
      if (h?.scaleChildrenByParent && parentMean > 0) v *= parentValue / parentMean;
      return v;
    };
    for (let r = 0; r < rows; r++) {
      // 1. Top-level features (roots and features outside the hierarchy).
      let nf = 0;
      if (F) {
        for (let k = 0; k < rank; k++) u[k] = gauss.next();
        for (let e = 0; e < top.length; e++) {
          const i = top[e];
          if (rng.nextFloat() < prob(i)) fired[nf++] = i;
        }
      } else {
        // Within each probability bucket (all p in (q/2, q]) jump from candidate to candidate
        // with geometric skips of parameter q and keep each with probability p_i / q ≥ 1/2:
        // O(buckets + L0) per row instead of O(nFeatures).
        for (let b = 0; b < buckets.length; b++) {
          const { features, q, invLogMiss } = buckets[b];
          const m = features.length;
          if (q >= 1) {
            for (let e = 0; e < m; e++) {
              const i = features[e];
              if (rng.nextFloat() < base[i]) fired[nf++] = i;
            }
            continue;
          }
          let pos = -1;
          for (;;) {
            pos += 1 + Math.floor(Math.log(1 - rng.nextFloat()) * invLogMiss);
            if (pos >= m) break;
            const i = features[pos];
            if (rng.nextFloat() * q < base[i]) fired[nf++] = i;
          }
        }
        for (let a = 1; a < nf; a++) { // insertion sort: rows hold few features
          const f = fired[a];
          let c = a - 1;
          while (c >= 0 && fired[c] > f) {
            fired[c + 1] = fired[c];
            c--;
          }
          fired[c + 1] = f;
        }
      }
      const need = nnz + nf + (h ? hSize : 0);
      if (need > cap) {
        cap = Math.max(cap * 2, need);
        const i2 = new Uint32Array(cap), v2 = new Float32Array(cap);
        i2.set(index.subarray(0, nnz));
        v2.set(value.subarray(0, nnz));
        index = i2;
        value = v2;
      }
      // 2. The hierarchy, top down: a child is drawn only when its parent is active (the same
      // law as drawing every feature and then switching off children of inactive parents);
      // of the children of a mutually exclusive parent that fire, one is kept at random.
      let e = 0;
      if (h) {
        let qn = 0;
        for (; e < nf && fired[e] < hSize; e++) {
          const f = fired[e];
          const v = magnitude(f, 0, 0);
          if (v > 0) {
            val[f] = v;
            queue[qn++] = f;
          }
        }
        for (let a = 0; a < qn; a++) {
          const p = queue[a];
          const cs = h.childStart[p], cn = h.childCount[p];
          if (cn === 0) continue;
          const exclusive = h.group[cs] >= 0;
          let chosen = -1, seen = 0;
          for (let c = cs; c < cs + cn; c++) {
            if (!(rng.nextFloat() < prob(c))) continue;
            if (!exclusive) {
              const v = magnitude(c, val[p], mean[p]);
              if (v > 0) {
                val[c] = v;
                queue[qn++] = c;
              }
            } else if (rng.nextInt(++seen) === 0) chosen = c; // uniform among those that fire
          }
          if (chosen >= 0) {
            const v = magnitude(chosen, val[p], mean[p]);
            if (v > 0) {
              val[chosen] = v;
              queue[qn++] = chosen;
            }
          }
        }
        for (let a = 0; a < qn; a++) {
          const f = queue[a];
          index[nnz] = f;
          value[nnz++] = val[f];
          val[f] = 0;
        }
      }
      // 3. Features outside the hierarchy.
      for (; e < nf; e++) {
        const f = fired[e];
        const v = magnitude(f, 0, 0);
        if (v > 0) {
          index[nnz] = f;
          value[nnz++] = v;
        }
      }
      rowPtr[r + 1] = nnz;
    }
    return {
      rows,
      rowPtr,
      index: index.slice(0, nnz),
      value: value.slice(0, nnz),
      block,
      stream,
      noiseKey: mix32(bs ^ 0x5bd1e995),
    };
  }
}
