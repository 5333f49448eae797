/**
 * Plain-TS references of the per-architecture activation epilogues (`activations.ts`), on
 * `[n, dSae]` pre-activations with per-latent parameters `[dSae]`.
 * @module
 */

import { SaeKernelError } from "./errors.ts";

function check(name: string, a: ArrayLike<number>, len: number, op: string): void {
  if (a.length !== len) {
    throw new SaeKernelError(`${op}: ${name} has ${a.length} values, expected ${len}`);
  }
}

/**
 * JumpReLU: f = ReLU(h)·1[h > θ] (strict), i.e. h where h > max(θ, 0), else 0.
 *
 * @example
 * ```ts
 * import { jumpReluRef } from "./activations_ref.ts";
 * const f = jumpReluRef(new Float32Array([0.6, 0.6, 0.6]), new Float32Array([1, 0.5, 0.25]), 1, 3);
 * if (f[0] !== 0 || Math.abs(f[1] - 0.6) > 1e-7) throw new Error();
 * ```
 */
export function jumpReluRef(
  h: Float32Array,
  threshold: Float32Array,
  n: number,
  dSae: number,
): Float32Array {
  check("h", h, n * dSae, "jumpReluRef");
  check("threshold", threshold, dSae, "jumpReluRef");
  return h.map((v, i) => (v > threshold[i % dSae] && v > 0 ? v : 0));
}

/** Gated magnitude pre-activation π_mag = (x̃·W_enc)·exp(r_mag) + b_mag, from h0 = x̃·W_enc. */
export function gatedMagnitudeRef(
  h0: Float32Array,
  rMag: Float32Array,
  bMag: Float32Array,
  n: number,
  dSae: number,
): Float32Array {
  check("h0", h0, n * dSae, "gatedMagnitudeRef");
  check("r_mag", rMag, dSae, "gatedMagnitudeRef");
  check("b_mag", bMag, dSae, "gatedMagnitudeRef");
  return h0.map((v, i) => v * Math.exp(rMag[i % dSae]) + bMag[i % dSae]);
}

/** Gated activation f = 1[h0 + b_gate > 0] · ReLU(π_mag). */
export function gatedActsRef(
  h0: Float32Array,
  bGate: Float32Array,
  piMag: Float32Array,
  n: number,
  dSae: number,
): Float32Array {
  check("h0", h0, n * dSae, "gatedActsRef");
  check("piMag", piMag, n * dSae, "gatedActsRef");
  check("b_gate", bGate, dSae, "gatedActsRef");
  return h0.map((v, i) => (v + bGate[i % dSae] > 0 ? Math.max(piMag[i], 0) : 0));
}

/**
 * Dense `[n, d]` rows from per-row sparse lists `values`/`indices` `[n, k]` (index −1 = empty
 * slot): zeros except `out[r, indices[r, s]] = values[r, s]`.
 *
 * @example
 * ```ts
 * import { denseFromTopkRef } from "./activations_ref.ts";
 * const y = denseFromTopkRef(new Float32Array([5, 2]), new Int32Array([3, -1]), 1, 2, 4);
 * if (y[3] !== 5 || y[0] !== 0) throw new Error();
 * ```
 */
export function denseFromTopkRef(
  values: Float32Array,
  indices: Int32Array,
  n: number,
  k: number,
  d: number,
): Float32Array {
  check("values", values, n * k, "denseFromTopkRef");
  check("indices", indices, n * k, "denseFromTopkRef");
  const out = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    for (let s = 0; s < k; s++) {
      const j = indices[r * k + s];
      if (j >= d) throw new SaeKernelError(`denseFromTopkRef: index ${j} ≥ d ${d}`);
      if (j >= 0) out[r * d + j] = values[r * k + s];
    }
  }
  return out;
}
