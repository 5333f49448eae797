/**
 * Row gather: `out[outRow + r] = src[idx[r]]` for a row-major `src [n, w]` and row indices
 * `idx [m]`. The streaming pipeline builds everything it moves between stages from it: position
 * slices and head selection of hook activations, dropping special-token positions, and the
 * mixing buffer's shuffles. Both `src` and `out` may exceed one storage binding; the kernel then
 * runs once per pair of row windows, and each invocation writes only rows whose source lies in
 * the bound source window. Deterministic (pure copies).
 * @module
 */

import { GpuError } from "../device.ts";
import {
  checkTensor,
  grid1d,
  packUniform,
  shiftedWindow,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";

const WG = 256;

/** Options of {@link gatherRows}. */
export interface GatherRowsOptions {
  /** Write into this f32 tensor `[≥ outRow + m, w]` instead of a new one. */
  out?: Tensor;
  /** First row of `out` written (default 0). */
  outRow?: number;
  /** Testing: at most this many rows per binding window (forces the windowed path). */
  windowRows?: number;
}

/**
 * Reference of {@link gatherRows} on host arrays.
 *
 * @example
 * ```ts
 * import { gatherRowsRef } from "./gather.ts";
 * const out = gatherRowsRef(new Float32Array([1, 2, 3, 4, 5, 6]), 2, Int32Array.of(2, 0));
 * if (out.join() !== "5,6,1,2") throw new Error(`unexpected ${out}`);
 * ```
 */
export function gatherRowsRef(src: Float32Array, w: number, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * w);
  for (let r = 0; r < idx.length; r++) out.set(src.subarray(idx[r] * w, idx[r] * w + w), r * w);
  return out;
}

const GATHER_WGSL = /* wgsl */ `
struct U {
  w: u32, srcStart: u32, srcCount: u32, outCount: u32,
  srcShift: u32, idxShift: u32, outShift: u32, pad: u32,
}
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${WGSL_WG_INDEX}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let g = wgIndex(wid, nwg) * ${WG}u + lid;
  let rl = g / u.w;
  if (rl >= u.outCount) { return; }
  let c = g - rl * u.w;
  let s = idx[u.idxShift + rl];
  if (s < i32(u.srcStart) || s >= i32(u.srcStart + u.srcCount)) { return; }
  out[u.outShift + rl * u.w + c] = src[u.srcShift + (u32(s) - u.srcStart) * u.w + c];
}`;

/**
 * Gathers rows of `src [n, w]` (f32) by `idx` (host `Int32Array` of row indices in `[0, n)`, or
 * an i32 GPU tensor `[m]` whose values are trusted) into `[m, w]`, or into rows
 * `[outRow, outRow + m)` of `options.out`.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { gatherRows } from "./gather.ts";
 * await getGpu();
 * using src = Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]);
 * using out = gatherRows(src, Int32Array.of(2, 0, 2));
 * const r = await out.toArray();
 * if (r.join() !== "5,6,1,2,5,6") throw new Error(`unexpected ${r}`);
 * ```
 */
export function gatherRows(
  src: Tensor,
  idx: Int32Array | Tensor,
  options: GatherRowsOptions = {},
): Tensor {
  const op = "gatherRows";
  checkTensor(src, op, "src", { dtype: "f32" });
  if (src.rank !== 2) throw new GpuError(`${op}: src ${src} must be [rows, width]`);
  const [n, w] = src.shape;
  const m = idx instanceof Tensor ? idx.size : idx.length;
  if (idx instanceof Tensor) {
    if (idx.dtype !== "i32" || idx.disposed) {
      throw new GpuError(`${op}: idx ${idx} must be a live i32 tensor`);
    }
  } else {
    for (let r = 0; r < m; r++) {
      const s = idx[r];
      if (!(s >= 0 && s < n)) {
        throw new GpuError(`${op}: idx[${r}] = ${s} is outside the ${n} rows of src`);
      }
    }
  }
  const outRow = options.outRow ?? 0;
  let out = options.out;
  if (out) {
    checkTensor(out, op, "out", { dtype: "f32" });
    if (out.rank !== 2 || out.shape[1] !== w || outRow < 0 || outRow + m > out.shape[0]) {
      throw new GpuError(
        `${op}: out ${out} cannot take ${m} rows of width ${w} from row ${outRow}`,
      );
    }
    if (out.buffer === src.buffer) {
      throw new GpuError(`${op}: out and src share a GPU buffer`);
    }
  } else {
    if (outRow !== 0) throw new GpuError(`${op}: outRow needs an out tensor`);
    out = Tensor.empty([m, w], "f32", { gpu: src.gpu });
  }
  if (m === 0 || w === 0) return out;
  const gpu = src.gpu;
  const idxT = idx instanceof Tensor ? idx : Tensor.from(idx, [m], { gpu });
  try {
    const pipeline = gpu.pipeline("gather_rows", GATHER_WGSL);
    const split = { shifted: true, maxCount: options.windowRows };
    for (const ow of spans(gpu, m, w, split)) {
      const o = shiftedWindow(out, (outRow + ow.start) * w, ow.count * w);
      const ix = shiftedWindow(idxT, ow.start, ow.count);
      for (const sw of spans(gpu, n, w, split)) {
        const sr = shiftedWindow(src, sw.start * w, sw.count * w);
        const uni = gpu.uniform(
          packUniform("uuuuuuuu", w, sw.start, sw.count, ow.count, sr.shift, ix.shift, o.shift, 0),
        );
        gpu.dispatch(
          pipeline,
          [sr.binding, ix.binding, o.binding, uni],
          grid1d(gpu, Math.ceil((ow.count * w) / WG)),
        );
      }
    }
  } finally {
    if (idxT !== idx) idxT.dispose();
  }
  return out;
}
