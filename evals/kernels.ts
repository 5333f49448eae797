/**
 * The WGSL kernels of the evals (SAELens `evals.py`, spec §6.3), each with a plain-TS `…Ref`
 * reference that passes the same tests:
 *
 * - {@link klDivRows}: per-token KL(softmax(p) ‖ softmax(q)) over the vocabulary (SAELens `_kl`);
 * - {@link rowStats}: per-token norms, dot product, squared error, cosine, L2 ratio and the
 *   legacy explained variance of `x` against its reconstruction `x̂`;
 * - {@link nonzeroMask}: 1 where a feature activation is non-zero (L0, feature density);
 * - {@link encDecDot}: per-feature ⟨W_enc[:, i], W_dec[i]⟩ (encoder–decoder cosine similarity).
 *
 * Sums across tokens are taken afterwards with the deterministic reductions of `gpu/kernels`, so
 * an eval reads back a handful of numbers per batch. Tensors larger than one storage binding are
 * processed in row windows.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import {
  CPU_LOOP_BUDGET,
  dispatchFlat,
  FLAT_WG,
  grid1d,
  packUniform,
  rowKernelVariant,
  spans,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_NEG_INF,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { EvalError } from "./config.ts";

/** Invocations per workgroup (row kernels and the per-feature kernel). */
const WG = 64;

/** Per-row kernel layout: one workgroup per row, or one invocation per row. */
export type RowVariant = "workgroup" | "thread";

/** Options of the row kernels. */
export interface RowKernelOptions {
  /** Force a layout (default: one invocation per row on CPU adapters when loops allow). */
  variant?: RowVariant;
}

function checkLive(t: Tensor, op: string, name: string): void {
  if (t.disposed) throw new EvalError(`${op}: ${name} ${t} was used after dispose()`);
  if (t.dtype !== "f32") throw new EvalError(`${op}: ${name} must be f32, got ${t}`);
}

function rows2d(t: Tensor, op: string, name: string): [number, number] {
  if (t.rank < 1) throw new EvalError(`${op}: ${name} must have rank >= 1, got ${t}`);
  const n = t.shape[t.rank - 1];
  return [n === 0 ? 0 : t.size / n, n];
}

function pickVariant(
  gpu: Gpu,
  n: number,
  passes: number,
  op: string,
  forced?: RowVariant,
): RowVariant {
  const v = forced ?? rowKernelVariant(gpu, n, passes);
  if (v === "thread" && gpu.info.isFallbackAdapter && passes * n > CPU_LOOP_BUDGET) {
    throw new EvalError(
      `${op}: rows of ${n} are too wide for one invocation per row on a CPU adapter ` +
        `(llvmpipe stops shader loops after ${CPU_LOOP_BUDGET} iterations); use "workgroup"`,
    );
  }
  return v;
}

function rowHead(perThread: boolean, reducers: string[]): string {
  const shared = perThread ? "" : `var<workgroup> sh: array<f32, ${WG}>;
${reducers.join("\n")}`;
  return `${WGSL_WG_INDEX}
${shared}`;
}

function rowIndex(perThread: boolean): string {
  return perThread ? `wgIndex(wid, nwg) * ${WG}u + lid` : "wgIndex(wid, nwg)";
}

function loop(perThread: boolean, n: string, body: string): string {
  const [first, step] = perThread ? ["0u", "1u"] : ["lid", `${WG}u`];
  return `for (var j = ${first}; j < ${n}; j += ${step}) { ${body} }`;
}

// ---------------------------------------------------------------------------------------------
// KL divergence per row

function klWgsl(perThread: boolean): string {
  const red = (e: string) => perThread ? "" : e;
  return /* wgsl */ `${
    rowHead(perThread, [
      wgslWorkgroupReduce("wgMax", WG, "max(a, b)"),
      wgslWorkgroupReduce("wgSum", WG, "a + b"),
    ])
  }
struct U { m: u32, n: u32 }
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = ${rowIndex(perThread)};
  if (row >= u.m) { return; }
  let base = row * u.n;
  var mp = ${WGSL_NEG_INF};
  var mq = ${WGSL_NEG_INF};
  ${loop(perThread, "u.n", "mp = max(mp, P[base + j]); mq = max(mq, Q[base + j]);")}
  ${red("mp = wgMax(lid, mp); mq = wgMax(lid, mq);")}
  var sp = 0.0;
  var sq = 0.0;
  ${loop(perThread, "u.n", "sp += exp(P[base + j] - mp); sq += exp(Q[base + j] - mq);")}
  ${red("sp = wgSum(lid, sp); sq = wgSum(lid, sq);")}
  let lp = mp + log(sp);
  let lq = mq + log(sq);
  var kl = 0.0;
  ${
    loop(
      perThread,
      "u.n",
      "let a = P[base + j] - lp; let b = Q[base + j] - lq; kl += exp(a) * (a - b);",
    )
  }
  ${red("kl = wgSum(lid, kl);")}
  ${perThread ? "Y[row] = kl;" : "if (lid == 0u) { Y[row] = kl; }"}
}`;
}

