/**
 * The SAE step stage: training batches in, small metric events out. For every batch it runs
 * `SAETrainer.step` of each SAE on that SAE's hook key (several SAEs — other hooks or other
 * hyperparameters — train from the same batches, SAELens's multi-SAE runner), and turns what the
 * trainers log into `log` events. It does nothing else: evaluation, writing checkpoints and
 * logging are later stages fed by the events.
 *
 * Two decisions must be taken here, because only here the whole pipeline stands still between
 * two batches: when a checkpoint is due (SAELens's `n_checkpoints` thresholds, an interrupt, or
 * the final checkpoint) the stage *captures* every trainer's state and the buffer's state in host
 * memory and emits them as a `checkpoint-state` event, which the checkpoint stage writes while
 * training goes on. And when every SAE has seen `training_tokens` samples, it finishes the
 * trainers (logs flushed, scaling factor folded in), emits `trained`, and stops the stream, which
 * cancels everything upstream.
 *
 * SAEs with `normalize_activations: expected_average_only_in` first spend
 * `n_batches_for_norm_estimate` batches on estimating the scaling factor, as SAELens's `fit()`.
 * @module
 */

import { checkpointThresholds } from "../config/derived.ts";
import type { CheckpointWrite } from "../sae/training/checkpoint.ts";
import { SAETrainer } from "../sae/training/trainer.ts";
import type { SAETrainerConfig } from "../sae/training/trainer_config.ts";
import type { TrainableSAE } from "../sae/training/trainer_types.ts";
import { checkpointWriteOf } from "../sae/training/trainer_checkpoint.ts";
import { NormEstimator } from "../sae/training/trainer_data.ts";
import { isPeriodicStep } from "../sae/training/metrics.ts";
import type { TrainerLogger } from "../sae/training/trainer_log.ts";
import type { BufferSnapshot } from "./buffer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  activationKey,
  type MetricsEvent,
  type SaeUnitInfo,
  StageError,
  type TrainBatch,
} from "./types.ts";

/** One SAE the step stage trains. */
export interface StepUnit extends SaeUnitInfo {
  /**
   * A transcoder's target: the {@link activationKey} of its output hook, whose rows the trainer
   * gets beside the input rows (same batch, same rows).
   */
  outputKey?: string;
  /** Its trainer (built with checkpoints off: this stage decides them). */
  trainer: SAETrainer;
  /** Where the trainer's logger puts its log dicts (see {@link trainerLogSink}). */
  logs: MetricsEvent[];
}

/** Everything a checkpoint holds, in host memory, taken between two batches. */
export interface PipelineCapture {
  /** Checkpoint name (SAELens: the number of training samples, or `final_<n>`). */
  name: string;
  /** Training samples seen by the first SAE. */
  tokens: number;
  /** Index of the last batch consumed. */
  batchIndex: number;
  /** Why it was taken. */
  reason: "threshold" | "interrupt" | "final";
  /** Per SAE: its description and checkpoint contents. */
  units: { info: SaeUnitInfo; write: CheckpointWrite }[];
  /** The buffer's state (null when the stage was given no buffer to capture). */
  buffer: BufferSnapshot | null;
}

/** What flows out of the step stage: metric events plus the two control events. */
export type StepEvent =
  | MetricsEvent
  | { type: "checkpoint-state"; capture: PipelineCapture }
  | { type: "trained"; tokens: number; units: StepUnit[] };

/** Options of {@link saeStep}. */
export interface SaeStepOptions {
  /** The SAEs to train (at least one). */
  units: StepUnit[];
  /** SAELens `n_checkpoints` (thresholds over the first SAE's training samples). Default 0. */
  nCheckpoints?: number;
  /** SAELens `save_final_checkpoint`. */
  saveFinalCheckpoint?: boolean;
  /** False: never capture (SAELens `checkpoint_path: null`). Default true. */
  checkpoints?: boolean;
  /** Captures the buffer for checkpoints (`ActivationBuffer.snapshot`). */
  captureBuffer?: (consumedThrough: number) => Promise<BufferSnapshot>;
  /** When aborted, the stage captures a checkpoint after the current batch and stops. */
  signal?: AbortSignal;
  /**
   * Evaluates one SAE in its current state (SAELens's `evaluator`); its values become an `eval`
   * event (none when it returns null: that SAE is not evaluated). Called for every SAE after the steps where (step + 1) is a multiple of `evalEvery`.
   */
  evaluate?: (unit: StepUnit) => Promise<Record<string, number | number[]> | null>;
  /** Steps between evals (SAELens: `wandb_log_frequency × eval_every_n_wandb_logs`). */
  evalEvery?: number;
}

