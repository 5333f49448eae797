/**
 * `CacheActivationsRunnerConfig`: SAELens's config of the activation-caching runner (§1.10), read
 * from snake_case or camelCase keys, with SAELens's defaults, checks and derived sizes, plus the
 * options of SAELens PR #612 (still open) that make a cache match the live activation store
 * (`disable_concat_sequences`, `sequence_separator_token`, `shuffle_across_sequences`) and a few
 * saeflow extensions (several hooks in one cache, the dataset split/revision/`.txt` row rule).
 * @module
 */

import { ConfigError, configWarn, describeValue } from "../config/errors.ts";
import { type FieldSpec, MAX_SIZE_FIELD, readField } from "../config/fields.ts";
import { loadConfigFile } from "../config/load.ts";
import { isPlainObject, snakeizeKeys, toCamel } from "../config/naming.ts";
import { defaultCachedActivationsPath } from "../config/derived.ts";
import { type SeqposSlice, seqposSliceLength, validateSeqposSlice } from "../config/seqpos.ts";
import type { SpecialToken } from "../sae/metadata.ts";
import { checkSpecialToken } from "./runner_config.ts";

/** SAELens `CacheActivationsRunnerConfig` (camelCase) with PR #612's and saeflow's additions. */
export interface CacheRunnerConfig {
  /** SAELens `dataset_path` (required). */
  datasetPath: string;
  /** SAELens `model_name` (required). */
  modelName: string;
  /** SAELens `model_batch_size`: sequences per LLM forward (required). */
  modelBatchSize: number;
  /** SAELens `hook_name` (required unless `hook_names` is given; then its first entry). */
  hookName: string;
  /** saeflow `hook_names`: several hooks cached from one forward (default: `[hook_name]`). */
  hookNames: string[];
  /** SAELens `d_in` (required): width of every hook (a map per hook for several hooks). */
  dIn: Record<string, number>;
  /** SAELens `training_tokens` (required): tokens to cache. */
  trainingTokens: number;
  /** SAELens `context_size` (default -1: the length of a pretokenized dataset's rows). */
  contextSize: number;
  /** SAELens `model_class_name` (default "HookedTransformer"). */
  modelClassName: string;
  /** SAELens `new_cached_activations_path` (default `activations/{dataset}/{model}/{hook}`). */
  newCachedActivationsPath: string;
  /** SAELens `shuffle` (default true): the cache's sequences are stored in a seeded order. */
  shuffle: boolean;
  /** SAELens `seed` (default 42). */
  seed: number;
  /** SAELens `dtype` (default "float32"; the only one saeflow writes). */
  dtype: string;
  /** SAELens `device` (recorded only; saeflow runs on WebGPU). */
  device: string;
  /** SAELens `buffer_size_gb` (default 2.0): the size of one shard (data file). */
  bufferSizeGb: number;
  /** SAELens `hf_repo_id` (must stay null: upload the folder separately). */
  hfRepoId: string | null;
  /** SAELens `hf_num_shards`. */
  hfNumShards: number | null;
  /** SAELens `hf_revision`. */
  hfRevision: string;
  /** SAELens `hf_is_private_repo`. */
  hfIsPrivateRepo: boolean;
  /** SAELens `model_kwargs` (recorded). */
  modelKwargs: Record<string, unknown>;
  /** SAELens `model_from_pretrained_kwargs` (default `{}`). */
  modelFromPretrainedKwargs: Record<string, unknown>;
  /** SAELens `compile_llm` (ignored). */
  compileLlm: boolean;
  /** SAELens `llm_compilation_mode` (ignored). */
  llmCompilationMode: string | null;
  /** SAELens `prepend_bos` (default true). */
  prependBos: boolean;
  /** SAELens `seqpos_slice` (default `[null]`). */
  seqposSlice: (number | null)[];
  /** SAELens `streaming` (recorded; saeflow always streams). */
  streaming: boolean;
  /** SAELens `autocast_lm` (must be false). */
  autocastLm: boolean;
  /** SAELens `dataset_trust_remote_code` (no effect). */
  datasetTrustRemoteCode: boolean | null;
  /** SAELens `use_chat_formatting` (must be false). */
  useChatFormatting: boolean;
  /** PR #612 `disable_concat_sequences` (default false), as the training store's. */
  disableConcatSequences: boolean;
  /** PR #612 `sequence_separator_token` (default "bos"), as the training store's. */
  sequenceSeparatorToken: SpecialToken;
  /**
   * PR #612 `shuffle_across_sequences` (default false): also shuffle the token positions of
   * each shard across its sequences (activations and token ids together).
   */
  shuffleAcrossSequences: boolean;
  /** saeflow: dataset split (default "train"). */
  datasetSplit: string;
  /** saeflow: dataset revision (default null: "main"). */
  datasetRevision: string | null;
  /** saeflow: rows of a `.txt` dataset (default "line"). */
  datasetTextSampleBy: "line" | "paragraph" | "document";
}