/**
 * Reference of {@link klDivRows}: for each of the `m` rows of `n` logits,
 * Σ_v P_v (log P_v − log Q_v) with P = softmax(p), Q = softmax(q) (float64 inside).
 *
 * @example
 * ```ts
 * import { klDivRowsRef } from "./kernels.ts";
 * const kl = klDivRowsRef([0, 0], [0, Math.log(3)], 1, 2); // ½·log(½/¼) + ½·log(½/¾)
 * if (Math.abs(kl[0] - 0.5 * Math.log(4 / 3)) > 1e-6) throw new Error(`${kl[0]}`);
 * ```
 */
export function klDivRowsRef(
  p: ArrayLike<number>,
  q: ArrayLike<number>,
  m: number,
  n: number,
): Float32Array {
  if (p.length !== m * n || q.length !== m * n) {
    throw new EvalError(`klDivRowsRef: p and q must have ${m}×${n} values`);
  }
  const out = new Float32Array(m);
  for (let r = 0; r < m; r++) {
    const o = r * n;
    let mp = -Infinity, mq = -Infinity;
    for (let j = 0; j < n; j++) {
      mp = Math.max(mp, p[o + j]);
      mq = Math.max(mq, q[o + j]);
    }
    let sp = 0, sq = 0;
    for (let j = 0; j < n; j++) {
      sp += Math.exp(p[o + j] - mp);
      sq += Math.exp(q[o + j] - mq);
    }
    const lp = mp + Math.log(sp), lq = mq + Math.log(sq);
    let kl = 0;
    for (let j = 0; j < n; j++) {
      const a = p[o + j] - lp, b = q[o + j] - lq;
      kl += Math.exp(a) * (a - b);
    }
    out[r] = kl;
  }
  return out;
}

/**
 * Per-row KL(softmax(p) ‖ softmax(q)) of two logit tensors of the same shape `[..., V]`: a new
 * f32 tensor of the leading shape (SAELens `_kl(original_logits, new_logits)`, `kl_div` with
 * `reduction="none"` summed over the vocabulary). Identical rows give exactly 0.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { klDivRows } from "./kernels.ts";
 * await getGpu();
 * using p = Tensor.from([0, 0, 1, 2], [2, 2]);
 * using kl = klDivRows(p, p);
 * const r = await kl.toArray();
 * if (r[0] !== 0 || r[1] !== 0) throw new Error(`${r}`);
 * ```
 */
