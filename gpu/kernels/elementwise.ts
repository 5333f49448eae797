/**
 * Elementwise f32 kernels: unary ops from one op table (one small WGSL pipeline per op, vec4
 * when the size allows, in place when `out` is the input), `fill`, `copy`, `axpy` and scaling by
 * a 1-element GPU tensor. Binary ops with broadcasting live in `binary.ts`; the plain-TS
 * references in `elementwise_ref.ts`. Ops only record dispatches (no flush, no readback).
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import { Tensor } from "../tensor.ts";
import {
  checkAlias,
  checkShape,
  checkTensor,
  dispatchFlat,
  FLAT_WG,
  packUniform,
  sameStorage,
  vec4Ok,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../kernel.ts";
import type { UnaryOp } from "./elementwise_ref.ts";

export { type UnaryOp, unaryRef } from "./elementwise_ref.ts";

/** WGSL expressions of `x` (type `V`: f32 or vec4<f32>) and the uniform constant `c`. */
const UNARY_WGSL: Record<UnaryOp, string> = {
  neg: "-x",
  exp: "exp(x)",
  log: "log(x)",
  relu: "max(x, V(0.0))",
  geluTanh: "0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
  sigmoid: "1.0 / (1.0 + exp(-x))",
  tanh: "tanh_(x)",
  sqrt: "sqrt(x)",
  abs: "abs(x)",
  square: "x * x",
  scale: "x * c",
  addScalar: "x + c",
};

/**
 * WGSL prelude of the flat kernels: the element type `V` and a `tanh` whose argument is clamped
 * (tanh(±15) is ±1 in f32; some backends compute tanh through exp(2x) and overflow to NaN).
 */
function prelude(vec4: boolean): string {
  return /* wgsl */ `
alias V = ${vec4 ? "vec4<f32>" : "f32"};
fn tanh_(x: V) -> V { return tanh(clamp(x, V(-15.0), V(15.0))); }
${WGSL_WG_INDEX}`;
}

function unaryWgsl(op: UnaryOp, vec4: boolean, inPlace: boolean): string {
  const io = inPlace
    ? `@group(0) @binding(0) var<storage, read_write> Y: array<V>;
@group(0) @binding(1) var<uniform> u: U;`
    : `@group(0) @binding(0) var<storage, read> X: array<V>;
@group(0) @binding(1) var<storage, read_write> Y: array<V>;
@group(0) @binding(2) var<uniform> u: U;`;
  return /* wgsl */ `${prelude(vec4)}
struct U { n: u32, c: f32 }
${io}
fn f(x: V) -> V { let c = u.c; return ${UNARY_WGSL[op]}; }
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  Y[i] = f(${inPlace ? "Y" : "X"}[i]);
}`;
}

/** A tensor for the result: `out` after checking it, else a new one. */
export function resolveOut(
  gpu: Gpu,
  out: Tensor | undefined,
  shape: readonly number[],
  op: string,
): Tensor {
  if (!out) return Tensor.empty(shape, "f32", { gpu });
  checkTensor(out, op, "out", { dtype: "f32", shape });
  return out;
}

/** Options of {@link unary}. */
export interface UnaryOptions {
  /** Constant of `scale` (x·c) and `addScalar` (x + c). */
  c?: number;
  /** Where to write (same shape as `x`); may be `x` itself for an in-place update. */
  out?: Tensor;
}

/**
 * Applies a unary op to every element of an f32 tensor.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { unary } from "./elementwise.ts";
 * await getGpu();
 * using x = Tensor.from([-1, 2]);
 * using y = unary("relu", x);
 * const r = await y.toArray(); // Float32Array [0, 2]
 * if (r[0] !== 0) throw new Error("unexpected");
 * ```
 */
export function unary(op: UnaryOp, x: Tensor, options: UnaryOptions = {}): Tensor {
  const name = `unary(${op})`;
  if (!(op in UNARY_WGSL)) throw new GpuError(`unknown unary op "${op}"`);
  checkTensor(x, name, "x", { dtype: "f32" });
  const gpu = x.gpu;
  const out = resolveOut(gpu, options.out, x.shape, name);
  checkAlias(out, [x], name);
  const inPlace = sameStorage(out, x);
  const vec4 = vec4Ok(x, out);
  const key = `ew_unary_${op}_${vec4 ? "v4" : "s"}_${inPlace ? "ip" : "oop"}`;
  const pipeline = gpu.pipeline(key, unaryWgsl(op, vec4, inPlace));
  const c = options.c ?? 0;
  dispatchFlat(
    gpu,
    pipeline,
    x.size,
    inPlace ? [out] : [x, out],
    [],
    (units) => packUniform("uf", units, c),
    vec4,
  );
  return out;
}

/** `x · c` (a unary `scale`); `out` may be `x`. */
export function scale(x: Tensor, c: number, out?: Tensor): Tensor {
  return unary("scale", x, { c, out });
}

