/**
 * The plain host tensor the reference model works with: row-major `Float32Array` data plus a
 * shape. Every parameter, activation and hook value in `model/` is one of these.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** A dense row-major float32 tensor on the host. */
export interface HostTensor {
  /** Elements in row-major order; `data.length` equals the product of `shape`. */
  data: Float32Array;
  /** Dimensions, outermost first (e.g. `[batch, pos, d_model]`). */
  shape: number[];
}

/** Parameters by TransformerLens name (`blocks.0.attn.W_Q`, …). */
export type ParamMap = Map<string, HostTensor>;

/** Error thrown by the reference model (shapes, configs, missing weights, bad hooks). */
export class ModelError extends SaeflowError {}

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Wraps `data` with `shape`, checking that the element counts agree.
 *
 * @example
 * ```ts
 * import { hostTensor } from "./tensor.ts";
 * const t = hostTensor(new Float32Array(6), [2, 3]);
 * if (t.shape[1] !== 3) throw new Error("unreachable");
 * ```
 */
export function hostTensor(data: Float32Array, shape: number[], what = "tensor"): HostTensor {
  if (data.length !== numel(shape)) {
    throw new ModelError(
      `${what}: ${data.length} elements do not fit shape [${shape.join(",")}] (${numel(shape)})`,
    );
  }
  return { data, shape: [...shape] };
}

/** A zero-filled tensor of `shape`. */
export function zeros(shape: number[]): HostTensor {
  return { data: new Float32Array(numel(shape)), shape: [...shape] };
}

/** A deep copy (new data buffer). */
export function cloneTensor(t: HostTensor): HostTensor {
  return { data: new Float32Array(t.data), shape: [...t.shape] };
}

/** True when two shapes are identical. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `[2,3]` → `"[2,3]"`, for error messages. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Throws a {@link ModelError} naming `what` unless `t` has exactly `expected` shape. */
export function expectShape(t: HostTensor, expected: number[], what: string): void {
  if (!sameShape(t.shape, expected)) {
    throw new ModelError(`${what}: shape ${shapeStr(t.shape)}, expected ${shapeStr(expected)}`);
  }
}
