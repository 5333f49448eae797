/**
 * GPU training of the Matching Pursuit SAE: a step of its own (the pursuit fits neither the
 * dense nor the sparse driver). Per micro-batch window: the forward pursuit (`max_iterations`
 * scores GEMMs and per-token steps, each recording its latent and value), the decode GEMM, the
 * residual against x; then the reverse pass through the unrolled pursuit, one per-token step
 * and one one-hot GEMM (Pᵀ·U: every token's ∂W_dec contribution added to its latent's row in a
 * fixed order) per iteration. Losses: `mse_loss` only; metrics as SAELens logs them.
 * @module
 */

import { binary } from "../../../gpu/kernels/binary.ts";
import { reduceAll, reduceCols, reduceRows } from "../../../gpu/kernels/reduce.ts";
import { rowsView, type Span } from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
import { gemm } from "../../training/kernels/_gemm.ts";
import { assembleLosses } from "../../training/kernels/latent.ts";
import { prepRows, residualRows } from "../../training/kernels/rows.ts";
import { TrainSaeError } from "../../training/errors.ts";
import {
  type ArchStep,
  checkInput,
  planWindows,
  type StepContext,
  type StepDebug,
  windowedDebug,
  Workspace,
} from "../../training/train_sae_common.ts";
import type { TrainingArchitecture } from "../unit.ts";
import {
  firedColumns,
  NO_LATENT,
  pursuitBackStep,
  pursuitMetrics,
  pursuitStep,
} from "./kernels.ts";
import { pursuitSettings } from "./reference.ts";

/** Per-token statistics: the four recon columns, then each token's L0. */
const COL_L0 = 4;

interface PursuitWorkspace {
  batchRows: number;
  tensors: Workspace;
  windows: Span[];
  inputCentred: Tensor;
  inputMean: Tensor;
  reconstruction: Tensor;
  rowNorm: Tensor;
  rowStats: Tensor;
  scores: Tensor;
  acts: Tensor;
  oneHot: Tensor;
  previous: Tensor;
  residual: Tensor;
  gradResidual: Tensor;
  contribution: Tensor;
  gradOut: Tensor;
  done: Tensor;
  historyIdx: Tensor;
  historyValue: Tensor;
  /** Σ_t ∂L/∂ŷ_t and Σ_t ∂L/∂x̃_t over the batch, and one window's (b_dec's gradient). */
  gradOutSums: Tensor;
  gradInputSums: Tensor;
  windowSums: Tensor;
  rowSums: Tensor;
  latentSums: Tensor;
  scalars: Tensor;
}

/** The recorded training step of the Matching Pursuit SAE. */
export class MatchingPursuitStep implements ArchStep {
  readonly #ctx: StepContext;
  readonly #settings: ReturnType<typeof pursuitSettings>;
  #ws: PursuitWorkspace | null = null;

  /** A step over the SAE of `ctx`. */
  constructor(ctx: StepContext) {
    this.#ctx = ctx;
    this.#settings = pursuitSettings(ctx.cfg as unknown as Parameters<typeof pursuitSettings>[0]);
  }

