/**
 * Constructors of the {@link HostTensor}s the reference forward works with: checked wrapping,
 * zeros, deep copies and a shape check, each failing with a {@link ModelError}.
 * @module
 */

import { type HostTensor, numel, sameShape, shapeStr } from "../../util/host_tensor.ts";
import { ModelError } from "../errors.ts";

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

/** Throws a {@link ModelError} naming `what` unless `t` has exactly `expected` shape. */
export function expectShape(t: HostTensor, expected: number[], what: string): void {
  if (!sameShape(t.shape, expected)) {
    throw new ModelError(`${what}: shape ${shapeStr(t.shape)}, expected ${shapeStr(expected)}`);
  }
}
