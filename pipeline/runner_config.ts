/**
 * `RunnerConfig`: SAELens's `LanguageModelSAERunnerConfig` in camelCase, read from either
 * spelling, in the nested v6 form or the flat v3–v5 form, with SAELens' post-init defaults and
 * checks; and written back as `runner_cfg.json` with 6.18's field set (which SAELens 6.49.2, the
 * version saeflow follows, reads: its newer keys take their defaults), stamped 6.49.2.
 * @module
 */

import { ConfigError, configWarn, describeValue } from "../config/errors.ts";
import { loadConfigFile } from "../config/load.ts";
import { createTrainerConfig, type SAETrainerConfig } from "../sae/training/trainer_config.ts";
import { type FieldSpec, readField } from "../config/fields.ts";
import { isPlainObject, snakeizeKeys, toCamel } from "../config/naming.ts";
import {
  LOGGER_FIELDS,
  LR_SCHEDULERS,
  NEWER_LOGGER_KEYS,
  NEWER_RUNNER_KEYS,
  RUNNER_FIELDS,
} from "./runner_fields.ts";
import { flatToNested } from "./runner_legacy.ts";
import { type SeqposSlice, validateSeqposSlice } from "../config/seqpos.ts";
import { defaultCachedActivationsPath, defaultRunName } from "../config/derived.ts";
import {
  type Dtype,
  normalizeDtype,
  trainingConfigFromDict,
  trainingConfigToDict,
  type TrainingSAEConfig,
} from "../sae/config.ts";
import type { SpecialToken } from "../sae/metadata.ts";

/** SAELens `LoggingConfig` (W&B settings; saeflow records them for `runner_cfg.json`). */
export interface LoggingConfig {
  /** SAELens `log_to_wandb` (default true). */
  logToWandb: boolean;
  /** SAELens `log_activations_store_to_wandb` (default false). */
  logActivationsStoreToWandb: boolean;
  /** SAELens `log_optimizer_state_to_wandb` (default false). */
  logOptimizerStateToWandb: boolean;
  /** SAELens `wandb_project` (default "sae_lens_training"). */
  wandbProject: string;
  /** SAELens `wandb_id` (default null). */
  wandbId: string | null;
  /** Filled with the default run name when not given. */
  runName: string | null;
  /** SAELens `wandb_entity` (default null). */
  wandbEntity: string | null;
  /** SAELens `wandb_log_frequency` (default 10). */
  wandbLogFrequency: number;
  /** SAELens `eval_every_n_wandb_logs` (default 100). */
  evalEveryNWandbLogs: number;
}

