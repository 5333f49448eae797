/**
 * Shared pieces of the recorded training steps: the contract types (`CoefficientSpec`,
 * `StepOutputs`), options that SAELens' newest/legacy versions add beyond `TrainingSAEConfig`,
 * the per-architecture step interface, micro-batch window planning and a workspace of tensors
 * allocated once per batch size.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { rowsView, type Span, spans } from "../../gpu/kernel.ts";
import { type DType, Tensor } from "../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../config_types.ts";
import { TrainSaeError } from "./errors.ts";

export { TrainSaeError };

/** One coefficient of SAELens `get_coefficients()`: name ("l1", "l0"), final value, warm-up steps. */
export interface CoefficientSpec {
  /** SAELens coefficient name. */
  name: string;
  /** Final coefficient value. */
  value: number;
  /** Steps of linear warm-up to `value`. */
  warmUpSteps: number;
}

/**
 * GPU outputs of one recorded training step. Nothing is read back by the step itself. The
 * tensors belong to the SAE and are overwritten by the next `recordStep`: record whatever
 * consumes them (copies, accumulations, `readLater`) before recording the next step.
 */
export interface StepOutputs {
  /** f32 [1 + lossKeys.length]: overall loss, then each loss in `lossKeys` order. */
  losses: Tensor;
  /** f32 [dSae]: number of tokens in this batch where each feature's activation != 0. */
  firedCounts: Tensor;
  /**
   * f32 [4]: Σ_t ‖x̂_t − x_t‖², Σ_t ‖x_t − x̄‖², Σ_t (1 − ‖x̂_t − x_t‖²/‖x_t − x̄‖²) and Σ_t of
   * that squared (the §5.2 explained-variance metrics; x̄ = batch mean).
   */
  recon: Tensor;
  /** f32 [1]: Σ_t L0_t. */
  l0Sum: Tensor;
  /** f32 [metricKeys.length]: extra metrics (e.g. topk_threshold after this step's EMA). */
  metrics: Tensor;
}

/**
 * Training options `TrainingSAEConfig` lacks: a legacy one (v3–v5 ghost grads) and newer
 * SAELens options (straight-through JumpReLU, Matryoshka aux loss).
 */
export interface TrainingExtras {
  /** Standard, legacy v3–v5 ghost-grads loss (`ghost_grad_loss`, dead latents only). */
  useGhostGrads?: boolean;
  /** JumpReLU (newest): straight-through gradient to the pre-activation as well. */
  jumpreluSteToInput?: boolean;
  /** Matryoshka (newest): per-level aux-k loss instead of the full-width one. */
  useMatryoshkaAuxLoss?: boolean;
}

/** Everything a step implementation needs from its `TrainingSAE`. */
export interface StepContext {
  /** The device. */
  gpu: Gpu;
  /** The SAE's training config. */
  cfg: TrainingSAEConfig;
  /** Trainable parameters by SAELens name (filled before the first `record`). */
  params: Map<string, Tensor>;
  /** Their gradients, written by each `record`. */
  grads: Map<string, Tensor>;
  /** Non-trainable state (e.g. `topk_threshold`). */
  buffers: Map<string, Tensor>;
  /** The step outputs `record` writes. */
  outputs: StepOutputs;
  /** Options beyond the config. */
  extras: TrainingExtras;
  /** Transcoders: `record` gets a target `[rows, d_out]` to reconstruct. */
  transcoder?: boolean;
  /** Skip transcoders: the output adds x·W_skipᵀ (`W_skip` is trained). */
  skip?: boolean;
  /** Testing: force micro-batch windows of at most this many rows. */
  maxWindowRows?: number;
}

/** Tensors of the last step kept for inspection (tests): x̂ and, for one window, f. */
export interface StepDebug {
  /** Reconstruction x̂ of the last step, or null. */
  saeOut: Tensor | null;
  /** Feature activations f of one window, or null. */
  featureActs: Tensor | null;
}

