/**
 * WGSL kernels of the training step (per-token rows, dense activations with their fused
 * backward, per-latent finalisation, the TopK-family sparse backward) with plain-TS references.
 *
 * @module
 */
export { TrainSaeError } from "../errors.ts";
export { gemm, type GemmOptions } from "./_gemm.ts";
export * from "./rows.ts";
export * from "./dense_acts.ts";
export * from "./latent.ts";
export * from "./select.ts";
export * from "./sparse_decode.ts";
export * from "./sparse_backward.ts";
export { MAX_LEVELS, vecWidth, wgslVec } from "./_levels.ts";
