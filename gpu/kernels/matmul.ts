/**
 * Transitional: the matmul family moved to `gpu/kernels/matmul/` (facade `mod.ts`); this file
 * keeps the old import path for `sae/` until it imports the facade.
 * @module
 */

export * from "./matmul/mod.ts";
