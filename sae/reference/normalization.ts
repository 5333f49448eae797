/**
 * Run-time activation normalisation (SAELens `normalize_activations`, spec §3.0) as separate
 * in/out helpers. `normalizeInRef` returns the per-token state that `normalizeOutRef` needs,
 * mirroring SAELens storing `x_norm_coeff` / `ln_mu`, `ln_std` on the module between encode
 * and decode.
 */
import { SaeReferenceError, toF32 } from "./common.ts";

/** Per-token state produced by {@link normalizeInRef}. */
export interface NormStateRef {
  mode: "none" | "constant_norm_rescale" | "layer_norm";
  /** constant_norm_rescale: c = sqrt(dIn)/‖x‖ per token. */
  coeff?: Float64Array;
  /** layer_norm: per-token mean μ. */
  mean?: Float64Array;
  /** layer_norm: per-token unbiased std σ of x − μ. */
  std?: Float64Array;
}

const LN_EPS = 1e-5;

function resolveMode(mode: string): NormStateRef["mode"] {
  if (mode === "none" || mode === "expected_average_only_in") return "none";
  if (mode === "constant_norm_rescale" || mode === "layer_norm") return mode;
  throw new SaeReferenceError(
    `normalizeActivations: unknown mode "${mode}" (expected none, expected_average_only_in, constant_norm_rescale or layer_norm)`,
  );
}

/** Float64 core of {@link normalizeInRef}. */
export function normIn64(
  mode: string,
  x: ArrayLike<number>,
  n: number,
  d: number,
): { x: Float64Array; state: NormStateRef } {
  const m = resolveMode(mode);
  const out = Float64Array.from(x);
  if (m === "none") return { x: out, state: { mode: m } };
  if (m === "constant_norm_rescale") {
    const coeff = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += out[i * d + j] ** 2;
      coeff[i] = Math.sqrt(d) / Math.sqrt(s);
      for (let j = 0; j < d; j++) out[i * d + j] *= coeff[i];
    }
    return { x: out, state: { mode: m, coeff } };
  }
  const mean = new Float64Array(n), std = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let mu = 0;
    for (let j = 0; j < d; j++) mu += out[i * d + j];
    mu /= d;
    let ss = 0;
    for (let j = 0; j < d; j++) {
      out[i * d + j] -= mu;
      ss += out[i * d + j] ** 2;
    }
    const sigma = Math.sqrt(ss / (d - 1)); // unbiased, torch.std default
    for (let j = 0; j < d; j++) out[i * d + j] /= sigma + LN_EPS;
    mean[i] = mu;
    std[i] = sigma;
  }
  return { x: out, state: { mode: m, mean, std } };
}

/** Float64 core of {@link normalizeOutRef} (in place on a copy). */
export function normOut64(
  state: NormStateRef,
  y: ArrayLike<number>,
  n: number,
  d: number,
): Float64Array {
  const out = Float64Array.from(y);
  if (state.mode === "none") return out;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      out[k] = state.mode === "constant_norm_rescale"
        ? out[k] / state.coeff![i]
        : out[k] * state.std![i] + state.mean![i];
    }
  }
  return out;
}

/** Backward of {@link normOut64}: the state depends on x only, so it scales the gradient. */
export function normOutBackward(
  state: NormStateRef,
  g: Float64Array,
  n: number,
  d: number,
): Float64Array {
  if (state.mode === "none") return g;
  const out = new Float64Array(g.length);
  for (let i = 0; i < n; i++) {
    const s = state.mode === "constant_norm_rescale" ? 1 / state.coeff![i] : state.std![i];
    for (let j = 0; j < d; j++) out[i * d + j] = g[i * d + j] * s;
  }
  return out;
}

/**
 * Normalises activations on the way into the SAE. `none` and `expected_average_only_in`
 * are identities (the latter is the trainer's job); `constant_norm_rescale` multiplies each
 * token by sqrt(d)/‖x‖; `layer_norm` centres and divides by (std + 1e-5), unbiased std.
 *
 * @example
 * ```ts
 * import { normalizeInRef, normalizeOutRef } from "./normalization.ts";
 * const x = new Float32Array([3, 4]);
 * const { x: xn, state } = normalizeInRef("constant_norm_rescale", x, 1, 2);
 * const back = normalizeOutRef(state, xn, 1, 2); // ≈ [3, 4]
 * if (Math.abs(back[1] - 4) > 1e-5) throw new Error("round trip failed");
 * ```
 */
export function normalizeInRef(
  mode: string,
  x: ArrayLike<number>,
  n: number,
  d: number,
): { x: Float32Array; state: NormStateRef } {
  const r = normIn64(mode, x, n, d);
  return { x: toF32(r.x), state: r.state };
}

/**
 * Undoes {@link normalizeInRef} on the SAE output: y/c (constant_norm_rescale) or y·σ + μ
 * (layer_norm, the ε is not undone so the round trip is approximate).
 */
export function normalizeOutRef(
  state: NormStateRef,
  y: ArrayLike<number>,
  n: number,
  d: number,
): Float32Array {
  return toF32(normOut64(state, y, n, d));
}
