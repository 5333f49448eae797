/**
 * Field tables of SAELens's `LanguageModelSAERunnerConfig` and `LoggingConfig`, in
 * `runner_cfg.json` key order, with their defaults (§1.6). The fields and their order are
 * 6.18's, which SAELens 6.49.2 (the version saeflow follows) still reads: the keys it added
 * later ({@link NEWER_RUNNER_KEYS}) are accepted on read and, when absent, take their defaults.
 * @module
 */

import { type FieldSpec, MAX_SIZE_FIELD } from "../config/fields.ts";
import { SAE_LENS_VERSION } from "../util/version.ts";

/**
 * The SAELens version stamped as `sae_lens_version` / `sae_lens_training_version` in
 * `runner_cfg.json` (6.49.2, see `util/version.ts`).
 */
export const RUNNER_SAE_LENS_VERSION: string = SAE_LENS_VERSION;

const str = { type: "string" } as const;
const strOrNull = { type: "string", nullable: true } as const;
const bool = { type: "bool" } as const;
const posInt = { type: "int", min: 1 } as const;
const nonNegInt = { type: "int", min: 0 } as const;
const nonNeg = { type: "number", min: 0 } as const;
/** A size: a positive integer the kernels can index. */
const size = { type: "int", min: 1, max: MAX_SIZE_FIELD } as const;

/**
 * Runner fields in `runner_cfg.json` order. `sae` and `logger` are placeholders here (they are
 * nested configs, read separately).
 */
export const RUNNER_FIELDS: readonly FieldSpec[] = [
  { name: "sae", kind: { type: "any" }, required: true },
  { name: "model_name", kind: str, default: "gelu-2l" },
  { name: "model_class_name", kind: str, default: "HookedTransformer" },
  { name: "hook_name", kind: str, default: "blocks.0.hook_mlp_out" },
  { name: "hook_eval", kind: str, default: "NOT_IN_USE" },
  { name: "hook_head_index", kind: { type: "int", min: 0, nullable: true }, default: null },
  { name: "dataset_path", kind: str, default: "" },
  { name: "dataset_trust_remote_code", kind: bool, default: true },
  { name: "streaming", kind: bool, default: true },
  { name: "is_dataset_tokenized", kind: bool, default: true },
  { name: "context_size", kind: { ...nonNegInt, max: MAX_SIZE_FIELD }, default: 128 },
  { name: "use_cached_activations", kind: bool, default: false },
  { name: "cached_activations_path", kind: strOrNull, default: null },
  { name: "from_pretrained_path", kind: strOrNull, default: null },
  { name: "n_batches_in_buffer", kind: posInt, default: 20 },
  { name: "training_tokens", kind: posInt, default: 2_000_000 },
  { name: "store_batch_size_prompts", kind: size, default: 32 },
  { name: "seqpos_slice", kind: { type: "any" }, default: [null] },
  { name: "disable_concat_sequences", kind: bool, default: false },
  { name: "sequence_separator_token", kind: { type: "any" }, default: "bos" },
  {
    name: "activations_mixing_fraction",
    kind: { type: "number", min: 0, max: 1, exclusiveMax: true },
    default: 0.5,
  },
  { name: "device", kind: str, default: "cpu" },
  { name: "act_store_device", kind: str, default: "with_model" },
  { name: "seed", kind: { type: "int" }, default: 42 },
  { name: "dtype", kind: str, default: "float32" },
  { name: "prepend_bos", kind: bool, default: true },
  { name: "autocast", kind: bool, default: false },
  { name: "autocast_lm", kind: bool, default: false },
  { name: "compile_llm", kind: bool, default: false },
  { name: "llm_compilation_mode", kind: strOrNull, default: null },
  { name: "compile_sae", kind: bool, default: false },
  { name: "sae_compilation_mode", kind: strOrNull, default: null },
  { name: "train_batch_size_tokens", kind: size, default: 4096 },
  { name: "adam_beta1", kind: nonNeg, default: 0.9 },
  { name: "adam_beta2", kind: nonNeg, default: 0.999 },
  { name: "lr", kind: { type: "number", min: 0, exclusiveMin: true }, default: 3e-4 },
  { name: "lr_scheduler_name", kind: str, default: "constant" },
  { name: "lr_warm_up_steps", kind: nonNegInt, default: 0 },
  { name: "lr_end", kind: { ...nonNeg, nullable: true }, default: null },
  { name: "lr_decay_steps", kind: nonNegInt, default: 0 },
  { name: "n_restart_cycles", kind: posInt, default: 1 },
  { name: "dead_feature_window", kind: posInt, default: 1000 },
  { name: "feature_sampling_window", kind: posInt, default: 2000 },
  { name: "dead_feature_threshold", kind: nonNeg, default: 1e-8 },
  { name: "n_eval_batches", kind: nonNegInt, default: 10 },
  { name: "eval_batch_size_prompts", kind: { ...size, nullable: true }, default: null },
  { name: "logger", kind: { type: "any" }, default: {} },
  { name: "n_checkpoints", kind: nonNegInt, default: 0 },
  { name: "checkpoint_path", kind: strOrNull, default: "checkpoints" },
  { name: "save_final_checkpoint", kind: bool, default: false },
  { name: "output_path", kind: strOrNull, default: "output" },
  { name: "resume_from_checkpoint", kind: strOrNull, default: null },
  { name: "verbose", kind: bool, default: true },
  { name: "model_kwargs", kind: { type: "dict" }, default: {} },
  { name: "model_from_pretrained_kwargs", kind: { type: "dict", nullable: true }, default: null },
  { name: "sae_lens_version", kind: str, default: RUNNER_SAE_LENS_VERSION },
  { name: "sae_lens_training_version", kind: str, default: RUNNER_SAE_LENS_VERSION },
  { name: "exclude_special_tokens", kind: { type: "any" }, default: false },
  { name: "n_batches_for_norm_estimate", kind: posInt, default: 1000 },
  // saeflow extensions (written to runner_cfg.json only when not at their default).
  { name: "dataset_split", kind: str, default: "train", saeflow: true },
  { name: "dataset_revision", kind: strOrNull, default: null, saeflow: true },
  {
    name: "dataset_text_sample_by",
    kind: { type: "enum", values: ["line", "paragraph", "document"] },
    default: "line",
    saeflow: true,
  },
];