/** SAELens `LanguageModelSAERunnerConfig` (6.18 field set), camelCase; defaults as in §1.6. */
export interface RunnerConfig {
  /** SAELens `sae`: the nested training SAE config. */
  sae: TrainingSAEConfig;
  /** SAELens `model_name` (default "gelu-2l"). */
  modelName: string;
  /** SAELens `model_class_name` (default "HookedTransformer"). */
  modelClassName: string;
  /** SAELens `hook_name` (default "blocks.0.hook_mlp_out"). */
  hookName: string;
  /** SAELens `hook_eval` (default "NOT_IN_USE"). */
  hookEval: string;
  /** SAELens `hook_head_index` (default null). */
  hookHeadIndex: number | null;
  /** SAELens `dataset_path` (default ""). */
  datasetPath: string;
  /** SAELens `dataset_trust_remote_code` (default true). */
  datasetTrustRemoteCode: boolean;
  /** SAELens `streaming` (default true). */
  streaming: boolean;
  /** SAELens `is_dataset_tokenized` (default true). */
  isDatasetTokenized: boolean;
  /** SAELens `context_size` (default 128). */
  contextSize: number;
  /** SAELens `use_cached_activations` (default false). */
  useCachedActivations: boolean;
  /** SAELens `cached_activations_path` (default null). */
  cachedActivationsPath: string | null;
  /** SAELens `from_pretrained_path` (default null). */
  fromPretrainedPath: string | null;
  /** SAELens `n_batches_in_buffer` (default 20). */
  nBatchesInBuffer: number;
  /** SAELens `training_tokens` (default 2000000). */
  trainingTokens: number;
  /** SAELens `store_batch_size_prompts` (default 32). */
  storeBatchSizePrompts: number;
  /** SAELens `seqpos_slice` (default `[null]`). */
  seqposSlice: (number | null)[];
  /** SAELens `disable_concat_sequences` (default false). */
  disableConcatSequences: boolean;
  /** SAELens `sequence_separator_token` (default "bos"). */
  sequenceSeparatorToken: SpecialToken;
  /** SAELens `device` (default "cpu"). */
  device: string;
  /** Resolved: `"with_model"` becomes `device`. */
  actStoreDevice: string;
  /** SAELens `seed` (default 42). */
  seed: number;
  /** SAELens `dtype` (default "float32"). */
  dtype: Dtype;
  /** SAELens `prepend_bos` (default true). */
  prependBos: boolean;
  /** SAELens `autocast` (default false). */
  autocast: boolean;
  /** SAELens `autocast_lm` (default false). */
  autocastLm: boolean;
  /** SAELens `compile_llm` (default false). */
  compileLlm: boolean;
  /** SAELens `llm_compilation_mode` (default null). */
  llmCompilationMode: string | null;
  /** SAELens `compile_sae` (default false). */
  compileSae: boolean;
  /** SAELens `sae_compilation_mode` (default null). */
  saeCompilationMode: string | null;
  /** SAELens `train_batch_size_tokens` (default 4096). */
  trainBatchSizeTokens: number;
  /** SAELens `adam_beta1` (default 0.9). */
  adamBeta1: number;
  /** SAELens `adam_beta2` (default 0.999). */
  adamBeta2: number;
  /** SAELens `lr` (default 3e-4). */
  lr: number;
  /** SAELens `lr_scheduler_name` (default "constant"). */
  lrSchedulerName: string;
  /** SAELens `lr_warm_up_steps` (default 0). */
  lrWarmUpSteps: number;
  /** Resolved: defaults to `lr / 10`. */
  lrEnd: number;
  /** SAELens `lr_decay_steps` (default 0). */
  lrDecaySteps: number;
  /** SAELens `n_restart_cycles` (default 1). */
  nRestartCycles: number;
  /** SAELens `dead_feature_window` (default 1000). */
  deadFeatureWindow: number;
  /** SAELens `feature_sampling_window` (default 2000). */
  featureSamplingWindow: number;
  /** SAELens `dead_feature_threshold` (default 1e-8). */
  deadFeatureThreshold: number;
  /** SAELens `n_eval_batches` (default 10). */
  nEvalBatches: number;
  /** SAELens `eval_batch_size_prompts` (default null). */
  evalBatchSizePrompts: number | null;
  /** SAELens `logger`: the nested W&B logging config. */
  logger: LoggingConfig;
  /** SAELens `n_checkpoints` (default 0). */
  nCheckpoints: number;
  /** With the run id appended (`checkpoints/<id>`) unless read back from a saved config. */
  checkpointPath: string | null;
  /** SAELens `save_final_checkpoint` (default false). */
  saveFinalCheckpoint: boolean;
  /** SAELens `output_path` (default "output"). */
  outputPath: string | null;
  /** SAELens `resume_from_checkpoint` (default null). */
  resumeFromCheckpoint: string | null;
  /** SAELens `verbose` (default true). */
  verbose: boolean;
  /** SAELens `model_kwargs` (default `{}`). */
  modelKwargs: Record<string, unknown>;
  /** Resolved: `{center_writing_weights: false}` for HookedTransformer, else `{}`. */
  modelFromPretrainedKwargs: Record<string, unknown>;
  /** SAELens `sae_lens_version` (default "6.49.2", `SAE_LENS_VERSION`). */
  saeLensVersion: string;
  /** SAELens `sae_lens_training_version` (default "6.49.2"). */
  saeLensTrainingVersion: string;
  /** SAELens `exclude_special_tokens` (default false). */
  excludeSpecialTokens: boolean | number[];
  /** SAELens (newest) `activations_mixing_fraction` (default 0.5; 0 serves in order). */
  activationsMixingFraction: number;
  /** SAELens (newest) `n_batches_for_norm_estimate` (default 1000). */
  nBatchesForNormEstimate: number;
  /** saeflow: the dataset split to read (default "train", as SAELens loads). */
  datasetSplit: string;
  /** saeflow: the dataset repo revision (default null: "main"). */
  datasetRevision: string | null;
  /** saeflow: rows of a local `.txt` dataset, as HF's text builder `sample_by` (default "line"). */
  datasetTextSampleBy: "line" | "paragraph" | "document";
}

