/**
 * Training checkpoint folders (spec §2.1, §5.5): `cfg.json` (training form),
 * `sae_weights.safetensors` (training form), `sparsity.safetensors`, `trainer_state.safetensors`
 * + `trainer_state.json` (see `state.ts`), `activation_scaler.json`. A folder is assembled in a
 * temporary sibling and renamed into place, every file inside written atomically, so a crash
 * never leaves a half-written checkpoint under the final name.
 * @module
 */

import {
  readSafetensors,
  serializeSafetensors,
  type StTensor,
  toFloat32,
} from "../../io/safetensors.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { basename, dirname, exists, join } from "../../util/path.ts";
import { ActivationScaler } from "../../training/activation_scaler.ts";
import { TrainingError } from "../../training/errors.ts";
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

let tmpCounter = 0;

/**
 * Writes a complete checkpoint folder at `dir` (replacing an existing one): all files go into a
 * temporary sibling folder which is then renamed to `dir`. On failure the temporary folder is
 * removed and an existing `dir` is left as it was.
 */
export async function writeCheckpointFolder(dir: string, contents: CheckpointWrite): Promise<void> {
  const parent = dirname(dir), name = basename(dir);
  await Deno.mkdir(parent, { recursive: true });
  const tag = `${Deno.pid}.${Date.now()}.${++tmpCounter}`;
  const tmp = join(parent, `.${name}.tmp.${tag}`);
  const files = CHECKPOINT_FILES;
  try {
    await Deno.mkdir(tmp);
    await writeJsonAtomic(join(tmp, files.cfg), contents.cfg);
    await writeFileAtomic(join(tmp, files.weights), serializeSafetensors(contents.weights));
    await writeFileAtomic(
      join(tmp, files.sparsity),
      serializeSafetensors({
        sparsity: {
          dtype: "F32",
          shape: [contents.logSparsity.length],
          data: contents.logSparsity,
        },
      }),
    );
    const st = trainerStateToFiles(contents.state);
    await writeFileAtomic(join(tmp, files.trainerStateTensors), serializeSafetensors(st.tensors));
    await writeJsonAtomic(join(tmp, files.trainerStateJson), st.json);
    await writeJsonAtomic(
      join(tmp, files.activationScaler),
      new ActivationScaler(contents.scalingFactor).toJSON(),
    );
    if (contents.extra) await contents.extra(tmp);
    await replaceFolder(tmp, dir, tag);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
}

/** Renames `src` to `dst`; an existing `dst` is moved aside first and removed afterwards. */
async function replaceFolder(src: string, dst: string, tag: string): Promise<void> {
  if (!(await exists(dst))) {
    await Deno.rename(src, dst);
    return;
  }
  const old = join(dirname(dst), `.${basename(dst)}.old.${tag}`);
  await Deno.rename(dst, old);
  try {
    await Deno.rename(src, dst);
  } catch (err) {
    await Deno.rename(old, dst).catch(() => {});
    throw err;
  }
  await Deno.remove(old, { recursive: true });
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
