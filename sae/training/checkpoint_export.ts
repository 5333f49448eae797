/**
 * The final inference export of a trained SAE (SAELens `save_inference_model`, spec §5.5):
 * `cfg.json` in the inference form (`saeConfigToDict` of the exported config: BatchTopK becomes
 * JumpReLU, TopK decoder norms folded), `sae_weights.safetensors`, and optionally
 * `sparsity.safetensors`; the folder is replaced in one recoverable step (`writeSaeFolder`).
 * @module
 */

import { getSaeArchitecture } from "../architectures/mod.ts";
import { saeConfigToDict } from "../config.ts";
import { type HostStateDict, type SavedSaePaths, writeSaeFolder } from "../sae_io.ts";
import { TrainingError } from "./errors.ts";
import type { TrainableSAE } from "./trainer_types.ts";

/**
 * Writes `sae`'s inference form into `dir` (created). `logSparsity` (log10 firing fractions,
 * `[dSae]`, e.g. `await trainer.logFeatureSparsity()`) adds `sparsity.safetensors`.
 */
export async function saveInferenceModel(
  sae: TrainableSAE,
  dir: string,
  options: {
    logSparsity?: Float32Array;
    /** More files for the same atomic write (name → bytes), e.g. `runner_cfg.json`. */
    extraFiles?: ReadonlyMap<string, Uint8Array>;
  } = {},
): Promise<SavedSaePaths> {
  const { cfg, params } = await sae.exportInference();
  const shapes = getSaeArchitecture(cfg.architecture, "inference export").paramShapes(cfg);
  const tensors: HostStateDict = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const data = params.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!data || data.length !== size) {
      throw new TrainingError(
        `inference export: ${name} has ${data?.length ?? "no"} values, expected [${shape}] ` +
          `for a ${cfg.architecture} SAE`,
      );
    }
    tensors[name] = { shape, data };
  }
  return await writeSaeFolder(
    dir,
    cfg,
    saeConfigToDict(cfg),
    tensors,
    options.logSparsity,
    options.extraFiles,
  );
}
