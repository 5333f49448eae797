/**
 * Plain-TS references of the sparse TopK-family kernels (`sparse.ts`), float64 inside.
 * @module
 */

/** A selected latent of a token, with its decoder weight. */
export interface RefEntry {
  idx: number;
  coef: number;
}

/**
 * Reference of `decodeRows`: per token, every level's prefix reconstruction
 * bias + Σ_{idx < width_l} coef·W_dec[idx] (`out [levels · B, d]`).
 *
 * @example
 * ```ts
 * import { decodeRowsRef } from "./sparse_ref.ts";
 * const out = decodeRowsRef([[{ idx: 1, coef: 2 }]], new Float32Array([1, 0, 0, 3]), null, [2], 2);
 * if (out[1] !== 6) throw new Error(String(out));
 * ```
 */
export function decodeRowsRef(
  rows: RefEntry[][],
  wDec: Float32Array,
  bias: Float32Array | null,
  levels: number[],
  d: number,
): Float32Array {
  const B = rows.length, m = levels.length;
  const out = new Float32Array(m * B * d);
  rows.forEach((entries, b) => {
    levels.forEach((w, l) => {
      for (let j = 0; j < d; j++) {
        let s = bias ? bias[j] : 0;
        for (const e of entries) if (e.idx < w || l === m - 1) s += e.coef * wDec[e.idx * d + j];
        out[(l * B + b) * d + j] = s;
      }
    });
  });
  return out;
}

/** Reference of `cumulativeLevels`: level l ← Σ_{l' ≥ l} level l'. */
export function cumulativeLevelsRef(g: Float32Array, m: number, count: number): Float32Array {
  const out = Float32Array.from(g);
  for (let k = 0; k < count; k++) {
    let acc = g[(m - 1) * count + k];
    for (let l = m - 2; l >= 0; l--) {
      acc += g[l * count + k];
      out[l * count + k] = acc;
    }
  }
  return out;
}

/** Reference of `scanU32`: exclusive prefix sums of `a` (+ `b`) with the total appended. */
export function scanU32Ref(a: ArrayLike<number>, b?: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(a.length + 1);
  for (let i = 0; i < a.length; i++) out[i + 1] = out[i] + a[i] + (b ? b[i] : 0);
  return out;
}

/** An entry of {@link sparseBackwardRef}: latent, token, decoder weight, upstream row, aux flag. */
export interface BackEntry {
  idx: number;
  row: number;
  coef: number;
  src: number;
  aux: boolean;
}

/**
 * Reference of `entryDots` + sort + `latentGather`: w_e = U[src]·W_dec[idx];
 * ∂W_dec[i] = Σ coef·U[src], ∂W_enc[:, i] = Σ w·x̃[row], ∂b_enc[i] = Σ w, fired = #main entries.
 */
export function sparseBackwardRef(
  entries: BackEntry[],
  ups: Float32Array,
  xt: Float32Array,
  wDec: Float32Array,
  n: number,
  d: number,
): {
  w: Float32Array;
  gWDec: Float32Array;
  gWEnc: Float32Array;
  bEnc: Float32Array;
  fired: Float32Array;
} {
  const w = new Float32Array(entries.length);
  const gWDec = new Float64Array(n * d), gWEnc = new Float64Array(d * n);
  const bEnc = new Float64Array(n), fired = new Float32Array(n);
  entries.forEach((e, k) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += ups[e.src * d + j] * wDec[e.idx * d + j];
    w[k] = s;
    for (let j = 0; j < d; j++) {
      gWDec[e.idx * d + j] += e.coef * ups[e.src * d + j];
      gWEnc[j * n + e.idx] += s * xt[e.row * d + j];
    }
    bEnc[e.idx] += s;
    if (!e.aux) fired[e.idx]++;
  });
  return {
    w,
    gWDec: Float32Array.from(gWDec),
    gWEnc: Float32Array.from(gWEnc),
    bEnc: Float32Array.from(bEnc),
    fired,
  };
}
