/**
 * SAE configs as SAELens (6.18 to 6.49.2) reads and writes them: the inference `SAEConfig`
 * (`cfg.json` of an exported SAE) and the `TrainingSAEConfig` (`cfg.json` of a training
 * checkpoint), with the exact key set and order, legacy-config conversion, and validation.
 * @module
 */

import { ConfigError, describeValue } from "../config/errors.ts";
import { type FieldSpec, readField } from "../config/fields.ts";
import { isPlainObject, snakeizeKeys, toCamel } from "../config/naming.ts";
import { handlePre6Config, isPre6Config } from "./config_legacy.ts";
import { SAEMetadata } from "./metadata.ts";
import {
  type ArchitectureSpec,
  BASE_FIELDS,
  getArchitecture,
  inferenceArchitectureOf,
  TRAINING_BASE_FIELDS,
} from "./registry.ts";

export type {
  Dtype,
  NormalizeActivations,
  ReshapeActivations,
  SAEConfig,
  TrainingSAEConfig,
} from "./config_types.ts";
import type { Dtype, SAEConfig, TrainingSAEConfig } from "./config_types.ts";

const DTYPES: Readonly<Record<string, Dtype>> = {
  "float32": "float32",
  "torch.float32": "float32",
  "float64": "float64",
  "torch.float64": "float64",
  "float16": "float16",
  "torch.float16": "float16",
  "bfloat16": "bfloat16",
  "torch.bfloat16": "bfloat16",
};

/**
 * Normalises a dtype spelling (`"torch.float32"`, `"float32"`, …) to its short form.
 *
 * @example
 * ```ts
 * import { normalizeDtype } from "./config.ts";
 * if (normalizeDtype("torch.bfloat16") !== "bfloat16") throw new Error();
 * ```
 */
export function normalizeDtype(value: unknown, where = "dtype"): Dtype {
  const dtype = typeof value === "string" ? DTYPES[value] : undefined;
  if (dtype === undefined) {
    throw new ConfigError(
      `${where} is ${describeValue(value)}, expected one of ${Object.keys(DTYPES).join(", ")}`,
    );
  }
  return dtype;
}

function topLevelSnake(obj: unknown, where: string): Record<string, unknown> {
  if (!isPlainObject(obj)) {
    throw new ConfigError(`${where} is ${describeValue(obj)}, expected a JSON object`);
  }
  return snakeizeKeys(obj, { context: where });
}

function readFields(
  target: Record<string, unknown>,
  fields: readonly FieldSpec[],
  dict: Record<string, unknown>,
  where: string,
): void {
  for (const field of fields) target[toCamel(field.name)] = readField(field, dict, where);
}

function build(
  dict: Record<string, unknown>,
  training: boolean,
  where: string,
): SAEConfig | TrainingSAEConfig {
  if (dict.architecture === undefined) {
    throw new ConfigError(`${where}: required field architecture is missing`);
  }
  const spec = getArchitecture(dict.architecture, where);
  const architecture = dict.architecture as string;
  const extra = training ? spec.trainingFields : spec.inferenceFields;
  if (extra === null) {
    throw new ConfigError(
      training
        ? `${where}: architecture ${architecture} is inference-only (no training config)`
        : `${where}: architecture ${architecture} is training-only; it is exported as ` +
          `${spec.exportsAs}. Read this cfg.json with trainingConfigFromDict`,
    );
  }
  const out: Record<string, unknown> = { architecture };
  readFields(out, BASE_FIELDS, dict, where);
  out.dtype = normalizeDtype(out.dtype, `${where}: dtype`);
  out.metadata = dict.metadata instanceof SAEMetadata
    ? dict.metadata.clone()
    : SAEMetadata.fromDict(dict.metadata as Record<string, unknown> | undefined);
  if (training) readFields(out, TRAINING_BASE_FIELDS, dict, where);
  readFields(out, extra, dict, where);
  const cfg = out as unknown as SAEConfig;
  spec.validate?.(cfg, training);
  return cfg;
}

