/**
 * Private helpers of the training-SAE kernels: uniform packing, WGSL snippets,
 * windows of row-major matrices and a flat dispatcher.
 * @module
 */

import type { BufferBinding, Gpu } from "../../../gpu/device.ts";
import { grid1d } from "../../../gpu/kernel.ts";
import { Tensor } from "../../../gpu/tensor.ts";

import { TrainSaeError } from "../errors.ts";

export { TrainSaeError };

/** Invocations per workgroup of the flat and per-row kernels. */
export const WG = 64;

/** WGSL: linear workgroup index of a `grid1d` grid, and the builtins every kernel takes. */
export const WGSL_HEAD = /* wgsl */ `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** WGSL main-function arguments: workgroup id, grid size, local index. */
export const WGSL_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, " +
  "@builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32";

/**
 * Packs uniform fields: one letter per field, `u` = u32, `f` = f32, `i` = i32. The result is
 * padded to 16 bytes and fed to {@link Gpu.uniform} (content-cached, so no per-step upload).
 */
export function pack(spec: string, ...values: number[]): Uint32Array {
  if (spec.length !== values.length) {
    throw new TrainSaeError(`pack: ${spec.length} fields but ${values.length} values`);
  }
  const words = new Uint32Array(Math.max(4, Math.ceil(spec.length / 4) * 4));
  const f = new Float32Array(words.buffer), i = new Int32Array(words.buffer);
  for (let k = 0; k < spec.length; k++) {
    if (spec[k] === "f") f[k] = values[k];
    else if (spec[k] === "i") i[k] = values[k];
    else words[k] = values[k] >>> 0;
  }
  return words;
}

/** WGSL struct text for a {@link pack} spec with the given field names. */
export function uniformStruct(spec: string, names: string[]): string {
  const ty: Record<string, string> = { u: "u32", f: "f32", i: "i32" };
  return `struct U { ${names.map((n, k) => `${n}: ${ty[spec[k]]}`).join(", ")} }`;
}

/** A tensor view of rows `[start, start + count)` of a row-major `[rows, cols]` tensor. */
export function rowsView(t: Tensor, start: number, count: number): Tensor {
  const cols = t.shape[t.shape.length - 1];
  if (start === 0 && count === t.shape[0]) return t;
  return new Tensor(t.gpu, t.buffer, [count, cols], t.dtype, t.offset + start * cols * 4, false);
}

/** Records `pipeline` with one invocation per unit of `count`, `WG` per workgroup. */
export function dispatchUnits(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  count: number,
  bindings: (BufferBinding | Tensor | GPUBuffer)[],
  wg = WG,
): void {
  if (count === 0) return;
  gpu.dispatch(pipeline, bindings, grid1d(gpu, Math.ceil(count / wg)));
}
