/**
 * One line of documentation for every runner config field, for `pipeline.ts --help`: the
 * top-level runner fields (`config/runner_fields.ts` `RUNNER_FIELDS`), the multi-SAE keys, the
 * `logger.*` fields (`LOGGER_FIELDS`) and the `sae.*` fields of every built-in training
 * architecture (`sae/registry.ts`). Fields SAELens has but saeflow only records (no GPU device
 * to choose, no torch.compile, …) say so.
 * @module
 */

/** Docs of the top-level runner fields (SAELens `LanguageModelSAERunnerConfig`, plus saeflow's). */
export const RUNNER_FIELD_DOCS: Readonly<Record<string, string>> = {
  sae: "the SAE to train: a nested config (architecture, d_in, d_sae, …; see sae.* below)",
  model_name: "the language model: a TransformerLens name, a hub repo id or a local folder",
  model_class_name: "model wrapper; saeflow runs HookedTransformer (HookedSAETransformer accepted)",
  hook_name: "hook point whose activations the SAE learns, e.g. blocks.8.hook_resid_pre",
  hook_eval: "deprecated in SAELens and unused; leave it at NOT_IN_USE",
  hook_head_index: "train on one attention head of a [batch, pos, head, d_head] hook (null: all)",
  dataset_path: "the text or token dataset: a local file or folder, or a hub dataset id (org/name)",
  dataset_trust_remote_code:
    "recorded only: saeflow never runs dataset code, it reads the data files",
  streaming: "recorded only: saeflow always streams the dataset shard by shard",
  is_dataset_tokenized:
    "recorded only: a tokens/input_ids column means pretokenized, a text column raw",
  context_size: "tokens per sequence fed to the model (rows are packed to this length)",
  use_cached_activations: "train from a cached-activations dataset (not built in saeflow yet)",
  cached_activations_path: "where cached activations live (null: SAELens's derived path)",
  from_pretrained_path: "fine-tune: start from the SAE saved in this folder instead of a fresh one",
  n_batches_in_buffer:
    "mixing-buffer size, in units of context_size activation rows (SAELens's quirk)",
  training_tokens: "activation rows (tokens) to train on; the run ends there",
  store_batch_size_prompts: "sequences per model forward when harvesting activations",
  seqpos_slice: "Python slice [start, stop, step] of token positions to keep ([null]: all)",
  disable_concat_sequences: "never join documents; documents shorter than context_size are dropped",
  sequence_separator_token: "token put between joined documents: bos, eos, sep, an id or null",
  activations_mixing_fraction: "share of the buffer kept back to mix with new rows (0: no shuffle)",
  device: "recorded only: saeflow computes on WebGPU",
  act_store_device: "recorded only: the buffer lives on the WebGPU device",
  seed: "seed of the SAE initialisation and of the buffer's shuffling",
  dtype: "activation and SAE dtype (saeflow computes in float32)",
  prepend_bos: "start every packed sequence with the BOS token",
  autocast: "recorded only: no mixed precision for the SAE step",
  autocast_lm: "recorded only: no mixed precision for the model forward",
  compile_llm: "recorded only: torch.compile has no counterpart here",
  llm_compilation_mode: "recorded only (torch.compile mode of the model)",
  compile_sae: "recorded only: torch.compile has no counterpart here",
  sae_compilation_mode: "recorded only (torch.compile mode of the SAE)",
  train_batch_size_tokens: "activation rows per SAE training step",
  adam_beta1: "Adam's first-moment decay",
  adam_beta2: "Adam's second-moment decay",
  lr: "learning rate",
  lr_scheduler_name:
    "learning-rate schedule: constant, cosineannealing, cosineannealingwarmrestarts",
  lr_warm_up_steps: "steps of linear learning-rate warm-up from near zero",
  lr_end: "final learning rate of the cosine schedules (null: lr / 10)",
  lr_decay_steps: "steps of linear decay to zero at the end of training (0: none)",
  n_restart_cycles: "cycles of cosineannealingwarmrestarts",
  dead_feature_window: "steps without firing after which a latent counts as dead",
  feature_sampling_window: "steps between feature-density (sparsity) log entries",
  dead_feature_threshold: "kept for compatibility; SAELens 6 no longer uses it",
  n_eval_batches: "batches per evaluation (SAELens evaluator; saeflow's runner evaluates no model)",
  eval_batch_size_prompts: "sequences per evaluation batch (null: store_batch_size_prompts)",
  logger: "logging and W&B settings: a nested config (see logger.* below)",
  n_checkpoints: "checkpoints written during training, evenly spaced over training_tokens",
  checkpoint_path: "folder of the run's checkpoints; a run id is appended (null: none)",
  save_final_checkpoint: "also write a final_<tokens> checkpoint when training ends",
  output_path: "folder the trained SAE is written to, SAELens format (null: not saved)",
  resume_from_checkpoint: "continue exactly from this checkpoint folder (see `pipeline.ts resume`)",
  verbose: "SAELens prints derived sizes when true; saeflow always prints them",
  model_kwargs: "recorded only: extra keyword arguments of SAELens's model forward",
  model_from_pretrained_kwargs:
    "options of the model load (null: center_writing_weights false for HookedTransformer)",
  sae_lens_version: "SAELens version the config was written for (stamped, not checked)",
  sae_lens_training_version: "SAELens training version (stamped, not checked)",
  exclude_special_tokens: "drop rows of special tokens: true (all), false, or a list of token ids",
  n_batches_for_norm_estimate:
    "batches used to estimate the scaling of normalize_activations: expected_average_only_in",
  dataset_split: "saeflow: the dataset split to read",
  dataset_revision: "saeflow: the hub dataset revision (branch, tag or commit; null: main)",
  dataset_text_sample_by:
    "saeflow: how a local .txt file splits into documents: line, paragraph or document",
};

