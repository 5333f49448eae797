/**
 * GPU training of the TopK SAE (spec §3.4) on the sparse driver: each token keeps its k largest
 * pre-activations (selected per micro-batch window); aux-k on dead latents is the driver's.
 * @module
 */

import type { TrainingSAEConfig } from "../../config_types.ts";
import { topkSelect } from "../../training/kernels/select.ts";
import { TrainSaeError } from "../../training/errors.ts";
import {
  type SparseArchitecture,
  sparseLossKeys,
  SparseStep,
} from "../../training/train_sae_sparse.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { affineParams } from "../standard/training.ts";

/** TopK's k: an integer in 1..d_sae. */
function tokenK(cfg: TrainingSAEConfig): number {
  const k = cfg.k ?? 100;
  if (!(k > 0) || !Number.isSafeInteger(k) || k > cfg.dSae) {
    throw new TrainSaeError(
      `k: expected an integer in 1..${cfg.dSae} for ${cfg.architecture}, got ${k}`,
    );
  }
  return k;
}

/** The TopK SAE on the sparse driver. */
export const topkSparse: SparseArchitecture = {
  levels: (cfg) => [cfg.dSae],
  k: tokenK,
  mainCapacity: (k, batchRows) => batchRows * k,
  wholeBatch: false,
  selectWindow(sel, preActs, win) {
    topkSelect(
      sel.gpu,
      preActs,
      sel.decoderNorms,
      sel.entries,
      sel.rowPtr,
      sel.k,
      win.start,
      sel.batchRows,
      sel.rescale,
    );
  },
};

/** The TopK SAE's GPU training. */
export const topkTraining: TrainingArchitecture = {
  params: (cfg) => affineParams(cfg),
  coefficients: () => [],
  lossKeys: (cfg) => sparseLossKeys(topkSparse.levels(cfg)),
  createStep: (ctx) => new SparseStep(ctx, topkSparse),
};
