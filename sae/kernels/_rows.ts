/**
 * Private helpers of the SAE kernels: argument checks and a dispatcher for kernels that work on
 * `[rows, cols]` matrices in row windows (a tensor larger than one storage binding is processed
 * window by window; per-row state and per-column parameters stay bound whole).
 * @module
 */

import type { Bindable, BufferBinding, Gpu } from "../../gpu/device.ts";
import { grid1d, rowWindows } from "../../gpu/kernel.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { SaeKernelError } from "./errors.ts";

/** Invocations per workgroup of the elementwise row kernels. */
export const ROW_WG = 256;

/** WGSL: linear workgroup index of a `grid1d` grid. */
export const WGSL_WG_INDEX = /* wgsl */ `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** WGSL builtins of a kernel indexed by linear workgroup and local invocation. */
export const WGSL_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, " +
  "@builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32";

/** Throws unless `t` is a live f32 tensor with exactly `shape`. */
export function expectShape(t: Tensor, shape: readonly number[], op: string, name: string): void {
  if (t.disposed) throw new SaeKernelError(`${op}: ${name} ${t} was used after dispose()`);
  if (t.dtype !== "f32") throw new SaeKernelError(`${op}: ${name} must be f32, got ${t}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new SaeKernelError(
      `${op}: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

/** `[rows, cols]` of a rank-2 f32 tensor. */
export function matrixDims(t: Tensor, op: string, name: string): [number, number] {
  if (t.rank !== 2) {
    throw new SaeKernelError(`${op}: ${name} must be [rows, cols], got [${t.shape.join(", ")}]`);
  }
  if (t.dtype !== "f32") throw new SaeKernelError(`${op}: ${name} must be f32, got ${t}`);
  if (t.disposed) throw new SaeKernelError(`${op}: ${name} ${t} was used after dispose()`);
  return [t.shape[0], t.shape[1]];
}

/** Throws when `out` shares bytes with any of `inputs` (kernels here never run in place). */
export function expectDistinct(out: Tensor, inputs: Tensor[], op: string): void {
  for (const t of inputs) {
    if (
      t.buffer === out.buffer && t.offset < out.offset + out.byteLength &&
      out.offset < t.offset + t.byteLength
    ) {
      throw new SaeKernelError(`${op}: out ${out} overlaps an input ${t}`);
    }
  }
}

function rowWindow(t: Tensor, start: number, count: number, cols: number): BufferBinding {
  return {
    buffer: t.buffer,
    offset: t.offset + start * cols * 4,
    size: Math.max(4, count * cols * 4),
  };
}

/**
 * Records `pipeline` over `rows × cols`, window by window. Bindings, in order: each tensor of
 * `windowed` (all `[rows, cols]`) as the window's rows, then `whole`, then a uniform
 * `{rowStart, rowCount, cols, extra…}` (u32 words; `extra` are f32). `perRow` = true launches one
 * workgroup per row (`grid1d(rowCount)`), else one invocation per element in workgroups of
 * {@link ROW_WG}.
 */
export function dispatchRows(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  rows: number,
  cols: number,
  windowed: Tensor[],
  whole: Bindable[],
  extra: number[] = [],
  perRow = false,
): void {
  if (rows === 0 || cols === 0) return;
  for (const w of rowWindows(gpu, rows, cols * 4)) {
    const words = new Uint32Array(Math.max(4, Math.ceil((3 + extra.length) / 4) * 4));
    words[0] = w.start;
    words[1] = w.count;
    words[2] = cols;
    new Float32Array(words.buffer).set(extra, 3);
    const groups = perRow ? w.count : Math.ceil((w.count * cols) / ROW_WG);
    gpu.dispatch(
      pipeline,
      [...windowed.map((t) => rowWindow(t, w.start, w.count, cols)), ...whole, gpu.uniform(words)],
      grid1d(gpu, groups),
    );
  }
}