/** What {@link windowedDebug} reads from a step's workspace. */
export interface WindowedWorkspace {
  /** Rows of the last batch. */
  batchRows: number;
  /** The micro-batch windows the batch ran in. */
  windows: Span[];
  /** x̂ `[rows, d_out]`. */
  reconstruction: Tensor;
  /** f of the last window (all rows when there was one window). */
  acts: Tensor;
}

/** A step's {@link StepDebug} from its workspace: x̂, and f when the step ran as one window. */
export function windowedDebug(ws: WindowedWorkspace | null): StepDebug {
  if (!ws) return { saeOut: null, featureActs: null };
  return {
    saeOut: ws.reconstruction,
    featureActs: ws.windows.length === 1 ? rowsView(ws.acts, 0, ws.batchRows) : null,
  };
}

/** A recorded training step (a family driver with an architecture plugged in). */
export interface ArchStep {
  /**
   * Records forward, losses and backward of `x [rows, d_in]` into the context's grads and
   * outputs; `coef` f32 coefficient values, `dead` u32 `[d_sae]` or null, `target`
   * `[rows, d_out]` for transcoders.
   */
  record(x: Tensor, coef: Tensor, dead: Tensor | null, target?: Tensor | null): void;
  /** The last step's x̂ and (when available) its feature acts. */
  debug(): StepDebug;
  /** Releases the step's workspace. */
  dispose(): void;
}

/**
 * Splits `B` rows into micro-batch windows so that `[rows, w]` workspaces fit one storage
 * binding for every `w` of `widths`, and row offsets of views into `[B, a]` matrices stay
 * aligned for every `a` of `aligned`. One window when everything fits.
 */
export function planWindows(
  gpu: Gpu,
  B: number,
  widths: number[],
  aligned: number[],
  maxRows?: number,
): Span[] {
  return spans(gpu, B, Math.max(1, ...widths), {
    aligned,
    maxCount: maxRows,
    error: TrainSaeError,
  });
}

/** Tensors allocated together and released together. */
export class Workspace {
  #tensors: Tensor[] = [];
  constructor(readonly gpu: Gpu) {}

  /** A new tensor owned by this workspace. */
  alloc<D extends DType = "f32">(shape: number[], dtype: D = "f32" as D): Tensor<D> {
    const t = Tensor.empty(shape, dtype, { gpu: this.gpu });
    this.#tensors.push(t);
    return t;
  }

  /** Releases every tensor. */
  dispose(): void {
    for (const t of this.#tensors) t.dispose();
    this.#tensors = [];
  }
}

/** Throws unless `target` is a live f32 `[rows, dOut]` tensor (a transcoder's target). */
export function checkTarget(target: Tensor | null | undefined, rows: number, dOut: number): Tensor {
  if (!target) {
    throw new TrainSaeError(
      `recordStep: a transcoder needs the target activations [${rows}, ${dOut}] (read at ` +
        "hook_name_out) beside its input",
    );
  }
  if (target.disposed) {
    throw new TrainSaeError(`recordStep: target ${target} was used after dispose()`);
  }
  if (
    target.dtype !== "f32" || target.rank !== 2 || target.shape[0] !== rows ||
    target.shape[1] !== dOut
  ) {
    throw new TrainSaeError(
      `recordStep: target must be f32 [${rows}, ${dOut}] (rows of x, d_out), got ${target}`,
    );
  }
  return target;
}

/** Throws unless `x` is a live f32 `[rows, dIn]` tensor with at least one row. */
export function checkInput(x: Tensor, dIn: number): number {
  if (x.disposed) throw new TrainSaeError(`recordStep: x ${x} was used after dispose()`);
  if (x.dtype !== "f32" || x.rank !== 2 || x.shape[1] !== dIn || x.shape[0] < 1) {
    throw new TrainSaeError(`recordStep: x must be f32 [rows ≥ 1, ${dIn}], got ${x}`);
  }
  return x.shape[0];
}
