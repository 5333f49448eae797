/**
 * The evaluator of a training run: SAELens's `LLMSaeEvaluator` (spec §1.7, §5.4) for the step
 * stage's `evaluate` hook. Every `wandb_log_frequency × eval_every_n_wandb_logs` steps it runs
 * {@link runEvals} on the SAE being trained with CE loss, L2 norms, sparsity and variance on
 * (`n_eval_batches` batches of `eval_batch_size_prompts` prompts for both passes; no KL, no
 * per-feature metrics), and adds the weight histograms of SAELens's `log_histograms()`:
 * `weights/W_dec_norms` (every architecture), `weights/b_e` (standard), `weights/b_gate` and
 * `weights/b_mag` (gated). Metric keys are flattened `group/name`.
 *
 * The SAE is evaluated in place: an `SAE` view over the training parameters (no copy) for the
 * standard, gated, JumpReLU and TopK architectures, whose inference forward equals their
 * training forward. The BatchTopK family is evaluated as its JumpReLU export (a host round trip
 * of the weights; SAELens evaluates the training class, which keeps batch-level top-k, so these
 * numbers can differ slightly from SAELens's).
 * @module
 */

import { reduceRows } from "../gpu/kernels/reduce.ts";
import { readAll, type Tensor } from "../gpu/tensor.ts";
import type { HookedTransformer } from "../model/hooked_transformer.ts";
import { inferenceConfigOf } from "../sae/config.ts";
import { SAE } from "../sae/sae.ts";
import type { TrainableSAE } from "../sae/training/trainer_types.ts";
import { evalConfig, EvalError } from "./config.ts";
import { flattenMetrics } from "../logging/events.ts";
import { type ActivationScalerLike, type EvalTokenSource, runEvals } from "./run_evals.ts";

/** Options of {@link makeTrainingEvaluator}. */
export interface TrainingEvaluatorOptions {
  /** The model the SAEs read from. */
  model: HookedTransformer;
  /** Eval token batches (a stream of its own, e.g. an `ActivationsStore`'s `getBatchTokens`). */
  tokens: EvalTokenSource;
  /** SAELens `n_eval_batches` (both passes). */
  nEvalBatches: number;
  /** SAELens `eval_batch_size_prompts` (null: the token source's `storeBatchSizePrompts`). */
  evalBatchSizePrompts: number | null;
  /** Positions ignored: the store's special tokens (SAELens passes the store's list). */
  excludeSpecialTokens: boolean | readonly number[];
}

/** What the evaluator reads from a step unit: its trainer's SAE and activation scaler. */
export interface EvaluatedUnit {
  /** The trainer (`SAETrainer`). */
  trainer: { readonly sae: TrainableSAE; readonly activationScaler: ActivationScalerLike };
}

/** Architectures whose inference forward on the training parameters is the training forward. */
const VIEWABLE = new Set(["standard", "gated", "jumprelu", "topk"]);

/**
 * An inference `SAE` over a training SAE: a view of its GPU parameters (disposing the view
 * leaves them alone) or, for the BatchTopK family, its JumpReLU export.
 */
export async function inferenceViewOf(train: TrainableSAE): Promise<SAE> {
  const arch = train.cfg.architecture;
  if (VIEWABLE.has(arch)) {
    const params: Record<string, Tensor> = {};
    for (const [name, t] of train.params) params[name] = t.reshape(t.shape);
    return new SAE(inferenceConfigOf(train.cfg), params);
  }
  const gpu = train.params.get("W_dec")?.gpu;
  if (!gpu) throw new EvalError(`training SAE (${arch}) has no W_dec`);
  const { cfg, params } = await train.exportInference();
  return await SAE.fromParams(cfg, Object.fromEntries(params), { gpu });
}

/**
 * SAELens `log_histograms()` of a training SAE: decoder row norms, plus the encoder bias
 * (standard) or the gate and magnitude biases (gated), read back in one go.
 */
export async function weightHistograms(train: TrainableSAE): Promise<Record<string, number[]>> {
  const wDec = train.params.get("W_dec");
  if (!wDec) throw new EvalError(`training SAE (${train.cfg.architecture}) has no W_dec`);
  using norms = reduceRows("l2", wDec);
  const extra: [string, Tensor][] = [];
  const arch = train.cfg.architecture;
  if (arch === "standard") extra.push(["weights/b_e", train.params.get("b_enc")!]);
  if (arch === "gated") {
    extra.push(["weights/b_gate", train.params.get("b_gate")!]);
    extra.push(["weights/b_mag", train.params.get("b_mag")!]);
  }
  const got = await readAll([norms, ...extra.map(([, t]) => t)]);
  const out: Record<string, number[]> = { "weights/W_dec_norms": Array.from(got[0]) };
  extra.forEach(([k], i) => (out[k] = Array.from(got[i + 1])));
  return out;
}

/**
 * SAELens's `LLMSaeEvaluator` as the step stage's `evaluate` option: `(unit) → metrics` with
 * keys such as `model_performance_preservation/ce_loss_score`, `shrinkage/l2_ratio`,
 * `sparsity/l0`, `reconstruction_quality/explained_variance`, `token_stats/…` and the
 * `weights/…` histograms (lists).
 *
 * @example
 * ```ts ignore
 * const evaluate = makeTrainingEvaluator({ model, tokens: evalStore, nEvalBatches: 10,
 *   evalBatchSizePrompts: null, excludeSpecialTokens: [] });
 * saeStep({ units, evaluate, evalEvery: 10 * 100 });
 * ```
 */
export function makeTrainingEvaluator(
  options: TrainingEvaluatorOptions,
): (unit: EvaluatedUnit) => Promise<Record<string, number | number[]>> {
  const n = options.nEvalBatches;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new EvalError(`n_eval_batches must be a whole number >= 1 to evaluate, got ${n}`);
  }
  const cfg = evalConfig({
    batchSizePrompts: options.evalBatchSizePrompts,
    nEvalReconstructionBatches: n,
    nEvalSparsityVarianceBatches: n,
    computeCeLoss: true,
    computeL2Norms: true,
    computeSparsityMetrics: true,
    computeVarianceMetrics: true,
  });
  return async (unit) => {
    const train = unit.trainer.sae;
    const sae = await inferenceViewOf(train);
    try {
      const { metrics } = await runEvals(sae, options.tokens, options.model, cfg, {
        activationScaler: unit.trainer.activationScaler,
        excludeSpecialTokens: options.excludeSpecialTokens,
      });
      return { ...flattenMetrics(metrics), ...await weightHistograms(train) };
    } finally {
      sae.dispose();
    }
  };
}