/** `LoggingConfig` fields in order (6.18). */
export const LOGGER_FIELDS: readonly FieldSpec[] = [
  { name: "log_to_wandb", kind: bool, default: true },
  { name: "log_activations_store_to_wandb", kind: bool, default: false },
  { name: "log_optimizer_state_to_wandb", kind: bool, default: false },
  { name: "wandb_project", kind: str, default: "sae_lens_training" },
  { name: "wandb_id", kind: strOrNull, default: null },
  { name: "run_name", kind: strOrNull, default: null },
  { name: "wandb_entity", kind: strOrNull, default: null },
  { name: "wandb_log_frequency", kind: posInt, default: 10 },
  { name: "eval_every_n_wandb_logs", kind: posInt, default: 100 },
];

/** LR schedulers SAELens knows (matched case-insensitively). */
export const LR_SCHEDULERS: readonly string[] = [
  "constant",
  "cosineannealing",
  "cosineannealingwarmrestarts",
];

/**
 * Keys of newer SAELens runner configs (after 6.18) that saeflow accepts and ignores, so a newer
 * `runner_cfg.json` still loads.
 */
export const NEWER_RUNNER_KEYS: ReadonlySet<string> = new Set([
  "use_chat_formatting",
  "llm_device",
  "prefetch_llm_batches",
  "eval_dataset_path",
  "eval_dataset_split",
  "eval_dataset_trust_remote_code",
]);

/** Newer `LoggingConfig` keys (after 6.18), accepted and ignored. */
export const NEWER_LOGGER_KEYS: ReadonlySet<string> = new Set(["log_weights_to_wandb"]);
