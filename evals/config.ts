/**
 * SAELens's `EvalConfig` (spec §6.1) in camelCase: which metric groups {@link runEvals} computes
 * and on how many batches. Every metric is off by default, as in SAELens;
 * {@link getEvalEverythingConfig} turns them all on (what the batch eval CLI runs). Config files
 * and dicts may use SAELens's snake_case keys (`compute_kl`, `n_eval_reconstruction_batches`).
 * @module
 */

import { toCamel } from "../config/naming.ts";
import { describeValue, SaeflowError } from "../util/errors.ts";
import { didYouMean } from "../util/suggest.ts";
import { SAEFLOW_VERSION } from "../util/version.ts";

/** An evaluation that cannot run: a bad config, an SAE that does not fit the model, no data. */
export class EvalError extends SaeflowError {}

/** SAELens `EvalConfig` (camelCase). */
export interface EvalConfig {
  /** Prompts per eval batch (null: the token source's `storeBatchSizePrompts`). */
  batchSizePrompts: number | null;
  /** Batches for the CE / KL metrics (default 10). */
  nEvalReconstructionBatches: number;
  /** KL divergence of the next-token distributions with the SAE and zero-ablated. */
  computeKl: boolean;
  /** Cross-entropy loss clean, with the SAE and zero-ablated, and `ce_loss_score`. */
  computeCeLoss: boolean;
  /** Batches for the L2, sparsity and variance metrics (default 1). */
  nEvalSparsityVarianceBatches: number;
  /** `shrinkage/…`: l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias. */
  computeL2Norms: boolean;
  /** `sparsity/…`: l0, l1. */
  computeSparsityMetrics: boolean;
  /** `reconstruction_quality/…`: explained_variance (+ legacy), mse, cossim. */
  computeVarianceMetrics: boolean;
  /** Per-feature `feature_density` and `consistent_activation_heuristic`. */
  computeFeaturewiseDensityStatistics: boolean;
  /** Per-feature `encoder_norm`, `encoder_decoder_cosine_sim`, `encoder_bias`. */
  computeFeaturewiseWeightBasedMetrics: boolean;
  /** Recorded in results (SAELens: its package version; here saeflow's). */
  libraryVersion: string;
  /** Recorded in results (SAELens: the short git hash; saeflow: "unknown"). */
  gitHash: string;
}

/** The SAELens defaults: every metric off, 10 reconstruction batches, 1 sparsity batch. */
export const DEFAULT_EVAL_CONFIG: Readonly<EvalConfig> = Object.freeze({
  batchSizePrompts: null,
  nEvalReconstructionBatches: 10,
  computeKl: false,
  computeCeLoss: false,
  nEvalSparsityVarianceBatches: 1,
  computeL2Norms: false,
  computeSparsityMetrics: false,
  computeVarianceMetrics: false,
  computeFeaturewiseDensityStatistics: false,
  computeFeaturewiseWeightBasedMetrics: false,
  libraryVersion: SAEFLOW_VERSION,
  gitHash: "unknown",
});

const BOOL_KEYS = [
  "computeKl",
  "computeCeLoss",
  "computeL2Norms",
  "computeSparsityMetrics",
  "computeVarianceMetrics",
  "computeFeaturewiseDensityStatistics",
  "computeFeaturewiseWeightBasedMetrics",
] as const;
const COUNT_KEYS = ["nEvalReconstructionBatches", "nEvalSparsityVarianceBatches"] as const;

