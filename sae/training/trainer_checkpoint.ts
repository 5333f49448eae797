/**
 * Checkpoints of a trainer as data: what a {@link TrainerSnapshot} (taken by
 * `SAETrainer.snapshot()`) writes as a checkpoint folder, and what a folder gives back for
 * `SAETrainer.restore()` (spec §2.1, §5.5). Nothing here knows the trainer class: the trainer
 * owns its state and exposes it only through `snapshot()` / `restore()`.
 * @module
 */

import { TrainingError } from "./errors.ts";
import { logFeatureSparsity } from "./firing_stats.ts";
import {
  type CheckpointWrite,
  readCheckpointFolder,
  saeWeightsTensors,
  writeCheckpointFolder,
} from "./checkpoint.ts";
import type { TrainerState } from "./state.ts";
import type { TrainableSAE } from "./trainer_types.ts";
import { describeValue } from "../../util/errors.ts";

/** Host copies of everything a trainer's checkpoint holds, taken between two steps. */
export interface TrainerSnapshot {
  /** The SAE's training config as `cfg.json` holds it (SAELens keys). */
  cfg: Record<string, unknown>;
  /** The SAE's parameters and buffers under SAELens names. */
  weights: Map<string, Float32Array>;
  /** Their shapes. */
  shapes: Map<string, readonly number[]>;
  /** Counters, schedulers, Adam moments, firing statistics, RNG. */
  state: TrainerState;
  /** The activation scaling factor, or null. */
  scalingFactor: number | null;
  /** The bad-step flag words read with the state. */
  flag: Uint32Array;
}

/** What restoring a trainer needs (a checkpoint's state and scaling factor, optionally weights). */
export interface LoadableState {
  /** The checkpoint's trainer state. */
  state: TrainerState;
  /** The checkpoint's activation scaling factor, or null. */
  scalingFactor: number | null;
  /** The SAE's weights, loaded into it when given. */
  weights?: Map<string, Float32Array>;
}

/** What a checkpoint of snapshot `snap` holds (config, weights, state, log sparsity). */
export function checkpointWriteOf(snap: TrainerSnapshot): CheckpointWrite {
  const n = Math.fround(snap.state.nFracActiveSamples);
  return {
    cfg: snap.cfg,
    weights: saeWeightsTensors(snap.weights, snap.shapes),
    logSparsity: logFeatureSparsity(snap.state.actFreqScores.map((v) => v / n)),
    state: snap.state,
    scalingFactor: snap.scalingFactor,
  };
}

/** Writes snapshot `snap` as checkpoint folder `dir` (see `checkpoint.ts`). */
export async function writeTrainerCheckpoint(
  dir: string,
  snap: TrainerSnapshot,
  extra?: (folder: string) => void | Promise<void>,
): Promise<void> {
  await writeCheckpointFolder(dir, { ...checkpointWriteOf(snap), extra });
}

/**
 * Reads checkpoint folder `dir` and checks that its `cfg.json` describes `sae` (architecture,
 * d_in, d_sae); the weights come back in the result for `restore`.
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
  return contents;
}