const str = { type: "string" } as const;
const strOrNull = { type: "string", nullable: true } as const;
const bool = { type: "bool" } as const;
const size = { type: "int", min: 1, max: MAX_SIZE_FIELD } as const;

/** SAELens's fields in `asdict` order (what `cache_activations_runner_cfg.json` holds). */
export const CACHE_RUNNER_FIELDS: readonly FieldSpec[] = [
  { name: "dataset_path", kind: str, required: true },
  { name: "model_name", kind: str, required: true },
  { name: "model_batch_size", kind: size, required: true },
  { name: "hook_name", kind: str, default: "" },
  { name: "d_in", kind: { type: "any" }, required: true },
  { name: "training_tokens", kind: { type: "int", min: 1 }, required: true },
  { name: "context_size", kind: { type: "int", min: -1, max: MAX_SIZE_FIELD }, default: -1 },
  { name: "model_class_name", kind: str, default: "HookedTransformer" },
  { name: "new_cached_activations_path", kind: strOrNull, default: null },
  { name: "shuffle", kind: bool, default: true },
  { name: "seed", kind: { type: "int" }, default: 42 },
  { name: "dtype", kind: str, default: "float32" },
  { name: "device", kind: str, default: "cpu" },
  { name: "buffer_size_gb", kind: { type: "number", min: 0, exclusiveMin: true }, default: 2.0 },
  { name: "hf_repo_id", kind: strOrNull, default: null },
  { name: "hf_num_shards", kind: { type: "int", min: 1, nullable: true }, default: null },
  { name: "hf_revision", kind: str, default: "main" },
  { name: "hf_is_private_repo", kind: bool, default: false },
  { name: "model_kwargs", kind: { type: "dict" }, default: {} },
  { name: "model_from_pretrained_kwargs", kind: { type: "dict" }, default: {} },
  { name: "compile_llm", kind: bool, default: false },
  { name: "llm_compilation_mode", kind: strOrNull, default: null },
  { name: "prepend_bos", kind: bool, default: true },
  { name: "seqpos_slice", kind: { type: "any" }, default: [null] },
  { name: "streaming", kind: bool, default: true },
  { name: "autocast_lm", kind: bool, default: false },
  { name: "dataset_trust_remote_code", kind: { type: "any" }, default: null },
  { name: "use_chat_formatting", kind: bool, default: false },
];

/** PR #612's and saeflow's keys (written to saeflow's own metadata, not SAELens's file). */
export const CACHE_RUNNER_EXTRA_FIELDS: readonly FieldSpec[] = [
  { name: "disable_concat_sequences", kind: bool, default: false },
  { name: "sequence_separator_token", kind: { type: "any" }, default: "bos" },
  { name: "shuffle_across_sequences", kind: bool, default: false },
  { name: "hook_names", kind: { type: "any" }, default: null },
  { name: "dataset_split", kind: str, default: "train" },
  { name: "dataset_revision", kind: strOrNull, default: null },
  {
    name: "dataset_text_sample_by",
    kind: { type: "enum", values: ["line", "paragraph", "document"] },
    default: "line",
  },
];

