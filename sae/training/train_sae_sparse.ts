/**
 * The recorded training step of the TopK family (placeholder while it is written).
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import {
  type ArchStep,
  type StepContext,
  type StepDebug,
  TrainSaeError,
} from "./train_sae_common.ts";

/** Loss keys of a TopK-family architecture. */
export function sparseLossKeys(ctx: StepContext): string[] {
  const keys = ["mse_loss", "auxiliary_reconstruction_loss"];
  return keys.concat(ctx.cfg.architecture === "matryoshka_batchtopk" ? [] : []);
}

/** The TopK-family step. */
export class SparseStep implements ArchStep {
  constructor(readonly ctx: StepContext) {}
  record(_x: Tensor, _c: Tensor, _d: Tensor | null): void {
    throw new TrainSaeError("not yet");
  }
  debug(): StepDebug {
    return { saeOut: null, featureActs: null };
  }
  dispose(): void {}
}
