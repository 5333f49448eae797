/**
 * The SAE config types (`SAEConfig`, `TrainingSAEConfig` and their field types), apart from the
 * code that reads and writes them (`config.ts`), so that an architecture can name them without
 * importing the config reader, which imports the architecture registry.
 * @module
 */

import type { SAEMetadata } from "./metadata.ts";

/** Floating-point storage types an SAE may declare. */
export type Dtype = "float32" | "float64" | "float16" | "bfloat16";

/** Run-time activation normalisation of an SAE (§3.0 of the SAELens spec). */
export type NormalizeActivations =
  | "none"
  | "expected_average_only_in"
  | "constant_norm_rescale"
  | "layer_norm";

/** `"hook_z"`: the SAE reads `[.., n_heads, d_head]` activations flattened to `n_heads·d_head`. */
export type ReshapeActivations = "none" | "hook_z";

/**
 * An inference SAE config (SAELens `SAEConfig` and its per-architecture subclasses). Fields of
 * architectures registered later are added as further camelCase properties.
 */
export interface SAEConfig {
  /** Registry key: `standard`, `gated`, `jumprelu`, `topk`, `transcoder`, … */
  architecture: string;
  /** SAELens `d_in`: input (activation) width. */
  dIn: number;
  /** SAELens `d_sae`: number of latents. */
  dSae: number;
  /** SAELens `dtype`. */
  dtype: Dtype;
  /** SAELens `device`. */
  device: string;
  /** SAELens `apply_b_dec_to_input`: subtract `b_dec` from the input before encoding. */
  applyBDecToInput: boolean;
  /** SAELens `normalize_activations`. */
  normalizeActivations: NormalizeActivations;
  /** SAELens `reshape_activations`. */
  reshapeActivations: ReshapeActivations;
  /** SAELens `metadata` (model, hook and dataset info). */
  metadata: SAEMetadata;
  /** topk (inference default 100) and the TopK-family training configs. */
  k?: number;
  /** topk: scale pre-activations by decoder row norms before selecting. */
  rescaleActsByDecoderNorm?: boolean;
  /** Transcoders: output width (default 768). */
  dOut?: number;
}

/** A training SAE config (SAELens `TrainingSAEConfig` subclasses, §1.5 defaults). */
export interface TrainingSAEConfig extends SAEConfig {
  /** Row norm of the initial decoder ("heuristic" init); null disables rescaling. */
  decoderInitNorm: number | null;
  /** standard, gated */
  l1Coefficient?: number;
  /** standard */
  lpNorm?: number;
  /** standard, gated */
  l1WarmUpSteps?: number;
  /** jumprelu: SAELens `jumprelu_init_threshold`. */
  jumpreluInitThreshold?: number;
  /** jumprelu: SAELens `jumprelu_bandwidth`. */
  jumpreluBandwidth?: number;
  /** jumprelu: SAELens `jumprelu_sparsity_loss_mode`. */
  jumpreluSparsityLossMode?: "step" | "tanh";
  /** jumprelu: SAELens `l0_coefficient`. */
  l0Coefficient?: number;
  /** jumprelu: SAELens `l0_warm_up_steps`. */
  l0WarmUpSteps?: number;
  /** jumprelu: SAELens `pre_act_loss_coefficient`. */
  preActLossCoefficient?: number | null;
  /** jumprelu: SAELens `jumprelu_tanh_scale`. */
  jumpreluTanhScale?: number;
  /** topk family */
  useSparseActivations?: boolean;
  /** topk family: SAELens `aux_loss_coefficient`. */
  auxLossCoefficient?: number;
  /** batchtopk family */
  topkThresholdLr?: number;
  /** matryoshka_batchtopk */
  matryoshkaWidths?: number[];
}
