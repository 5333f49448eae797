/**
 * The SAE architecture registry (SAELens `register_sae_class` / `register_sae_training_class`):
 * architecture name → the config fields its inference and training configs add, and the
 * architecture a training SAE exports as. Pre-populated with the nine architectures SAELens has had since 6.18.
 * @module
 */

import { ConfigError, configWarn } from "../config/errors.ts";
import { type FieldSpec, MAX_SIZE_FIELD } from "../config/fields.ts";
import type { SAEConfig, TrainingSAEConfig } from "./config.ts";

/** What an architecture adds to the base SAE config. */
export interface ArchitectureSpec {
  /** Extra fields of the inference config (`cfg.json` of an exported SAE); `null` = training-only. */
  inferenceFields: readonly FieldSpec[] | null;
  /** Extra fields of the training config (incl. shared ones like `k`); `null` = inference-only. */
  trainingFields: readonly FieldSpec[] | null;
  /** Inference architecture a trained SAE of this kind is exported as (default: itself). */
  exportsAs?: string;
  /**
   * Cross-field checks, run after the fields are read. May normalise the config in place
   * (Matryoshka appends `d_sae` to its widths). Throw a `ConfigError` on inconsistency.
   */
  validate?: (cfg: SAEConfig | TrainingSAEConfig, training: boolean) => void;
}

/** A width or `k`: a positive safe integer the kernels can index. */
const SIZE = { type: "int", min: 1, max: MAX_SIZE_FIELD } as const;

/** Fields every inference config has, in SAELens' `SAEConfig` order (before `metadata`). */
export const BASE_FIELDS: readonly FieldSpec[] = [
  { name: "d_in", kind: SIZE, required: true },
  { name: "d_sae", kind: SIZE, required: true },
  { name: "dtype", kind: { type: "string" }, default: "float32" },
  { name: "device", kind: { type: "string" }, default: "cpu" },
  { name: "apply_b_dec_to_input", kind: { type: "bool" }, default: true },
  {
    name: "normalize_activations",
    kind: {
      type: "enum",
      values: ["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"],
    },
    default: "none",
  },
  {
    name: "reshape_activations",
    kind: { type: "enum", values: ["none", "hook_z"] },
    default: "none",
  },
];

/** The field every training config adds after `metadata` (`TrainingSAEConfig`). */
export const TRAINING_BASE_FIELDS: readonly FieldSpec[] = [
  { name: "decoder_init_norm", kind: { type: "number", min: 0, nullable: true }, default: 0.1 },
];

const nonNeg = { type: "number", min: 0 } as const;
const positive = { type: "number", min: 0, exclusiveMin: true } as const;
const steps = { type: "int", min: 0 } as const;

const TOPK_INFERENCE: FieldSpec[] = [
  { name: "k", kind: SIZE, default: 100 },
  { name: "rescale_acts_by_decoder_norm", kind: { type: "bool" }, default: false },
];
const TRANSCODER: FieldSpec[] = [{ name: "d_out", kind: SIZE, default: 768 }];
const TOPK_TRAINING: FieldSpec[] = [
  { name: "k", kind: SIZE, default: 100 },
  { name: "use_sparse_activations", kind: { type: "bool" }, default: false },
  { name: "aux_loss_coefficient", kind: nonNeg, default: 1.0 },
  { name: "rescale_acts_by_decoder_norm", kind: { type: "bool" }, default: true },
];
// BatchTopK redefines k as a float (an average number of active latents per token).
const BATCHTOPK_TRAINING: FieldSpec[] = [
  { name: "k", kind: positive, default: 100 },
  ...TOPK_TRAINING.slice(1),
  { name: "topk_threshold_lr", kind: nonNeg, default: 0.01 },
];

function checkK(cfg: SAEConfig, training: boolean): void {
  if (cfg.k !== undefined && cfg.k > cfg.dSae) {
    throw new ConfigError(
      `${training ? "training " : ""}config (${cfg.architecture}): k is ${cfg.k}, expected ` +
        `at most d_sae (${cfg.dSae})`,
    );
  }
}

function checkTranscoder(cfg: SAEConfig): void {
  if (cfg.applyBDecToInput) {
    throw new ConfigError(
      `config (${cfg.architecture}): apply_b_dec_to_input is true, expected false (a ` +
        `transcoder's b_dec has d_out entries and cannot be subtracted from its input)`,
    );
  }
}

/**
 * Matryoshka level widths, as SAELens checks them when the SAE is built: `d_sae` is appended
 * (with a warning) unless it is already the last width; widths must then be strictly increasing,
 * positive, and the smallest must be at least k.
 */
