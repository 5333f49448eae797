/**
 * GPU training of the BatchTopK SAE (spec §3.5) on the sparse driver: the ⌊k·B⌋ largest
 * positive pre-activations of the whole batch (the shared `kthLargest` finds the threshold with
 * integer atomics only; per-row lists follow from a count and a scan), and after the step the
 * `topk_threshold` EMA of the smallest selected value. Matryoshka reuses {@link batchtopkSparse}.
 * @module
 */

import { fill } from "../../../gpu/kernels/elementwise.ts";
import { kthLargest } from "../../../gpu/kernels/kth_largest.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
import { rowsView } from "../../../gpu/kernel.ts";
import { batchRowCount, batchRowWrite } from "../../training/kernels/select.ts";
import { scanU32, thresholdUpdate } from "../../training/kernels/sparse_decode.ts";
import { TrainSaeError } from "../../training/errors.ts";
import {
  type SparseArchitecture,
  sparseLossKeys,
  SparseStep,
} from "../../training/train_sae_sparse.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { affineParams } from "../standard/training.ts";

/** BatchTopK's k: a positive number (an average per token). */
function averageK(cfg: TrainingSAEConfig): number {
  const k = cfg.k ?? 100;
  if (!(k > 0)) {
    throw new TrainSaeError(`k: expected a positive number for ${cfg.architecture}, got ${k}`);
  }
  return k;
}

/** BatchTopK (and Matryoshka) selection on the sparse driver. */
export const batchtopkSparse: SparseArchitecture = {
  levels: (cfg) => [cfg.dSae],
  k: averageK,
  mainCapacity: (k, batchRows) => Math.trunc(k * batchRows),
  wholeBatch: true,
  workspace: (_ctx, alloc, batchRows) => ({
    kth: alloc([4], "u32"),
    rowCounts: alloc([batchRows], "u32"),
    rowMin: alloc([batchRows]),
  }),
  selectBatch(sel, preActs, windows) {
    const { gpu, own } = sel, B = sel.batchRows;
    if (sel.mainCapacity === 0) {
      // ⌊k·B⌋ = 0: nothing is selected.
      gpu.clear(sel.rowPtr.buffer, sel.rowPtr.offset, sel.rowPtr.byteLength);
      fill(own.rowMin, Infinity);
      return;
    }
    // The ⌊k·B⌋-th largest hs of the whole batch (ties by lower flat index), then per-row lists.
    kthLargest(preActs, sel.mainCapacity, { out: own.kth });
    const rowsOf = (win: { start: number; count: number }) =>
      rowsView(preActs, win.start, win.count);
    for (const win of windows) batchRowCount(gpu, rowsOf(win), own.kth, own.rowCounts, win.start);
    scanU32(gpu, own.rowCounts, null, sel.rowPtr, B);
    for (const win of windows) {
      batchRowWrite(
        gpu,
        rowsOf(win),
        sel.decoderNorms,
        own.kth,
        sel.rowPtr,
        sel.entries,
        own.rowMin,
        win.start,
        sel.rescale,
      );
    }
  },
  finish(sel) {
    thresholdUpdate(
      sel.gpu,
      sel.own.rowMin,
      sel.buffers.get("topk_threshold")!,
      sel.metrics,
      sel.cfg.topkThresholdLr ?? 0.01,
    );
  },
};

/** The BatchTopK SAE's GPU training. */
export const batchtopkTraining: TrainingArchitecture = {
  params: (cfg) => affineParams(cfg),
  buffers: () => ({ topk_threshold: [1] }),
  metricKeys: () => ["topk_threshold"],
  coefficients: () => [],
  lossKeys: (cfg) => sparseLossKeys(batchtopkSparse.levels(cfg)),
  createStep: (ctx) => new SparseStep(ctx, batchtopkSparse),
};
