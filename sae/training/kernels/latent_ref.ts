/**
 * Plain-TS references of the per-latent kernels (`latent.ts`) and the shape of a dense
 * architecture's per-latent finalisation ({@link LatentSpec}; each architecture's rows live in
 * its folder).
 * @module
 */

/** One finalisation row: a WGSL expression (over a0.., nrm, li, xv, SC, u) and its TS twin. */
export interface FinRow {
  wgsl: string;
  ts: (c: FinCtx) => number;
}

/** Per-latent values a finalisation row may use. */
export interface FinCtx {
  /** The column sums of the backward pass for this latent. */
  a: number[];
  nrm: number;
  /** coefficient / B. */
  li: number;
  invB: number;
  p0: number;
  flags: number;
  nDead: number;
  /** The architecture's extra per-latent tensor (jumprelu: the raw threshold). */
  xv: number;
}

/** Finalisation rows from `[wgsl, ts]` pairs. */
export function finalizeRows(list: [string, (c: FinCtx) => number][]): FinRow[] {
  return list.map(([wgsl, ts]) => ({ wgsl, ts }));
}

/**
 * What a dense architecture's per-latent finalisation makes of its backward's column sums: the
 * number of sums `q`, the rows of `LO [L, n]` (row 0 = sparsity-loss term, row 1 = firing
 * count), which row is ∂L/∂‖W_dec[i]‖ (`gN`), which is Σ_t ∂L/∂h (`bDecVec`, for the b_dec
 * gradient), and which rows are parameter gradients.
 */
export interface LatentSpec {
  /** Name of the pipeline (`tsae_fin_<name>`). */
  name: string;
  q: number;
  rows: readonly FinRow[];
  gN: number;
  bDecVec: number;
  grads: Readonly<Record<string, number>>;
}

/**
 * Reference of `stepScalars`: [N_dead, auxCoef·min(N_dead/kAux, 1), 0, 0].
 *
 * @example
 * ```ts
 * import { stepScalarsRef } from "./latent_ref.ts";
 * const s = stepScalarsRef(new Uint32Array([1, 0, 1, 1]), 2, 4);
 * if (s[0] !== 3 || s[1] !== 1.5) throw new Error(String(s));
 * ```
 */
export function stepScalarsRef(dead: Uint32Array | null, auxCoef: number, kAux: number) {
  if (!dead) return new Float32Array(4);
  const nd = dead.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0);
  return Float32Array.of(nd, auxCoef * Math.min(nd / kAux, 1), 0, 0);
}

/**
 * Reference of `levelScalars`: per level j, [N_dead_j, auxCoef·min(N_dead_j/kAux, 1)] (zeros
 * without a mask), as the entries 4 + 2j and 5 + 2j of the step scalars.
 *
 * @example
 * ```ts
 * import { levelScalarsRef } from "./latent_ref.ts";
 * const s = levelScalarsRef(new Uint32Array([1, 0, 1, 1]), 2, 4, [1, 4]);
 * if (s.join() !== "1,0.5,2,1") throw new Error(s.join());
 * ```
 */
export function levelScalarsRef(
  dead: Uint32Array | null,
  auxCoef: number,
  kAux: number,
  widths: readonly number[],
): Float32Array {
  const out = new Float32Array(2 * widths.length);
  if (!dead) return out;
  widths.forEach((w, j) => {
    let nd = 0;
    for (let i = j === 0 ? 0 : widths[j - 1]; i < w; i++) nd += dead[i] !== 0 ? 1 : 0;
    out[2 * j] = nd;
    out[2 * j + 1] = auxCoef * Math.min(nd / kAux, 1);
  });
  return out;
}

/** Reference of `latentFinalize`: `LO [L, n]` from the column sums `[q, n]`. */
export function latentFinalizeRef(
  spec: LatentSpec,
  sums: Float32Array,
  norms: Float32Array,
  coef: number,
  B: number,
  p0: number,
  flags: number,
  nDead: number,
  extra?: Float32Array,
): Float32Array {
  const n = norms.length;
  const lo = new Float32Array(spec.rows.length * n);
  for (let i = 0; i < n; i++) {
    const a = Array.from({ length: spec.q }, (_, k) => sums[k * n + i]);
    const ctx: FinCtx = {
      a,
      nrm: norms[i],
      li: coef / B,
      invB: 1 / B,
      p0,
      flags,
      nDead,
      xv: extra ? extra[i] : 0,
    };
    spec.rows.forEach((r, k) => (lo[k * n + i] = r.ts(ctx)));
  }
  return lo;
}

/** Reference of `decoderNormGrad`: gW[i] + (gN_i/n_i)·W[i] where n_i > 0 and gN_i ≠ 0. */
export function decoderNormGradRef(
  gW: Float32Array,
  w: Float32Array,
  gN: Float32Array,
  norms: Float32Array,
  n: number,
  d: number,
): Float32Array {
  const out = Float32Array.from(gW);
  for (let i = 0; i < n; i++) {
    if (!(norms[i] > 0) || gN[i] === 0) continue;
    for (let j = 0; j < d; j++) out[i * d + j] += (gN[i] / norms[i]) * w[i * d + j];
  }
  return out;
}

/** Reference of `bDecGrad`: colSumG − apply·W_enc·v (`wEnc [d, n]`, or `[n, d]` transposed). */
export function bDecGradRef(
  wEnc: Float32Array,
  transposed: boolean,
  v: Float32Array,
  colSumG: Float32Array,
  apply: boolean,
): Float32Array {
  const d = colSumG.length, n = v.length;
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    if (apply) {
      for (let i = 0; i < n; i++) s += (transposed ? wEnc[i * d + j] : wEnc[j * n + i]) * v[i];
    }
    out[j] = colSumG[j] - s;
  }
  return out;
}

/** Reference of `assembleLosses` with the terms as functions of the sums. */
export function assembleRef(
  terms: ((rs: Float32Array, ls: Float32Array) => number)[],
  rowSums: Float32Array,
  latSums: Float32Array,
): { losses: Float32Array; recon: Float32Array; l0Sum: number } {
  const t = terms.map((f) => f(rowSums, latSums));
  return {
    losses: Float32Array.from([t.reduce((s, v) => s + v, 0), ...t]),
    recon: rowSums.slice(0, 4),
    l0Sum: latSums[1],
  };
}