/**
 * Reads a cache config (see the module doc): required fields, SAELens defaults, unknown keys
 * refused, and what saeflow cannot do refused with the reason (`dtype` other than float32,
 * `hf_repo_id`, `autocast_lm`, `use_chat_formatting`, a model class other than
 * HookedTransformer). `context_size` may stay -1 until the dataset is opened
 * ({@link resolveCacheContextSize}).
 *
 * @example
 * ```ts
 * import { cacheRunnerConfigFromDict, cacheSizes } from "./cache_config.ts";
 * const cfg = cacheRunnerConfigFromDict({
 *   dataset_path: "data.jsonl", model_name: "gpt2", model_batch_size: 8,
 *   hook_name: "blocks.0.hook_resid_post", d_in: 768, training_tokens: 1_000_000, context_size: 128,
 * });
 * if (cfg.newCachedActivationsPath !== "activations/data.jsonl/gpt2/blocks.0.hook_resid_post") throw new Error();
 * const s = cacheSizes(cfg);
 * // 2e9 bytes / (768 × 4) tokens, rounded down to whole LLM batches of 8 × 128 tokens
 * if (s.nTokensInBuffer !== 650_240 || s.nSeqInBuffer !== 5080 || s.nBuffers !== 2) throw new Error();
 * ```
 */