/**
 * A trainer logger that turns SAELens log dicts into `log` events pushed to `sink` (the
 * {@link StepUnit.logs} of the SAE `id`). `tokens` is the dict's `details/n_training_samples`;
 * for dicts without it (the sparsity-window ones) (step + 1) × `batchSize`.
 *
 * @example
 * ```ts
 * import { trainerLogSink } from "./sae_step.ts";
 * import type { MetricsEvent } from "./types.ts";
 * const sink: MetricsEvent[] = [];
 * const log = trainerLogSink("sae0", sink, 4);
 * log(9, { "losses/mse_loss": 0.5, "details/n_training_samples": 40 });
 * log(19, { "metrics/mean_log10_feature_sparsity": -3 }); // a sparsity-window dict
 * const [e, w] = sink;
 * if (e.type !== "log" || e.tokens !== 40 || e.values["losses/mse_loss"] !== 0.5) throw new Error();
 * if (w.type !== "log" || w.tokens !== 80) throw new Error("the sparsity log is not at 80 tokens");
 * ```
 */
export function trainerLogSink(
  id: string,
  sink: MetricsEvent[],
  batchSize?: number,
): TrainerLogger {
  let lastTokens = 0;
  return (step, dict) => {
    const values: Record<string, number | number[]> = {};
    for (const [k, v] of Object.entries(dict)) {
      if (typeof v === "number") values[k] = v;
      else if (Array.isArray(v) || ArrayBuffer.isView(v)) {
        values[k] = Array.from(v as ArrayLike<number>, Number);
      }
    }
    // Train-step dicts carry the sample count; the sparsity-window dicts do not.
    let tokens = Number(dict["details/n_training_samples"] ?? NaN);
    if (!Number.isFinite(tokens)) tokens = batchSize ? (step + 1) * batchSize : lastTokens;
    lastTokens = tokens;
    sink.push({ type: "log", sae: id, step, tokens, values });
  };
}

/** What {@link createStepUnit} needs. */
export interface StepUnitOptions {
  /** Name of the SAE. */
  id: string;
  /** Hook it reads. */
  hookName: string;
  /** One head of a 4-d hook. */
  headIndex?: number | null;
  /** A transcoder's output hook (its target). */
  hookNameOut?: string | null;
  /** The SAE to train. */
  sae: TrainableSAE;
  /** Trainer settings (its checkpoint fields are ignored: the step stage decides checkpoints). */
  trainerConfig: SAETrainerConfig;
}

/**
 * A {@link StepUnit}: the SAE, a trainer for it whose log dicts become `log` events, and its
 * input key. Batches are not disposed by the trainer (several SAEs may share one).
 */
export function createStepUnit(options: StepUnitOptions): StepUnit {
  const logs: MetricsEvent[] = [];
  const trainer = new SAETrainer(
    { ...options.trainerConfig, nCheckpoints: 0, checkpointPath: null, saveFinalCheckpoint: false },
    options.sae,
    [],
    {
      logger: trainerLogSink(options.id, logs, options.trainerConfig.trainBatchSizeSamples),
      disposeBatches: false,
    },
  );
  const spec = { hookName: options.hookName, headIndex: options.headIndex ?? null };
  const out = options.hookNameOut ?? null;
  return {
    id: options.id,
    hookName: options.hookName,
    key: activationKey(spec),
    ...(out !== null ? { outputKey: activationKey({ hookName: out, headIndex: null }) } : {}),
    architecture: options.sae.cfg.architecture,
    dIn: options.sae.cfg.dIn,
    dSae: options.sae.cfg.dSae,
    trainer,
    logs,
  };
}

interface UnitRun {
  unit: StepUnit;
  estimator: NormEstimator | null;
  done: boolean;
}

/**
 * The step stage (see the module doc). The stream ends by itself once every SAE is trained.
 *
 * @example
 * ```ts ignore
 * const events = batches.pipeThrough(saeStep({ units, nCheckpoints: 2, captureBuffer: (i) => buf.snapshot(i) }));
 * ```
 */
