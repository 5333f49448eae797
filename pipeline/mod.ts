/**
 * The pipeline: the training runner config (SAELens's `LanguageModelSAERunnerConfig`, one SAE or
 * several), `SAETrainingRunner`, `ActivationsStore`, a small stage-graph builder, and the
 * `CacheActivationsRunner` / `PretokenizeRunner` with their configs and commands.
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
export * from "./eval_command.ts";
export * from "./cache_config.ts";
export * from "./cache_activations.ts";
export * from "./pretokenize_config.ts";
export * from "./pretokenize.ts";
