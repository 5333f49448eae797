/**
 * Values SAELens derives from a runner config: training steps, buffer size, the default run name,
 * the default cached-activations path, and checkpoint thresholds (§1.6, §5.5).
 * @module
 */

import { ConfigError } from "./errors.ts";
import { formatPythonExp, pythonFloatRepr } from "./pyformat.ts";

/**
 * `training_tokens // train_batch_size_tokens` (SAELens `total_training_steps`).
 *
 * @example
 * ```ts
 * import { totalTrainingSteps } from "./derived.ts";
 * if (totalTrainingSteps({ trainingTokens: 2_000_000, trainBatchSizeTokens: 4096 }) !== 488) {
 *   throw new Error();
 * }
 * ```
 */
export function totalTrainingSteps(
  cfg: { trainingTokens: number; trainBatchSizeTokens: number },
): number {
  return Math.floor(cfg.trainingTokens / cfg.trainBatchSizeTokens);
}

/** `train_batch_size_tokens · context_size · n_batches_in_buffer` (SAELens `tokens_per_buffer`). */
export function tokensPerBuffer(
  cfg: { trainBatchSizeTokens: number; contextSize: number; nBatchesInBuffer: number },
): number {
  return cfg.trainBatchSizeTokens * cfg.contextSize * cfg.nBatchesInBuffer;
}

/**
 * SAELens' default run name `f"{arch}-{d_sae}-LR-{lr}-Tokens-{training_tokens:3.3e}"`, with
 * Python's float formatting.
 *
 * @example
 * ```ts
 * import { defaultRunName } from "./derived.ts";
 * if (defaultRunName("standard", 1024, 3e-4, 2_000_000) !== "standard-1024-LR-0.0003-Tokens-2.000e+06") {
 *   throw new Error();
 * }
 * ```
 */
export function defaultRunName(
  architecture: string,
  dSae: number,
  lr: number,
  trainingTokens: number,
): string {
  return `${architecture}-${dSae}-LR-${pythonFloatRepr(lr)}-Tokens-${
    formatPythonExp(trainingTokens, 3, 3)
  }`;
}

/**
 * SAELens' default cache folder `activations/{dataset_path}/{model_name}/{hook_name}[_{head}]`,
 * with `/` in the dataset and model names replaced by `_`.
 */
export function defaultCachedActivationsPath(
  datasetPath: string,
  modelName: string,
  hookName: string,
  hookHeadIndex: number | null,
): string {
  const path = `activations/${datasetPath.replaceAll("/", "_")}/${
    modelName.replaceAll("/", "_")
  }/${hookName}`;
  return hookHeadIndex === null ? path : `${path}_${hookHeadIndex}`;
}

/**
 * Token counts after which a checkpoint is written: Python
 * `list(range(0, total, ceil(total / (n + 1))))[1:]` (§5.5). A checkpoint is due the first time
 * the number of training samples passes the next threshold.
 *
 * @example
 * ```ts
 * import { checkpointThresholds } from "./derived.ts";
 * if (checkpointThresholds(100, 2).join() !== "34,68") throw new Error();
 * if (checkpointThresholds(100, 0).length !== 0) throw new Error();
 * ```
 */
export function checkpointThresholds(totalTokens: number, nCheckpoints: number): number[] {
  if (!Number.isSafeInteger(totalTokens) || totalTokens <= 0) {
    throw new ConfigError(
      `checkpoint thresholds: training_tokens is ${totalTokens}, expected a positive integer`,
    );
  }
  if (!Number.isSafeInteger(nCheckpoints) || nCheckpoints < 0) {
    throw new ConfigError(
      `checkpoint thresholds: n_checkpoints is ${nCheckpoints}, expected a non-negative integer`,
    );
  }
  const step = Math.ceil(totalTokens / (nCheckpoints + 1));
  const out: number[] = [];
  for (let t = step; t < totalTokens; t += step) out.push(t);
  return out;
}
