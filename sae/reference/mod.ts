/**
 * Plain-TypeScript reference implementation of SAELens' SAE math (forward, losses and
 * hand-derived backward) for every architecture: the ground truth the WGSL kernels are
 * tested against. Float64 accumulation inside; Float32Array in and out. The shared pieces live
 * here; each architecture's own math is the `reference.ts` of its folder in `sae/architectures/`,
 * reached through the architecture registry.
 *
 * @module
 */
export {
  type NormalizeActivations,
  type ParamsLike,
  type RefArchitecture,
  type RefSaeConfig,
  type SaeParams,
  SaeReferenceError,
  type TrainOptions,
} from "./common.ts";
export { createRng, type RefRng } from "../../util/rng.ts";
export { normalizeInRef, normalizeOutRef, type NormStateRef } from "./normalization.ts";
export {
  decodeRef,
  type EncodeRef,
  encodeRef,
  type ForwardOptionsRef,
  forwardRef,
  trainingBackwardRef,
  type TrainingForwardRef,
  trainingForwardRef,
  trainingStepRef,
} from "./sae.ts";
export { calculatePreActLossRef } from "../architectures/jumprelu/reference.ts";
export { topKRef } from "../architectures/topk/reference.ts";
export { batchTopKRef, updateTopkThresholdRef } from "../architectures/batchtopk/reference.ts";
export { matryoshkaWidthsRef } from "../architectures/matryoshka_batchtopk/reference.ts";
export {
  exportBatchTopKRef,
  exportTopKRef,
  foldActivationNormScalingFactorRef,
  foldWDecNormRef,
} from "./fold.ts";
export { initTrainingParamsRef } from "./init.ts";