/**
 * An `EvalConfig` from partial fields in camelCase or SAELens snake_case (unknown keys, wrong
 * types and negative counts are an {@link EvalError} naming the key), defaults for the rest.
 *
 * @example
 * ```ts
 * import { evalConfig } from "./config.ts";
 * const cfg = evalConfig({ compute_kl: true, n_eval_reconstruction_batches: 2 });
 * if (!cfg.computeKl || cfg.nEvalReconstructionBatches !== 2 || cfg.computeCeLoss) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function evalConfig(fields: Partial<EvalConfig> | Record<string, unknown> = {}): EvalConfig {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new EvalError(`eval config must be an object, got ${describeValue(fields)}`);
  }
  const out: EvalConfig = { ...DEFAULT_EVAL_CONFIG };
  const known = Object.keys(DEFAULT_EVAL_CONFIG);
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(fields)) {
    const camel = toCamel(key);
    if (!known.includes(camel)) {
      throw new EvalError(
        `eval config: unknown key ${JSON.stringify(key)}${didYouMean(camel, known)}`,
      );
    }
    const prev = seen.get(camel);
    if (prev !== undefined) {
      throw new EvalError(`eval config: ${prev} and ${key} name the same field; give one`);
    }
    seen.set(camel, key);
    if (value === undefined) continue;
    (out as unknown as Record<string, unknown>)[camel] = value;
  }
  for (const k of BOOL_KEYS) {
    if (typeof out[k] !== "boolean") {
      throw new EvalError(`eval config: ${k} must be true or false, got ${describeValue(out[k])}`);
    }
  }
  for (const k of COUNT_KEYS) {
    if (!Number.isSafeInteger(out[k]) || out[k] < 0) {
      throw new EvalError(
        `eval config: ${k} must be a whole number >= 0, got ${describeValue(out[k])}`,
      );
    }
  }
  const b = out.batchSizePrompts;
  if (b !== null && (!Number.isSafeInteger(b) || b < 1)) {
    throw new EvalError(
      `eval config: batchSizePrompts must be a whole number >= 1 or null, got ${describeValue(b)}`,
    );
  }
  for (const k of ["libraryVersion", "gitHash"] as const) {
    if (typeof out[k] !== "string") {
      throw new EvalError(`eval config: ${k} must be a string, got ${describeValue(out[k])}`);
    }
  }
  return out;
}

/**
 * SAELens `get_eval_everything_config`: every metric on.
 *
 * @example
 * ```ts
 * import { getEvalEverythingConfig } from "./config.ts";
 * const cfg = getEvalEverythingConfig({ batchSizePrompts: 4 });
 * if (!cfg.computeKl || !cfg.computeFeaturewiseWeightBasedMetrics || cfg.batchSizePrompts !== 4) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function getEvalEverythingConfig(
  opts: {
    batchSizePrompts?: number | null;
    nEvalReconstructionBatches?: number;
    nEvalSparsityVarianceBatches?: number;
  } = {},
): EvalConfig {
  return evalConfig({
    batchSizePrompts: opts.batchSizePrompts ?? null,
    nEvalReconstructionBatches: opts.nEvalReconstructionBatches ?? 10,
    nEvalSparsityVarianceBatches: opts.nEvalSparsityVarianceBatches ?? 1,
    computeKl: true,
    computeCeLoss: true,
    computeL2Norms: true,
    computeSparsityMetrics: true,
    computeVarianceMetrics: true,
    computeFeaturewiseDensityStatistics: true,
    computeFeaturewiseWeightBasedMetrics: true,
  });
}

/**
 * The config as SAELens writes it in results (`eval_cfg`): snake_case keys.
 *
 * @example
 * ```ts
 * import { evalConfig, evalConfigToDict } from "./config.ts";
 * const d = evalConfigToDict(evalConfig({ computeKl: true }));
 * if (d.compute_kl !== true || d.n_eval_reconstruction_batches !== 10) throw new Error();
 * ```
 */
export function evalConfigToDict(cfg: EvalConfig): Record<string, unknown> {
  return {
    batch_size_prompts: cfg.batchSizePrompts,
    n_eval_reconstruction_batches: cfg.nEvalReconstructionBatches,
    compute_kl: cfg.computeKl,
    compute_ce_loss: cfg.computeCeLoss,
    n_eval_sparsity_variance_batches: cfg.nEvalSparsityVarianceBatches,
    compute_l2_norms: cfg.computeL2Norms,
    compute_sparsity_metrics: cfg.computeSparsityMetrics,
    compute_variance_metrics: cfg.computeVarianceMetrics,
    compute_featurewise_density_statistics: cfg.computeFeaturewiseDensityStatistics,
    compute_featurewise_weight_based_metrics: cfg.computeFeaturewiseWeightBasedMetrics,
    library_version: cfg.libraryVersion,
    git_hash: cfg.gitHash,
  };
}