/** Options of {@link runnerConfigFromDict}. */
export interface RunnerConfigOptions {
  /**
   * The dict is a saved `runner_cfg.json` (SAELens `from_dict`): `checkpoint_path` is kept
   * verbatim instead of getting a run id appended. Default false.
   */
  fromSaved?: boolean;
  /** Run id appended to `checkpoint_path` (default: `logger.wandb_id`, else 8 random hex). */
  runId?: string;
  /** Prefix for error messages (e.g. the config file path). */
  where?: string;
}

/**
 * Checks a `sequence_separator_token` value: `"bos"`, `"eos"`, `"sep"`, a token id or null;
 * anything else is a {@link ConfigError} naming `where`.
 */
export function checkSpecialToken(value: unknown, where: string): SpecialToken {
  if (
    value === null || value === "bos" || value === "eos" || value === "sep" ||
    (Number.isSafeInteger(value) && (value as number) >= 0)
  ) return value as SpecialToken;
  throw new ConfigError(
    `${where}: sequence_separator_token is ${describeValue(value)}, expected "bos", "eos", ` +
      `"sep", a token id or null`,
  );
}

function checkExcludeSpecialTokens(value: unknown, where: string): boolean | number[] {
  if (typeof value === "boolean") return value;
  if (Array.isArray(value) && value.every((v) => Number.isSafeInteger(v))) return [...value];
  throw new ConfigError(
    `${where}: exclude_special_tokens is ${describeValue(value)}, expected true, false or a ` +
      `list of integer token ids`,
  );
}

function readAll(
  fields: readonly FieldSpec[],
  dict: Record<string, unknown>,
  where: string,
  skip: ReadonlySet<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (!skip.has(f.name)) out[toCamel(f.name)] = readField(f, dict, where);
  return out;
}

function rejectUnknown(
  dict: Record<string, unknown>,
  fields: readonly FieldSpec[],
  newer: ReadonlySet<string>,
  where: string,
): void {
  const known = new Set(fields.map((f) => f.name));
  const unknown = Object.keys(dict).filter((k) => !known.has(k) && !newer.has(k));
  if (unknown.length > 0) {
    const hint = where.endsWith("logger")
      ? ""
      : LOGGER_FIELDS.some((f) => unknown.includes(f.name))
      ? " (W&B settings go in the nested logger object)"
      : "";
    throw new ConfigError(`${where}: unknown key(s) ${unknown.join(", ")}${hint}`);
  }
  const ignored = Object.keys(dict).filter((k) => newer.has(k));
  if (ignored.length > 0) {
    configWarn(`${where}: ignoring settings of newer SAELens versions: ${ignored.join(", ")}`);
  }
}

function randomRunId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/**
 * Reads a runner config (snake_case or camelCase keys; nested v6 form with `sae`/`logger`, or the
 * flat v3–v5 form) and applies SAELens' post-init: `actStoreDevice` "with_model" → `device`,
 * `lrEnd` default `lr/10`, default run name, default `modelFromPretrainedKwargs`, default cached
 * activations path, run id appended to `checkpointPath`; checks `context_size ≥ 0`, the
 * `seqpos_slice` (§4.6), special-token settings and the LR scheduler name. Unknown keys throw;
 * keys of newer SAELens versions and dropped v3–v5 settings are ignored with a warning.
 *
 * @example
 * ```ts
 * import { runnerConfigFromDict } from "./runner_config.ts";
 * const cfg = runnerConfigFromDict({ sae: { architecture: "standard", dIn: 64, dSae: 256 } }, { runId: "abc" });
 * if (cfg.lrEnd !== 3e-4 / 10 || cfg.checkpointPath !== "checkpoints/abc") throw new Error();
 * if (cfg.logger.runName !== "standard-256-LR-0.0003-Tokens-2.000e+06") throw new Error();
 * ```
 */
