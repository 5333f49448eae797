/**
 * Private helpers shared by the elementwise, reduction, softmax, layer-norm, Adam and clipping
 * kernels: argument checks, uniform packing, binding windows for tensors larger than one storage
 * binding, and the WGSL snippets every kernel starts with.
 * @module
 */

import type { BufferBinding, Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import { grid1d } from "../kernel.ts";
import type { Tensor } from "../tensor.ts";

/** Throws unless `t` is a live f32 tensor. */
export function checkF32(t: Tensor, op: string, name: string): void {
  if (t.dtype !== "f32") {
    throw new GpuError(`${op}: ${name} must be f32, got ${t.dtype} ${t}`);
  }
  if (t.disposed) throw new GpuError(`${op}: ${name} ${t} was used after dispose()`);
}

/** Throws unless `t` has exactly `shape`. */
export function checkShape(t: Tensor, shape: readonly number[], op: string, name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new GpuError(
      `${op}: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

/** `[rows, cols]` of a tensor seen as a matrix over its last dim (rank ≥ 1). */
export function asRows(t: Tensor, op: string, name: string): [number, number] {
  if (t.rank < 1) throw new GpuError(`${op}: ${name} must have rank ≥ 1, got a scalar`);
  const n = t.shape[t.rank - 1];
  return [n === 0 ? 0 : t.size / n, n];
}

/** True when `a` and `b` are the same bytes (an in-place request). */
export function sameStorage(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;
}

/**
 * Throws when `out` shares a buffer with an input without being exactly it: WebGPU forbids a
 * buffer bound writable and bound again in the same dispatch (even as disjoint ranges), and a
 * partial overlap would race anyway.
 */
export function checkAlias(out: Tensor, inputs: Tensor[], op: string): void {
  for (const t of inputs) {
    if (out.buffer === t.buffer && !sameStorage(out, t)) {
      throw new GpuError(`${op}: out ${out} shares a GPU buffer with input ${t} without being it`);
    }
  }
}

/**
 * Packs uniform fields: `spec` has one letter per field, `u` for u32 and `f` for f32.
 * The result feeds {@link Gpu.uniform} (typed arrays are uploaded byte for byte).
 */
export function packUniform(spec: string, ...values: number[]): Uint32Array {
  if (spec.length !== values.length) {
    throw new GpuError(`packUniform: ${spec.length} fields but ${values.length} values`);
  }
  const words = new Uint32Array(Math.max(4, Math.ceil(spec.length / 4) * 4));
  const floats = new Float32Array(words.buffer);
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] === "f") floats[i] = values[i];
    else words[i] = values[i] >>> 0;
  }
  return words;
}

/** A binding of elements `[start, start + count)` of `t` (4-byte elements). */
export function windowOf(t: Tensor, start: number, count: number): BufferBinding {
  if (start === 0 && count === t.size) return t.binding();
  return { buffer: t.buffer, offset: t.offset + start * 4, size: Math.max(4, count * 4) };
}

/** An element range of a flat split. */
export interface Span {
  start: number;
  count: number;
}

/**
 * Splits `count` units (rows) of `unitElems` elements into spans whose bindings fit
 * `gpu.maxBindingSize` and whose starts keep every window offset aligned to
 * `bindingOffsetAlignment`, for windows with `unitElems` and with each of `otherUnitElems`
 * elements per unit. Starts are also multiples of `multipleOf` units.
 * @throws {GpuError} naming the limit when even one aligned group of units is too large.
 */
export function spans(
  gpu: Gpu,
  count: number,
  unitElems: number,
  otherUnitElems: number[] = [],
  multipleOf = 1,
): Span[] {
  if (count === 0) return [];
  const limitElems = Math.floor(gpu.maxBindingSize / 4);
  if (count * unitElems <= limitElems) return [{ start: 0, count }];
  const alignElems = Math.max(1, gpu.bindingOffsetAlignment / 4);
  let alignUnits = multipleOf;
  for (const e of [unitElems, ...otherUnitElems]) {
    if (e > 0) alignUnits = lcm(alignUnits, alignElems / gcd(alignElems, e));
  }
  let per = Math.floor(limitElems / unitElems);
  per -= per % alignUnits;
  if (per === 0) {
    throw new GpuError(
      `a window of ${alignUnits} rows of ${unitElems} f32 exceeds this device's ` +
        `maxStorageBufferBindingSize of ${gpu.maxBindingSize} bytes`,
    );
  }
  const out: Span[] = [];
  for (let start = 0; start < count; start += per) {
    out.push({ start, count: Math.min(per, count - start) });
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/**
 * Mesa llvmpipe silently ends every loop of a shader invocation once 65535 iterations (summed over
 * all its loops, nested ones included) have run; later loops then run once. Kernels keep
 * per-invocation loop counts well below this on CPU adapters (measured with Mesa llvmpipe).
 */
export const CPU_LOOP_BUDGET = 65535;

/**
 * Default kernel for row-wise ops making `passes` passes over rows of `n`: one invocation per row
 * on CPU adapters (llvmpipe barriers cost tens of µs per workgroup) when the loop budget allows,
 * else one workgroup per row.
 */
export function rowKernelVariant(gpu: Gpu, n: number, passes: number): "workgroup" | "thread" {
  return gpu.info.isFallbackAdapter && passes * n <= CPU_LOOP_BUDGET / 2 ? "thread" : "workgroup";
}

/** True when every tensor can be bound as `array<vec4<f32>>` (size and offset multiples of 4). */
export function vec4Ok(...tensors: Tensor[]): boolean {
  return tensors.every((t) => t.size % 4 === 0 && t.offset % 16 === 0);
}

/** WGSL: the linear workgroup index of a grid folded by `grid1d`. */
export const WGSL_WG = /* wgsl */ `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** WGSL: `-inf` without a constant expression (constant overflow is a WGSL error). */
export const WGSL_NEG_INF = "bitcast<f32>(0xff800000u)";

/** WGSL builtins of a kernel indexed by linear workgroup and local invocation. */
export const WGSL_MAIN_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, " +
  "@builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32";

/**
 * WGSL: a workgroup tree reduction over `sh` (one slot per invocation). `combine` is an
 * expression of `a` and `b`. Deterministic: the order depends only on the workgroup size.
 * Must be called from uniform control flow.
 */
export function wgslWorkgroupReduce(name: string, wg: number, combine: string): string {
  return /* wgsl */ `
fn ${name}(lid: u32, v: f32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { let a = sh[lid]; let b = sh[lid + s]; sh[lid] = ${combine}; }
    workgroupBarrier();
  }
  let r = sh[0];
  workgroupBarrier();
  return r;
}
`;
}

/** Invocations per workgroup of the flat (one element or vec4 per invocation) kernels. */
export const FLAT_WG = 256;

/**
 * Records a flat kernel over `n` elements: every tensor in `windowed` (all of `n` elements) is
 * bound as the same window of elements, then `whole` bindings, then the uniform built by
 * `uniformFor(units)` for the window. With `vec4`, one unit is 4 elements. Splits into windows
 * when a tensor exceeds one storage binding.
 */
export function dispatchFlat(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  n: number,
  windowed: Tensor[],
  whole: (BufferBinding | Tensor)[],
  uniformFor: (units: number) => Uint32Array,
  vec4: boolean,
): void {
  const unit = vec4 ? 4 : 1;
  for (const s of spans(gpu, n / unit, unit)) {
    const bindings = windowed.map((t) => windowOf(t, s.start * unit, s.count * unit));
    gpu.dispatch(
      pipeline,
      [...bindings, ...whole, gpu.uniform(uniformFor(s.count))],
      grid1d(gpu, Math.ceil(s.count / FLAT_WG)),
    );
  }
}
