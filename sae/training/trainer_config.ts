/**
 * `SAETrainerConfig`: the settings SAELens' `SAETrainer` reads (spec §1.6 `SAETrainerConfig`), in
 * camelCase, with defaults and validation, and its derivation from a runner config.
 * @module
 */

import { TrainingError } from "./errors.ts";

/** The trainer's settings (SAELens `SAETrainerConfig`, device/autocast left out). */
export interface SAETrainerConfig {
  /** Samples (tokens) to train on (`total_training_samples` = runner `training_tokens`). */
  totalTrainingSamples: number;
  /** Rows per batch (`train_batch_size_samples`); counts toward firing statistics. */
  trainBatchSizeSamples: number;
  /** Base learning rate. */
  lr: number;
  /** Cosine floor / decay start; null → lr / 10. */
  lrEnd: number | null;
  /** `constant` | `cosineannealing` | `cosineannealingwarmrestarts` (case-insensitive). */
  lrSchedulerName: string;
  /** Steps of linear learning-rate warm-up. */
  lrWarmUpSteps: number;
  /** Steps of learning-rate decay at the end. */
  lrDecaySteps: number;
  /** Cycles of `cosineannealingwarmrestarts`. */
  nRestartCycles: number;
  /** Adam β₁. */
  adamBeta1: number;
  /** Adam β₂. */
  adamBeta2: number;
  /** Steps without firing after which a feature counts as dead. */
  deadFeatureWindow: number;
  /** Steps per sparsity window (firing frequencies are reset at each window start). */
  featureSamplingWindow: number;
  /** Checkpoints during training (at `checkpointThresholds`). */
  nCheckpoints: number;
  /** Folder holding the checkpoint folders; null disables checkpoints. */
  checkpointPath: string | null;
  /** Also write `final_{n}` after training. */
  saveFinalCheckpoint: boolean;
  /** Train metrics are logged every `logEvery` steps (`wandb_log_frequency`). */
  logEvery: number;
  /** Evals run every `logEvery · evalEveryNLogs` steps (`eval_every_n_wandb_logs`). */
  evalEveryNLogs: number;
  /** Batches consumed to estimate the norm scaling factor (`n_batches_for_norm_estimate`). */
  nBatchesForNormEstimate: number;
}

/** SAELens defaults (`nBatchesForNormEstimate`: 6.39+). */
export const TRAINER_CONFIG_DEFAULTS: Readonly<
  Omit<SAETrainerConfig, "totalTrainingSamples" | "trainBatchSizeSamples">
> = {
  lr: 3e-4,
  lrEnd: null,
  lrSchedulerName: "constant",
  lrWarmUpSteps: 0,
  lrDecaySteps: 0,
  nRestartCycles: 1,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  deadFeatureWindow: 1000,
  featureSamplingWindow: 2000,
  nCheckpoints: 0,
  checkpointPath: null,
  saveFinalCheckpoint: false,
  logEvery: 10,
  evalEveryNLogs: 100,
  nBatchesForNormEstimate: 1000,
};

const SCHEDULERS = ["constant", "cosineannealing", "cosineannealingwarmrestarts"];

function requireInt(cfg: SAETrainerConfig, key: keyof SAETrainerConfig, min: number): void {
  const v = cfg[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new TrainingError(`trainer config ${key} is ${v}, expected a safe integer >= ${min}`);
  }
}

/**
 * Fills defaults and validates: positive integer sizes and windows, lr > 0, betas in [0, 1),
 * a known scheduler, at least one training step.
 *
 * @example
 * ```ts
 * import { createTrainerConfig } from "./trainer_config.ts";
 * const cfg = createTrainerConfig({ totalTrainingSamples: 4096, trainBatchSizeSamples: 512 });
 * if (cfg.lr !== 3e-4 || cfg.logEvery !== 10) throw new Error();
 * ```
 */
export function createTrainerConfig(
  fields:
    & Partial<SAETrainerConfig>
    & Pick<SAETrainerConfig, "totalTrainingSamples" | "trainBatchSizeSamples">,
): SAETrainerConfig {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new TrainingError(
      `trainer config is ${fields === null ? "null" : typeof fields}, expected an object ` +
        "with totalTrainingSamples and trainBatchSizeSamples",
    );
  }
  const known = new Set([
    "totalTrainingSamples",
    "trainBatchSizeSamples",
    ...Object.keys(TRAINER_CONFIG_DEFAULTS),
  ]);
  const unknown = Object.keys(fields).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new TrainingError(`trainer config: unknown key(s) ${unknown.join(", ")}`);
  }
  const cfg: SAETrainerConfig = { ...TRAINER_CONFIG_DEFAULTS, ...fields };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) {
      (cfg as unknown as Record<string, unknown>)[k] =
        (TRAINER_CONFIG_DEFAULTS as unknown as Record<string, unknown>)[k];
    }
  }
  requireInt(cfg, "totalTrainingSamples", 1);
  requireInt(cfg, "trainBatchSizeSamples", 1);
  for (const k of ["lrWarmUpSteps", "lrDecaySteps", "nCheckpoints", "deadFeatureWindow"] as const) {
    requireInt(cfg, k, 0);
  }
  for (
    const k of ["nRestartCycles", "featureSamplingWindow", "logEvery", "evalEveryNLogs"] as const
  ) {
    requireInt(cfg, k, 1);
  }
  requireInt(cfg, "nBatchesForNormEstimate", 1);
  if (!(cfg.lr > 0) || !Number.isFinite(cfg.lr)) {
    throw new TrainingError(`trainer config lr is ${cfg.lr}, expected a finite number > 0`);
  }
  if (cfg.lrEnd !== null && !(cfg.lrEnd >= 0 && Number.isFinite(cfg.lrEnd))) {
    throw new TrainingError(`trainer config lrEnd is ${cfg.lrEnd}, expected a number >= 0 or null`);
  }
  for (const k of ["adamBeta1", "adamBeta2"] as const) {
    if (!(cfg[k] >= 0 && cfg[k] < 1)) {
      throw new TrainingError(`trainer config ${k} is ${cfg[k]}, expected a number in [0, 1)`);
    }
  }
  if (!SCHEDULERS.includes(String(cfg.lrSchedulerName).toLowerCase())) {
    throw new TrainingError(
      `trainer config lrSchedulerName is ${JSON.stringify(cfg.lrSchedulerName)}, expected one of ${
        SCHEDULERS.join(", ")
      }`,
    );
  }
  if (cfg.checkpointPath !== null && typeof cfg.checkpointPath !== "string") {
    throw new TrainingError(
      `trainer config checkpointPath is ${cfg.checkpointPath}, expected a string or null`,
    );
  }
  if (totalSteps(cfg) < 1) {
    throw new TrainingError(
      `trainer config: totalTrainingSamples ${cfg.totalTrainingSamples} < trainBatchSizeSamples ` +
        `${cfg.trainBatchSizeSamples}, expected at least one training step`,
    );
  }
  return cfg;
}

/** `total_training_samples // train_batch_size_samples` (the LR schedule's length). */
export function totalSteps(cfg: SAETrainerConfig): number {
  return Math.floor(cfg.totalTrainingSamples / cfg.trainBatchSizeSamples);
}

/** The config as a JSON-safe snake_case dict (recorded in `trainer_state.json`). */
export function trainerConfigToDict(cfg: SAETrainerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) {
    out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v;
  }
  return out;
}
