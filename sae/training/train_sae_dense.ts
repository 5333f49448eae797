/**
 * The dense training driver: the recorded step of every architecture whose latents are dense
 * `[rows, d_sae]` matrices (standard, gated, jumprelu, the transcoders), with the architecture
 * plugged in as a {@link DenseArchitecture}. The driver owns what they share — input
 * processing, the decoder GEMM and the residual against the target, the ∂L/∂f and weight GEMMs,
 * the per-latent finalisation, the b_dec and decoder-norm chain rule and the loss assembly — and
 * asks the architecture for its encoder and activation (`forward`), its extra losses
 * (`afterDecode`) and its fused backward (`backward`). It never names an architecture.
 *
 * Everything stays on the GPU with no readback. Rows are processed in micro-batch windows when
 * the `[rows, d_sae]` workspace would exceed one storage binding; weight gradients then
 * accumulate over windows (GEMM accumulate) and every sum keeps a fixed order. Transcoders
 * (`TrainingArchitecture.transcoder`) reconstruct a separate target `[B, d_out]` from an input
 * that is never centred by b_dec; skip transcoders add x·W_skipᵀ to the decoder output.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { rowsView, type Span } from "../../gpu/kernel.ts";
import { binary } from "../../gpu/kernels/binary.ts";
import { reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../config_types.ts";
import { gemm } from "./kernels/_gemm.ts";
import type { DenseKernels } from "./kernels/dense_acts.ts";
import {
  assembleLosses,
  bDecGrad,
  decoderNormGrad,
  latentFinalize,
  type LatentSpec,
  stepScalars,
} from "./kernels/latent.ts";
import { prepRows, residualRows } from "./kernels/rows.ts";
import {
  type ArchStep,
  checkInput,
  checkTarget,
  planWindows,
  type StepContext,
  type StepDebug,
  type TrainingExtras,
  TrainSaeError,
  windowedDebug,
  Workspace,
} from "./train_sae_common.ts";

/** Rows per chunk of the fused backward's per-latent partial sums. */
export const CHUNK_ROWS = 64;
/** The first per-token statistics column an architecture may use (0-3: the recon terms). */
export const FIRST_ARCH_COLUMN = 4;

/** What the driver hands an architecture for a whole batch. */
export interface DenseBatch {
  gpu: Gpu;
  cfg: TrainingSAEConfig;
  extras: TrainingExtras;
  params: Map<string, Tensor>;
  grads: Map<string, Tensor>;
  /** The batch's raw input `[B, d_in]`. */
  input: Tensor;
  /** What the decoder reconstructs `[B, d_out]`: the input itself, or a transcoder's target. */
  target: Tensor;
  /** Batch rows B. */
  batchRows: number;
  /** u32 `[d_sae]`, 1 = dead, or null. */
  deadMask: Tensor | null;
  /** f32 `[coefficients().length]`: this step's coefficient values. */
  coefficients: Tensor;
  /** Step scalars `[4]`: dead count, aux weight (see `stepScalars`). */
  scalars: Tensor;
  /** ‖W_dec[i]‖ `[d_sae]`. */
  decoderNorms: Tensor;
  /** Per-token denormalisation `[2, B]` (scale s, shift μ). */
  rowNorm: Tensor;
  /** Per-token statistics `[columns, B]` (0-3 recon terms, then the architecture's). */
  rowStats: Tensor;
  /** The batch mean of the input `[d_in]`. */
  inputMean: Tensor;
  /** x̂ `[B, d_out]` (denormalised) once the windows ran. */
  reconstruction: Tensor;
  /** The architecture's own workspace tensors (see {@link DenseArchitecture.workspace}). */
  own: Record<string, Tensor>;
}

/** Arguments of {@link DenseWindow.residual}. */
export interface WindowResidual {
  /** Prediction rows: `decoded` rows `[pOff, pOff + rows)`. */
  pOff: number;
  /** Gradient rows: `gradOut` rows `[gOff, gOff + rows)`. */
  gOff: number;
  /** Denormalise the prediction in place first. */
  denorm: boolean;
  /** Also write the explained-variance terms. */
  recon: boolean;
  /** `rowStats` column of Σ_j (p − target)². */
  col: number;
}