  #workspace(B: number): PursuitWorkspace {
    if (this.#ws && this.#ws.batchRows === B) return this.#ws;
    this.#ws?.tensors.dispose();
    const { gpu, cfg, maxWindowRows } = this.#ctx;
    const d = cfg.dIn, n = cfg.dSae, T = this.#settings.iterations;
    const windows = planWindows(gpu, B, [n, T], [n, d], maxWindowRows);
    const R = windows[0].count;
    const tensors = new Workspace(gpu);
    const f32 = (shape: number[]) => tensors.alloc(shape);
    const u32 = (shape: number[]) => tensors.alloc(shape, "u32");
    const ws: PursuitWorkspace = {
      batchRows: B,
      tensors,
      windows,
      inputCentred: f32([B, d]),
      inputMean: f32([d]),
      reconstruction: f32([B, d]),
      rowNorm: f32([2, B]),
      rowStats: f32([COL_L0 + 1, B]),
      scores: f32([R, n]),
      acts: f32([R, n]),
      oneHot: f32([R, n]),
      previous: u32([R]),
      residual: f32([R, d]),
      gradResidual: f32([R, d]),
      contribution: f32([R, d]),
      gradOut: f32([R, d]),
      done: u32([R]),
      historyIdx: u32([T, R]),
      historyValue: f32([T, R]),
      gradOutSums: f32([d]),
      gradInputSums: f32([d]),
      windowSums: f32([d]),
      rowSums: f32([COL_L0 + 1]),
      latentSums: f32([2]),
      scalars: f32([4]),
    };
    for (const t of [ws.oneHot, ws.scalars, ws.latentSums]) {
      gpu.clear(t.buffer, t.offset, t.byteLength);
    }
    gpu.write(ws.previous.buffer, ws.previous.offset, new Uint32Array(R).fill(NO_LATENT));
    this.#ws = ws;
    return ws;
  }

  /** Records one training step (see `TrainingSAE.recordStep`). */
  record(x: Tensor, coef: Tensor, _dead: Tensor | null): void {
    const { gpu, cfg, params, grads, outputs } = this.#ctx;
    const B = checkInput(x, cfg.dIn), d = cfg.dIn;
    const ws = this.#workspace(B);
    reduceCols("mean", x, { out: ws.inputMean });
    prepRows(
      gpu,
      x,
      params.get("b_dec")!,
      ws.inputMean,
      ws.inputCentred,
      ws.rowNorm,
      ws.rowStats,
      cfg.normalizeActivations,
      cfg.applyBDecToInput,
    );
    ws.windows.forEach((win, i) => {
      this.#forward(ws, x, win, i === 0);
      this.#backward(ws, win, i === 0);
    });
    const gBDec = grads.get("b_dec")!;
    if (cfg.applyBDecToInput) binary("sub", ws.gradOutSums, ws.gradInputSums, { out: gBDec });
    else gpu.clear(gBDec.buffer, gBDec.offset, gBDec.byteLength);
    reduceAll("sum", outputs.firedCounts, { out: ws.latentSums, outIndex: 1 });
    reduceRows("sum", ws.rowStats, { out: ws.rowSums });
    assembleLosses(
      gpu,
      ["RS[0] * u.invB"],
      ws.rowSums,
      ws.latentSums,
      coef,
      ws.scalars,
      outputs.losses,
      outputs.recon,
      outputs.l0Sum,
      B,
      d,
    );
    pursuitMetrics(gpu, ws.rowStats, B, 0, COL_L0, this.#settings.threshold, outputs.metrics);
  }

  /** The pursuit of one window, its decode and its residual against x. */
  #forward(ws: PursuitWorkspace, x: Tensor, win: Span, first: boolean): void {
    const { gpu, cfg, params, outputs } = this.#ctx;
    const c = win.count, d = cfg.dIn, wDec = params.get("W_dec")!;
    const residual = rowsView(ws.residual, 0, c), acts = rowsView(ws.acts, 0, c);
    const scores = rowsView(ws.scores, 0, c), done = ws.done;
    const input = rowsView(ws.inputCentred, win.start, c);
    gpu.copy(input.buffer, input.offset, residual.buffer, residual.offset, c * d * 4);
    gpu.clear(acts.buffer, acts.offset, acts.byteLength);
    gpu.clear(done.buffer, done.offset, done.byteLength);
    const history = { idx: ws.historyIdx, value: ws.historyValue, stride: ws.windows[0].count };
    const rowStats = { tensor: ws.rowStats, col: COL_L0, rOff: win.start, B: ws.batchRows };
    for (let t = 0; t < this.#settings.iterations; t++) {
      gemm(gpu, residual, wDec, scores, { transB: true });
      pursuitStep(gpu, {
        scores,
        wDec,
        residual,
        acts,
        done,
        t,
        history,
        rowStats,
        record: true,
        residualThreshold: this.#settings.threshold,
        stopOnDuplicateSupport: this.#settings.stopOnDuplicate,
      });
    }
    const decoded = rowsView(ws.reconstruction, win.start, c);
    gemm(gpu, acts, wDec, decoded, cfg.applyBDecToInput ? { bias: params.get("b_dec")! } : {});
    residualRows(gpu, {
      pred: decoded,
      pOff: 0,
      x,
      xOff: win.start,
      g: rowsView(ws.gradOut, 0, c),
      gOff: 0,
      rowNorm: ws.rowNorm,
      rowData: ws.rowStats,
      scalars: ws.scalars,
      rows: c,
      rOff: win.start,
      B: ws.batchRows,
      denorm: true,
      recon: true,
      col: 0,
      gscale: 2 / ws.batchRows,
      wIdx: -1,
    });
    firedColumns(gpu, acts, outputs.firedCounts, !first);
  }

