/**
 * The plain host tensor: row-major `Float32Array` data plus a shape. The reference forward of
 * `model/`, its parameters and hook values, the evaluation references and the SAE file readers
 * all pass these; shape helpers for error messages live beside it.
 * @module
 */

/** A dense row-major float32 tensor on the host. */
export interface HostTensor {
  /** Elements in row-major order; `data.length` equals the product of `shape`. */
  data: Float32Array;
  /** Dimensions, outermost first (e.g. `[batch, pos, d_model]`). */
  shape: number[];
}

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when two shapes are identical. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `[2,3]` → `"[2,3]"`, for error messages. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
