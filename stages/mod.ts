/**
 * The streaming stages (Web Streams pieces, one file each) and the chunk types between them:
 * `source → tokenize → hook → buffer → saeStep → checkpoint → log`. See `ARCHITECTURE.md` for
 * the stage contract; `pipeline/` joins them.
 * @module
 */

export * from "./types.ts";
export * from "./source.ts";
export * from "./packing.ts";
export * from "./tokenize.ts";
export * from "./tokenize_worker.ts";
export * from "./hook.ts";
export * from "./cached_activations.ts";
export * from "./mixing_buffer.ts";
export * from "./buffer.ts";
export * from "./sae_step.ts";
export * from "./checkpoint.ts";
export * from "./log.ts";
