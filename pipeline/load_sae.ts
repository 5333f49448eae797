/**
 * SAELens `TrainingSAE.load_from_disk` for `from_pretrained_path`: a training SAE from a folder
 * saeflow or SAELens wrote (`cfg.json` + `sae_weights.safetensors`, training or inference form of
 * a trainable architecture), to fine-tune.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { recoverFolder } from "../io/atomic.ts";
import { readSafetensors, toFloat32 } from "../io/safetensors.ts";
import { trainingConfigFromDict, type TrainingSAEConfig } from "../sae/config.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";
import { join } from "../util/path.ts";
import { PipelineError } from "./errors.ts";

/**
 * Loads the SAE in folder `dir` as a {@link TrainingSAE}. With `expect`, its architecture,
 * `d_in` and `d_sae` must match (a named error otherwise) and `expect`'s training settings and
 * metadata are used, so the fine-tuning run's config decides coefficients and schedules.
 */
export async function loadTrainingSaeFromDisk(
  dir: string,
  options: { gpu: Gpu; expect?: TrainingSAEConfig },
): Promise<TrainingSAE> {
  await recoverFolder(dir);
  let cfgDict: Record<string, unknown>;
  try {
    cfgDict = JSON.parse(await Deno.readTextFile(join(dir, "cfg.json")));
  } catch (err) {
    throw new PipelineError(
      `from_pretrained_path ${dir}: cannot read cfg.json (${
        err instanceof Error ? err.message : err
      })`,
    );
  }
  const saved = trainingConfigFromDict(cfgDict, { where: join(dir, "cfg.json") });
  const want = options.expect;
  if (want) {
    for (const k of ["architecture", "dIn", "dSae"] as const) {
      if (saved[k] !== want[k]) {
        throw new PipelineError(
          `from_pretrained_path ${dir}: its ${k} is ${saved[k]}, but the run's sae config has ${
            want[k]
          }`,
        );
      }
    }
  }
  const { tensors } = await readSafetensors(join(dir, "sae_weights.safetensors"));
  const params: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) params[name] = toFloat32(t);
  return TrainingSAE.fromParams(want ?? saved, params, { gpu: options.gpu });
}