/** Docs of SAELens's multi-SAE keys (several SAEs trained from one model forward). */
export const MULTI_FIELD_DOCS: Readonly<Record<string, string>> = {
  saes: "several SAEs from one model forward: a map of names to SAE configs (instead of sae)",
  hook_names: "with saes: one hook for all, or a map of SAE names to hooks (instead of hook_name)",
  hook_head_indices: "with saes: one head index for all, or a map of SAE names to head indices",
};

/** Docs of the `logger.*` fields (SAELens `LoggingConfig`). */
export const LOGGER_FIELD_DOCS: Readonly<Record<string, string>> = {
  log_to_wandb: "send metrics to Weights & Biases (needs WANDB_API_KEY)",
  log_activations_store_to_wandb: "recorded only (unused by SAELens too)",
  log_optimizer_state_to_wandb: "recorded only (unused by SAELens too)",
  wandb_project: "W&B project of the run",
  wandb_id: "W&B run id; also the run id appended to checkpoint_path (null: random)",
  run_name: "run name shown in the progress output and on W&B (null: derived from the config)",
  wandb_entity: "W&B user or team (null: the API key's default)",
  wandb_log_frequency: "steps between metric log entries (progress lines, JSONL, W&B)",
  eval_every_n_wandb_logs: "log entries between evaluations",
};

/** Docs of the `sae.*` fields of the built-in training architectures. */
export const SAE_FIELD_DOCS: Readonly<Record<string, string>> = {
  architecture:
    "SAE kind: standard, gated, jumprelu, topk, batchtopk, matryoshka_batchtopk, the transcoders, " +
    "matching_pursuit, or a registered one",
  d_in: "input width: the hook's width (d_model, or d_head with a head index)",
  d_sae: "number of latents (the dictionary size)",
  dtype: "SAE dtype (saeflow computes in float32)",
  device: "recorded only: saeflow computes on WebGPU",
  apply_b_dec_to_input: "subtract the decoder bias from the input before encoding",
  normalize_activations:
    "input scaling: none, expected_average_only_in, constant_norm_rescale, layer_norm",
  reshape_activations: "none, or hook_z to read [pos, head, d_head] activations flattened",
  decoder_init_norm: "norm of every decoder row at initialisation (null: leave as drawn)",
  l1_coefficient: "weight of the L1 sparsity penalty",
  lp_norm: "the p of the sparsity penalty's Lp norm",
  l1_warm_up_steps: "steps over which the L1 weight ramps up from zero",
  jumprelu_init_threshold: "initial JumpReLU threshold of every latent",
  jumprelu_bandwidth: "width of the kernel of the threshold's straight-through gradient",
  jumprelu_sparsity_loss_mode: "L0 penalty form: step (DeepMind) or tanh (Anthropic)",
  l0_coefficient: "weight of the L0 sparsity penalty",
  l0_warm_up_steps: "steps over which the L0 weight ramps up from zero",
  pre_act_loss_coefficient: "weight of the pre-activation loss (null: off; Anthropic used 3e-6)",
  jumprelu_tanh_scale: "sharpness of the tanh L0 penalty",
  k: "active latents per token (batchtopk, matryoshka: on average over the batch)",
  use_sparse_activations: "sparse decoding of the top-k latents (a speed option)",
  aux_loss_coefficient: "weight of the auxiliary loss that revives dead latents",
  rescale_acts_by_decoder_norm: "rank latents by activation times decoder-row norm",
  topk_threshold_lr: "rate of the running threshold batchtopk exports as JumpReLU",
  matryoshka_widths: "nested dictionary widths, increasing (d_sae is appended if missing)",
  d_out: "transcoder output width: the width of metadata.hook_name_out",
  residual_threshold: "matching pursuit stops a token once its residual norm falls below this",
  max_iterations: "matching pursuit's most selection rounds per token (null: d_in)",
  stop_on_duplicate_support: "matching pursuit stops a token when it picks a latent again",
};