export function runnerConfigFromDict(
  obj: Record<string, unknown>,
  options: RunnerConfigOptions = {},
): RunnerConfig {
  const where = options.where ?? "runner config";
  if (!isPlainObject(obj)) {
    throw new ConfigError(`${where} is ${describeValue(obj)}, expected a JSON object`);
  }
  let dict = snakeizeKeys(obj, { context: where });
  if (!("sae" in dict)) {
    const { nested, ignored } = flatToNested(dict);
    if (ignored.length > 0) {
      configWarn(
        `${where}: flat (SAELens v3–v5) config; ignoring settings SAELens 6 removed or that ` +
          `don't apply to this architecture: ${ignored.join(", ")}`,
      );
    }
    dict = nested;
  }
  rejectUnknown(dict, RUNNER_FIELDS, NEWER_RUNNER_KEYS, where);
  if (!isPlainObject(dict.sae)) {
    throw new ConfigError(`${where}: sae is ${describeValue(dict.sae)}, expected a JSON object`);
  }
  const sae = trainingConfigFromDict(dict.sae, {
    where: `${where}: sae`,
    onUnknown: (keys) => configWarn(`${where}: sae: ignoring unknown key(s) ${keys.join(", ")}`),
  });
  const loggerDict = dict.logger === undefined ? {} : dict.logger;
  if (!isPlainObject(loggerDict)) {
    throw new ConfigError(`${where}: logger is ${describeValue(loggerDict)}, expected an object`);
  }
  const loggerSnake = snakeizeKeys(loggerDict, { context: `${where}: logger` });
  rejectUnknown(loggerSnake, LOGGER_FIELDS, NEWER_LOGGER_KEYS, `${where}: logger`);
  const logger = readAll(
    LOGGER_FIELDS,
    loggerSnake,
    `${where}: logger`,
    new Set(),
  ) as unknown as LoggingConfig;

  const cfg = readAll(
    RUNNER_FIELDS,
    dict,
    where,
    new Set(["sae", "logger"]),
  ) as unknown as RunnerConfig;
  cfg.sae = sae;
  cfg.logger = logger;
  cfg.dtype = normalizeDtype(cfg.dtype, `${where}: dtype`);
  cfg.sequenceSeparatorToken = checkSpecialToken(cfg.sequenceSeparatorToken, where);
  cfg.excludeSpecialTokens = checkExcludeSpecialTokens(cfg.excludeSpecialTokens, where);
  try {
    validateSeqposSlice(cfg.seqposSlice, cfg.contextSize);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
  cfg.seqposSlice = [...(cfg.seqposSlice as SeqposSlice)];
  if (!LR_SCHEDULERS.includes(cfg.lrSchedulerName.toLowerCase())) {
    throw new ConfigError(
      `${where}: lr_scheduler_name is ${describeValue(cfg.lrSchedulerName)}, expected one of ` +
        `${LR_SCHEDULERS.join(", ")} (case-insensitive)`,
    );
  }
  if (cfg.hookEval !== "NOT_IN_USE") {
    configWarn(`${where}: hook_eval is deprecated and unused; remove it from the config`);
  }

  // SAELens __post_init__ defaults.
  if (cfg.useCachedActivations && cfg.cachedActivationsPath === null) {
    cfg.cachedActivationsPath = defaultCachedActivationsPath(
      cfg.datasetPath,
      cfg.modelName,
      cfg.hookName,
      cfg.hookHeadIndex,
    );
  }
  if (cfg.logger.runName === null) {
    cfg.logger.runName = defaultRunName(sae.architecture, sae.dSae, cfg.lr, cfg.trainingTokens);
  }
  if (cfg.modelFromPretrainedKwargs === null) {
    cfg.modelFromPretrainedKwargs = cfg.modelClassName === "HookedTransformer"
      ? { center_writing_weights: false }
      : {};
  }
  if (cfg.actStoreDevice === "with_model") cfg.actStoreDevice = cfg.device;
  if ((cfg.lrEnd as number | null) === null) cfg.lrEnd = cfg.lr / 10;
  if (cfg.checkpointPath !== null && !options.fromSaved) {
    const id = options.runId ?? cfg.logger.wandbId ?? randomRunId();
    cfg.checkpointPath = `${cfg.checkpointPath}/${id}`;
  }
  return cfg;
}

/**
 * The `runner_cfg.json` dict: exactly SAELens 6.18's keys in its order (read by 6.49.2),
 * snake_case, with the nested `sae` (training config dict) and `logger`.
 *
 * @example
 * ```ts
 * import { runnerConfigFromDict, runnerConfigToDict } from "./runner_config.ts";
 * const cfg = runnerConfigFromDict({ sae: { architecture: "topk", d_in: 8, d_sae: 32, k: 4 } });
 * const dict = runnerConfigToDict(cfg);
 * if (Object.keys(dict)[0] !== "sae" || (dict.sae as { k: number }).k !== 4) throw new Error();
 * ```
 */
export function runnerConfigToDict(cfg: RunnerConfig): Record<string, unknown> {
  const source = cfg as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of RUNNER_FIELDS) {
    if (f.saeflow && JSON.stringify(source[toCamel(f.name)]) === JSON.stringify(f.default)) {
      continue;
    }
    if (f.name === "sae") out.sae = trainingConfigToDict(cfg.sae);
    else if (f.name === "logger") {
      const logger: Record<string, unknown> = {};
      const src = cfg.logger as unknown as Record<string, unknown>;
      for (const lf of LOGGER_FIELDS) logger[lf.name] = structuredClone(src[toCamel(lf.name)]);
      out.logger = logger;
    } else out[f.name] = structuredClone(source[toCamel(f.name)]);
  }
  return out;
}

