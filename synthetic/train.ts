/**
 * Training SAEs on a synthetic stream through the streaming stages:
 * `syntheticSource → buffer → saeStep`, every SAE on the same batches (SAELens's multi-SAE
 * runner), until each has seen its `totalTrainingSamples`. Same model, seeds and sizes give the
 * same batches, so SAEs trained in separate calls are trained on the same stream.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { SAETrainer, type TrainerLogger } from "../sae/training/trainer.ts";
import type { SAETrainerConfig } from "../sae/training/trainer_config.ts";
import type { TrainingSAE } from "../sae/training/train_sae.ts";
import { ActivationBuffer } from "../stages/buffer.ts";
import { saeStep, type StepEvent, type StepUnit, trainerLogSink } from "../stages/sae_step.ts";
import type { MetricsEvent } from "../stages/types.ts";
import { SyntheticError } from "./errors.ts";
import type { SyntheticModel } from "./model.ts";
import { SYNTHETIC_KEY, syntheticSource } from "./source.ts";

/** One SAE to train. */
export interface SyntheticTrainee {
  /** Name in events and results. */
  id: string;
  /** The SAE (its `dIn` must be the model's width). */
  sae: TrainingSAE;
  /** Its trainer settings (checkpoints are not written here). */
  trainer: SAETrainerConfig;
}

/** Options of {@link trainOnSynthetic}. */
export interface TrainOnSyntheticOptions {
  /** The data. */
  model: SyntheticModel;
  /** The device. */
  gpu: Gpu;
  /** SAEs trained together on the same batches; they must share `trainBatchSizeSamples`. */
  trainees: SyntheticTrainee[];
  /** Rows per source block (default 4096). */
  blockRows?: number;
  /** Rows the buffer holds before shuffling (default 4 blocks). */
  bufferSize?: number;
  /** SAELens `activations_mixing_fraction` (default 0.5). */
  mixFraction?: number;
  /** Seed of the buffer's shuffles (default 42). */
  seed?: number;
  /** Every event of the step stage (logs, steps), e.g. for progress. */
  onEvent?: (e: StepEvent) => void;
}

/** What {@link trainOnSynthetic} returns. */
export interface TrainOnSyntheticResult {
  /** Training samples seen by the first SAE. */
  tokens: number;
  /** Wall-clock seconds from the first block to the last step (GPU work finished). */
  seconds: number;
  /** The trainers (finished: logs flushed, scaling factor folded). */
  trainers: Map<string, SAETrainer>;
}

/**
 * Trains `trainees` on `model`'s stream 0 (see the module doc) and resolves once every SAE is
 * trained.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { createTrainingConfig } from "../sae/config.ts";
 * import { TrainingSAE } from "../sae/training/train_sae.ts";
 * import { createTrainerConfig } from "../sae/training/trainer_config.ts";
 * import { SyntheticModel } from "./model.ts";
 * import { trainOnSynthetic } from "./train.ts";
 * const gpu = await getGpu();
 * const model = new SyntheticModel({ dIn: 8, nFeatures: 16, seed: 1 });
 * const sae = TrainingSAE.create(createTrainingConfig({ architecture: "topk", dIn: 8, dSae: 16, k: 2 }), { gpu });
 * const r = await trainOnSynthetic({
 *   model, gpu, blockRows: 64,
 *   trainees: [{ id: "a", sae, trainer: createTrainerConfig({ totalTrainingSamples: 256, trainBatchSizeSamples: 32 }) }],
 * });
 * if (r.tokens !== 256 || r.trainers.get("a")!.nTrainingSteps !== 8) throw new Error();
 * sae.dispose();
 * ```
 */
export async function trainOnSynthetic(
  options: TrainOnSyntheticOptions,
): Promise<TrainOnSyntheticResult> {
  const { model, gpu, trainees } = options;
  if (trainees.length === 0) throw new SyntheticError("trainOnSynthetic: no SAE to train");
  const batch = trainees[0].trainer.trainBatchSizeSamples;
  for (const t of trainees) {
    if (t.sae.cfg.dIn !== model.dIn) {
      throw new SyntheticError(
        `trainOnSynthetic: SAE ${t.id} has d_in ${t.sae.cfg.dIn}, the model's width is ${model.dIn}`,
      );
    }
    if (t.trainer.trainBatchSizeSamples !== batch) {
      throw new SyntheticError(
        `trainOnSynthetic: SAE ${t.id} trains on batches of ${t.trainer.trainBatchSizeSamples} ` +
          `rows, SAE ${trainees[0].id} on ${batch}; SAEs trained together share the batches`,
      );
    }
  }
  const blockRows = options.blockRows ?? 4096;
  const units: StepUnit[] = trainees.map((t) => {
    const logs: MetricsEvent[] = [];
    const logger: TrainerLogger = trainerLogSink(t.id, logs);
    return {
      id: t.id,
      hookName: SYNTHETIC_KEY,
      key: SYNTHETIC_KEY,
      architecture: t.sae.cfg.architecture,
      dIn: t.sae.cfg.dIn,
      dSae: t.sae.cfg.dSae,
      trainer: new SAETrainer(
        { ...t.trainer, nCheckpoints: 0, checkpointPath: null, saveFinalCheckpoint: false },
        t.sae,
        [],
        { logger, disposeBatches: false },
      ),
      logs,
    };
  });
  const buffer = new ActivationBuffer({
    bufferSize: options.bufferSize ?? 4 * blockRows,
    batchSize: batch,
    mixFraction: options.mixFraction,
    widths: new Map([[SYNTHETIC_KEY, model.dIn]]),
    blockRows,
    seed: options.seed ?? 42,
    gpu,
  });
  const t0 = performance.now();
  let tokens = 0;
  await syntheticSource({ model, gpu, blockRows })
    .pipeThrough(buffer)
    .pipeThrough(saeStep({ units, checkpoints: false }))
    .pipeTo(
      new WritableStream<StepEvent>({
        write(e) {
          if (e.type === "trained") tokens = e.tokens;
          options.onEvent?.(e);
        },
      }),
    );
  await gpu.sync();
  return {
    tokens,
    seconds: (performance.now() - t0) / 1000,
    trainers: new Map(units.map((u) => [u.id, u.trainer])),
  };
}
