/**
 * The pipeline: the training runner config (SAELens's `LanguageModelSAERunnerConfig`, one SAE or
 * several), `SAETrainingRunner`, `ActivationsStore`, and a small stage-graph builder.
 * @module
 */

export * from "./errors.ts";
export * from "./runner_config.ts";
export * from "./runner_fields.ts";
export * from "./runner_legacy.ts";
export * from "./config.ts";
export * from "./runner.ts";
export * from "./activations_store.ts";
export * from "./graph.ts";
export * from "./load_sae.ts";
