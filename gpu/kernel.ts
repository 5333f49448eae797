/**
 * The kernel toolkit: everything a WGSL kernel family needs besides its own shader text, in one
 * place, so that every family (`gpu/kernels/`, the language model's, the SAE's, the evals') writes
 * kernels the same way.
 *
 * - **Arguments**: {@link checkTensor} (live, dtype, rank, shape; returns the shape),
 *   {@link checkShape}, {@link checkInt}, {@link checkAlias} / {@link checkDisjoint} (what an
 *   output may share with its inputs), {@link checkBindable}, {@link asRows}.
 * - **Uniforms**: {@link packUniform} (u32 / i32 / f32 fields, 16-byte padded) and
 *   {@link uniformStruct} (the matching WGSL struct).
 * - **Windows**: a tensor larger than one storage binding is processed in {@link spans} of rows
 *   whose bindings fit `maxStorageBufferBindingSize` and start at aligned offsets; bind one with
 *   {@link windowOf} (or {@link shiftedWindow} from the aligned offset below an unaligned start),
 *   or view its rows as a tensor with {@link rowsView}.
 * - **Grids**: {@link grid1d} folds a workgroup count into a 2-D grid (at most 65535 per
 *   dimension); kernels get the linear index back with `wgIndex` from {@link WGSL_WG_INDEX};
 *   {@link dispatch1d} and {@link dispatchFlat} record the common launches.
 * - **WGSL snippets**: {@link WGSL_MAIN_ARGS}, {@link WGSL_NEG_INF}, {@link wgslWorkgroupReduce}.
 * - **CPU adapters**: {@link CPU_LOOP_BUDGET}, {@link rowKernelVariant}, {@link vec4Ok}.
 * - **Integers**: {@link gcd}, {@link lcm}, {@link ceilDiv}, {@link nextPow2}, {@link prevPow2}.
 *
 * Every check takes the error class of its family (default {@link GpuError}), so a model kernel
 * still throws `ModelError` and an SAE kernel its own error.
 *
 * @example A complete kernel: y = 2·x, one invocation per element, windowed past one binding.
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { Tensor } from "./tensor.ts";
 * import {
 *   checkTensor, dispatch1d, packUniform, spans, WGSL_MAIN_ARGS, WGSL_WG_INDEX, windowOf,
 * } from "./kernel.ts";
 * const gpu = await getGpu();
 * const WGSL = `
 * @group(0) @binding(0) var<storage, read> x: array<f32>;
 * @group(0) @binding(1) var<storage, read_write> y: array<f32>;
 * struct U { n: u32, scale: f32 }
 * @group(0) @binding(2) var<uniform> u: U;
 * ${WGSL_WG_INDEX}
 * @compute @workgroup_size(64)
 * fn main(${WGSL_MAIN_ARGS}) {
 *   let i = wgIndex(wid, nwg) * 64u + lid;
 *   if (i < u.n) { y[i] = u.scale * x[i]; }
 * }`;
 * function double(x: Tensor): Tensor {
 *   const [n] = checkTensor(x, "double", "x", { dtype: "f32", rank: 1 });
 *   const y = Tensor.empty([n]);
 *   const pipeline = gpu.pipeline("doc_double", WGSL);
 *   for (const s of spans(gpu, n, 1)) {
 *     const bind = [windowOf(x, s.start, s.count), windowOf(y, s.start, s.count)];
 *     dispatch1d(gpu, pipeline, [...bind, gpu.uniform(packUniform("uf", s.count, 2))], s.count);
 *   }
 *   return y;
 * }
 * using x = Tensor.from([1, 2, 3], [3]);
 * using y = double(x);
 * if ((await y.toArray()).join() !== "2,4,6") throw new Error("wrong result");
 * ```
 * @module
 */

import type { Bindable, BufferBinding, Gpu } from "./device.ts";
import { GpuError } from "./device.ts";
import { type DType, Tensor } from "./tensor.ts";

// ---------------------------------------------------------------------------------- integers

/** Greatest common divisor of two non-negative integers (`gcd(0, b) = b`). */
export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Least common multiple of two positive integers. */
export function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** Integer ceiling division. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** The smallest power of two ≥ `x` (1 for x ≤ 1). */
export function nextPow2(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

/** The largest power of two ≤ `x` (1 for x ≤ 1). */
export function prevPow2(x: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, x)));
}

