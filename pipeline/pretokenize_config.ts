/**
 * `PretokenizeRunnerConfig`: SAELens's config of the pretokenizing runner (§1.11), read from
 * snake_case or camelCase keys with SAELens's defaults, plus saeflow's dataset revision and
 * `.txt` row rule.
 * @module
 */

import { ConfigError, describeValue } from "../config/errors.ts";
import { type FieldSpec, MAX_SIZE_FIELD, readField } from "../config/fields.ts";
import { isPlainObject, snakeizeKeys, toCamel } from "../config/naming.ts";
import type { SpecialToken } from "../sae/metadata.ts";

/** SAELens `PretokenizeRunnerConfig` (camelCase) with saeflow's additions. */
export interface PretokenizeRunnerConfig {
  /** SAELens `tokenizer_name` (default "gpt2"): a hub repo or a local folder. */
  tokenizerName: string;
  /** SAELens `dataset_path` (required in practice). */
  datasetPath: string;
  /** SAELens `dataset_name` (a dataset config; must be null: saeflow reads data files). */
  datasetName: string | null;
  /** SAELens `dataset_trust_remote_code` (no effect). */
  datasetTrustRemoteCode: boolean | null;
  /** SAELens `split` (default "train"). */
  split: string;
  /** SAELens `data_files` (must be null). */
  dataFiles: string[] | null;
  /** SAELens `data_dir` (must be null). */
  dataDir: string | null;
  /** SAELens `num_proc` (default 4): decides where the packing restarts (see the runner). */
  numProc: number;
  /** SAELens `context_size` (default 128). */
  contextSize: number;
  /** SAELens `column_name` (default "text"). */
  columnName: string;
  /** SAELens `use_chat_formatting` (must be false). */
  useChatFormatting: boolean;
  /** SAELens `shuffle` (default true). */
  shuffle: boolean;
  /** SAELens `seed` (default null: a random order). */
  seed: number | null;
  /** SAELens `streaming` (default false): no `num_proc` split of the dataset. */
  streaming: boolean;
  /** SAELens `pretokenize_batch_size` (default 1000; null: one batch per process shard). */
  pretokenizeBatchSize: number | null;
  /** SAELens `begin_batch_token` (default "bos"). */
  beginBatchToken: SpecialToken;
  /** SAELens `begin_sequence_token` (default null). */
  beginSequenceToken: SpecialToken;
  /** SAELens `sequence_separator_token` (default "bos"). */
  sequenceSeparatorToken: SpecialToken;
  /** SAELens `disable_concat_sequences` (default false). */
  disableConcatSequences: boolean;
  /** SAELens `save_path` (required: saeflow writes a local folder). */
  savePath: string | null;
  /** SAELens `hf_repo_id` (must be null: upload the folder separately). */
  hfRepoId: string | null;
  /** SAELens `hf_num_shards` (default 64): the number of Parquet files written. */
  hfNumShards: number;
  /** SAELens `hf_revision`. */
  hfRevision: string;
  /** SAELens `hf_is_private_repo`. */
  hfIsPrivateRepo: boolean;
  /** saeflow: the dataset revision (default null: "main"). */
  datasetRevision: string | null;
  /** saeflow: rows of a `.txt` dataset (default "line"). */
  datasetTextSampleBy: "line" | "paragraph" | "document";
}

const str = { type: "string" } as const;
const strOrNull = { type: "string", nullable: true } as const;
const bool = { type: "bool" } as const;
const tokenKind = { type: "any" } as const;

/** SAELens's fields in dataclass order, then saeflow's. */
export const PRETOKENIZE_FIELDS: readonly FieldSpec[] = [
  { name: "tokenizer_name", kind: str, default: "gpt2" },
  { name: "dataset_path", kind: str, default: "" },
  { name: "dataset_name", kind: strOrNull, default: null },
  { name: "dataset_trust_remote_code", kind: { type: "any" }, default: null },
  { name: "split", kind: strOrNull, default: "train" },
  { name: "data_files", kind: { type: "any" }, default: null },
  { name: "data_dir", kind: strOrNull, default: null },
  { name: "num_proc", kind: { type: "int", min: 1, max: 4096 }, default: 4 },
  { name: "context_size", kind: { type: "int", min: 1, max: MAX_SIZE_FIELD }, default: 128 },
  { name: "column_name", kind: str, default: "text" },
  { name: "use_chat_formatting", kind: bool, default: false },
  { name: "shuffle", kind: bool, default: true },
  { name: "seed", kind: { type: "int", nullable: true }, default: null },
  { name: "streaming", kind: bool, default: false },
  {
    name: "pretokenize_batch_size",
    kind: { type: "int", min: 1, nullable: true },
    default: 1000,
  },
  { name: "begin_batch_token", kind: tokenKind, default: "bos" },
  { name: "begin_sequence_token", kind: tokenKind, default: null },
  { name: "sequence_separator_token", kind: tokenKind, default: "bos" },
  { name: "disable_concat_sequences", kind: bool, default: false },
  { name: "save_path", kind: strOrNull, default: null },
  { name: "hf_repo_id", kind: strOrNull, default: null },
  { name: "hf_num_shards", kind: { type: "int", min: 1, max: 100000 }, default: 64 },
  { name: "hf_revision", kind: str, default: "main" },
  { name: "hf_is_private_repo", kind: bool, default: false },
  // saeflow
  { name: "dataset_revision", kind: strOrNull, default: null },
  {
    name: "dataset_text_sample_by",
    kind: { type: "enum", values: ["line", "paragraph", "document"] },
    default: "line",
  },
];