/**
 * Reads a runner config file ({@link loadConfigFile} + {@link runnerConfigFromDict}); type and
 * range errors name the file and the field.
 */
export async function loadRunnerConfig(
  path: string,
  options: RunnerConfigOptions = {},
): Promise<RunnerConfig> {
  return runnerConfigFromDict(await loadConfigFile(path), { where: path, ...options });
}

/**
 * SAELens `to_sae_trainer_config()`: the trainer settings of a runner config
 * (`training_tokens` → totalTrainingSamples, `train_batch_size_tokens` → trainBatchSizeSamples,
 * `logger.wandb_log_frequency` → logEvery, `logger.eval_every_n_wandb_logs` → evalEveryNLogs;
 * `n_batches_for_norm_estimate` → nBatchesForNormEstimate).
 *
 * @example
 * ```ts
 * import { runnerConfigFromDict, trainerConfigFromRunner } from "./runner_config.ts";
 * const runner = runnerConfigFromDict({ sae: { architecture: "standard", dIn: 8, dSae: 16 } }, { runId: "x" });
 * const cfg = trainerConfigFromRunner(runner);
 * if (cfg.totalTrainingSamples !== 2_000_000 || cfg.checkpointPath !== "checkpoints/x") throw new Error();
 * ```
 */
export function trainerConfigFromRunner(
  runner: RunnerConfig,
  overrides: Partial<SAETrainerConfig> = {},
): SAETrainerConfig {
  return createTrainerConfig({
    totalTrainingSamples: runner.trainingTokens,
    trainBatchSizeSamples: runner.trainBatchSizeTokens,
    lr: runner.lr,
    lrEnd: runner.lrEnd,
    lrSchedulerName: runner.lrSchedulerName,
    lrWarmUpSteps: runner.lrWarmUpSteps,
    lrDecaySteps: runner.lrDecaySteps,
    nRestartCycles: runner.nRestartCycles,
    adamBeta1: runner.adamBeta1,
    adamBeta2: runner.adamBeta2,
    deadFeatureWindow: runner.deadFeatureWindow,
    featureSamplingWindow: runner.featureSamplingWindow,
    nCheckpoints: runner.nCheckpoints,
    checkpointPath: runner.checkpointPath,
    saveFinalCheckpoint: runner.saveFinalCheckpoint,
    logEvery: runner.logger.wandbLogFrequency,
    evalEveryNLogs: runner.logger.evalEveryNWandbLogs,
    nBatchesForNormEstimate: runner.nBatchesForNormEstimate,
    ...overrides,
  });
}
