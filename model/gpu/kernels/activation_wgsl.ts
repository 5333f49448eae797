/**
 * WGSL of the language model's activation functions: a clamped tanh, erf, and the expression of
 * each activation the supported families use.
 * @module
 */

import type { ActFn } from "../../config.ts";
import { ModelError } from "../../errors.ts";

/**
 * WGSL helper functions for the activations: a clamped tanh (some backends compute tanh via
 * exp(2x) and overflow to NaN) and erf (Abramowitz-Stegun 7.1.26, |error| ≤ 1.5e-7, enough for
 * the exact-GELU models next to float32 rounding).
 */
export const WGSL_ACT_FNS = /* wgsl */ `
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn erf_(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
    + 0.254829592) * t * exp(-a * a);
  return select(y, -y, x < 0.0);
}
`;

/** WGSL expression of activation `act` applied to the f32 expression `x`. */
export function wgslAct(act: ActFn | "none", x: string): string {
  switch (act) {
    case "none":
      return x;
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return `(0.5 * (${x}) * (1.0 + tanh_(0.7978845608028654 * ((${x}) + 0.044715 * (${x}) * (${x}) * (${x})))))`;
    case "gelu_fast":
      return `(0.5 * (${x}) * (1.0 + tanh_(0.7978845608 * (${x}) * (1.0 + 0.044715 * (${x}) * (${x})))))`;
    case "gelu":
      return `(0.5 * (${x}) * (1.0 + erf_((${x}) * 0.7071067811865476)))`;
    case "silu":
      return `((${x}) / (1.0 + exp(-(${x}))))`;
    case "relu":
      return `max(${x}, 0.0)`;
  }
  throw new ModelError(`unsupported activation "${act}"`);
}