export function validateMatryoshkaWidths(cfg: TrainingSAEConfig): void {
  const widths = cfg.matryoshkaWidths ?? [];
  if (widths.length === 0 || widths[widths.length - 1] !== cfg.dSae) {
    configWarn(
      `matryoshka_widths ${JSON.stringify(widths)} does not end at d_sae; a final level of ` +
        `width d_sae=${cfg.dSae} is added`,
    );
    widths.push(cfg.dSae);
  }
  for (let i = 0; i < widths.length; i++) {
    if (widths[i] <= 0 || (i > 0 && widths[i - 1] >= widths[i])) {
      throw new ConfigError(
        `training config (matryoshka_batchtopk): matryoshka_widths is ${JSON.stringify(widths)}` +
          `, expected strictly increasing positive widths ending at d_sae (${cfg.dSae})`,
      );
    }
  }
  if (widths.length === 1) {
    configWarn("matryoshka_widths has a single level; this is equivalent to BatchTopK");
  }
  if (cfg.k !== undefined && widths[0] < cfg.k) {
    throw new ConfigError(
      `training config (matryoshka_batchtopk): the smallest matryoshka width is ${widths[0]}, ` +
        `expected at least k (${cfg.k})`,
    );
  }
  cfg.matryoshkaWidths = widths;
}

const BUILTIN: [string, ArchitectureSpec][] = [
  ["standard", {
    inferenceFields: [],
    trainingFields: [
      { name: "l1_coefficient", kind: nonNeg, default: 1.0 },
      { name: "lp_norm", kind: positive, default: 1.0 },
      { name: "l1_warm_up_steps", kind: steps, default: 0 },
    ],
  }],
  ["gated", {
    inferenceFields: [],
    trainingFields: [
      { name: "l1_coefficient", kind: nonNeg, default: 1.0 },
      { name: "l1_warm_up_steps", kind: steps, default: 0 },
    ],
  }],
  ["jumprelu", {
    inferenceFields: [],
    trainingFields: [
      { name: "jumprelu_init_threshold", kind: positive, default: 0.01 },
      { name: "jumprelu_bandwidth", kind: positive, default: 0.05 },
      {
        name: "jumprelu_sparsity_loss_mode",
        kind: { type: "enum", values: ["step", "tanh"] },
        default: "step",
      },
      { name: "l0_coefficient", kind: nonNeg, default: 1.0 },
      { name: "l0_warm_up_steps", kind: steps, default: 0 },
      { name: "pre_act_loss_coefficient", kind: { ...nonNeg, nullable: true }, default: null },
      { name: "jumprelu_tanh_scale", kind: positive, default: 4.0 },
    ],
  }],
  ["topk", { inferenceFields: TOPK_INFERENCE, trainingFields: TOPK_TRAINING, validate: checkK }],
  ["batchtopk", {
    inferenceFields: null,
    trainingFields: BATCHTOPK_TRAINING,
    exportsAs: "jumprelu",
    validate: checkK,
  }],
  ["matryoshka_batchtopk", {
    inferenceFields: null,
    trainingFields: [
      ...BATCHTOPK_TRAINING,
      { name: "matryoshka_widths", kind: { type: "intList" }, default: [] },
    ],
    exportsAs: "jumprelu",
    validate: (cfg, training) => {
      checkK(cfg, training);
      validateMatryoshkaWidths(cfg as TrainingSAEConfig);
    },
  }],
  ["transcoder", { inferenceFields: TRANSCODER, trainingFields: null, validate: checkTranscoder }],
  ["skip_transcoder", {
    inferenceFields: TRANSCODER,
    trainingFields: null,
    validate: checkTranscoder,
  }],
  ["jumprelu_transcoder", {
    inferenceFields: TRANSCODER,
    trainingFields: null,
    validate: checkTranscoder,
  }],
];

const registry = new Map<string, ArchitectureSpec>();

/**
 * Registers an architecture. Throws a `ConfigError` if `name` is already registered (as SAELens
 * does), or if the spec has neither inference nor training fields.
 *
 * @example
 * ```ts
 * import { registerArchitecture, listArchitectures } from "./registry.ts";
 * registerArchitecture("my_relu_variant", { inferenceFields: [], trainingFields: [] });
 * if (!listArchitectures().includes("my_relu_variant")) throw new Error();
 * ```
 */
export function registerArchitecture(name: string, spec: ArchitectureSpec): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new ConfigError(`architecture name ${JSON.stringify(name)} is not a simple identifier`);
  }
  if (registry.has(name)) {
    throw new ConfigError(`architecture ${JSON.stringify(name)} is already registered`);
  }
  if (spec.inferenceFields === null && spec.trainingFields === null) {
    throw new ConfigError(`architecture ${name}: needs inference fields, training fields or both`);
  }
  if (spec.inferenceFields === null && spec.exportsAs === undefined) {
    throw new ConfigError(
      `architecture ${name}: a training-only architecture needs exportsAs (the inference ` +
        `architecture it is saved as)`,
    );
  }
  registry.set(name, spec);
}

/** Names of all registered architectures, in registration order. */
export function listArchitectures(): string[] {
  return [...registry.keys()];
}

/**
 * The spec of `name`. Throws a `ConfigError` listing the registered architectures if unknown.
 */
export function getArchitecture(name: unknown, where = "config"): ArchitectureSpec {
  const spec = typeof name === "string" ? registry.get(name) : undefined;
  if (spec === undefined) {
    throw new ConfigError(
      `${where}: architecture is ${JSON.stringify(name)}, expected one of: ` +
        listArchitectures().join(", "),
    );
  }
  return spec;
}

/** The inference architecture a training config of architecture `name` is exported as. */
export function inferenceArchitectureOf(name: string): string {
  return getArchitecture(name).exportsAs ?? name;
}

for (const [name, spec] of BUILTIN) registerArchitecture(name, spec);
