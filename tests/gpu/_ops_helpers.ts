/** Helpers shared by the kernel tests (elementwise, reductions, softmax, layer norm, Adam, clip). */

import type { Gpu } from "../../gpu/device.ts";
import { createRng, type RefRng } from "../../util/rng.ts";

export { createRng, type RefRng };

/**
 * A view of `gpu` that reports a tiny `maxBindingSize`, so that kernels split small tensors into
 * row windows exactly as they split tensors larger than 128 MiB on a real device.
 */
export function smallBindingGpu(gpu: Gpu, maxBindingSize: number): Gpu {
  return new Proxy(gpu, {
    get(target, prop) {
      if (prop === "maxBindingSize") return maxBindingSize;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** `n` uniform floats in [lo, hi), rounded to f32. */
export function randomArray(rng: RefRng, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(lo, hi);
  return out;
}