/**
 * Reads an inference config from a `cfg.json` dict, snake_case or camelCase keys. Like SAELens'
 * `handle_config_defaulting` + `SAEConfig.from_dict`: configs without a `sae_lens_version` (top
 * level or in `metadata`) or older than 6.0.0-rc.0 are converted from the legacy layout first;
 * keys the architecture doesn't know are dropped (a training `cfg.json` loads as its inference
 * part); the dtype spelling is normalised.
 *
 * @example
 * ```ts
 * import { saeConfigFromDict } from "./config.ts";
 * const cfg = saeConfigFromDict({
 *   d_in: 768, d_sae: 24576, dtype: "torch.float32", hook_point: "blocks.0.hook_resid_pre",
 *   model_name: "gpt2-small", normalize_activations: false,
 * });
 * if (cfg.architecture !== "standard" || cfg.metadata.hookName !== "blocks.0.hook_resid_pre") {
 *   throw new Error();
 * }
 * ```
 */
export function saeConfigFromDict(obj: Record<string, unknown>): SAEConfig {
  let dict = topLevelSnake(obj, "SAE config");
  if (isPre6Config(dict)) dict = handlePre6Config(dict);
  return build(dict, false, "SAE config");
}

/**
 * Builds an inference config from camelCase (or snake_case) fields with v6 semantics (no legacy
 * conversion): unset fields take their defaults, everything is validated.
 *
 * @example
 * ```ts
 * import { createSAEConfig } from "./config.ts";
 * const cfg = createSAEConfig({ architecture: "topk", dIn: 16, dSae: 64, k: 4 });
 * if (cfg.rescaleActsByDecoderNorm !== false || cfg.dtype !== "float32") throw new Error();
 * ```
 */
export function createSAEConfig(
  fields: Partial<SAEConfig> & Record<string, unknown>,
): SAEConfig {
  return build(topLevelSnake(fields, "SAE config"), false, "SAE config");
}

/**
 * Reads a training config (training checkpoint `cfg.json`, or the `sae` part of a runner config),
 * snake_case or camelCase keys, like SAELens' `TrainingSAEConfig.from_dict`: `architecture` is
 * required, unknown keys are dropped (`onUnknown` can report them), defaults of §1.5 apply.
 *
 * @example
 * ```ts
 * import { trainingConfigFromDict } from "./config.ts";
 * const cfg = trainingConfigFromDict({ architecture: "jumprelu", d_in: 8, d_sae: 32 });
 * if (cfg.jumpreluBandwidth !== 0.05 || cfg.decoderInitNorm !== 0.1) throw new Error();
 * ```
 */
export function trainingConfigFromDict(
  obj: Record<string, unknown>,
  options: { onUnknown?: (keys: string[]) => void; where?: string } = {},
): TrainingSAEConfig {
  const where = options.where ?? "training SAE config";
  const dict = topLevelSnake(obj, where);
  const cfg = build(dict, true, where) as TrainingSAEConfig;
  if (options.onUnknown) {
    const known = new Set(["architecture", "metadata", ...fieldNames(cfg.architecture, true)]);
    const unknown = Object.keys(dict).filter((k) => !known.has(k));
    if (unknown.length > 0) options.onUnknown(unknown);
  }
  return cfg;
}

/** Builds a training config from camelCase (or snake_case) fields; see {@link trainingConfigFromDict}. */
export function createTrainingConfig(
  fields: Partial<TrainingSAEConfig> & Record<string, unknown>,
): TrainingSAEConfig {
  return trainingConfigFromDict(fields);
}

