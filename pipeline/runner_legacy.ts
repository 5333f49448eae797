/**
 * The flat runner config of SAELens v3–v5 (and of pre-3.0 mats_sae_training) turned into the
 * nested v6 form: SAE fields move into `sae`, W&B fields into `logger`, renamed fields get their
 * v6 names, and settings v6 dropped are reported and ignored.
 * @module
 */

import { ConfigError, describeValue } from "../config/errors.ts";
import { isPlainObject } from "../config/naming.ts";
import { LOGGER_FIELDS } from "./runner_fields.ts";
import { fieldNames } from "../sae/config.ts";

const RENAMES: ReadonlyMap<string, string> = new Map([
  ["hook_point", "hook_name"],
  ["hook_point_head_index", "hook_head_index"],
  ["total_training_tokens", "training_tokens"],
  ["store_batch_size", "store_batch_size_prompts"],
  ["train_batch_size", "train_batch_size_tokens"],
  ["activation_fn_str", "activation_fn"],
]);

/** v3–v5 / pre-3.0 runner settings that SAELens 6 removed; ignored with a warning. */
export const DROPPED_LEGACY_KEYS: ReadonlySet<string> = new Set([
  "hook_layer",
  "hook_point_layer",
  "use_ghost_grads",
  "b_dec_init_method",
  "normalize_sae_decoder",
  "noise_scale",
  "decoder_orthogonal_init",
  "decoder_heuristic_init",
  "decoder_heuristic_init_norm",
  "init_encoder_as_decoder_transpose",
  "finetuning_tokens",
  "finetuning_method",
  "mse_loss_normalization",
  "scale_sparsity_penalty_by_decoder_norm",
  "expansion_factor",
  "activation_fn",
  "activation_fn_kwargs",
  "tokens_per_buffer",
  "feature_sampling_method",
  "resample_batches",
  "feature_reinit_scale",
  "dead_feature_estimation_method",
  "resume",
  "finetuning_scaling_factor",
  "neuronpedia_id",
  "d_sae_per_head",
]);

const LOGGER_KEYS = new Set(LOGGER_FIELDS.map((f) => f.name));

/** Result of {@link flatToNested}: the nested snake_case dict and the legacy keys ignored. */
export interface FlatConversion {
  /** The nested v6 snake_case config dict. */
  nested: Record<string, unknown>;
  /** Legacy keys that were dropped. */
  ignored: string[];
}

/**
 * Converts a flat v3–v5 runner config (snake_case keys, no `sae` key) into the nested v6 form.
 * `architecture` defaults to standard (topk when `activation_fn` is "topk" with a `k`);
 * `d_sae` defaults to `d_in · expansion_factor` (expansion 4 as in v5; both given must agree);
 * JumpReLU's v5 `l1_coefficient` / `l1_warm_up_steps` become `l0_coefficient` /
 * `l0_warm_up_steps`; `dtype`/`device` are copied into the SAE; boolean
 * `normalize_activations` maps to "expected_average_only_in"/"none"; `decoder_heuristic_init_norm`
 * is used as `decoder_init_norm` when `decoder_heuristic_init` was on. Absent values take v6
 * defaults (not v5's: e.g. `adam_beta1` 0.9 rather than 0.0).
 */
export function flatToNested(flat: Record<string, unknown>): FlatConversion {
  const cfg: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) cfg[RENAMES.get(key) ?? key] = value;
  if ("lr_scheduler_name" in cfg && cfg.lr_scheduler_name === null) {
    cfg.lr_scheduler_name = "constant"; // pre-3.0 used null for a constant LR
  }

  const kwargs = isPlainObject(cfg.activation_fn_kwargs) ? cfg.activation_fn_kwargs : {};
  let architecture = cfg.architecture ?? "standard";
  if (cfg.activation_fn === "topk" && architecture === "standard" && kwargs.k != null) {
    architecture = "topk";
  }
  if (typeof architecture !== "string") {
    throw new ConfigError(`runner config: architecture is ${describeValue(architecture)}`);
  }
  const sae: Record<string, unknown> = { architecture };
  const dIn = cfg.d_in ?? 512;
  sae.d_in = dIn;
  const expansion = cfg.expansion_factor;
  if (cfg.d_sae === undefined || cfg.d_sae === null) {
    const factor = expansion ?? 4;
    if (typeof dIn !== "number" || typeof factor !== "number") {
      throw new ConfigError(
        `runner config: cannot derive d_sae from d_in ${describeValue(dIn)} and ` +
          `expansion_factor ${describeValue(factor)}; expected numbers`,
      );
    }
    sae.d_sae = dIn * factor;
  } else {
    sae.d_sae = cfg.d_sae;
    if (typeof expansion === "number" && typeof dIn === "number" && dIn * expansion !== cfg.d_sae) {
      throw new ConfigError(
        `runner config: d_sae is ${cfg.d_sae} but d_in · expansion_factor is ${dIn} · ` +
          `${expansion} = ${dIn * expansion}; give one of them or make them agree`,
      );
    }
  }
  if (kwargs.k != null && (architecture === "topk" || architecture === "batchtopk")) {
    sae.k = kwargs.k;
  }
  if (architecture === "jumprelu") {
    if (cfg.l0_coefficient === undefined && cfg.l1_coefficient !== undefined) {
      cfg.l0_coefficient = cfg.l1_coefficient;
    }
    if (cfg.l0_warm_up_steps === undefined && cfg.l1_warm_up_steps !== undefined) {
      cfg.l0_warm_up_steps = cfg.l1_warm_up_steps;
    }
    delete cfg.l1_coefficient;
    delete cfg.l1_warm_up_steps;
  }
  if (cfg.decoder_heuristic_init === true && cfg.decoder_init_norm === undefined) {
    sae.decoder_init_norm = cfg.decoder_heuristic_init_norm ?? 0.1;
  }
  if (typeof cfg.normalize_activations === "boolean") {
    cfg.normalize_activations = cfg.normalize_activations ? "expected_average_only_in" : "none";
  }

  const saeKeys = new Set(fieldNames(architecture, true));
  const nested: Record<string, unknown> = {};
  const logger: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(cfg)) {
    if (key === "architecture" || key === "d_in" || key === "d_sae") continue;
    if (key === "dtype" || key === "device") {
      sae[key] = value;
      nested[key] = value;
    } else if (saeKeys.has(key)) {
      sae[key] = value;
    } else if (LOGGER_KEYS.has(key)) {
      logger[key] = value;
    } else if (DROPPED_LEGACY_KEYS.has(key) || isInapplicableSaeKey(key)) {
      ignored.push(key);
    } else {
      nested[key] = value;
    }
  }
  return { nested: { sae, ...nested, logger }, ignored };
}

const ANY_ARCH_SAE_KEYS = new Set([
  "l1_coefficient",
  "lp_norm",
  "l1_warm_up_steps",
  "l0_coefficient",
  "l0_warm_up_steps",
  "jumprelu_init_threshold",
  "jumprelu_bandwidth",
  "jumprelu_sparsity_loss_mode",
  "pre_act_loss_coefficient",
  "jumprelu_tanh_scale",
  "k",
  "use_sparse_activations",
  "aux_loss_coefficient",
  "rescale_acts_by_decoder_norm",
  "topk_threshold_lr",
  "matryoshka_widths",
  "decoder_init_norm",
]);

// v5 flat configs list every architecture's settings; those of other architectures are unused.
function isInapplicableSaeKey(key: string): boolean {
  return ANY_ARCH_SAE_KEYS.has(key);
}
