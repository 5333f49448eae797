/**
 * The training SAEs the trainer tests run against. Every built-in trainable architecture runs on
 * the GPU `TrainingSAE`; a failure to create it (or to record a step later) is a test failure,
 * never a silent switch to another implementation. The reference-backed stand-in
 * (`RefTrainingSAE` in `_ref_training_sae.ts`) is used only by tests that ask for it by name.
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { TrainingSAEConfig } from "../../../sae/config.ts";
import { listTrainableArchitectures, TrainingSAE } from "../../../sae/training/train_sae.ts";
import type { TrainableSAE } from "../../../sae/training/trainer_types.ts";

/** A disposable training SAE. */
export type TestSAE = TrainableSAE & { dispose(): void };

/** Every built-in architecture the GPU `TrainingSAE` trains. */
export const TRAINABLE_ARCHITECTURES: readonly string[] = listTrainableArchitectures().filter(
  (a) => !a.startsWith("test_"),
);

/** The GPU TrainingSAE of `cfg` (throws, failing the test, when it cannot be created). */
export function createTestSAE(cfg: TrainingSAEConfig, gpu: Gpu, seed: number): TestSAE {
  return TrainingSAE.create(cfg, { gpu, seed });
}