// ---------------------------------------------------------------------------------- arguments

/** The error class a kernel family throws for bad arguments (default {@link GpuError}). */
export type KernelErrorClass = new (message: string) => Error;

/** What {@link checkTensor} requires of a tensor; every field is optional. */
export interface TensorExpectation {
  /** The dtype, or the dtypes allowed. */
  dtype?: DType | readonly DType[];
  /** The number of dims. */
  rank?: number;
  /** The exact shape. */
  shape?: readonly number[];
}

/**
 * Throws unless `t` is a live tensor meeting `expect` (checked in this order: not disposed,
 * dtype, rank, shape); the message names `op`, the argument `name`, what it got and what was
 * expected. Returns `t.shape`, so `const [rows, cols] = checkTensor(x, op, "x", { rank: 2 })`.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { Tensor } from "./tensor.ts";
 * import { checkTensor } from "./kernel.ts";
 * await getGpu();
 * using x = Tensor.zeros([2, 3]);
 * const [rows, cols] = checkTensor(x, "op", "x", { dtype: "f32", rank: 2 });
 * if (rows !== 2 || cols !== 3) throw new Error("wrong dims");
 * let msg = "";
 * try { checkTensor(x, "op", "x", { shape: [3, 2] }); } catch (e) { msg = String(e); }
 * if (!msg.includes("has shape [2, 3], expected [3, 2]")) throw new Error(msg);
 * ```
 */
export function checkTensor(
  t: Tensor,
  op: string,
  name: string,
  expect: TensorExpectation = {},
  Err: KernelErrorClass = GpuError,
): readonly number[] {
  if (t.disposed) throw new Err(`${op}: ${name} ${t} was used after dispose()`);
  const { dtype, rank, shape } = expect;
  if (dtype !== undefined) {
    const allowed: readonly DType[] = typeof dtype === "string" ? [dtype] : dtype;
    if (!allowed.includes(t.dtype)) {
      throw new Err(`${op}: ${name} must be ${allowed.join(" or ")}, got ${t}`);
    }
  }
  if (rank !== undefined && t.rank !== rank) {
    throw new Err(`${op}: ${name} must have rank ${rank}, got ${t}`);
  }
  if (shape !== undefined) checkShape(t, shape, op, name, Err);
  return t.shape;
}

/** Throws unless `t` has exactly `shape` (nothing else is checked). */
export function checkShape(
  t: Tensor,
  shape: readonly number[],
  op: string,
  name: string,
  Err: KernelErrorClass = GpuError,
): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Err(
      `${op}: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

/** Throws unless `k` is an integer in `[lo, hi]`. */
export function checkInt(
  k: number,
  lo: number,
  hi: number,
  op: string,
  name: string,
  Err: KernelErrorClass = GpuError,
): void {
  if (!Number.isInteger(k) || k < lo || k > hi) {
    throw new Err(`${op}: ${name} is ${k}, expected an integer in [${lo}, ${hi}]`);
  }
}

/** `[rows, cols]` of a tensor seen as a matrix over its last dim (rank ≥ 1). */
export function asRows(
  t: Tensor,
  op: string,
  name: string,
  Err: KernelErrorClass = GpuError,
): [number, number] {
  if (t.rank < 1) throw new Err(`${op}: ${name} must have rank ≥ 1, got a scalar`);
  const n = t.shape[t.rank - 1];
  return [n === 0 ? 0 : t.size / n, n];
}

/** True when `a` and `b` are the same bytes (an in-place request). */
export function sameStorage(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;
}

/** True when `a` and `b` share at least one byte. */
function overlaps(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset < b.offset + b.byteLength &&
    b.offset < a.offset + a.byteLength;
}

/**
 * For ops that may run in place: throws when `out` shares a buffer with an input without being
 * exactly it. WebGPU forbids a buffer bound writable and bound again in the same dispatch (even
 * as disjoint ranges), and a partial overlap would race anyway.
 */
export function checkAlias(
  out: Tensor,
  inputs: readonly Tensor[],
  op: string,
  Err: KernelErrorClass = GpuError,
): void {
  const t = inputs.find((t) => out.buffer === t.buffer && !sameStorage(out, t));
  if (t) throw new Err(`${op}: out ${out} shares a GPU buffer with input ${t} without being it`);
}

/**
 * For ops that never run in place and bind `out` in its own dispatch: throws when `out` shares
 * bytes with any of `inputs` (a disjoint range of the same buffer is allowed).
 */
export function checkDisjoint(
  out: Tensor,
  inputs: readonly Tensor[],
  op: string,
  Err: KernelErrorClass = GpuError,
): void {
  const t = inputs.find((t) => overlaps(out, t));
  if (t) throw new Err(`${op}: out ${out} overlaps an input ${t}`);
}

/** Throws a clear error when a tensor that a kernel cannot window exceeds one binding. */
export function checkBindable(
  gpu: Gpu,
  t: Tensor,
  op: string,
  name: string,
  Err: KernelErrorClass = GpuError,
): void {
  if (t.byteLength > gpu.maxBindingSize) {
    throw new Err(
      `${op}: ${name} ${t} is ${t.byteLength} bytes, more than this device's ` +
        `maxStorageBufferBindingSize (${gpu.maxBindingSize}); use a smaller batch or context`,
    );
  }
}

