/**
 * The trainer's side of checkpoints: gathering everything a checkpoint holds from the GPU (one
 * submit), writing the folder, and restoring a trainer from one (spec §2.1, §5.5).
 * @module
 */

import { trainingConfigToDict } from "../config.ts";
import { TrainingError } from "./errors.ts";
import { logFeatureSparsity } from "./firing_stats.ts";
import {
  type CheckpointWrite,
  readCheckpointFolder,
  saeWeightsTensors,
  writeCheckpointFolder,
} from "./checkpoint.ts";
import type { TrainerState } from "./state.ts";
import type { SAETrainer } from "./trainer.ts";
import type { TrainerGpuState } from "./trainer_gpu.ts";
import type { TrainableSAE } from "./trainer_types.ts";
import { describeValue } from "../../util/errors.ts";

/** Host copies of everything a checkpoint needs. */
export interface CheckpointSnapshot {
  weights: Map<string, Float32Array>;
  state: TrainerState;
  /** The bad-step flag words read with the state. */
  flag: Uint32Array;
}

/** What restoring a trainer needs (a checkpoint's state and scaling factor). */
export interface LoadableState {
  /** The checkpoint's trainer state. */
  state: TrainerState;
  /** The checkpoint's activation scaling factor, or null. */
  scalingFactor: number | null;
}

/** Reads the SAE weights, Adam moments, firing counters and flag back. */
export async function gatherCheckpoint(
  trainer: SAETrainer,
  gs: TrainerGpuState,
): Promise<CheckpointSnapshot> {
  const [firing, optimizer, weights] = await Promise.all([
    gs.read(),
    trainer.optimizer.state(),
    trainer.sae.stateDict(),
  ]);
  const state: TrainerState = {
    nTrainingSamples: trainer.nTrainingSamples,
    nTrainingSteps: trainer.nTrainingSteps,
    startedFineTuning: trainer.startedFineTuning,
    actFreqScores: firing.actFreq,
    nForwardPassesSinceFired: firing.passes,
    nFracActiveSamples: trainer.nFracActiveSamples,
    optimizer,
    lrScheduler: trainer.lrScheduler.stateDict(),
    coefficientSchedulers: Object.fromEntries(
      [...trainer.coefficientSchedulers].map(([name, s]) => [name, s.stateDict()]),
    ),
    rngState: trainer.options.rng?.getState() ?? null,
  };
  return { weights, state, flag: firing.flag };
}

/** Writes a gathered snapshot as checkpoint folder `dir` (see `checkpoint.ts`). */
export async function writeTrainerCheckpoint(
  dir: string,
  trainer: SAETrainer,
  snap: CheckpointSnapshot,
): Promise<void> {
  await writeCheckpointFolder(dir, {
    ...checkpointWriteOf(trainer, snap),
    extra: trainer.options.saveCheckpointFn,
  });
}

/** What a checkpoint of `trainer` at snapshot `snap` holds (config, weights, state, sparsity). */
export function checkpointWriteOf(trainer: SAETrainer, snap: CheckpointSnapshot): CheckpointWrite {
  const sae = trainer.sae;
  const shapes = new Map<string, readonly number[]>();
  for (const m of [sae.params, sae.buffers]) for (const [k, t] of m) shapes.set(k, t.shape);
  const n = Math.fround(snap.state.nFracActiveSamples);
  return {
    cfg: trainingConfigToDict(sae.cfg),
    weights: saeWeightsTensors(snap.weights, shapes),
    logSparsity: logFeatureSparsity(snap.state.actFreqScores.map((v) => v / n)),
    state: snap.state,
    scalingFactor: trainer.activationScaler.scalingFactor,
  };
}

/** Restores counters, schedulers, Adam, firing statistics, scaler and rng into `trainer`. */
export function applyTrainerState(
  trainer: SAETrainer,
  gs: TrainerGpuState,
  loaded: LoadableState,
): void {
  const { state } = loaded;
  const o = trainer.optimizer.options, so = state.optimizer;
  if (so.beta1 !== o.beta1 || so.beta2 !== o.beta2 || so.eps !== o.eps) {
    throw new TrainingError(
      `trainer state: Adam betas (${so.beta1}, ${so.beta2}) eps ${so.eps} differ from the ` +
        `config's (${o.beta1}, ${o.beta2}) eps ${o.eps}`,
    );
  }
  const saved = Object.keys(state.coefficientSchedulers).sort().join(", ");
  const mine = [...trainer.coefficientSchedulers.keys()].sort().join(", ");
  if (saved !== mine) {
    throw new TrainingError(
      `trainer state: coefficient schedulers [${saved}], expected [${mine}] for this SAE`,
    );
  }
  gs.loadFiring(state.nForwardPassesSinceFired, state.actFreqScores);
  trainer.optimizer.load(so);
  trainer.lrScheduler.loadStateDict(state.lrScheduler);
  for (const [name, s] of trainer.coefficientSchedulers) {
    s.loadStateDict(state.coefficientSchedulers[name]);
  }
  trainer.nTrainingSamples = state.nTrainingSamples;
  trainer.nTrainingSteps = state.nTrainingSteps;
  trainer.nFracActiveSamples = state.nFracActiveSamples;
  trainer.startedFineTuning = state.startedFineTuning;
  // Thresholds already passed were written (or skipped) by the interrupted run.
  trainer.checkpointThresholds = trainer.checkpointThresholds.filter(
    (t) => t >= state.nTrainingSamples,
  );
  trainer.activationScaler.scalingFactor = loaded.scalingFactor;
  if (trainer.options.rng && state.rngState !== null) trainer.options.rng.setState(state.rngState);
}

/**
 * Reads checkpoint folder `dir`, checks that its `cfg.json` describes `sae` (architecture, d_in,
 * d_sae) and loads the weights into it.
 */
export async function readForResume(dir: string, sae: TrainableSAE): Promise<LoadableState> {
  const contents = await readCheckpointFolder(dir);
  const c = contents.cfg;
  const want = { architecture: sae.cfg.architecture, d_in: sae.cfg.dIn, d_sae: sae.cfg.dSae };
  for (const [k, v] of Object.entries(want)) {
    if (c[k] !== v) {
      throw new TrainingError(
        `checkpoint ${dir}/cfg.json has ${k} = ${describeValue(c[k])}, but the SAE to resume ` +
          `has ${describeValue(v)}`,
      );
    }
  }
  sae.loadStateDict(contents.weights);
  return contents;
}