export function cacheRunnerConfigFromDict(
  obj: Record<string, unknown>,
  options: { where?: string } = {},
): CacheRunnerConfig {
  const where = options.where ?? "cache config";
  if (!isPlainObject(obj)) {
    throw new ConfigError(`${where} is ${describeValue(obj)}, expected a JSON object`);
  }
  const dict = snakeizeKeys(obj, { context: where });
  const fields = [...CACHE_RUNNER_FIELDS, ...CACHE_RUNNER_EXTRA_FIELDS];
  const known = new Set(fields.map((f) => f.name));
  const unknown = Object.keys(dict).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new ConfigError(`${where}: unknown key(s) ${unknown.join(", ")}`);
  const out: Record<string, unknown> = {};
  for (const f of fields) out[toCamel(f.name)] = readField(f, dict, where);
  const cfg = out as unknown as CacheRunnerConfig & { dIn: unknown; hookNames: unknown };

  // Hooks and widths.
  const hookNames = cfg.hookNames as unknown;
  if (hookNames !== null) {
    if (
      !Array.isArray(hookNames) || hookNames.length === 0 ||
      !hookNames.every((h) => typeof h === "string" && h !== "") ||
      new Set(hookNames).size !== hookNames.length
    ) {
      throw new ConfigError(
        `${where}: hook_names is ${
          describeValue(hookNames)
        }, expected a list of distinct hook names`,
      );
    }
    if (cfg.hookName !== "" && cfg.hookName !== hookNames[0]) {
      throw new ConfigError(
        `${where}: hook_name ${JSON.stringify(cfg.hookName)} and hook_names ` +
          `${
            describeValue(hookNames)
          } disagree; give hook_names only (its first entry is hook_name)`,
      );
    }
    cfg.hookNames = [...hookNames] as string[];
  } else {
    if (cfg.hookName === "") {
      throw new ConfigError(`${where}: required field hook_name is missing (expected a string)`);
    }
    cfg.hookNames = [cfg.hookName];
  }
  cfg.hookName = cfg.hookNames[0];
  const dIn = cfg.dIn as unknown;
  const widths: Record<string, number> = {};
  const checkWidth = (v: unknown, hook: string) => {
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_SIZE_FIELD) {
      throw new ConfigError(
        `${where}: d_in${cfg.hookNames.length > 1 ? ` of ${hook}` : ""} is ${describeValue(v)}, ` +
          "expected a positive integer",
      );
    }
    widths[hook] = v as number;
  };
  if (isPlainObject(dIn)) {
    const extra = Object.keys(dIn).filter((k) => !cfg.hookNames.includes(k));
    if (extra.length > 0) {
      throw new ConfigError(`${where}: d_in names hooks that are not cached: ${extra.join(", ")}`);
    }
    for (const h of cfg.hookNames) checkWidth(dIn[h], h);
  } else {
    for (const h of cfg.hookNames) checkWidth(dIn, h);
  }
  cfg.dIn = widths;

  // What saeflow does not do.
  if (cfg.dtype !== "float32") {
    throw new ConfigError(
      `${where}: dtype is ${JSON.stringify(cfg.dtype)}; saeflow caches float32 activations ` +
        '(the dtype of its GPU pipeline), expected "float32"',
    );
  }
  if (cfg.hfRepoId !== null) {
    throw new ConfigError(
      `${where}: hf_repo_id is set; the cache command writes the folder only. Upload the ` +
        "finished folder to the hub separately (it is a complete datasets save_to_disk folder)",
    );
  }
  if (cfg.autocastLm) {
    throw new ConfigError(`${where}: autocast_lm is not supported (saeflow runs the LM in f32)`);
  }
  if (cfg.useChatFormatting) {
    throw new ConfigError(`${where}: use_chat_formatting is not supported by saeflow`);
  }
  if (cfg.modelClassName !== "HookedTransformer" && cfg.modelClassName !== "HookedSAETransformer") {
    throw new ConfigError(
      `${where}: model_class_name ${cfg.modelClassName} is not supported; saeflow runs ` +
        "TransformerLens models (HookedTransformer)",
    );
  }
  if (cfg.compileLlm) configWarn(`${where}: compile_llm has no effect in saeflow`);
  const trc = cfg.datasetTrustRemoteCode as unknown;
  if (trc !== null && typeof trc !== "boolean") {
    throw new ConfigError(
      `${where}: dataset_trust_remote_code is ${describeValue(trc)}, expected true, false or null`,
    );
  }
  cfg.sequenceSeparatorToken = checkSpecialToken(cfg.sequenceSeparatorToken, where);
  if (cfg.contextSize === 0) {
    throw new ConfigError(`${where}: context_size is 0, expected a positive size or -1`);
  }
  if (cfg.contextSize > 0) checkContext(cfg, where);
  cfg.seqposSlice = [...(cfg.seqposSlice as SeqposSlice)];
  if (cfg.newCachedActivationsPath === null) {
    cfg.newCachedActivationsPath = defaultCachedActivationsPath(
      cfg.datasetPath,
      cfg.modelName,
      cfg.hookName,
      null,
    );
  }
  return cfg;
}

