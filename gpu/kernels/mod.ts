/**
 * saeflow's WGSL kernels. Every op records dispatches into the device's pending pass (no
 * readback, no submit) and has a plain-TS `…Ref` reference that passes the same tests.
 * @module
 */

export * from "./elementwise.ts";
export * from "./binary.ts";
export * from "./reduce.ts";
export * from "./softmax.ts";
export * from "./layernorm.ts";
export * from "./adam.ts";
export * from "./clip.ts";
export * from "./matmul/mod.ts";
export * from "./topk.ts";
export * from "./kth_largest.ts";
export * from "./counting_sort.ts";
export * from "./scatter.ts";
export * from "./gather.ts";
