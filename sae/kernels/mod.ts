/**
 * Small fused kernels of the SAE forward pass: run-time normalisation fused with the b_dec
 * subtraction, denormalisation, and the per-architecture activation epilogues, each with its
 * plain-TS `…Ref` reference.
 * @module
 */

export { SaeKernelError } from "./errors.ts";
export {
  checkRuntimeNorm,
  LAYER_NORM_EPS,
  type NormalizedInput,
  type RuntimeNormMode,
  saeNormalizeIn,
  saeNormalizeInRef,
  saeNormalizeOut,
  saeNormalizeOutRef,
} from "./normalize.ts";
export {
  gatedActs,
  gatedActsRef,
  gatedMagnitude,
  gatedMagnitudeRef,
  jumpRelu,
  jumpReluRef,
} from "./activations.ts";