function checkContext(cfg: CacheRunnerConfig, where: string): void {
  try {
    validateSeqposSlice(cfg.seqposSlice, cfg.contextSize);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
  if (cfg.contextSize > cfg.trainingTokens) {
    throw new ConfigError(
      `${where}: context_size (${cfg.contextSize}) is greater than training_tokens ` +
        `(${cfg.trainingTokens}); reduce context_size or increase training_tokens`,
    );
  }
}

/**
 * Sets `context_size` from a pretokenized dataset's row length when it is -1 (SAELens's
 * post-init), then checks it; a text dataset with -1 is an error.
 */
export function resolveCacheContextSize(
  cfg: CacheRunnerConfig,
  firstRowLength: number | undefined,
  where = "cache config",
): void {
  if (cfg.contextSize === -1) {
    if (firstRowLength === undefined) {
      throw new ConfigError(
        `${where}: context_size is -1 but ${cfg.datasetPath} is not tokenized: Dataset is not ` +
          "tokenized. Please specify context_size.",
      );
    }
    cfg.contextSize = firstRowLength;
  }
  checkContext(cfg, where);
}

/** SAELens's derived sizes of a cache run (§1.10). */
export interface CacheSizes {
  /** Positions kept per sequence (`sliced_context_size`). */
  slicedContextSize: number;
  /** Bytes one token's activations take over every cached hook. */
  bytesPerToken: number;
  /** `model_batch_size × sliced_context_size`. */
  nTokensInBatch: number;
  /** Tokens per shard: `buffer_size_gb` worth, rounded down to whole LLM batches. */
  nTokensInBuffer: number;
  /** LLM batches per shard. */
  nBatchesInBuffer: number;
  /** Sequences per shard. */
  nSeqInBuffer: number;
  /** Shards: `ceil(training_tokens / n_tokens_in_buffer)`. */
  nBuffers: number;
  /** `training_tokens // sliced_context_size`. */
  nSeqInDataset: number;
}

/** The derived sizes (throws when one shard cannot hold one LLM batch). */
export function cacheSizes(cfg: CacheRunnerConfig): CacheSizes {
  if (cfg.contextSize < 1) {
    throw new ConfigError("cache sizes: context_size is not resolved yet");
  }
  const slicedContextSize = seqposSliceLength(cfg.contextSize, cfg.seqposSlice);
  const bytesPerToken = cfg.hookNames.reduce((a, h) => a + cfg.dIn[h] * 4, 0);
  const nTokensInBatch = cfg.modelBatchSize * slicedContextSize;
  const raw = Math.floor(Math.floor(cfg.bufferSizeGb * 1e9) / bytesPerToken);
  const nTokensInBuffer = raw - (raw % nTokensInBatch);
  if (nTokensInBuffer === 0) {
    throw new ConfigError(
      `cache config: buffer_size_gb ${cfg.bufferSizeGb} holds ${raw} tokens of ` +
        `${bytesPerToken} bytes, fewer than one LLM batch of ${nTokensInBatch} tokens ` +
        "(model_batch_size × sliced context); raise buffer_size_gb or lower model_batch_size",
    );
  }
  return {
    slicedContextSize,
    bytesPerToken,
    nTokensInBatch,
    nTokensInBuffer,
    nBatchesInBuffer: nTokensInBuffer / nTokensInBatch,
    nSeqInBuffer: nTokensInBuffer / slicedContextSize,
    nBuffers: Math.ceil(cfg.trainingTokens / nTokensInBuffer),
    nSeqInDataset: Math.floor(cfg.trainingTokens / slicedContextSize),
  };
}

/**
 * The `cache_activations_runner_cfg.json` dict: exactly SAELens's `asdict(cfg)` keys (so
 * `CacheActivationsRunnerConfig(**d)` loads it); for several hooks `hook_name` is the first and
 * `d_in` its width (the others are in saeflow's own metadata).
 */
export function cacheRunnerConfigToDict(cfg: CacheRunnerConfig): Record<string, unknown> {
  const src = cfg as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of CACHE_RUNNER_FIELDS) {
    out[f.name] = f.name === "d_in" ? cfg.dIn[cfg.hookName] : structuredClone(src[toCamel(f.name)]);
  }
  return out;
}

/** Every setting (SAELens's and the extra keys), snake_case: what a resumed run must match. */
export function cacheRunnerSettings(cfg: CacheRunnerConfig): Record<string, unknown> {
  const src = cfg as unknown as Record<string, unknown>;
  const out = cacheRunnerConfigToDict(cfg);
  out.d_in = { ...cfg.dIn };
  for (const f of CACHE_RUNNER_EXTRA_FIELDS) out[f.name] = structuredClone(src[toCamel(f.name)]);
  return out;
}

/** Reads a YAML/JSON cache config file with `--key value` overrides applied. */
export async function loadCacheRunnerConfig(
  path: string,
  overrides: Record<string, unknown> = {},
): Promise<CacheRunnerConfig> {
  const dict = await loadConfigFile(path);
  return cacheRunnerConfigFromDict({ ...dict, ...overrides }, { where: path });
}
