/**
 * GPU training of the TopK SAE (spec §3.4) on the sparse driver.
 * @module
 */

import { sparseLossKeys, SparseStep } from "../../training/train_sae_sparse.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { affineParams } from "../standard/training.ts";

/** The TopK SAE's GPU training. */
export const topkTraining: TrainingArchitecture = {
  params: (cfg) => affineParams(cfg),
  coefficients: () => [],
  lossKeys: (cfg) => sparseLossKeys({ cfg }),
  createStep: (ctx) => new SparseStep(ctx),
};

/** The BatchTopK family's GPU training (BatchTopK and Matryoshka). */
export const batchTopkFamilyTraining: TrainingArchitecture = {
  ...topkTraining,
  buffers: () => ({ topk_threshold: [1] }),
  metricKeys: () => ["topk_threshold"],
};
