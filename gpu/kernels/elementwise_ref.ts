/**
 * Plain-TS references of the elementwise kernels (`elementwise.ts`, `binary.ts`): the same math
 * on host arrays, used by the tests as the second implementation of one case table.
 * @module
 */

import { GpuError } from "../device.ts";

/** Unary ops of {@link unaryRef} and `unary()`. `scale` is x·c, `addScalar` is x + c. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "relu"
  | "geluTanh"
  | "sigmoid"
  | "tanh"
  | "sqrt"
  | "abs"
  | "square"
  | "scale"
  | "addScalar";

/** Binary ops of {@link binaryRef} and `binary()`. */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const UNARY_REF: Record<UnaryOp, (x: number, c: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  relu: (x) => Math.max(x, 0),
  // GPT-2's "gelu_new": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  sqrt: Math.sqrt,
  abs: Math.abs,
  square: (x) => x * x,
  scale: (x, c) => x * c,
  addScalar: (x, c) => x + c,
};

/** Every unary op name. */
export const UNARY_OPS = Object.keys(UNARY_REF) as UnaryOp[];

/**
 * Reference of `unary()`: `op` applied to every element (`c` is the constant of `scale` and
 * `addScalar`).
 *
 * @example
 * ```ts
 * import { unaryRef } from "./elementwise_ref.ts";
 * const y = unaryRef("relu", new Float32Array([-1, 2]));
 * if (y.join() !== "0,2") throw new Error(`relu: ${y}`);
 * ```
 */
export function unaryRef(op: UnaryOp, x: Float32Array, c = 0): Float32Array {
  const f = UNARY_REF[op];
  if (!f) throw new GpuError(`unknown unary op "${op}"`);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i], c);
  return out;
}

const BINARY_REF: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: Math.max,
  min: Math.min,
};

/** Every binary op name. */
export const BINARY_OPS = Object.keys(BINARY_REF) as BinaryOp[];

/**
 * The numpy broadcast of two shapes (trailing dims aligned; each pair equal or one of them 1).
 * @throws {GpuError} naming both shapes when they do not broadcast.
 */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1, db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new GpuError(
        `shapes [${a.join(", ")}] and [${
          b.join(", ")
        }] do not broadcast (dim ${i}: ${da} vs ${db})`,
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Row-major strides of `shape` aligned to `outShape`, 0 on broadcast dims. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = outShape.length - shape.length + i;
    strides[o] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/**
 * Reference of `binary()`: `op` with numpy broadcasting.
 *
 * @example
 * ```ts
 * import { binaryRef } from "./elementwise_ref.ts";
 * const r = binaryRef("add", new Float32Array([1, 2, 3, 4]), [2, 2], new Float32Array([10, 20]), [2]);
 * if (r.data.join() !== "11,22,13,24" || r.shape.join() !== "2,2") throw new Error(`${r.data}`);
 * ```
 */
export function binaryRef(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
): { data: Float32Array; shape: number[] } {
  const f = BINARY_REF[op];
  if (!f) throw new GpuError(`unknown binary op "${op}"`);
  const shape = broadcastShape(aShape, bShape);
  const sa = broadcastStrides(aShape, shape), sb = broadcastStrides(bShape, shape);
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let ia = 0, ib = 0;
    for (let d = 0; d < shape.length; d++) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    out[i] = f(a[ia], b[ib]);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape };
}

/** Reference of `axpy()`: `y += alpha·x` in place; returns `y`. */
export function axpyRef(alpha: number, x: Float32Array, y: Float32Array): Float32Array {
  if (x.length !== y.length) throw new GpuError(`axpyRef: x has ${x.length}, y ${y.length}`);
  for (let i = 0; i < y.length; i++) y[i] += alpha * x[i];
  return y;
}
