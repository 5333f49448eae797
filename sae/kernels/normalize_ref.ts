/**
 * Plain-TS references of the SAE input/output kernels (`normalize.ts`): SAELens
 * `process_sae_in` after the hook (run-time normalisation, then x − b_dec) and the run-time
 * denormalisation of the reconstruction (spec §3.0). Float64 inside, Float32Array out.
 * @module
 */

import { SaeKernelError } from "./errors.ts";

/** Run-time normalisation modes that are computed inside the SAE. */
export type RuntimeNormMode = "none" | "constant_norm_rescale" | "layer_norm";

/** ε added to the standard deviation by SAELens' run-time layer norm. */
export const LAYER_NORM_EPS = 1e-5;

/** Throws unless `mode` is a run-time normalisation mode. */
export function checkRuntimeNorm(mode: string, op: string): RuntimeNormMode {
  if (mode === "none" || mode === "constant_norm_rescale" || mode === "layer_norm") return mode;
  throw new SaeKernelError(
    `${op}: normalization mode "${mode}" is not a run-time mode (expected none, ` +
      `constant_norm_rescale or layer_norm; expected_average_only_in is folded or applied outside)`,
  );
}

/**
 * x̃ = norm(x) − b_dec for `n` rows of `d`: `none` leaves x as is; `constant_norm_rescale`
 * multiplies by c = √d/‖x‖; `layer_norm` gives (x − μ)/(σ + 1e-5) with the unbiased σ. `state`
 * holds two values per row: (c, 0) or (μ, σ); it is empty for `none`. `bDec` null = no bias.
 *
 * @example
 * ```ts
 * import { saeNormalizeInRef } from "./normalize_ref.ts";
 * const { x, state } = saeNormalizeInRef("constant_norm_rescale", new Float32Array([3, 4]), 1, 2, null);
 * if (Math.abs(x[0] - 3 * Math.SQRT2 / 5) > 1e-6 || state.length !== 2) throw new Error();
 * ```
 */
export function saeNormalizeInRef(
  mode: string,
  x: Float32Array,
  n: number,
  d: number,
  bDec: Float32Array | null,
): { x: Float32Array; state: Float32Array } {
  const m = checkRuntimeNorm(mode, "saeNormalizeInRef");
  if (x.length !== n * d) {
    throw new SaeKernelError(`saeNormalizeInRef: x has ${x.length} values, expected ${n}×${d}`);
  }
  if (bDec && bDec.length !== d) {
    throw new SaeKernelError(`saeNormalizeInRef: bDec has ${bDec.length} values, expected ${d}`);
  }
  const out = new Float32Array(n * d);
  const state = new Float32Array(m === "none" ? 0 : 2 * n);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    let scale = 1, shift = 0;
    if (m === "constant_norm_rescale") {
      let ss = 0;
      for (const v of row) ss += v * v;
      scale = Math.sqrt(d) / Math.sqrt(ss);
      state[2 * i] = scale;
    } else if (m === "layer_norm") {
      let mu = 0;
      for (const v of row) mu += v;
      mu /= d;
      let ss = 0;
      for (const v of row) ss += (v - mu) ** 2;
      const sigma = Math.sqrt(ss / (d - 1));
      scale = 1 / (sigma + LAYER_NORM_EPS);
      shift = mu;
      state[2 * i] = mu;
      state[2 * i + 1] = sigma;
    }
    for (let j = 0; j < d; j++) {
      out[i * d + j] = (row[j] - shift) * scale - (bDec ? bDec[j] : 0);
    }
  }
  return { x: out, state };
}

/**
 * Undoes the run-time normalisation on an output `y` of `n` rows of `d`: y/c
 * (`constant_norm_rescale`) or y·σ + μ (`layer_norm`; ε is not undone, as in SAELens).
 */
export function saeNormalizeOutRef(
  mode: string,
  y: Float32Array,
  n: number,
  d: number,
  state: Float32Array,
): Float32Array {
  const m = checkRuntimeNorm(mode, "saeNormalizeOutRef");
  if (y.length !== n * d) {
    throw new SaeKernelError(`saeNormalizeOutRef: y has ${y.length} values, expected ${n}×${d}`);
  }
  if (m === "none") return y.slice();
  if (state.length !== 2 * n) {
    throw new SaeKernelError(
      `saeNormalizeOutRef: state has ${state.length} values, expected ${2 * n}`,
    );
  }
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = y[i * d + j];
      out[i * d + j] = m === "constant_norm_rescale"
        ? v / state[2 * i]
        : v * state[2 * i + 1] + state[2 * i];
    }
  }
  return out;
}
