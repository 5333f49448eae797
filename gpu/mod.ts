/**
 * The WebGPU core: the device (one submit per step, cached pipelines, batched readback),
 * `Tensor`, the buffer pool, kernel helpers, the kernels and finite-difference helpers.
 * @module
 */

export * from "./device.ts";
export * from "./tensor.ts";
export * from "./pool.ts";
export * from "./kernel.ts";
export * from "./kernels/mod.ts";
export * from "./finite_diff.ts";
