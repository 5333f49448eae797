/**
 * What `SAETrainer` needs from a training SAE: the structural form of the contract in
 * `.helpers/TRAINING_CONTRACT.md`, which the GPU `TrainingSAE` (`train_sae.ts`) implements.
 * Kept here so that the trainer depends on the interface, not on one implementation (tests also
 * drive the loop with a stand-in built on `sae/reference/`).
 * @module
 */

import type { Tensor } from "../../gpu/tensor.ts";
import type { SAEConfig, TrainingSAEConfig } from "../config_types.ts";
import type { CoefficientSpec, StepOutputs } from "./train_sae_common.ts";
import type { ActivationScaler } from "./activation_scaler.ts";
import type { Rng } from "../../util/rng.ts";
import type { DataProvider } from "./trainer_data.ts";
import type { TrainerLogger } from "./trainer_log.ts";

export type { CoefficientSpec, StepOutputs };

/** The training SAE as the trainer sees it (see the module doc). */
export interface TrainableSAE {
  /** The SAE's training config. */
  readonly cfg: TrainingSAEConfig;
  /** Trainable parameters under SAELens names and shapes. */
  readonly params: Map<string, Tensor>;
  /** Gradients, same keys and shapes as `params`, overwritten by each `recordStep`. */
  readonly grads: Map<string, Tensor>;
  /** Non-trainable state saved in checkpoints (e.g. `topk_threshold`). */
  readonly buffers: Map<string, Tensor>;
  /** SAELens loss names in the order of `StepOutputs.losses[1..]`. */
  readonly lossKeys: string[];
  /** Names of `StepOutputs.metrics`. */
  readonly metricKeys: string[];
  /** Transcoders: each step needs the target activations (read at `hook_name_out`). */
  readonly needsTarget?: boolean;
  /** SAELens `get_coefficients()`. */
  coefficients(): CoefficientSpec[];
  /**
   * Records forward + loss + backward for x [n, dIn] into `grads`. `coefficientValues` is an f32
   * GPU tensor [coefficients().length]; `deadMask` a u32 [dSae] tensor (1 = dead) or null;
   * `target` a transcoder's [n, dOut] activations. The GPU implementation is synchronous; a
   * stand-in may return a promise.
   */
  recordStep(
    x: Tensor,
    coefficientValues: Tensor,
    deadMask: Tensor | null,
    target?: Tensor | null,
  ): StepOutputs | Promise<StepOutputs>;
  /** Host copies of params + buffers under SAELens training-checkpoint names. */
  stateDict(): Promise<Map<string, Float32Array>>;
  /** Restores `stateDict()`'s output. */
  loadStateDict(state: Map<string, Float32Array>): void;
  /** Folds an activation norm scaling factor into the weights (§3.0). */
  foldActivationNormScalingFactor(s: number): void;
  /** Inference export (config + tensors). */
  exportInference(): Promise<{ cfg: SAEConfig; params: Map<string, Float32Array> }>;
}

/** SAELens `Evaluator`: `(sae, dataProvider, activationScaler) → metrics`. */
export type Evaluator = (
  sae: TrainableSAE,
  dataProvider: DataProvider,
  activationScaler: ActivationScaler,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

/** Options of {@link SAETrainer}. */
export interface SAETrainerOptions {
  /** Run every `logEvery · evalEveryNLogs` steps when a logger is set. */
  evaluator?: Evaluator;
  /** Called with each checkpoint folder while it is assembled (adds files before the rename). */
  saveCheckpointFn?: (folder: string) => void | Promise<void>;
  /** Log sink; without one nothing is logged (SAELens with W&B off). */
  logger?: TrainerLogger;
  /** Data-side generator whose state is saved in checkpoints and restored on resume. */
  rng?: Rng;
  /** Dispose every batch after its step was submitted (default true). */
  disposeBatches?: boolean;
}
