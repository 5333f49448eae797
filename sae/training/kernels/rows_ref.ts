/**
 * Plain-TS references of the per-row training kernels (`rows.ts`), on Float32Arrays with explicit
 * dims and the same column-major `rowData [RS, B]` / `rowNorm [2, B]` layouts. Float64 inside.
 * @module
 */

/** Run-time normalisation modes, as SAELens names them. */
export const NORM_MODES = [
  "none",
  "expected_average_only_in",
  "constant_norm_rescale",
  "layer_norm",
] as const;

/**
 * Reference of `prepRows`: returns `xt`, `rowNorm` (s then μ) and the ‖x_t − x̄‖² column.
 *
 * @example
 * ```ts
 * import { prepRowsRef } from "./rows_ref.ts";
 * const r = prepRowsRef(new Float32Array([3, 4]), 1, 2, new Float32Array([1, 1]),
 *   new Float32Array([3, 4]), "constant_norm_rescale", true);
 * // c = √2/5: x̃ = x·c − b_dec, s = 1/c
 * if (Math.abs(r.rowNorm[0] - 5 / Math.SQRT2) > 1e-5) throw new Error(String(r.rowNorm[0]));
 * ```
 */
export function prepRowsRef(
  x: Float32Array,
  B: number,
  d: number,
  bDec: Float32Array,
  xbar: Float32Array,
  mode: string,
  apply: boolean,
): { xt: Float32Array; rowNorm: Float32Array; variance: Float32Array } {
  const xt = new Float32Array(B * d), rowNorm = new Float32Array(2 * B);
  const variance = new Float32Array(B);
  for (let t = 0; t < B; t++) {
    const row = x.subarray(t * d, (t + 1) * d);
    let ss = 0, sum = 0, v = 0;
    for (let j = 0; j < d; j++) {
      ss += row[j] ** 2;
      sum += row[j];
      v += (row[j] - xbar[j]) ** 2;
    }
    variance[t] = v;
    let mul = 1, sub = 0, s = 1, mu = 0;
    if (mode === "constant_norm_rescale") {
      mul = Math.sqrt(d) / Math.sqrt(ss);
      s = 1 / mul;
    } else if (mode === "layer_norm") {
      mu = sum / d;
      let q = 0;
      for (let j = 0; j < d; j++) q += (row[j] - mu) ** 2;
      const sigma = Math.sqrt(q / (d - 1));
      mul = 1 / (sigma + 1e-5);
      sub = mu;
      s = sigma;
    }
    rowNorm[t] = s;
    rowNorm[B + t] = mu;
    for (let j = 0; j < d; j++) xt[t * d + j] = (row[j] - sub) * mul - (apply ? bDec[j] : 0);
  }
  return { xt, rowNorm, variance };
}

/** Arguments of {@link residualRowsRef} (rows are whole arrays here, no offsets). */
export interface ResidualRowsRefArgs {
  pred: Float32Array;
  x: Float32Array;
  xhat?: Float32Array;
  /** Per row s and μ (used when `denorm`). */
  scale: Float32Array;
  shift: Float32Array;
  rows: number;
  d: number;
  denorm: boolean;
  gscale: number;
  w: number;
  /** ‖x_t − x̄‖² per row, for the explained-variance terms. */
  variance?: Float32Array;
}

/**
 * Reference of `residualRows`: p = denorm ? y·s + μ : y, target = x (− xhat), e = p − target;
 * returns p, g = gscale·w·e·s, Σ_j e² per row and, with `variance`, 1 − sq/var per row.
 */
export function residualRowsRef(a: ResidualRowsRefArgs): {
  pred: Float32Array;
  g: Float32Array;
  sq: Float32Array;
  legacy?: Float32Array;
} {
  const { rows, d } = a;
  const pred = new Float32Array(rows * d), g = new Float32Array(rows * d);
  const sq = new Float32Array(rows);
  const legacy = a.variance ? new Float32Array(rows) : undefined;
  for (let t = 0; t < rows; t++) {
    const s = a.denorm ? a.scale[t] : 1, mu = a.denorm ? a.shift[t] : 0;
    let acc = 0;
    for (let j = 0; j < d; j++) {
      const k = t * d + j;
      const p = a.denorm ? a.pred[k] * s + mu : a.pred[k];
      pred[k] = p;
      const e = p - (a.x[k] - (a.xhat ? a.xhat[k] : 0));
      acc += e * e;
      g[k] = a.gscale * a.w * s * e;
    }
    sq[t] = acc;
    if (legacy) legacy[t] = 1 - acc / a.variance![t];
  }
  return { pred, g, sq, legacy };
}

/** Reference of `lpNormRows`: T_t = (Σ_i |f_ti·n_i|^p)^{1/p}. */
export function lpNormRowsRef(
  f: Float32Array,
  norms: Float32Array,
  rows: number,
  n: number,
  p: number,
): Float32Array {
  const out = new Float32Array(rows);
  for (let t = 0; t < rows; t++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.abs(f[t * n + i] * norms[i]) ** p;
    out[t] = s ** (1 / p);
  }
  return out;
}

/**
 * Reference of `ghostRows`: from raw = exp(h_dead)·W_dec, x and x̂, returns ∂loss/∂raw and the
 * per-row loss sums (zero when `nDead` is 0).
 */
export function ghostRowsRef(
  x: Float32Array,
  xhat: Float32Array,
  raw: Float32Array,
  rows: number,
  d: number,
  B: number,
  nDead: number,
): { gRaw: Float32Array; loss: Float32Array } {
  const gRaw = new Float32Array(rows * d), loss = new Float32Array(rows);
  if (nDead === 0) return { gRaw, loss };
  for (let t = 0; t < rows; t++) {
    let rr = 0, gg = 0;
    for (let j = 0; j < d; j++) {
      rr += (x[t * d + j] - xhat[t * d + j]) ** 2;
      gg += raw[t * d + j] ** 2;
    }
    const nu = Math.sqrt(rr) / (1e-6 + 2 * Math.sqrt(gg));
    let l = 0;
    for (let j = 0; j < d; j++) {
      const k = t * d + j, res = x[k] - xhat[k];
      const diff = raw[k] * nu - res, m = diff * diff, s = (res * res) / (m + 1e-6);
      l += s * m;
      gRaw[k] = (nu * 2 * s * diff) / (B * d);
    }
    loss[t] = l;
  }
  return { gRaw, loss };
}
