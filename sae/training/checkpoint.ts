/**
 * Training checkpoint folders (spec §2.1, §5.5): `cfg.json` (training form),
 * `sae_weights.safetensors` (training form), `sparsity.safetensors`, `trainer_state.safetensors`
 * + `trainer_state.json` (see `state.ts`), `activation_scaler.json`. A folder is assembled in a
 * temporary sibling and swapped into place by `writeFolderAtomic` (protocol in `io/atomic.ts`),
 * and every read runs `recoverFolder` first, so a crash or a kill at any point never leaves a
 * half-written or mixed checkpoint under the final name, nor a window without one.
 * @module
 */

import { readSafetensors, type StTensor, toFloat32 } from "../../io/safetensors.ts";
import { serializeTo } from "../../io/safetensors_write.ts";
import { recoverFolder, writeFolderAtomic } from "../../io/atomic.ts";
import { exists, join } from "../../util/path.ts";
import { ActivationScaler } from "./activation_scaler.ts";
import { TrainingError } from "./errors.ts";
import { type TrainerState, trainerStateFromFiles, trainerStateToFiles } from "./state.ts";
import { readRegularTextFile } from "../../util/files.ts";

/** File names inside a checkpoint folder (SAELens constants; trainer_state is saeflow's). */
export const CHECKPOINT_FILES = {
  cfg: "cfg.json",
  weights: "sae_weights.safetensors",
  sparsity: "sparsity.safetensors",
  trainerStateTensors: "trainer_state.safetensors",
  trainerStateJson: "trainer_state.json",
  activationScaler: "activation_scaler.json",
} as const;

/** Names stored as F64 scalars like SAELens (`topk_threshold` is a float64 buffer of shape []). */
const F64_SCALARS = new Set(["topk_threshold"]);

/**
 * Safetensors tensors of an SAE state dict: F32 with the given shapes (default `[length]`),
 * except `topk_threshold`, which SAELens stores as an F64 scalar.
 */
export function saeWeightsTensors(
  state: Map<string, Float32Array>,
  shapes: Map<string, readonly number[]>,
): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const [name, data] of state) {
    if (F64_SCALARS.has(name) && data.length === 1) {
      out.set(name, { dtype: "F64", shape: [], data: Float64Array.of(data[0]) });
    } else {
      out.set(name, { dtype: "F32", shape: [...(shapes.get(name) ?? [data.length])], data });
    }
  }
  return out;
}

/** What a training checkpoint folder holds. */
export interface CheckpointContents {
  /** Training-form `cfg.json` dict. */
  cfg: Record<string, unknown>;
  /** Training-form SAE tensors (f32 host copies; F64 scalars converted). */
  weights: Map<string, Float32Array>;
  /** Trainer state. */
  state: TrainerState;
  /** The activation norm scaling factor (null: none). */
  scalingFactor: number | null;
}

/** Inputs of {@link writeCheckpointFolder}. */
export interface CheckpointWrite {
  /** SAE config dict (`cfg.json`). */
  cfg: Record<string, unknown>;
  /** SAE weights by SAELens name. */
  weights: Map<string, StTensor>;
  /** log10 feature sparsity, f32 [dSae]. */
  logSparsity: Float32Array;
  /** Trainer state to save. */
  state: TrainerState;
  /** Activation scaling factor, or null. */
  scalingFactor: number | null;
  /**
   * Called with the folder being assembled, after saeflow's files are written and before the
   * folder is renamed into place (SAELens' `save_checkpoint_fn`; the runner adds its files).
   */
  extra?: (folder: string) => Promise<void> | void;
}

/**
 * Writes a complete checkpoint folder at `dir`, replacing an existing one in one recoverable
 * step (`writeFolderAtomic`): everything is serialised first, written into a temporary sibling
 * (with `extra`'s files), then swapped in. On failure the temporary folder is removed and an
 * existing `dir` is left as it was; a kill at any point leaves `dir`, after the
 * `recoverFolder` that {@link readCheckpointFolder} runs, either the old or the new checkpoint.
 * Files other than saeflow's own in an existing `dir` are kept.
 */
export async function writeCheckpointFolder(dir: string, contents: CheckpointWrite): Promise<void> {
  const files = checkpointFileBytes(dir, contents);
  await writeFolderAtomic(dir, async (w) => {
    for (const [name, data] of files) await w.writeFile(name, data);
    if (contents.extra) await contents.extra(w.dir);
  }, { owned: Object.values(CHECKPOINT_FILES) });
}

/**
 * The files of a checkpoint folder (everything {@link writeCheckpointFolder} writes but
 * `extra`'s), serialized in memory, by file name. `dir` only names files in errors. Lets a
 * caller put several checkpoints into one atomically written folder.
 */
export function checkpointFileBytes(
  dir: string,
  contents: CheckpointWrite,
): Map<string, Uint8Array> {
  const files = CHECKPOINT_FILES;
  const st = trainerStateToFiles(contents.state);
  const sparsity: StTensor = {
    dtype: "F32",
    shape: [contents.logSparsity.length],
    data: contents.logSparsity,
  };
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2) + "\n");
  return new Map<string, Uint8Array>([
    [files.cfg, json(contents.cfg)],
    [files.trainerStateJson, json(st.json)],
    [files.activationScaler, json(new ActivationScaler(contents.scalingFactor).toJSON())],
    [files.weights, serializeTo(join(dir, files.weights), contents.weights)],
    [files.sparsity, serializeTo(join(dir, files.sparsity), { sparsity })],
    [files.trainerStateTensors, serializeTo(join(dir, files.trainerStateTensors), st.tensors)],
  ]);
}

async function readJson(path: string): Promise<unknown> {
  const text = await readRegularTextFile(
    path,
    (m, cause) => new TrainingError(`checkpoint file ${m}`, { cause }),
  );
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TrainingError(`checkpoint file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Reads a training checkpoint folder written by {@link writeCheckpointFolder} (errors name the
 * missing or malformed file).
 */
export async function readCheckpointFolder(dir: string): Promise<CheckpointContents> {
  await recoverFolder(dir);
  const files = CHECKPOINT_FILES;
  for (const f of Object.values(files)) {
    if (!(await exists(join(dir, f)))) {
      throw new TrainingError(`checkpoint folder ${dir} has no ${f}`);
    }
  }
  const cfg = await readJson(join(dir, files.cfg));
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) {
    throw new TrainingError(`${join(dir, files.cfg)} is not a JSON object`);
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of (await readSafetensors(join(dir, files.weights))).tensors) {
    weights.set(name, toFloat32(t));
  }
  const stTensors = (await readSafetensors(join(dir, files.trainerStateTensors))).tensors;
  const state = trainerStateFromFiles(
    stTensors,
    await readJson(join(dir, files.trainerStateJson)),
    dir,
  );
  const scaler = ActivationScaler.fromJSON(await readJson(join(dir, files.activationScaler)));
  return {
    cfg: cfg as Record<string, unknown>,
    weights,
    state,
    scalingFactor: scaler.scalingFactor,
  };
}