function token(value: unknown, key: string, where: string): SpecialToken {
  if (
    value === null || value === "bos" || value === "eos" || value === "sep" ||
    (Number.isSafeInteger(value) && (value as number) >= 0)
  ) return value as SpecialToken;
  throw new ConfigError(
    `${where}: ${key} is ${describeValue(value)}, expected "bos", "eos", "sep", a token id or null`,
  );
}

/**
 * Reads a pretokenize config (see the module doc); unknown keys and what saeflow cannot do
 * (`hf_repo_id`, `dataset_name`, `data_files`, `data_dir`, `use_chat_formatting`, no
 * `save_path`) are refused with the reason. SAELens's rule `streaming` ⇒ `num_proc == 1` holds.
 *
 * @example
 * ```ts
 * import { pretokenizeConfigFromDict } from "./pretokenize_config.ts";
 * const cfg = pretokenizeConfigFromDict({ dataset_path: "d.jsonl", save_path: "out", context_size: 64 });
 * if (cfg.beginBatchToken !== "bos" || cfg.sequenceSeparatorToken !== "bos" || cfg.numProc !== 4) throw new Error();
 * ```
 */
export function pretokenizeConfigFromDict(
  obj: Record<string, unknown>,
  options: { where?: string } = {},
): PretokenizeRunnerConfig {
  const where = options.where ?? "pretokenize config";
  if (!isPlainObject(obj)) {
    throw new ConfigError(`${where} is ${describeValue(obj)}, expected a JSON object`);
  }
  const dict = snakeizeKeys(obj, { context: where });
  const known = new Set(PRETOKENIZE_FIELDS.map((f) => f.name));
  const unknown = Object.keys(dict).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new ConfigError(`${where}: unknown key(s) ${unknown.join(", ")}`);
  const out: Record<string, unknown> = {};
  for (const f of PRETOKENIZE_FIELDS) out[toCamel(f.name)] = readField(f, dict, where);
  const cfg = out as unknown as PretokenizeRunnerConfig;
  cfg.beginBatchToken = token(cfg.beginBatchToken, "begin_batch_token", where);
  cfg.beginSequenceToken = token(cfg.beginSequenceToken, "begin_sequence_token", where);
  cfg.sequenceSeparatorToken = token(cfg.sequenceSeparatorToken, "sequence_separator_token", where);
  if (cfg.split === null) cfg.split = "train";
  if (cfg.datasetPath === "") {
    throw new ConfigError(`${where}: dataset_path is empty; give a local file, folder or hub id`);
  }
  if (cfg.savePath === null) {
    throw new ConfigError(
      `${where}: save_path is not set; saeflow writes the pretokenized dataset to a local ` +
        "folder (upload it to the hub separately)",
    );
  }
  const unsupported: [string, unknown][] = [
    ["hf_repo_id", cfg.hfRepoId],
    ["dataset_name", cfg.datasetName],
    ["data_files", cfg.dataFiles],
    ["data_dir", cfg.dataDir],
  ];
  for (const [k, v] of unsupported) {
    if (v !== null) {
      throw new ConfigError(
        `${where}: ${k} is ${describeValue(v)}; saeflow does not support it (it reads the data ` +
          "files of dataset_path and split, and writes save_path; upload the folder separately)",
      );
    }
  }
  if (cfg.useChatFormatting) {
    throw new ConfigError(`${where}: use_chat_formatting is not supported by saeflow`);
  }
  const trc = cfg.datasetTrustRemoteCode as unknown;
  if (trc !== null && typeof trc !== "boolean") {
    throw new ConfigError(
      `${where}: dataset_trust_remote_code is ${describeValue(trc)}, expected true, false or null`,
    );
  }
  if (cfg.streaming && cfg.numProc > 1) {
    throw new ConfigError(`${where}: num_proc must be 1 when streaming is True`);
  }
  return cfg;
}

/** The dict of a config, snake_case, SAELens's keys then saeflow's. */
export function pretokenizeConfigToDict(cfg: PretokenizeRunnerConfig): Record<string, unknown> {
  const src = cfg as unknown as Record<string, unknown>;
  return Object.fromEntries(
    PRETOKENIZE_FIELDS.map((f) => [f.name, structuredClone(src[toCamel(f.name)])]),
  );
}