// ---------------------------------------------------------------------------------- uniforms

const UNIFORM_TYPES: Readonly<Record<string, string>> = { u: "u32", i: "i32", f: "f32" };

/**
 * Packs uniform fields: `spec` has one letter per field, `u` for u32, `i` for i32 and `f` for
 * f32. The result is padded to a multiple of 16 bytes and feeds {@link Gpu.uniform} (which
 * caches by content, so an unchanged uniform is not uploaded again).
 *
 * @example
 * ```ts
 * import { packUniform } from "./kernel.ts";
 * const w = packUniform("uif", 3, -1, 0.5);
 * if (w.length !== 4 || w[0] !== 3 || new Int32Array(w.buffer)[1] !== -1) throw new Error("bad");
 * if (new Float32Array(w.buffer)[2] !== 0.5) throw new Error("bad f32");
 * ```
 */
export function packUniform(spec: string, ...values: number[]): Uint32Array {
  if (spec.length !== values.length) {
    throw new GpuError(`packUniform: ${spec.length} fields but ${values.length} values`);
  }
  const words = new Uint32Array(Math.max(4, Math.ceil(spec.length / 4) * 4));
  const floats = new Float32Array(words.buffer);
  const ints = new Int32Array(words.buffer);
  for (let i = 0; i < spec.length; i++) {
    const kind = spec[i];
    if (kind === "f") floats[i] = values[i];
    else if (kind === "i") ints[i] = values[i];
    else if (kind === "u") words[i] = values[i] >>> 0;
    else throw new GpuError(`packUniform: field ${i} has type "${kind}", expected u, i or f`);
  }
  return words;
}

/**
 * WGSL text of `struct <name>` for a {@link packUniform} spec, one field per letter.
 *
 * @example
 * ```ts
 * import { uniformStruct } from "./kernel.ts";
 * const s = uniformStruct("uf", ["n", "scale"]);
 * if (s !== "struct U { n: u32, scale: f32 }") throw new Error(s);
 * ```
 */
export function uniformStruct(spec: string, names: readonly string[], name = "U"): string {
  if (names.length !== spec.length) {
    throw new GpuError(`uniformStruct: ${spec.length} fields but ${names.length} names`);
  }
  return `struct ${name} { ${names.map((n, k) => `${n}: ${UNIFORM_TYPES[spec[k]]}`).join(", ")} }`;
}

// ---------------------------------------------------------------------------------- windows

/** A window binding of elements `[start, start + count)` of `t` (4-byte elements). */
export function windowOf(t: Tensor, start: number, count: number): BufferBinding {
  if (start === 0 && count === t.size) return t.binding();
  return { buffer: t.buffer, offset: t.offset + start * 4, size: Math.max(4, count * 4) };
}

/**
 * A view of rows `[start, start + count)` of a row-major tensor (rows over its first dim, each
 * the size of its last): the same buffer, no copy; `t` itself when the rows are all of it. The
 * view lives only as long as `t`.
 */
