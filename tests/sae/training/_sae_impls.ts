/**
 * The training SAEs the trainer tests run against. Every built-in trainable architecture runs on
 * the GPU `TrainingSAE`; a failure to create it (or to record a step later) is a test failure,
 * never a silent switch to another implementation. The reference-backed stand-in
 * (`RefTrainingSAE` in `_ref_training_sae.ts`) is used only by tests that ask for it by name.
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { TrainingSAEConfig } from "../../../sae/config.ts";
import { listTrainableArchitectures, TrainingSAE } from "../../../sae/training/train_sae.ts";
import { findArchitectureUnit } from "../../../sae/architectures/mod.ts";
import type { TrainableSAE } from "../../../sae/training/trainer_types.ts";

/** A disposable training SAE. */
export type TestSAE = TrainableSAE & { dispose(): void };

/**
 * Every built-in SAE architecture the GPU `TrainingSAE` trains: those that reconstruct their
 * input (the trainer-loop tables below run them on plain batches). The transcoders, which need
 * a target with every batch, have their own trainer tests (`transcoder_trainer_test.ts`).
 */
export const TRAINABLE_ARCHITECTURES: readonly string[] = listTrainableArchitectures().filter(
  (a) => !a.startsWith("test_") && !findArchitectureUnit(a)?.training?.transcoder,
);

/** The built-in transcoders `TrainingSAE` trains (input at hook_name, target at hook_name_out). */
export const TRAINABLE_TRANSCODERS: readonly string[] = listTrainableArchitectures().filter(
  (a) => !!findArchitectureUnit(a)?.training?.transcoder,
);

/** The GPU TrainingSAE of `cfg` (throws, failing the test, when it cannot be created). */
export function createTestSAE(cfg: TrainingSAEConfig, gpu: Gpu, seed: number): TestSAE {
  return TrainingSAE.create(cfg, { gpu, seed });
}