export function saeStep(options: SaeStepOptions): TransformStream<TrainBatch, StepEvent> {
  const { units } = options;
  if (units.length === 0) throw new StageError("saeStep: no SAE to train");
  const ids = new Set(units.map((u) => u.id));
  if (ids.size !== units.length) throw new StageError("saeStep: two SAEs have the same id");
  const lead = units[0].trainer;
  const total = lead.cfg.totalTrainingSamples;
  const capture = options.checkpoints !== false;
  let thresholds = capture && (options.nCheckpoints ?? 0) > 0
    ? checkpointThresholds(total, options.nCheckpoints!).filter((t) => t >= lead.nTrainingSamples)
    : [];
  const runs: UnitRun[] = units.map((unit) => {
    const t = unit.trainer;
    const needsEstimate = t.sae.cfg.normalizeActivations === "expected_average_only_in" &&
      t.activationScaler.scalingFactor === null;
    return {
      unit,
      estimator: needsEstimate ? new NormEstimator(t.cfg.nBatchesForNormEstimate, t.gpu) : null,
      done: t.nTrainingSamples >= t.cfg.totalTrainingSamples,
    };
  });

  async function takeCapture(
    name: string,
    reason: PipelineCapture["reason"],
    batchIndex: number,
  ): Promise<PipelineCapture> {
    const captured = [];
    for (const { unit } of runs) {
      const snap = await unit.trainer.snapshot();
      captured.push({ info: infoOf(unit), write: checkpointWriteOf(snap) });
    }
    const buffer = options.captureBuffer ? await options.captureBuffer(batchIndex) : null;
    return { name, tokens: lead.nTrainingSamples, batchIndex, reason, units: captured, buffer };
  }

  function drainLogs(controller: TransformStreamDefaultController<StepEvent>): void {
    for (const { unit } of runs) {
      for (const e of unit.logs.splice(0)) controller.enqueue(e);
    }
  }

  return new TransformStream<TrainBatch, StepEvent>({
    async transform(batch, controller) {
      try {
        for (const run of runs) {
          if (run.done) continue;
          const { unit } = run;
          const x = batch.acts.get(unit.key);
          if (!x) {
            throw new StageError(
              `saeStep: batch ${batch.index} has no activations for ${unit.key} (SAE ${unit.id})`,
            );
          }
          if (run.estimator) {
            run.estimator.add(x);
            if (run.estimator.full) {
              unit.trainer.activationScaler.scalingFactor = await run.estimator.finish();
              run.estimator = null;
            }
            continue;
          }
          let target: Tensor | undefined;
          if (unit.outputKey) {
            target = batch.acts.get(unit.outputKey);
            if (!target) {
              throw new StageError(
                `saeStep: batch ${batch.index} has no activations for ${unit.outputKey} (the ` +
                  `target of transcoder ${unit.id})`,
              );
            }
          }
          await unit.trainer.step(x, target);
          const step = unit.trainer.nTrainingSteps - 1;
          controller.enqueue({
            type: "step",
            sae: unit.id,
            step,
            tokens: unit.trainer.nTrainingSamples,
          });
          if (options.evaluate && options.evalEvery && isPeriodicStep(step, options.evalEvery)) {
            drainLogs(controller);
            const values = await options.evaluate(unit);
            if (values !== null) {
              controller.enqueue({
                type: "eval",
                sae: unit.id,
                step,
                tokens: unit.trainer.nTrainingSamples,
                values,
              });
            }
          }
          run.done = unit.trainer.nTrainingSamples >= unit.trainer.cfg.totalTrainingSamples;
        }
      } finally {
        for (const t of batch.acts.values()) t.dispose();
      }
      drainLogs(controller);
      const n = lead.nTrainingSamples;
      if (capture && thresholds.length > 0 && n > thresholds[0]) {
        thresholds = thresholds.filter((t) => t >= n);
        const c = await takeCapture(String(n), "threshold", batch.index);
        drainLogs(controller);
        controller.enqueue({ type: "checkpoint-state", capture: c });
      }
      if (runs.every((r) => r.done)) {
        for (const { unit } of runs) await unit.trainer.finish();
        drainLogs(controller);
        if (capture && options.saveFinalCheckpoint) {
          const c = await takeCapture(`final_${lead.nTrainingSamples}`, "final", batch.index);
          controller.enqueue({ type: "checkpoint-state", capture: c });
        }
        controller.enqueue({ type: "trained", tokens: lead.nTrainingSamples, units });
        controller.terminate();
        return;
      }
      if (options.signal?.aborted) {
        if (capture) {
          const c = await takeCapture(String(n), "interrupt", batch.index);
          drainLogs(controller);
          controller.enqueue({ type: "checkpoint-state", capture: c });
        }
        controller.terminate();
      }
    },
  });
}

function infoOf(u: StepUnit): SaeUnitInfo {
  return {
    id: u.id,
    hookName: u.hookName,
    key: u.key,
    architecture: u.architecture,
    dIn: u.dIn,
    dSae: u.dSae,
  };
}