export function rowsView(t: Tensor, start: number, count: number): Tensor {
  const cols = t.shape[t.shape.length - 1];
  if (start === 0 && count === t.shape[0]) return t;
  return new Tensor(t.gpu, t.buffer, [count, cols], t.dtype, t.offset + start * cols * 4, false);
}

/** A range of units (rows, elements, groups) of a split: `[start, start + count)`. */
export interface Span {
  /** The first unit. */
  start: number;
  /** How many units. */
  count: number;
}

/** Options of {@link spans}. */
export interface SpanOptions {
  /**
   * Elements per unit of every tensor bound at the spans' offsets (windows of the same units):
   * each keeps its window offsets aligned. Default `[unitElems]`; pass `[]` when only whole
   * per-span workspaces are bound.
   */
  aligned?: readonly number[];
  /** Starts are multiples of this many units (default 1). */
  multipleOf?: number;
  /**
   * At most this many units per span (tests force small windows with it), rounded down to the
   * alignment but never below one aligned group.
   */
  maxCount?: number;
  /**
   * The windows are bound with {@link shiftedWindow} (from the aligned offset at or below their
   * start): starts need no alignment (`aligned` is ignored), and each binding may hold up to one
   * offset alignment more than its units.
   */
  shifted?: boolean;
  /** The error class thrown when one aligned group of units is already too large. */
  error?: KernelErrorClass;
}

/**
 * Splits `count` units of `unitElems` 4-byte elements (the widest row among the tensors the
 * split sizes) into spans whose bindings fit `gpu.maxBindingSize` and whose starts keep every
 * window offset aligned to `minStorageBufferOffsetAlignment` (for every width of `opts.aligned`,
 * by default `unitElems`). One span when everything fits; none when `count` is 0.
 * @throws {GpuError} (or `opts.error`) naming the limit when one aligned group of units is too
 * large.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { spans } from "./kernel.ts";
 * const gpu = await getGpu();
 * const s = spans(gpu, 1000, 64, { maxCount: 300 });
 * if (s.reduce((a, w) => a + w.count, 0) !== 1000 || s.some((w) => w.count > 300)) {
 *   throw new Error("bad split");
 * }
 * ```
 */
export function spans(
  gpu: Gpu,
  count: number,
  unitElems: number,
  opts: SpanOptions = {},
): Span[] {
  if (count === 0) return [];
  const shifted = opts.shifted ?? false;
  const limitBytes = gpu.maxBindingSize - (shifted ? gpu.bindingOffsetAlignment : 0);
  const limitElems = Math.floor(limitBytes / 4);
  const alignElems = Math.max(1, gpu.bindingOffsetAlignment / 4);
  let alignUnits = opts.multipleOf ?? 1;
  for (const e of shifted ? [] : opts.aligned ?? [unitElems]) {
    if (e > 0) alignUnits = lcm(alignUnits, alignElems / gcd(alignElems, e));
  }
  let per: number;
  if (count * unitElems <= limitElems) {
    per = count;
  } else {
    per = Math.floor(limitElems / unitElems);
    per -= per % alignUnits;
    if (per === 0) {
      const Err = opts.error ?? GpuError;
      throw new Err(
        `a window of ${alignUnits} rows of ${unitElems} f32 exceeds this device's ` +
          `maxStorageBufferBindingSize of ${gpu.maxBindingSize} bytes`,
      );
    }
  }
  if (opts.maxCount !== undefined && per > opts.maxCount) {
    per = Math.max(alignUnits, Math.floor(opts.maxCount / alignUnits) * alignUnits);
  }
  const out: Span[] = [];
  for (let start = 0; start < count; start += per) {
    out.push({ start, count: Math.min(per, count - start) });
  }
  return out;
}

/** A binding from an aligned offset at or below the first element wanted; see {@link shiftedWindow}. */
export interface ShiftedWindow {
  /** The binding. */
  binding: BufferBinding;
  /** Elements of the binding before the first one wanted: the kernel adds it to its indices. */
  shift: number;
}

/**
 * A binding of elements `[start, start + count)` of `t` that starts at the aligned offset at or
 * below the first element, for windows whose starts are not aligned (the kernel adds `shift` to
 * its indices). The size is rounded up to 16 bytes within the buffer, so `vec4` views see every
 * element; the whole buffer is bound when the window covers it.
 */
