/**
 * Sparse decode and backward kernels of TopK SAEs (sae_anchors §2), without float atomics:
 * `gatherRowsWeighted` (the sparse decoder), `sparseDot` (latent gradients at the active
 * indices), and, through a {@link CountingSort} of the index list, the per-latent gather-sums
 * `scatterAddRows` (∂W_dec rows, ∂W_enc as `[dSae, d]`) and `scatterAddValues` (∂b_enc). Every
 * sum runs in a fixed order (slots ascending; for scatters, (row, slot) ascending within a latent),
 * so results are deterministic. Ids outside `[0, dSae)` (−1 pads short lists) are skipped.
 * References: `scatter_ref.ts`. Ops record dispatches only.
 * @module
 */

import { GpuError } from "../device.ts";
import {
  checkShape,
  checkTensor,
  CPU_LOOP_BUDGET,
  grid1d,
  spans,
  vec4Ok,
  windowOf,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { WG } from "./_radix.ts";
import type { CountingSort } from "./counting_sort.ts";
import {
  DOT_SLOTS,
  gatherWgsl,
  layoutFor,
  scatterRowsWgsl,
  scatterValuesWgsl,
  sparseDotWgsl,
} from "./scatter_wgsl.ts";

export {
  gatherRowsWeightedRef,
  scatterAddRowsRef,
  scatterAddValuesRef,
  sparseDotRef,
} from "./scatter_ref.ts";

/** Entries per dispatch of one latent's sum on CPU adapters (llvmpipe's loop budget). */
const SEGMENT_ROUND = CPU_LOOP_BUDGET >> 1;

function uni(t: Tensor, ...v: number[]): GPUBuffer {
  const a = new Uint32Array(Math.ceil(v.length / 4) * 4);
  a.set(v.map((x) => x >>> 0));
  return t.gpu.uniform(a);
}

function resolveOut(out: Tensor | undefined, shape: number[], like: Tensor, op: string): Tensor {
  if (!out) return Tensor.empty(shape, "f32", { gpu: like.gpu });
  checkTensor(out, op, "out", { dtype: "f32", shape });
  return out;
}

function checkIdx(idx: Tensor, vals: Tensor | null, op: string): [number, number] {
  checkTensor(idx, op, "idx", { dtype: "i32", rank: 2 });
  if (vals) {
    checkTensor(vals, op, "vals", { dtype: "f32", shape: idx.shape });
  }
  return [idx.shape[0], idx.shape[1]];
}

/** Options of {@link gatherRowsWeighted}. */
export interface GatherOptions {
  /** f32 `[d]` added to every row (b_dec). */
  bias?: Tensor;
  /** Where to write `[rows, d]`. */
  out?: Tensor;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Testing: at most this many rows / latents per window. */
  windowRows?: number;
}

/**
 * The sparse decoder: `out[r] = bias + Σ_s vals[r, s] · W[idx[r, s]]` for `W [dSae, d]`,
 * `idx [rows, k]` (i32), `vals [rows, k]` (f32).
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { gatherRowsWeighted } from "./scatter.ts";
 * await getGpu();
 * using W = Tensor.from([1, 2, 10, 20], [2, 2]);
 * using idx = Tensor.from(new Int32Array([1, -1]), [1, 2]);
 * using vals = Tensor.from([3, 5], [1, 2]);
 * using out = gatherRowsWeighted(W, idx, vals);
 * const r = await out.toArray(); // [30, 60]
 * if (r[1] !== 60) throw new Error("unexpected");
 * ```
 */
export function gatherRowsWeighted(
  W: Tensor,
  idx: Tensor,
  vals: Tensor,
  options: GatherOptions = {},
): Tensor {
  const op = "gatherRowsWeighted";
  checkTensor(W, op, "W", { dtype: "f32", rank: 2 });
  const [dSae, d] = W.shape;
  const [rows, k] = checkIdx(idx, vals, op);
  if (options.bias) {
    checkTensor(options.bias, op, "bias", { dtype: "f32", shape: [d] });
  }
  const out = resolveOut(options.out, [rows, d], W, op);
  if (rows === 0 || d === 0) return out;
  const lay = layoutFor(d, [W, out, ...(options.bias ? [options.bias] : [])], vec4Ok);
  const gpu = W.gpu;
  const bias = !!options.bias;
  const pipeline = gpu.pipeline(`sparse_gather_${lay.key}_${bias}`, gatherWgsl(lay, bias));
  const nb = lay.units / lay.upi;
  for (
    const rw of spans(gpu, rows, Math.max(d, k), { aligned: [d, k], maxCount: options.windowRows })
  ) {
    const wins = spans(gpu, dSae, d, { maxCount: options.windowRows });
    wins.forEach((ww, wi) => {
      const flags = (options.accumulate || wi > 0 ? 1 : 0) | (bias && wi === 0 ? 2 : 0);
      gpu.dispatch(pipeline, [
        uni(W, rw.count, k, lay.units, ww.start, ww.count, flags, nb, 0),
        windowOf(W, ww.start * d, ww.count * d),
        windowOf(idx, rw.start * k, rw.count * k),
        windowOf(vals, rw.start * k, rw.count * k),
        windowOf(out, rw.start * d, rw.count * d),
        ...(bias ? [options.bias!] : []),
      ], grid1d(gpu, Math.ceil((rw.count * nb) / WG)));
    });
  }
  return out;
}

/** Options of {@link sparseDot}. */
export interface SparseDotOptions {
  /** Where to write `[rows, k]`. */
  out?: Tensor;
  /** Testing: at most this many rows / latents per window. */
  windowRows?: number;
}

/**
 * Latent gradients at the active indices: `out[r, s] = G[r] · W[idx[r, s]]` (0 for skipped
 * ids), `G [rows, d]`, `W [dSae, d]`.
 */
export function sparseDot(
  G: Tensor,
  W: Tensor,
  idx: Tensor,
  options: SparseDotOptions = {},
): Tensor {
  const op = "sparseDot";
  checkTensor(G, op, "G", { dtype: "f32", rank: 2 });
  checkTensor(W, op, "W", { dtype: "f32", rank: 2 });
  const [dSae, d] = W.shape;
  const [rows, k] = checkIdx(idx, null, op);
  checkShape(G, [rows, d], op, "G");
  const out = resolveOut(options.out, [rows, k], W, op);
  if (rows === 0 || k === 0) return out;
  const gpu = W.gpu;
  const lay = layoutFor(d, [W, G], vec4Ok);
  const pipeline = gpu.pipeline(`sparse_dot_${lay.key}`, sparseDotWgsl(lay));
  const groups = Math.ceil(k / DOT_SLOTS);
  for (
    const rw of spans(gpu, rows, Math.max(d, k), { aligned: [d, k], maxCount: options.windowRows })
  ) {
    spans(gpu, dSae, d, { maxCount: options.windowRows }).forEach((ww, wi) => {
      gpu.dispatch(pipeline, [
        uni(W, rw.count, k, lay.units, ww.start, ww.count, wi === 0 ? 1 : 0, dSae, groups),
        windowOf(G, rw.start * d, rw.count * d),
        windowOf(W, ww.start * d, ww.count * d),
        windowOf(idx, rw.start * k, rw.count * k),
        windowOf(out, rw.start * k, rw.count * k),
      ], grid1d(gpu, Math.ceil((rw.count * groups) / WG)));
    });
  }
  return out;
}

/** Options of the scatter-adds. */
export interface ScatterOptions {
  /** Where to write. */
  out?: Tensor;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Testing: at most this many rows / latents per window. */
  windowRows?: number;
}

/**
 * Rounds of a latent's entries: one on GPUs; on CPU adapters chunks of {@link SEGMENT_ROUND}
 * entries (llvmpipe's loop budget), as many as the longest possible segment needs.
 */
function rounds(sort: CountingSort): { starts: number[]; per: number } {
  const per = sort.offsets.gpu.info.isFallbackAdapter ? SEGMENT_ROUND : 0xffffffff;
  const starts = [0];
  for (let e = per; e < sort.maxSegment; e += per) starts.push(e);
  return { starts, per };
}

function checkSort(sort: CountingSort, coeff: Tensor, op: string, name: string): void {
  checkTensor(coeff, op, name, { dtype: "f32", shape: [sort.rows, sort.k] });
  if (coeff.size * 4 > coeff.gpu.maxBindingSize) {
    throw new GpuError(`${op}: ${name} ${coeff} exceeds maxStorageBufferBindingSize`);
  }
}

/**
 * `out[j] = Σ_{(r, s): idx[r, s] = j} coeff[r, s] · X[r]` over the sorted index list:
 * `coeff [rows, k]`, `X [rows, d]`, `out [dSae, d]`; latents nobody names get zero rows (or are
 * left as they are with `accumulate`).
 */
export function scatterAddRows(
  sort: CountingSort,
  coeff: Tensor,
  X: Tensor,
  options: ScatterOptions = {},
): Tensor {
  const op = "scatterAddRows";
  checkSort(sort, coeff, op, "coeff");
  checkTensor(X, op, "X", { dtype: "f32", rank: 2 });
  const d = X.shape[1];
  checkShape(X, [sort.rows, d], op, "X");
  const out = resolveOut(options.out, [sort.dSae, d], X, op);
  if (d === 0) return out;
  const gpu = X.gpu;
  const lay = layoutFor(d, [X, out], vec4Ok);
  const pipeline = gpu.pipeline(`sparse_scatter_rows_${lay.key}`, scatterRowsWgsl(lay));
  const nb = lay.units / lay.upi;
  const xWins = spans(gpu, sort.rows, d, { maxCount: options.windowRows });
  const { starts, per } = rounds(sort);
  for (const jw of spans(gpu, sort.dSae, d, { maxCount: options.windowRows })) {
    xWins.forEach((xw, xi) => {
      starts.forEach((e0, ri) => {
        const add = options.accumulate || xi > 0 || ri > 0 ? 1 : 0;
        gpu.dispatch(pipeline, [
          uni(X, jw.count, jw.start, lay.units, sort.k, xw.start, xw.count, add, nb, e0, per),
          sort.offsets,
          sort.order,
          coeff,
          windowOf(X, xw.start * d, xw.count * d),
          windowOf(out, jw.start * d, jw.count * d),
        ], grid1d(gpu, Math.ceil((jw.count * nb) / WG)));
      });
    });
  }
  return out;
}

/** `out[j] = Σ_{(r, s): idx[r, s] = j} vals[r, s]` over the sorted index list, `out [dSae]`. */
export function scatterAddValues(
  sort: CountingSort,
  vals: Tensor,
  options: Omit<ScatterOptions, "windowRows"> = {},
): Tensor {
  const op = "scatterAddValues";
  checkSort(sort, vals, op, "vals");
  const out = resolveOut(options.out, [sort.dSae], vals, op);
  const gpu = vals.gpu;
  const pipeline = gpu.pipeline("sparse_scatter_values", scatterValuesWgsl());
  const { starts, per } = rounds(sort);
  starts.forEach((e0, ri) => {
    gpu.dispatch(pipeline, [
      uni(vals, sort.dSae, options.accumulate || ri > 0 ? 1 : 0, e0, per),
      sort.offsets,
      sort.order,
      vals,
      out,
    ], grid1d(gpu, Math.ceil(sort.dSae / WG)));
  });
  return out;
}