/** snake_case field names of an architecture's inference or training config (without metadata). */
export function fieldNames(architecture: string, training: boolean): string[] {
  const spec: ArchitectureSpec = getArchitecture(architecture);
  const extra = (training ? spec.trainingFields : spec.inferenceFields) ?? [];
  return [
    ...BASE_FIELDS.map((f) => f.name),
    ...(training ? TRAINING_BASE_FIELDS.map((f) => f.name) : []),
    ...extra.map((f) => f.name),
  ];
}

function toDict(cfg: SAEConfig, training: boolean, where: string): Record<string, unknown> {
  const spec = getArchitecture(cfg.architecture, where);
  const extra = training ? spec.trainingFields : spec.inferenceFields;
  if (extra === null) {
    throw new ConfigError(
      training
        ? `${where}: architecture ${cfg.architecture} is inference-only (no training config)`
        : `${where}: architecture ${cfg.architecture} is training-only; convert it with ` +
          `inferenceConfigOf first (it is exported as ${spec.exportsAs})`,
    );
  }
  const source = cfg as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const copy = (fields: readonly FieldSpec[]) => {
    for (const f of fields) {
      const value = source[toCamel(f.name)];
      out[f.name] = value === undefined ? structuredClone(f.default) : structuredClone(value);
    }
  };
  copy(BASE_FIELDS);
  out.metadata = cfg.metadata.toDict();
  if (training) copy(TRAINING_BASE_FIELDS);
  copy(extra);
  out.architecture = cfg.architecture;
  return out;
}

/**
 * The exact SAELens 6.x inference `cfg.json` dict: `d_in, d_sae, dtype, device,
 * apply_b_dec_to_input, normalize_activations, reshape_activations, metadata`, then the
 * architecture's fields (`k`, `rescale_acts_by_decoder_norm`; `d_out`), then `architecture`.
 *
 * @example
 * ```ts
 * import { createSAEConfig, saeConfigToDict } from "./config.ts";
 * const dict = saeConfigToDict(createSAEConfig({ architecture: "standard", dIn: 4, dSae: 8 }));
 * if (Object.keys(dict).at(-1) !== "architecture" || dict.d_sae !== 8) throw new Error();
 * ```
 */
export function saeConfigToDict(cfg: SAEConfig): Record<string, unknown> {
  return toDict(cfg, false, "SAE config");
}

/**
 * The training checkpoint `cfg.json` dict: the inference keys plus `decoder_init_norm` (after
 * `metadata`) and every training field of the architecture, `architecture` last.
 */
export function trainingConfigToDict(cfg: TrainingSAEConfig): Record<string, unknown> {
  return toDict(cfg, true, "training SAE config");
}

/**
 * The inference config a trained SAE is exported with (SAELens `get_inference_sae_cfg_dict`):
 * the architecture becomes its export architecture (batchtopk / matryoshka_batchtopk → jumprelu,
 * without k), only that architecture's inference fields are kept, metadata is copied.
 *
 * @example
 * ```ts
 * import { createTrainingConfig, inferenceConfigOf } from "./config.ts";
 * const inf = inferenceConfigOf(createTrainingConfig({ architecture: "batchtopk", dIn: 4, dSae: 8, k: 2 }));
 * if (inf.architecture !== "jumprelu" || "k" in inf) throw new Error();
 * ```
 */
export function inferenceConfigOf(trainingCfg: TrainingSAEConfig): SAEConfig {
  const target = inferenceArchitectureOf(trainingCfg.architecture);
  const dict: Record<string, unknown> = { architecture: target };
  const source = trainingCfg as unknown as Record<string, unknown>;
  for (const name of fieldNames(target, false)) {
    const value = source[toCamel(name)];
    if (value !== undefined) dict[name] = structuredClone(value);
  }
  dict.metadata = trainingCfg.metadata;
  return build(dict, false, "inference config") as SAEConfig;
}

/** Deep copy of a config (metadata included). */
export function cloneConfig<T extends SAEConfig>(cfg: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(cfg)) {
    out[key] = value instanceof SAEMetadata ? value.clone() : structuredClone(value);
  }
  return out as T;
}