export function shiftedWindow(t: Tensor, start: number, count: number): ShiftedWindow {
  const align = t.gpu.bindingOffsetAlignment;
  const byteStart = t.offset + start * 4;
  const base = byteStart - (byteStart % align);
  const end = byteStart + Math.max(1, count) * 4;
  const size = Math.min(Math.ceil((end - base) / 16) * 16, t.buffer.size - base);
  const shift = (byteStart - base) / 4;
  if (base === 0 && size === t.buffer.size) return { binding: { buffer: t.buffer }, shift };
  return { binding: { buffer: t.buffer, offset: base, size }, shift };
}

// ---------------------------------------------------------------------------------- grids

/**
 * A grid of `[x, y, 1]` workgroups covering `count` workgroups with `x` within the device limit.
 * Kernels recover the linear workgroup index with `wgIndex` ({@link WGSL_WG_INDEX}); they must
 * ignore indices ≥ `count` (the grid can overshoot by less than one row of `x`).
 */
export function grid1d(gpu: Gpu, count: number): [number, number, number] {
  const max = gpu.maxWorkgroupsPerDimension;
  if (count <= max) return [count, 1, 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new GpuError(`${count} workgroups do not fit a ${max}×${max} grid`);
  return [Math.ceil(count / y), y, 1];
}

/** Invocations per workgroup of the one-invocation-per-item kernels unless they choose otherwise. */
export const DEFAULT_WG = 64;

/**
 * Records `pipeline` with `invocations` invocations in workgroups of `wg` (grid folded by
 * {@link grid1d}); records nothing when `invocations` is 0.
 */
export function dispatch1d(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  bindings: Bindable[],
  invocations: number,
  wg: number = DEFAULT_WG,
): void {
  if (invocations === 0) return;
  gpu.dispatch(pipeline, bindings, grid1d(gpu, Math.ceil(invocations / wg)));
}

/** Invocations per workgroup of the flat kernels of {@link dispatchFlat}. */
export const FLAT_WG = 256;

/**
 * Records a flat kernel over `n` elements in workgroups of {@link FLAT_WG}: every tensor of
 * `windowed` (all of `n` elements) is bound as the same window of elements, then the `whole`
 * bindings, then the uniform built by `uniformFor(units)` for the window. With `vec4`, one unit
 * is 4 elements. Splits into windows when a tensor exceeds one storage binding.
 */
export function dispatchFlat(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  n: number,
  windowed: readonly Tensor[],
  whole: readonly Bindable[],
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

// ---------------------------------------------------------------------------------- WGSL

/** WGSL: `wgIndex(wid, nwg)` = wid.x + wid.y · nwg.x, the linear workgroup of a {@link grid1d} grid. */
export const WGSL_WG_INDEX = /* wgsl */ `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/**
 * WGSL builtins of a kernel indexed by linear workgroup and local invocation: `wid`, `nwg`,
 * `lid` (`fn main(${WGSL_MAIN_ARGS})`).
 */
export const WGSL_MAIN_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, " +
  "@builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32";

/**
 * WGSL statements opening the body of a {@link dispatchFlat} kernel (`@workgroup_size(FLAT_WG)`):
 * `i` is the unit (element or vec4) of the window, and units past `u.n` return; the kernel's
 * uniform `u` has the window's unit count in a field `n`.
 */
export const WGSL_FLAT_INDEX = `let i = wgIndex(wid, nwg) * ${FLAT_WG}u + lid;
  if (i >= u.n) { return; }`;

/** WGSL: `-inf` without a constant expression (constant overflow is a WGSL error). */
export const WGSL_NEG_INF = "bitcast<f32>(0xff800000u)";

/**
 * WGSL: a workgroup tree reduction `fn <name>(lid, v) -> f32` over a workgroup array `sh` (one
 * slot per invocation, declared by the kernel). `combine` is an expression of `a` and `b`.
 * Deterministic: the order depends only on the workgroup size `wg` (a power of two). Must be
 * called from uniform control flow.
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

// ---------------------------------------------------------------------------------- CPU adapters

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