export function klDivRows(p: Tensor, q: Tensor, options: RowKernelOptions = {}): Tensor {
  const op = "klDivRows";
  checkLive(p, op, "p");
  checkLive(q, op, "q");
  if (p.shape.length !== q.shape.length || p.shape.some((d, i) => d !== q.shape[i])) {
    throw new EvalError(`${op}: p ${p} and q ${q} must have the same shape`);
  }
  const [m, n] = rows2d(p, op, "p");
  const gpu = p.gpu;
  const out = Tensor.empty(p.shape.slice(0, -1), "f32", { gpu });
  if (m === 0) return out;
  const perThread = pickVariant(gpu, n, 3, op, options.variant) === "thread";
  const pipeline = gpu.pipeline(`eval_kl_${perThread ? "t" : "wg"}`, klWgsl(perThread));
  for (const s of spans(gpu, m, n, { aligned: [n, 1] })) {
    gpu.dispatch(pipeline, [
      windowOf(p, s.start * n, s.count * n),
      windowOf(q, s.start * n, s.count * n),
      windowOf(out, s.start, s.count),
      gpu.uniform(packUniform("uu", s.count, n)),
    ], grid1d(gpu, perThread ? Math.ceil(s.count / WG) : s.count));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Per-row reconstruction statistics

/** Columns of {@link rowStats}' output, in order. */
export const ROW_STATS = [
  "l2_norm_in", // ‖x‖
  "l2_norm_out", // ‖x̂‖
  "l2_ratio", // ‖x̂‖ / ‖x‖ (‖x‖ < 1e-4 counts as 1)
  "x_hat_norm_squared", // ‖x̂‖² (as SAELens: the norm, squared)
  "x_dot_x_hat", // ⟨x, x̂⟩
  "resid_sum_of_squares", // ‖x − x̂‖²
  "explained_variance_legacy", // 1 − ‖x − x̂‖² / ‖x − x̄‖²
  "cossim", // ⟨x, x̂⟩ / (‖x‖ ‖x̂‖)
  "x_norm_squared", // ‖x‖²
] as const;

/** Number of columns of {@link rowStats}. */
export const ROW_STATS_WIDTH: number = ROW_STATS.length;

function rowStatsWgsl(perThread: boolean): string {
  return /* wgsl */ `${rowHead(perThread, [wgslWorkgroupReduce("wgSum", WG, "a + b")])}
struct U { m: u32, d: u32, count: f32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> H: array<f32>;
@group(0) @binding(2) var<storage, read> C: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = ${rowIndex(perThread)};
  if (row >= u.m) { return; }
  let base = row * u.d;
  var sxx = 0.0;
  var shh = 0.0;
  var sxh = 0.0;
  var srr = 0.0;
  var scc = 0.0;
  ${
    loop(
      perThread,
      "u.d",
      `let x = X[base + j]; let h = H[base + j]; let r = x - h; let c = x - C[j] / u.count;
    sxx += x * x; shh += h * h; sxh += x * h; srr += r * r; scc += c * c;`,
    )
  }
  ${
    perThread ? "" : `sxx = wgSum(lid, sxx); shh = wgSum(lid, shh); sxh = wgSum(lid, sxh);
  srr = wgSum(lid, srr); scc = wgSum(lid, scc);
  if (lid != 0u) { return; }`
  }
  let nIn = sqrt(sxx);
  let nOut = sqrt(shh);
  let div = select(nIn, 1.0, abs(nIn) < 0.0001);
  let o = row * ${ROW_STATS_WIDTH}u;
  Y[o] = nIn;
  Y[o + 1u] = nOut;
  Y[o + 2u] = nOut / div;
  Y[o + 3u] = nOut * nOut;
  Y[o + 4u] = sxh;
  Y[o + 5u] = srr;
  Y[o + 6u] = 1.0 - srr / scc;
  Y[o + 7u] = sxh / (nIn * nOut);
  Y[o + 8u] = sxx;
}`;
}

/**
 * Reference of {@link rowStats}: `[n, 9]` per-row statistics (columns {@link ROW_STATS}) of
 * `x` and `xHat` (`[n, d]` row-major); x̄ = `colSum / count`.
 *
 * @example
 * ```ts
 * import { ROW_STATS, rowStatsRef } from "./kernels.ts";
 * const s = rowStatsRef([3, 4], [3, 0], [3, 4], 1, 2, 1);
 * if (s[ROW_STATS.indexOf("l2_norm_in")] !== 5) throw new Error("‖(3,4)‖ = 5");
 * if (s[ROW_STATS.indexOf("resid_sum_of_squares")] !== 16) throw new Error("‖(0,4)‖² = 16");
 * if (Math.abs(s[ROW_STATS.indexOf("cossim")] - 0.6) > 1e-6) throw new Error("9 / (5·3)");
 * ```
 */
export function rowStatsRef(
  x: ArrayLike<number>,
  xHat: ArrayLike<number>,
  colSum: ArrayLike<number>,
  n: number,
  d: number,
  count: number,
): Float32Array {
  if (x.length !== n * d || xHat.length !== n * d || colSum.length !== d) {
    throw new EvalError(`rowStatsRef: x and xHat must be ${n}×${d}, colSum ${d}`);
  }
  const out = new Float32Array(n * ROW_STATS_WIDTH);
  for (let r = 0; r < n; r++) {
    let sxx = 0, shh = 0, sxh = 0, srr = 0, scc = 0;
    for (let j = 0; j < d; j++) {
      const a = x[r * d + j], h = xHat[r * d + j], c = a - Math.fround(colSum[j] / count);
      sxx += a * a;
      shh += h * h;
      sxh += a * h;
      srr += (a - h) * (a - h);
      scc += c * c;
    }
    const nIn = Math.sqrt(sxx), nOut = Math.sqrt(shh);
    const o = r * ROW_STATS_WIDTH;
    out.set([
      nIn,
      nOut,
      nOut / (Math.abs(nIn) < 1e-4 ? 1 : nIn),
      nOut * nOut,
      sxh,
      srr,
      1 - srr / scc,
      sxh / (nIn * nOut),
      sxx,
    ], o);
  }
  return out;
}

/**
 * Per-row statistics of activations `x [n, d]` and reconstructions `xHat [n, d]`: a new
 * `[n, 9]` tensor, columns {@link ROW_STATS}. `colSum [d]` is the column sum of `x` and `count`
 * its number of rows (x̄ = colSum / count, for the legacy explained variance).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { ROW_STATS, rowStats } from "./kernels.ts";
 * await getGpu();
 * using x = Tensor.from([3, 4], [1, 2]);
 * using h = Tensor.from([3, 0], [1, 2]);
 * using s = rowStats(x, h, x.reshape([2]), 1);
 * const r = await s.toArray();
 * if (r[ROW_STATS.indexOf("x_dot_x_hat")] !== 9) throw new Error(`${r}`);
 * ```
 */
export function rowStats(
  x: Tensor,
  xHat: Tensor,
  colSum: Tensor,
  count: number,
  options: RowKernelOptions = {},
): Tensor {
  const op = "rowStats";
  for (const [t, name] of [[x, "x"], [xHat, "xHat"], [colSum, "colSum"]] as const) {
    checkLive(t, op, name);
  }
  if (
    x.rank !== 2 || xHat.rank !== 2 || x.shape[0] !== xHat.shape[0] || x.shape[1] !== xHat.shape[1]
  ) {
    throw new EvalError(`${op}: x ${x} and xHat ${xHat} must be the same [n, d]`);
  }
  const [n, d] = x.shape;
  if (colSum.size !== d) throw new EvalError(`${op}: colSum ${colSum} must have ${d} values`);
  const gpu = x.gpu;
  const out = Tensor.empty([n, ROW_STATS_WIDTH], "f32", { gpu });
  if (n === 0) return out;
  const perThread = pickVariant(gpu, d, 1, op, options.variant) === "thread";
  const pipeline = gpu.pipeline(`eval_rowstats_${perThread ? "t" : "wg"}`, rowStatsWgsl(perThread));
  for (const s of spans(gpu, n, d, { aligned: [d, ROW_STATS_WIDTH] })) {
    gpu.dispatch(pipeline, [
      windowOf(x, s.start * d, s.count * d),
      windowOf(xHat, s.start * d, s.count * d),
      colSum.binding(),
      windowOf(out, s.start * ROW_STATS_WIDTH, s.count * ROW_STATS_WIDTH),
      gpu.uniform(packUniform("uuf", s.count, d, count)),
    ], grid1d(gpu, perThread ? Math.ceil(s.count / WG) : s.count));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Non-zero indicator

const NONZERO_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  // On the bits: NaN is non-zero (a float compare may be optimised assuming no NaN); ±0 is zero.
  Y[i] = select(0.0, 1.0, (bitcast<u32>(X[i]) & 0x7fffffffu) != 0u);
}`;

/**
 * Reference of {@link nonzeroMask}: 1 where `x` is non-zero (NaN counts as non-zero), else 0.
 *
 * @example
 * ```ts
 * import { nonzeroMaskRef } from "./kernels.ts";
 * if (nonzeroMaskRef([0, -2, 3]).join() !== "0,1,1") throw new Error();
 * ```
 */
export function nonzeroMaskRef(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x, (v) => (v !== 0 ? 1 : 0));
}

/**
 * A new f32 tensor of `x`'s shape: 1 where `x ≠ 0`, else 0 (SAELens counts `f != 0` for L0 and
 * feature density since 6.45, so signed activations count too).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { nonzeroMask } from "./kernels.ts";
 * await getGpu();
 * using f = Tensor.from([0, -0.5, 2, 0]);
 * using m = nonzeroMask(f);
 * if ((await m.toArray()).join() !== "0,1,1,0") throw new Error();
 * ```
 */
export function nonzeroMask(x: Tensor): Tensor {
  checkLive(x, "nonzeroMask", "x");
  const gpu = x.gpu;
  const out = Tensor.empty(x.shape, "f32", { gpu });
  if (x.size === 0) return out;
  const pipeline = gpu.pipeline("eval_nonzero", NONZERO_WGSL);
  dispatchFlat(gpu, pipeline, x.size, [x, out], [], (units) => packUniform("u", units), false);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoder–decoder dot products

const ENC_DEC_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { nf: u32, nk: u32, F: u32, d: u32, k0: u32, f0: u32, accumulate: u32 }
@group(0) @binding(0) var<storage, read> E: array<f32>;
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${WG}u + lid;
  if (i >= u.nf) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.nk; k += 1u) {
    s += E[k * u.F + u.f0 + i] * D[i * u.d + u.k0 + k];
  }
  if (u.accumulate != 0u) { Y[i] = Y[i] + s; } else { Y[i] = s; }
}`;

/**
 * Reference of {@link encDecDot}: ⟨W_enc[:, i], W_dec[i]⟩ for `W_enc [d, F]`, `W_dec [F, d]`.
 *
 * @example
 * ```ts
 * import { encDecDotRef } from "./kernels.ts";
 * // d = 2, F = 1: W_enc = [[1], [2]], W_dec = [[3, 4]] → 1·3 + 2·4
 * if (encDecDotRef([1, 2], [3, 4], 2, 1)[0] !== 11) throw new Error();
 * ```
 */
export function encDecDotRef(
  wEnc: ArrayLike<number>,
  wDec: ArrayLike<number>,
  d: number,
  F: number,
): Float32Array {
  if (wEnc.length !== d * F || wDec.length !== d * F) {
    throw new EvalError(`encDecDotRef: W_enc must be ${d}×${F} and W_dec ${F}×${d}`);
  }
  const out = new Float32Array(F);
  for (let i = 0; i < F; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += wEnc[k * F + i] * wDec[i * d + k];
    out[i] = s;
  }
  return out;
}

/**
 * Per-feature dot products ⟨W_enc[:, i], W_dec[i]⟩ of `W_enc [d, F]` and `W_dec [F, d]`: a new
 * `[F]` tensor. With `‖W_enc[:, i]‖` (`reduceCols("l2", W_enc)`) and `‖W_dec[i]‖`
 * (`reduceRows("l2", W_dec)`) it gives SAELens's `encoder_decoder_cosine_sim`. Matrices larger
 * than one binding are processed in (feature window × d window) blocks.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { encDecDot } from "./kernels.ts";
 * await getGpu();
 * using e = Tensor.from([1, 0, 2, 1], [2, 2]); // W_enc [d=2, F=2]
 * using dec = Tensor.from([3, 4, 5, 6], [2, 2]); // W_dec [F=2, d=2]
 * using dot = encDecDot(e, dec);
 * if ((await dot.toArray()).join() !== "11,6") throw new Error(); // 1·3+2·4, 0·5+1·6
 * ```
 */
export function encDecDot(wEnc: Tensor, wDec: Tensor): Tensor {
  const op = "encDecDot";
  checkLive(wEnc, op, "W_enc");
  checkLive(wDec, op, "W_dec");
  if (wEnc.rank !== 2 || wDec.rank !== 2) {
    throw new EvalError(`${op}: W_enc ${wEnc} and W_dec ${wDec} must be matrices`);
  }
  const [d, F] = wEnc.shape;
  if (wDec.shape[0] !== F || wDec.shape[1] !== d) {
    throw new EvalError(`${op}: W_dec is ${wDec}, expected [${F}, ${d}] for W_enc ${wEnc}`);
  }
  const gpu = wEnc.gpu;
  const out = Tensor.zeros([F], "f32", { gpu });
  if (F === 0 || d === 0) return out;
  const pipeline = gpu.pipeline("eval_enc_dec_dot", ENC_DEC_WGSL);
  const kWindows = spans(gpu, d, F);
  const fWindows = spans(gpu, F, d, { aligned: [d, 1] });
  for (const kw of kWindows) {
    if (kw.count > CPU_LOOP_BUDGET / 2 && gpu.info.isFallbackAdapter) {
      throw new EvalError(`${op}: d_in ${d} is too large for a CPU adapter's loop budget`);
    }
    for (const fw of fWindows) {
      // W_enc rows kw are bound whole (features fw are columns f0 + i of them); W_dec rows fw.
      gpu.dispatch(pipeline, [
        windowOf(wEnc, kw.start * F, kw.count * F),
        windowOf(wDec, fw.start * d, fw.count * d),
        windowOf(out, fw.start, fw.count),
        gpu.uniform(
          packUniform(
            "uuuuuuu",
            fw.count,
            kw.count,
            F,
            d,
            kw.start,
            fw.start,
            kw === kWindows[0] ? 0 : 1,
          ),
        ),
      ], grid1d(gpu, Math.ceil(fw.count / WG)));
    }
  }
  return out;
}
