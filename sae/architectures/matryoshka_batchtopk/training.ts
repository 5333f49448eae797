/**
 * GPU training of the Matryoshka BatchTopK SAE (spec §3.6) on the sparse driver: BatchTopK's
 * selection, every level's prefix reconstruction in one sparse decode (`inner_mse_loss_<w>` for
 * all levels but the last), and — with `useMatryoshkaAuxLoss` (newest SAELens) — one aux-k term
 * per level on that level's dead latents against that level's residual.
 * @module
 */

import { matryoshkaWidthsRef } from "./reference.ts";
import {
  type SparseArchitecture,
  sparseLossKeys,
  SparseStep,
} from "../../training/train_sae_sparse.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { batchtopkSparse, batchtopkTraining } from "../batchtopk/training.ts";

/** The Matryoshka BatchTopK SAE on the sparse driver. */
export const matryoshkaSparse: SparseArchitecture = {
  ...batchtopkSparse,
  levels: (cfg) => matryoshkaWidthsRef({ ...cfg, matryoshkaWidths: cfg.matryoshkaWidths ?? [] }),
  auxPerLevel: (extras) => !!extras.useMatryoshkaAuxLoss,
};

/** The Matryoshka BatchTopK SAE's GPU training. */
export const matryoshkaTraining: TrainingArchitecture = {
  ...batchtopkTraining,
  lossKeys: (cfg) => sparseLossKeys(matryoshkaSparse.levels(cfg)),
  extras: ["useMatryoshkaAuxLoss"],
  createStep: (ctx) => new SparseStep(ctx, matryoshkaSparse),
};
