/**
 * Moving SAE tensors between host arrays and the GPU, with shape checks against the
 * architecture's expected names and shapes.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { readAll, Tensor } from "../gpu/tensor.ts";
import { checkStateDict, type HostStateDict } from "./sae_io.ts";
import { SaeError } from "./errors.ts";

/**
 * Uploads host arrays (flat, row-major) as f32 tensors shaped by `expected` (name → shape).
 * A length mismatch is an error naming the tensor; nothing stays allocated on error.
 */
export function uploadParams(
  expected: Record<string, number[]>,
  params: Record<string, ArrayLike<number>>,
  gpu: Gpu,
): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = {};
  try {
    for (const [name, data] of Object.entries(params)) {
      const shape = expected[name] ?? [data.length];
      if (shape.reduce((a, b) => a * b, 1) !== data.length) {
        throw new SaeError(
          `${name} has ${data.length} values, expected [${shape.join(", ")}]`,
        );
      }
      tensors[name] = Tensor.from(Float32Array.from(data), shape, { gpu });
    }
    return tensors;
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  }
}

/** Checks that `params` has exactly the tensors and shapes `expected` describes. */
export function checkTensorShapes(
  expected: Record<string, number[]>,
  params: Readonly<Record<string, Tensor>>,
  architecture: string,
): void {
  const shapes: HostStateDict = {};
  for (const [k, t] of Object.entries(params)) {
    shapes[k] = { shape: [...t.shape], data: new Float32Array(0) };
  }
  checkStateDict(expected, shapes, "SAE params", architecture);
}

/** Host copies of tensors (one submit, one wait). */
export async function downloadParams(
  params: Readonly<Record<string, Tensor>>,
): Promise<HostStateDict> {
  const names = Object.keys(params);
  const data = await readAll(names.map((n) => params[n]));
  const out: HostStateDict = {};
  names.forEach((
    n,
    i,
  ) => (out[n] = { shape: [...params[n].shape], data: data[i] as Float32Array }));
  return out;
}