  /** The reverse pass of one window: decode, then the pursuit from its last iteration back. */
  #backward(ws: PursuitWorkspace, win: Span, first: boolean): void {
    const { gpu, cfg, params, grads } = this.#ctx;
    const c = win.count, wDec = params.get("W_dec")!, gWDec = grads.get("W_dec")!;
    const gradOut = rowsView(ws.gradOut, 0, c), gradResidual = rowsView(ws.gradResidual, 0, c);
    const residual = rowsView(ws.residual, 0, c), contribution = rowsView(ws.contribution, 0, c);
    const oneHot = rowsView(ws.oneHot, 0, c);
    gemm(gpu, rowsView(ws.acts, 0, c), gradOut, gWDec, { transA: true, accumulate: !first });
    gpu.clear(gradResidual.buffer, gradResidual.offset, gradResidual.byteLength);
    const history = { idx: ws.historyIdx, value: ws.historyValue, stride: ws.windows[0].count };
    for (let t = this.#settings.iterations - 1; t >= 0; t--) {
      pursuitBackStep(gpu, {
        wDec,
        gradOut,
        residual,
        gradResidual,
        contribution,
        oneHot: ws.oneHot,
        previous: ws.previous,
        t,
        history,
      });
      gemm(gpu, oneHot, contribution, gWDec, { transA: true, accumulate: true });
    }
    if (!cfg.applyBDecToInput) return;
    const sums = [[gradOut, ws.gradOutSums], [gradResidual, ws.gradInputSums]] as const;
    for (const [rows, total] of sums) {
      if (first) reduceCols("sum", rows, { out: total });
      else {
        reduceCols("sum", rows, { out: ws.windowSums });
        binary("add", total, ws.windowSums, { out: total });
      }
    }
  }

  /** x̂ of the last step, and f when the step ran as one window. */
  debug(): StepDebug {
    return windowedDebug(this.#ws);
  }

  /** Releases the workspace. */
  dispose(): void {
    this.#ws?.tensors.dispose();
    this.#ws = null;
  }
}

/** Refuses the activation scaler (the tied pursuit cannot fold a scaling factor). */
function checkPursuitTraining(cfg: TrainingSAEConfig): void {
  if (cfg.normalizeActivations === "expected_average_only_in") {
    throw new TrainSaeError(
      `normalize_activations: "expected_average_only_in" cannot train a ${cfg.architecture} SAE ` +
        "(its scaling factor cannot be folded into a tied decoder); use none, " +
        "constant_norm_rescale or layer_norm",
    );
  }
}

/** The Matching Pursuit SAE's GPU training. */
export const matchingPursuitTraining: TrainingArchitecture = {
  params: (cfg) => ({ W_dec: [cfg.dSae, cfg.dIn], b_dec: [cfg.dIn] }),
  coefficients: () => [],
  lossKeys: () => ["mse_loss"],
  metricKeys: () => ["max_l0", "min_l0", "residual_norm", "residual_threshold_converged_portion"],
  validate: checkPursuitTraining,
  createStep: (ctx) => new MatchingPursuitStep(ctx),
};
