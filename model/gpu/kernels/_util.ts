/**
 * Private helpers of the language-model kernels: argument checks, uniform packing, row spans
 * for tensors larger than one storage binding, and WGSL snippets (activations, safe tanh, erf).
 * @module
 */

import type { BufferBinding, Gpu } from "../../../gpu/device.ts";
import { grid1d } from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import type { ActFn } from "../../config.ts";
import { ModelError } from "../../errors.ts";

/** Invocations per workgroup of the one-invocation-per-element kernels. */
export const WG = 64;

/** WGSL: linear workgroup index of a `grid1d` grid, and the kernel's builtins. */
export const WGSL_HEAD = /* wgsl */ `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** WGSL builtins of a kernel indexed by linear workgroup and local invocation. */
export const WGSL_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, " +
  "@builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32";

/** WGSL: `-inf` (a constant expression may not overflow). */
export const WGSL_NEG_INF = "bitcast<f32>(0xff800000u)";

/**
 * WGSL helper functions for the activations: a clamped tanh (some backends compute tanh via
 * exp(2x) and overflow to NaN) and erf (Abramowitz-Stegun 7.1.26, |error| ≤ 1.5e-7, enough for
 * the exact-GELU models next to float32 rounding).
 */
export const WGSL_ACT_FNS = /* wgsl */ `
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn erf_(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
    + 0.254829592) * t * exp(-a * a);
  return select(y, -y, x < 0.0);
}
`;

/** WGSL expression of activation `act` applied to the f32 expression `x`. */
export function wgslAct(act: ActFn | "none", x: string): string {
  switch (act) {
    case "none":
      return x;
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return `(0.5 * (${x}) * (1.0 + tanh_(0.7978845608028654 * ((${x}) + 0.044715 * (${x}) * (${x}) * (${x})))))`;
    case "gelu_fast":
      return `(0.5 * (${x}) * (1.0 + tanh_(0.7978845608 * (${x}) * (1.0 + 0.044715 * (${x}) * (${x})))))`;
    case "gelu":
      return `(0.5 * (${x}) * (1.0 + erf_((${x}) * 0.7071067811865476)))`;
    case "silu":
      return `((${x}) / (1.0 + exp(-(${x}))))`;
    case "relu":
      return `max(${x}, 0.0)`;
  }
  throw new ModelError(`unsupported activation "${act}"`);
}

/** Packs uniform fields: one letter per field, `u` u32, `i` i32, `f` f32 (16-byte padded). */
export function packUniform(spec: string, ...values: number[]): Uint32Array {
  if (spec.length !== values.length) {
    throw new ModelError(`packUniform: ${spec.length} fields but ${values.length} values`);
  }
  const words = new Uint32Array(Math.max(4, Math.ceil(spec.length / 4) * 4));
  const floats = new Float32Array(words.buffer);
  const ints = new Int32Array(words.buffer);
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] === "f") floats[i] = values[i];
    else if (spec[i] === "i") ints[i] = values[i];
    else words[i] = values[i] >>> 0;
  }
  return words;
}

/** Throws unless `t` is a live tensor of `dtype` with exactly `shape`. */
export function expectTensor(
  t: Tensor,
  shape: readonly number[],
  op: string,
  name: string,
  dtype: "f32" | "i32" = "f32",
): void {
  if (t.disposed) throw new ModelError(`${op}: ${name} ${t} was used after dispose()`);
  if (t.dtype !== dtype) throw new ModelError(`${op}: ${name} must be ${dtype}, got ${t}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ModelError(
      `${op}: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

/** A binding of elements `[start, start + count)` of `t`. */
export function windowOf(t: Tensor, start: number, count: number): BufferBinding {
  if (start === 0 && count === t.size) return t.binding();
  return { buffer: t.buffer, offset: t.offset + start * 4, size: Math.max(4, count * 4) };
}

/** A span of rows. */
export interface RowSpan {
  start: number;
  count: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Splits `rows` rows into spans such that, for every row width in `rowElems` (f32 elements per
 * row of each windowed tensor), a span's binding fits `gpu.maxBindingSize` and starts at an
 * aligned offset. Starts are multiples of `multipleOf` rows.
 * @throws {ModelError} naming the limit when one aligned group of rows is already too large.
 */
export function rowSpans(
  gpu: Gpu,
  rows: number,
  rowElems: number[],
  multipleOf = 1,
): RowSpan[] {
  if (rows === 0) return [];
  const limit = Math.floor(gpu.maxBindingSize / 4);
  const widest = Math.max(...rowElems);
  if (rows * widest <= limit) return [{ start: 0, count: rows }];
  const alignElems = Math.max(1, gpu.bindingOffsetAlignment / 4);
  let unit = multipleOf;
  for (const e of rowElems) {
    const need = alignElems / gcd(alignElems, e);
    unit = (unit / gcd(unit, need)) * need;
  }
  let per = Math.floor(limit / widest);
  per -= per % unit;
  if (per === 0) {
    throw new ModelError(
      `${unit} rows of ${widest} f32 exceed this device's maxStorageBufferBindingSize ` +
        `(${gpu.maxBindingSize} bytes)`,
    );
  }
  const out: RowSpan[] = [];
  for (let start = 0; start < rows; start += per) {
    out.push({ start, count: Math.min(per, rows - start) });
  }
  return out;
}

/** Records `count` invocations of `pipeline` in workgroups of {@link WG} (grid folded). */
export function dispatchN(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  bindings: (BufferBinding | Tensor | GPUBuffer)[],
  count: number,
  wg = WG,
): void {
  if (count === 0) return;
  gpu.dispatch(pipeline, bindings, grid1d(gpu, Math.ceil(count / wg)));
}

/** Throws a clear error when a tensor that cannot be windowed exceeds one binding. */
export function expectBindable(gpu: Gpu, t: Tensor, op: string, name: string): void {
  if (t.byteLength > gpu.maxBindingSize) {
    throw new ModelError(
      `${op}: ${name} ${t} is ${t.byteLength} bytes, more than this device's ` +
        `maxStorageBufferBindingSize (${gpu.maxBindingSize}); use a smaller batch or context`,
    );
  }
}