const FILL_WGSL = (vec4: boolean) =>
  /* wgsl */ `${prelude(vec4)}
struct U { n: u32, c: f32 }
@group(0) @binding(0) var<storage, read_write> Y: array<V>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  Y[i] = V(u.c);
}`;

/** Sets every element of the f32 tensor `t` to `value` (in place); returns `t`. */
export function fill(t: Tensor, value: number): Tensor {
  checkTensor(t, "fill", "t", { dtype: "f32" });
  const vec4 = vec4Ok(t);
  const pipeline = t.gpu.pipeline(`ew_fill_${vec4 ? "v4" : "s"}`, FILL_WGSL(vec4));
  dispatchFlat(t.gpu, pipeline, t.size, [t], [], (u) => packUniform("uf", u, value), vec4);
  return t;
}

/**
 * Copies `src` into `dst` (same number of elements and dtype; a new tensor of `src`'s shape when
 * `dst` is omitted). Recorded as a buffer copy, so any size and dtype works.
 */
export function copy(src: Tensor, dst?: Tensor): Tensor {
  const out = dst ?? Tensor.empty(src.shape, src.dtype, { gpu: src.gpu });
  if (out.size !== src.size || out.dtype !== src.dtype) {
    throw new GpuError(`copy: dst ${out} does not match src ${src} (size and dtype)`);
  }
  if (sameStorage(out, src)) return out;
  checkAlias(out, [src], "copy");
  src.gpu.copy(src.buffer, src.offset, out.buffer, out.offset, src.byteLength);
  return out;
}

const AXPY_WGSL = (vec4: boolean) =>
  /* wgsl */ `${prelude(vec4)}
struct U { n: u32, a: f32 }
@group(0) @binding(0) var<storage, read> X: array<V>;
@group(0) @binding(1) var<storage, read_write> Y: array<V>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  Y[i] = Y[i] + u.a * X[i];
}`;

/** `y += alpha · x` in place (same shapes, `x` and `y` distinct); returns `y`. */
export function axpy(alpha: number, x: Tensor, y: Tensor): Tensor {
  checkTensor(x, "axpy", "x", { dtype: "f32" });
  checkTensor(y, "axpy", "y", { dtype: "f32" });
  checkShape(x, y.shape, "axpy", "x");
  if (x.buffer === y.buffer) {
    throw new GpuError("axpy: x and y must not share a GPU buffer (use scale() for y += a·y)");
  }
  const vec4 = vec4Ok(x, y);
  const pipeline = y.gpu.pipeline(`ew_axpy_${vec4 ? "v4" : "s"}`, AXPY_WGSL(vec4));
  dispatchFlat(y.gpu, pipeline, y.size, [x, y], [], (u) => packUniform("uf", u, alpha), vec4);
  return y;
}

function scaleByWgsl(vec4: boolean, inPlace: boolean): string {
  const io = inPlace
    ? `@group(0) @binding(0) var<storage, read_write> Y: array<V>;
@group(0) @binding(1) var<storage, read> F: array<f32>;
@group(0) @binding(2) var<uniform> u: U;`
    : `@group(0) @binding(0) var<storage, read> X: array<V>;
@group(0) @binding(1) var<storage, read_write> Y: array<V>;
@group(0) @binding(2) var<storage, read> F: array<f32>;
@group(0) @binding(3) var<uniform> u: U;`;
  return /* wgsl */ `${prelude(vec4)}
struct U { n: u32 }
${io}
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  Y[i] = ${inPlace ? "Y" : "X"}[i] * F[0];
}`;
}

/**
 * `x · factor[0]`, where `factor` is a 1-element f32 GPU tensor (e.g. a clip coefficient that is
 * never read back). `out` may be `x`.
 */
export function scaleByTensor(x: Tensor, factor: Tensor, out?: Tensor): Tensor {
  checkTensor(x, "scaleByTensor", "x", { dtype: "f32" });
  checkTensor(factor, "scaleByTensor", "factor", { dtype: "f32" });
  if (factor.size !== 1) {
    throw new GpuError(`scaleByTensor: factor must have 1 element, got ${factor}`);
  }
  const gpu = x.gpu;
  const y = resolveOut(gpu, out, x.shape, "scaleByTensor");
  checkAlias(y, [x], "scaleByTensor");
  if (factor.buffer === y.buffer) throw new GpuError("scaleByTensor: factor shares out's buffer");
  const inPlace = sameStorage(y, x);
  const vec4 = vec4Ok(x, y);
  const key = `ew_scaleby_${vec4 ? "v4" : "s"}_${inPlace ? "ip" : "oop"}`;
  const pipeline = gpu.pipeline(key, scaleByWgsl(vec4, inPlace));
  dispatchFlat(
    gpu,
    pipeline,
    x.size,
    inPlace ? [y] : [x, y],
    [factor],
    (u) => packUniform("u", u),
    vec4,
  );
  return y;
}