/** What the driver hands an architecture for one micro-batch window. */
export interface DenseWindow extends DenseBatch {
  /** First batch row of the window. */
  start: number;
  /** Rows of the window. */
  rows: number;
  /** The batch's first window (weight GEMMs overwrite rather than accumulate). */
  first: boolean;
  /** x̃ rows of the window `[rows, d_in]`. */
  inputRows: Tensor;
  /** Encoder output `[encoderRows·rows, d_sae]`. */
  preActs: Tensor;
  /** Activations `[stack·rows, d_sae]` (the decoder's input). */
  acts: Tensor;
  /** Decoder output `[stack·rows, d_out]`. */
  decoded: Tensor;
  /** ∂L/∂ŷ `[stack·rows, d_out]`. */
  gradOut: Tensor;
  /** ∂L/∂f `[stack·rows, d_sae]` when `backward` starts; ∂L/∂h (encoder upstream) after it. */
  gradActs: Tensor;
  /** Per-latent partial sums `[chunks, q·d_sae]`. */
  partials: Tensor;
  /** Chunk index of this window's first chunk in `partials`. */
  chunkOffset: number;
  /** Rows per chunk of the partial sums. */
  chunkRows: number;
  /** Records the residual of `decoded` rows against the target rows of this window. */
  residual(r: WindowResidual): void;
}

/** What an architecture plugs into the dense driver. */
export interface DenseArchitecture {
  /** Its fused activation kernels. */
  kernels: DenseKernels;
  /** Its per-latent finalisation. */
  latent: LatentSpec;
  /** Decoder passes per token: 1, or 2 when an auxiliary path decodes beside the main one. */
  stack?: number;
  /** Rows of the encoder-output workspace per token (default 1). */
  encoderRows?(ctx: StepContext): number;
  /** Per-token statistics columns it writes from {@link FIRST_ARCH_COLUMN} on. */
  rowColumns: number;
  /** Its own workspace, allocated once per batch size (`windowRows` rows per window). */
  workspace?(
    ctx: StepContext,
    alloc: (shape: number[]) => Tensor,
    batchRows: number,
    windowRows: number,
  ): Record<string, Tensor>;
  /** Per-step setup before the input processing. */
  prepare?(batch: DenseBatch): void;
  /** Encoder product(s) and activation of one window: writes `win.acts` (and `win.preActs`). */
  forward(win: DenseWindow): void;
  /** After the decoder product and the main residual: extra residuals and per-token terms. */
  afterDecode?(win: DenseWindow): void;
  /** Turns ∂L/∂f into ∂L/∂h in `win.gradActs`, writing its per-latent partial sums. */
  backward(win: DenseWindow): void;
  /** (encoder input rows, ∂L/∂h rows) pairs of the W_enc gradient; default x̃ with ∂L/∂h. */
  encoderGradients?(win: DenseWindow): [Tensor, Tensor][];
  /** Uniforms of the finalisation: `p0`, `flags`, and a per-latent tensor it reads as `xv`. */
  finalizeUniforms(batch: DenseBatch): { p0?: number; flags?: number; extra?: Tensor | null };
  /** WGSL loss terms after mse (over `RS`, `LS`, `COEF`, `SC`, `u`; see `assembleLosses`). */
  lossTerms(ctx: StepContext): string[];
}

/** Tensors of one batch size, allocated once. */
interface DenseWorkspace {
  batchRows: number;
  tensors: Workspace;
  windows: Span[];
  /** x̃ `[B, d_in]`. */
  inputCentred: Tensor;
  inputMean: Tensor;
  /** Transcoders: the target's batch mean `[d_out]`. */
  targetMean: Tensor | null;
  reconstruction: Tensor;
  rowNorm: Tensor;
  rowStats: Tensor;
  preActs: Tensor;
  acts: Tensor;
  /** Stacked decoder output `[stack·R, d_out]` (stack > 1; else rows of `reconstruction`). */
  stackedOut: Tensor | null;
  gradOut: Tensor;
  gradActs: Tensor;
  partials: Tensor;
  latentColumnSums: Tensor;
  latentRows: Tensor;
  latentSums: Tensor;
  rowSums: Tensor;
  /** Σ_t ∂L/∂ŷ_t over the batch, and one window's. */
  gradOutSums: Tensor;
  gradOutSumsWindow: Tensor;
  decoderNorms: Tensor;
  scalars: Tensor;
  own: Record<string, Tensor>;
}

