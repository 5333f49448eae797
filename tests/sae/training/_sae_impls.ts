/**
 * The training SAEs the trainer tests run against: the GPU `TrainingSAE` (where it supports the
 * architecture) and the reference-backed stand-in.
 */

import type { Gpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../../../sae/config.ts";
import { TrainingSAE } from "../../../sae/training/train_sae.ts";
import type { TrainableSAE } from "../../../sae/training/trainer_types.ts";
import { RefTrainingSAE } from "./_ref_training_sae.ts";

/** A disposable training SAE. */
export type TestSAE = TrainableSAE & { dispose(): void };

const supported = new Map<string, boolean>();

/** True when the GPU TrainingSAE can record a step of `cfg.architecture` (probed once). */
export function gpuSupports(cfg: TrainingSAEConfig, gpu: Gpu): boolean {
  const arch = cfg.architecture;
  let ok = supported.get(arch);
  if (ok === undefined) {
    let sae: TrainingSAE | null = null;
    try {
      sae = TrainingSAE.create({ ...cfg }, { gpu });
      using x = Tensor.zeros([2, cfg.dIn], "f32", { gpu });
      using c = Tensor.zeros([sae.coefficients().length], "f32", { gpu });
      sae.recordStep(x, c, null);
      gpu.flush();
      ok = true;
    } catch {
      ok = false;
    }
    sae?.dispose();
    supported.set(arch, ok);
  }
  return ok;
}

/** The GPU TrainingSAE when it supports the architecture, else the reference stand-in. */
export function createTestSAE(cfg: TrainingSAEConfig, gpu: Gpu, seed: number): TestSAE {
  return gpuSupports(cfg, gpu)
    ? TrainingSAE.create(cfg, { gpu, seed })
    : RefTrainingSAE.create(cfg, { gpu, seed });
}