/** The recorded step of a dense architecture. */
export class DenseStep implements ArchStep {
  readonly #ctx: StepContext;
  readonly #arch: DenseArchitecture;
  readonly #transcoder: boolean;
  readonly #skip: boolean;
  #ws: DenseWorkspace | null = null;

  /** A step of `arch` over the SAE of `ctx`. */
  constructor(ctx: StepContext, arch: DenseArchitecture) {
    this.#ctx = ctx;
    this.#arch = arch;
    this.#transcoder = !!ctx.transcoder;
    this.#skip = !!ctx.skip;
  }

  get #dOut(): number {
    const { cfg } = this.#ctx;
    return this.#transcoder ? cfg.dOut! : cfg.dIn;
  }

  #workspace(B: number): DenseWorkspace {
    if (this.#ws && this.#ws.batchRows === B) return this.#ws;
    this.#ws?.tensors.dispose();
    const ctx = this.#ctx, arch = this.#arch, { gpu, cfg } = ctx;
    const dIn = cfg.dIn, dOut = this.#dOut, n = cfg.dSae;
    const stack = arch.stack ?? 1, encRows = arch.encoderRows?.(ctx) ?? 1;
    const dMax = Math.max(dIn, dOut);
    if (B * dMax * 4 > gpu.maxBindingSize) {
      throw new TrainSaeError(
        `a batch of ${B}×${dMax} f32 exceeds maxStorageBufferBindingSize (${gpu.maxBindingSize} bytes)`,
      );
    }
    const aligned = dOut === dIn ? [n, dIn] : [n, dIn, dOut];
    const windows = planWindows(gpu, B, [stack * n, stack * dOut], aligned, ctx.maxWindowRows);
    const R = windows[0].count;
    const tensors = new Workspace(gpu);
    const alloc = (shape: number[]) => tensors.alloc(shape);
    const chunks = windows.reduce((s, w) => s + Math.ceil(w.count / CHUNK_ROWS), 0);
    const columns = FIRST_ARCH_COLUMN + arch.rowColumns;
    const latentRowCount = arch.latent.rows.length;
    const ws: DenseWorkspace = {
      batchRows: B,
      tensors,
      windows,
      inputCentred: alloc([B, dIn]),
      inputMean: alloc([dIn]),
      targetMean: this.#transcoder ? alloc([dOut]) : null,
      reconstruction: alloc([B, dOut]),
      rowNorm: alloc([2, B]),
      rowStats: alloc([columns, B]),
      preActs: alloc([encRows * R, n]),
      acts: alloc([stack * R, n]),
      stackedOut: stack > 1 ? alloc([stack * R, dOut]) : null,
      gradOut: alloc([stack * R, dOut]),
      gradActs: alloc([stack * R, n]),
      partials: alloc([chunks, arch.kernels.q * n]),
      latentColumnSums: alloc([arch.kernels.q * n]),
      latentRows: alloc([latentRowCount, n]),
      latentSums: alloc([latentRowCount]),
      rowSums: alloc([columns]),
      gradOutSums: alloc([dOut]),
      gradOutSumsWindow: alloc([dOut]),
      decoderNorms: alloc([n]),
      scalars: alloc([4]),
      own: arch.workspace?.(ctx, alloc, B, R) ?? {},
    };
    // Columns that a configuration never writes must still sum to zero.
    gpu.clear(ws.rowStats.buffer, ws.rowStats.offset, ws.rowStats.byteLength);
    this.#ws = ws;
    return ws;
  }

  /** Records one training step (see `TrainingSAE.recordStep`). */
  record(x: Tensor, coef: Tensor, dead: Tensor | null, target?: Tensor | null): void {
    const ctx = this.#ctx, { gpu, cfg } = ctx;
    const B = checkInput(x, cfg.dIn);
    const y = this.#transcoder ? checkTarget(target, B, this.#dOut) : x;
    const ws = this.#workspace(B);
    const batch: DenseBatch = {
      gpu,
      cfg,
      extras: ctx.extras,
      params: ctx.params,
      grads: ctx.grads,
      input: x,
      target: y,
      batchRows: B,
      deadMask: dead,
      coefficients: coef,
      scalars: ws.scalars,
      decoderNorms: ws.decoderNorms,
      rowNorm: ws.rowNorm,
      rowStats: ws.rowStats,
      inputMean: ws.inputMean,
      reconstruction: ws.reconstruction,
      own: ws.own,
    };
    reduceRows("l2", ctx.params.get("W_dec")!, { out: ws.decoderNorms });
    reduceCols("mean", x, { out: ws.inputMean });
    stepScalars(gpu, dead, ws.scalars, 0, 1);
    this.#arch.prepare?.(batch);
    this.#processInput(batch, ws);
    let chunkOffset = 0;
    ws.windows.forEach((win, index) => {
      this.#recordWindow(batch, ws, win, index === 0, chunkOffset);
      chunkOffset += Math.ceil(win.count / CHUNK_ROWS);
    });
    this.#finalize(batch, ws);
  }

  /** x̃ = norm(x) − apply·b_dec, the denormalisation factors and ‖target − mean‖² per token. */
  #processInput(batch: DenseBatch, ws: DenseWorkspace): void {
    const { gpu, cfg, input, target } = batch;
    if (!this.#transcoder) {
      const bDec = batch.params.get("b_dec")!;
      prepRows(
        gpu,
        input,
        bDec,
        ws.inputMean,
        ws.inputCentred,
        ws.rowNorm,
        ws.rowStats,
        cfg.normalizeActivations,
        cfg.applyBDecToInput,
      );
      return;
    }
    // A transcoder's input is used as it is (normalisation "none", no b_dec); the variance
    // column then comes from the target, whose copy lands in `reconstruction` until the
    // windows overwrite it.
    const mean = ws.targetMean!;
    prepRows(
      gpu,
      input,
      ws.inputMean,
      ws.inputMean,
      ws.inputCentred,
      ws.rowNorm,
      ws.rowStats,
      "none",
      false,
    );
    reduceCols("mean", target, { out: mean });
    prepRows(gpu, target, mean, mean, ws.reconstruction, ws.rowNorm, ws.rowStats, "none", false);
  }

  /** Forward, residuals and backward of one window. */
  #recordWindow(
    batch: DenseBatch,
    ws: DenseWorkspace,
    range: Span,
    first: boolean,
    chunkOffset: number,
  ): void {
    const { gpu, params, grads, target } = batch;
    const arch = this.#arch, stack = arch.stack ?? 1, c = range.count;
    const wDec = params.get("W_dec")!;
    const mainOut = rowsView(ws.reconstruction, range.start, c);
    const win: DenseWindow = {
      ...batch,
      start: range.start,
      rows: c,
      first,
      inputRows: rowsView(ws.inputCentred, range.start, c),
      preActs: rowsView(ws.preActs, 0, (arch.encoderRows?.(this.#ctx) ?? 1) * c),
      acts: rowsView(ws.acts, 0, stack * c),
      decoded: ws.stackedOut ? rowsView(ws.stackedOut, 0, stack * c) : mainOut,
      gradOut: rowsView(ws.gradOut, 0, stack * c),
      gradActs: rowsView(ws.gradActs, 0, stack * c),
      partials: ws.partials,
      chunkOffset,
      chunkRows: CHUNK_ROWS,
      residual: (r) =>
        residualRows(gpu, {
          x: target,
          xOff: range.start,
          rowNorm: ws.rowNorm,
          rowData: ws.rowStats,
          scalars: ws.scalars,
          rows: c,
          rOff: range.start,
          B: batch.batchRows,
          gscale: 2 / batch.batchRows,
          wIdx: -1,
          pred: win.decoded,
          g: win.gradOut,
          ...r,
        }),
    };
    // Forward: encoder and activation, decoder (+ skip), residual against the target.
    arch.forward(win);
    gemm(gpu, win.acts, wDec, win.decoded, { bias: params.get("b_dec")! });
    if (this.#skip) {
      gemm(gpu, win.inputRows, params.get("W_skip")!, rowsView(win.decoded, 0, c), {
        transB: true,
        accumulate: true,
      });
    }
    win.residual({ pOff: 0, gOff: 0, denorm: true, recon: true, col: 0 });
    arch.afterDecode?.(win);
    if (ws.stackedOut) {
      gpu.copy(
        win.decoded.buffer,
        win.decoded.offset,
        mainOut.buffer,
        mainOut.offset,
        c * this.#dOut * 4,
      );
    }
    // Backward: ∂L/∂f and ∂W_dec, the architecture's fused pass, ∂W_enc (and ∂W_skip).
    gemm(gpu, win.gradOut, wDec, win.gradActs, { transB: true });
    gemm(gpu, win.acts, win.gradOut, grads.get("W_dec")!, { transA: true, accumulate: !first });
    arch.backward(win);
    const pairs = arch.encoderGradients?.(win) ??
      [[win.inputRows, rowsView(win.gradActs, 0, c)] as [Tensor, Tensor]];
    pairs.forEach(([inputRows, gradPre], k) => {
      gemm(gpu, inputRows, gradPre, grads.get("W_enc")!, {
        transA: true,
        accumulate: !first || k > 0,
      });
    });
    if (this.#skip) {
      gemm(gpu, rowsView(win.gradOut, 0, c), win.inputRows, grads.get("W_skip")!, {
        transA: true,
        accumulate: !first,
      });
    }
    if (first) reduceCols("sum", win.gradOut, { out: ws.gradOutSums });
    else {
      reduceCols("sum", win.gradOut, { out: ws.gradOutSumsWindow });
      binary("add", ws.gradOutSums, ws.gradOutSumsWindow, { out: ws.gradOutSums });
    }
  }

  /** Per-latent sums, gradients of the per-latent parameters and b_dec, losses. */
  #finalize(batch: DenseBatch, ws: DenseWorkspace): void {
    const { gpu, cfg, params, grads, coefficients } = batch;
    const arch = this.#arch, latent = arch.latent, n = cfg.dSae;
    const out = this.#ctx.outputs;
    reduceCols("sum", ws.partials, { out: ws.latentColumnSums });
    const u = arch.finalizeUniforms(batch);
    latentFinalize(
      gpu,
      latent,
      ws.latentColumnSums,
      ws.decoderNorms,
      coefficients,
      ws.scalars,
      u.extra ?? null,
      ws.latentRows,
      batch.batchRows,
      u.p0 ?? 0,
      u.flags ?? 0,
    );
    reduceRows("sum", ws.latentRows, { out: ws.latentSums });
    reduceRows("sum", ws.rowStats, { out: ws.rowSums });
    const wDec = params.get("W_dec")!;
    decoderNormGrad(gpu, grads.get("W_dec")!, wDec, ws.latentRows, latent.gN, ws.decoderNorms);
    bDecGrad(
      gpu,
      params.get("W_enc")!,
      false,
      ws.latentRows,
      latent.bDecVec,
      ws.gradOutSums,
      grads.get("b_dec")!,
      cfg.applyBDecToInput && !this.#transcoder,
    );
    const lr = ws.latentRows;
    for (const [name, row] of Object.entries(latent.grads)) {
      const t = grads.get(name)!;
      gpu.copy(lr.buffer, lr.offset + row * n * 4, t.buffer, t.offset, n * 4);
    }
    const fc = out.firedCounts;
    gpu.copy(lr.buffer, lr.offset + n * 4, fc.buffer, fc.offset, n * 4);
    assembleLosses(
      gpu,
      ["RS[0] * u.invB", ...arch.lossTerms(this.#ctx)],
      ws.rowSums,
      ws.latentSums,
      coefficients,
      ws.scalars,
      out.losses,
      out.recon,
      out.l0Sum,
      batch.batchRows,
      this.#dOut,
    );
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
