/**
 * The sparse training driver: the recorded step of the TopK family (topk, batchtopk,
 * matryoshka_batchtopk), with the architecture plugged in as a {@link SparseArchitecture} that
 * says how latents are selected and which level widths are reconstructed. It never names an
 * architecture.
 *
 * The encoder GEMM is the only dense product; selection makes sparse entries (token, latent, a),
 * the decoder gathers k rows per token, and the backward is sparse too: one dot per entry for
 * ∂L/∂h, a deterministic counting sort by latent, and a per-latent gather for ∂W_dec rows,
 * ∂W_enc columns and ∂b_enc (about 2·d·n + 8·k·d FLOPs per token). Aux-k (dead latents) and the
 * Matryoshka inner losses ride on the same entries with their own upstream rows; with
 * Matryoshka's per-level aux loss each level selects its own dead latents against its own
 * residual.
 *
 * Only the `[rows, d_sae]` pre-activations are windowed (micro-batches of the encoder GEMM and
 * the selection); everything after works on sparse entries and `[B, d_in]` rows. A batch
 * selection keeps the whole `[B, d_sae]` pre-activation (in one buffer, bound window by window)
 * because its threshold is global.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { rowsView, type Span } from "../../gpu/kernel.ts";
import { reduceAll, reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../config_types.ts";
import { gemm } from "./kernels/_gemm.ts";
import {
  assembleLosses,
  bDecGrad,
  levelScalars,
  SC_AUXW,
  SC_NDEAD,
  stepScalars,
} from "./kernels/latent.ts";
import { prepRows, residualRows } from "./kernels/rows.ts";
import { auxSelect } from "./kernels/select.ts";
import { cumulativeLevels, decodeRows, densify, scaleEncoder } from "./kernels/sparse_decode.ts";
import {
  entryDots,
  latentGather,
  sortChunks,
  sortEntries,
  type SortScratch,
  type SparseBackwardArgs,
} from "./kernels/sparse_backward.ts";
import {
  type ArchStep,
  checkInput,
  planWindows,
  type StepContext,
  type StepDebug,
  type TrainingExtras,
  TrainSaeError,
  Workspace,
} from "./train_sae_common.ts";

/** Per-token statistics columns: four recon terms, then the aux-k groups, then inner levels. */
const COL_AUX = 4;

/** What the driver hands an architecture's selection. */
export interface SparseSelectionContext {
  gpu: Gpu;
  cfg: TrainingSAEConfig;
  /** Batch rows B. */
  batchRows: number;
  /** The architecture's k. */
  k: number;
  /** Rescale by decoder norms (selection on h·n, entries store h·n/n). */
  rescale: boolean;
  /** ‖W_dec[i]‖ `[d_sae]`. */
  decoderNorms: Tensor;
  /** Entries `[capacity, 4]` (u32: latent, row, a, ∂L/∂h). */
  entries: Tensor;
  /** Main-entry row offsets `[B + 1]` (CSR). */
  rowPtr: Tensor;
  /** Number of main entry slots. */
  mainCapacity: number;
  /** The SAE's buffers (BatchTopK: `topk_threshold`). */
  buffers: Map<string, Tensor>;
  /** The step's metrics output. */
  metrics: Tensor;
  /** The architecture's own workspace tensors. */
  own: Record<string, Tensor>;
}

/** What an architecture plugs into the sparse driver. */
export interface SparseArchitecture {
  /** Level widths reconstructed (Matryoshka: its widths; others `[d_sae]`). */
  levels(cfg: TrainingSAEConfig): number[];
  /** k after validation (throws a TrainSaeError naming what is wrong). */
  k(cfg: TrainingSAEConfig): number;
  /** Main entry slots for `batchRows` rows. */
  mainCapacity(k: number, batchRows: number): number;
  /** The selection needs the whole batch's pre-activations (a global threshold). */
  wholeBatch: boolean;
  /** One aux-k group per level (Matryoshka's per-level aux loss) rather than one over d_sae. */
  auxPerLevel?(extras: TrainingExtras): boolean;
  /** Its own workspace, allocated once per batch size. */
  workspace?(
    ctx: StepContext,
    alloc: (shape: number[], dtype?: "f32" | "u32") => Tensor,
    batchRows: number,
  ): Record<string, Tensor>;
  /** Per-token selection of window `win` of `preActs` (rows `[0, win.count)` are the window's). */
  selectWindow?(sel: SparseSelectionContext, preActs: Tensor, win: Span): void;
  /** Batch selection once every window is encoded (`preActs` holds all B rows). */
  selectBatch?(sel: SparseSelectionContext, preActs: Tensor, windows: Span[]): void;
  /** After the backward (BatchTopK: the threshold EMA into the metrics). */
  finish?(sel: SparseSelectionContext): void;
  /** Names of `StepOutputs.metrics`. */
  metricKeys?(cfg: TrainingSAEConfig): string[];
}

/** Loss keys of a sparse architecture with these level widths. */
export function sparseLossKeys(levels: readonly number[]): string[] {
  const inner = levels.slice(0, -1).map((w) => `inner_mse_loss_${w}`);
  return ["mse_loss", "auxiliary_reconstruction_loss", ...inner];
}

/** Tensors of one batch size, allocated once. */
interface SparseWorkspace {
  batchRows: number;
  tensors: Workspace;
  windows: Span[];
  mainCapacity: number;
  /** Aux slots per row (k_aux per aux group) and in all. */
  auxSlotsPerRow: number;
  auxCapacity: number;
  inputCentred: Tensor;
  inputMean: Tensor;
  reconstruction: Tensor;
  rowNorm: Tensor;
  rowStats: Tensor;
  preActs: Tensor;
  /** With the rescale: W_enc·diag(n) and b_enc·n. */
  scaledEncoder: Tensor | null;
  scaledEncoderBias: Tensor | null;
  /** Every level's reconstruction `[m·B, d]` (Matryoshka), else null (x̂ only). */
  levelOut: Tensor | null;
  /** Upstream rows: level l's total at rows l·B, aux group j at rows (m + j)·B. */
  upstream: Tensor;
  /** Aux-k reconstructions, group j at rows j·B. */
  auxOut: Tensor;
  entries: Tensor;
  rowPtr: Tensor;
  auxCount: Tensor;
  decoderNorms: Tensor;
  scalars: Tensor;
  rowSums: Tensor;
  latentSums: Tensor;
  /** `[2, n]`: ∂b_enc and the firing counts. */
  latentStats: Tensor;
  /** Σ_t of the level-0 upstream rows `[d]` (b_dec's gradient before the encoder term). */
  upstreamSums: Tensor;
  sort: SortScratch;
  denseActs: Tensor | null;
  own: Record<string, Tensor>;
}

/** The recorded step of a sparse architecture. */
export class SparseStep implements ArchStep {
  readonly #ctx: StepContext;
  readonly #arch: SparseArchitecture;
  readonly #levels: number[];
  readonly #k: number;
  readonly #kAux: number;
  readonly #auxGroups: number;
  #ws: SparseWorkspace | null = null;

  /** A step of `arch` over the SAE of `ctx`; validates k and the aux-k width. */
  constructor(ctx: StepContext, arch: SparseArchitecture) {
    const { cfg } = ctx;
    this.#ctx = ctx;
    this.#arch = arch;
    this.#levels = arch.levels(cfg);
    this.#k = arch.k(cfg);
    this.#kAux = Math.floor(cfg.dIn / 2);
    this.#auxGroups = arch.auxPerLevel?.(ctx.extras) ? this.#levels.length : 1;
    if (typeof cfg.rescaleActsByDecoderNorm !== "boolean") {
      throw new TrainSaeError(
        `rescale_acts_by_decoder_norm: required (boolean) for ${cfg.architecture}`,
      );
    }
    if (this.#kAux < 1) {
      throw new TrainSaeError(`d_in must be ≥ 2 for the aux-k loss of ${cfg.architecture}`);
    }
  }

  #workspace(B: number): SparseWorkspace {
    if (this.#ws && this.#ws.batchRows === B) return this.#ws;
    this.#ws?.tensors.dispose();
    const ctx = this.#ctx, arch = this.#arch, { gpu, cfg } = ctx;
    const d = cfg.dIn, n = cfg.dSae, m = this.#levels.length, groups = this.#auxGroups;
    const mainCapacity = arch.mainCapacity(this.#k, B);
    if (mainCapacity > B * n) {
      throw new TrainSaeError(
        `k: ⌊${this.#k}·${B}⌋ = ${mainCapacity} exceeds the ${B * n} activations`,
      );
    }
    const auxSlotsPerRow = groups * this.#kAux, auxCapacity = B * auxSlotsPerRow;
    if (
      (m + groups) * B * d * 4 > gpu.maxBindingSize ||
      (mainCapacity + auxCapacity) * 16 > gpu.maxBindingSize
    ) {
      throw new TrainSaeError(
        `a batch of ${B} rows needs bindings over maxStorageBufferBindingSize ` +
          `(${gpu.maxBindingSize} bytes); use smaller batches`,
      );
    }
    const windows = planWindows(gpu, B, [n], [n, d], ctx.maxWindowRows);
    const tensors = new Workspace(gpu);
    const alloc = (shape: number[], dtype: "f32" | "u32" = "f32") => tensors.alloc(shape, dtype);
    const columns = COL_AUX + groups + m - 1;
    const count = mainCapacity + auxCapacity;
    const chunks = Math.max(sortChunks(count).chunks, sortChunks(mainCapacity).chunks);
    const rescale = cfg.rescaleActsByDecoderNorm!;
    const ws: SparseWorkspace = {
      batchRows: B,
      tensors,
      windows,
      mainCapacity,
      auxSlotsPerRow,
      auxCapacity,
      inputCentred: alloc([B, d]),
      inputMean: alloc([d]),
      reconstruction: alloc([B, d]),
      rowNorm: alloc([2, B]),
      rowStats: alloc([columns, B]),
      preActs: alloc([arch.wholeBatch ? B : windows[0].count, n]),
      scaledEncoder: rescale ? alloc([d, n]) : null,
      scaledEncoderBias: rescale ? alloc([n]) : null,
      levelOut: m > 1 ? alloc([m * B, d]) : null,
      upstream: alloc([(m + groups) * B, d]),
      auxOut: alloc([groups * B, d]),
      entries: alloc([count, 4], "u32"),
      rowPtr: alloc([B + 1], "u32"),
      auxCount: alloc([B], "u32"),
      decoderNorms: alloc([n]),
      scalars: alloc([groups > 1 ? 4 + 2 * groups : 4]),
      rowSums: alloc([columns]),
      latentSums: alloc([2]),
      latentStats: alloc([2, n]),
      upstreamSums: alloc([d]),
      sort: {
        cnt: alloc([chunks, n], "u32"),
        tot: alloc([n], "u32"),
        start: alloc([n + 1], "u32"),
        list: alloc([count], "u32"),
      },
      denseActs: null,
      own: arch.workspace?.(ctx, alloc, B) ?? {},
    };
    for (const t of [ws.rowStats, ws.latentSums, ws.upstream]) {
      gpu.clear(t.buffer, t.offset, t.byteLength);
    }
    this.#ws = ws;
    return ws;
  }

  #selection(ws: SparseWorkspace): SparseSelectionContext {
    const { gpu, cfg, buffers, outputs } = this.#ctx;
    return {
      gpu,
      cfg,
      batchRows: ws.batchRows,
      k: this.#k,
      rescale: cfg.rescaleActsByDecoderNorm!,
      decoderNorms: ws.decoderNorms,
      entries: ws.entries,
      rowPtr: ws.rowPtr,
      mainCapacity: ws.mainCapacity,
      buffers,
      metrics: outputs.metrics,
      own: ws.own,
    };
  }

  /** Records one training step (see `TrainingSAE.recordStep`). */
  record(x: Tensor, _coef: Tensor, dead: Tensor | null): void {
    const { gpu, cfg, params } = this.#ctx;
    const B = checkInput(x, cfg.dIn);
    const ws = this.#workspace(B);
    const sel = this.#selection(ws);
    reduceRows("l2", params.get("W_dec")!, { out: ws.decoderNorms });
    reduceCols("mean", x, { out: ws.inputMean });
    this.#recordScalars(ws, dead);
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
    this.#encodeAndSelect(ws, sel, dead);
    this.#decode(ws, x);
    if (dead) this.#auxDecode(ws, x);
    this.#backward(ws, dead !== null);
    this.#arch.finish?.(sel);
    this.#assembleLosses(ws);
  }

  /** Dead counts and aux weights: one group over d_sae, or one per level. */
  #recordScalars(ws: SparseWorkspace, dead: Tensor | null): void {
    const { gpu, cfg } = this.#ctx;
    const coef = cfg.auxLossCoefficient ?? 1;
    stepScalars(gpu, dead, ws.scalars, coef, this.#kAux);
    if (this.#auxGroups > 1) levelScalars(gpu, dead, ws.scalars, coef, this.#kAux, this.#levels);
  }

  /** Index in the scalars of aux group `j`'s dead count (its weight follows). */
  #deadCountIndex(j: number): number {
    return this.#auxGroups > 1 ? 4 + 2 * j : SC_NDEAD;
  }

  /** Encoder GEMM, the main selection and the aux-k selection, window by window. */
  #encodeAndSelect(ws: SparseWorkspace, sel: SparseSelectionContext, dead: Tensor | null): void {
    const { gpu, params } = this.#ctx, arch = this.#arch;
    const wEnc = params.get("W_enc")!, bEnc = params.get("b_enc")!;
    const preActsOf = (win: Span) =>
      rowsView(ws.preActs, arch.wholeBatch ? win.start : 0, win.count);
    // With the rescale, encode with W_enc·diag(n) and b_enc·n: the GEMM yields hs = h·n.
    let encoder = wEnc, encoderBias = bEnc;
    if (sel.rescale) {
      scaleEncoder(gpu, wEnc, bEnc, ws.decoderNorms, ws.scaledEncoder!, ws.scaledEncoderBias!);
      encoder = ws.scaledEncoder!;
      encoderBias = ws.scaledEncoderBias!;
    }
    for (const win of ws.windows) {
      const h = preActsOf(win);
      gemm(gpu, rowsView(ws.inputCentred, win.start, win.count), encoder, h, { bias: encoderBias });
      arch.selectWindow?.(sel, h, win);
      if (dead) this.#auxSelect(ws, sel, h, win, dead);
    }
    arch.selectBatch?.(sel, ws.preActs, ws.windows);
  }

  /** The aux-k entries of one window: each group's top dead latents, appended per row. */
  #auxSelect(
    ws: SparseWorkspace,
    sel: SparseSelectionContext,
    h: Tensor,
    win: Span,
    dead: Tensor,
  ): void {
    const groups = this.#auxGroups;
    for (let j = 0; j < groups; j++) {
      const lo = groups > 1 && j > 0 ? this.#levels[j - 1] : 0;
      const hi = groups > 1 ? this.#levels[j] : this.#ctx.cfg.dSae;
      auxSelect(
        this.#ctx.gpu,
        h,
        ws.decoderNorms,
        dead,
        ws.scalars,
        ws.entries,
        ws.auxCount,
        this.#kAux,
        ws.mainCapacity,
        win.start,
        sel.rescale,
        this.#deadCountIndex(j),
        { lo, hi, stride: ws.auxSlotsPerRow, append: j > 0 },
      );
    }
  }

  /** Sparse decode of every level and the residuals against x. */
  #decode(ws: SparseWorkspace, x: Tensor): void {
    const { gpu, cfg, params } = this.#ctx;
    const B = ws.batchRows, d = cfg.dIn, m = this.#levels.length;
    const levelOut = ws.levelOut ?? ws.reconstruction;
    decodeRows(gpu, {
      ent: ws.entries,
      rowPtr: ws.rowPtr,
      wDec: params.get("W_dec")!,
      bias: params.get("b_dec")!,
      out: levelOut,
      B,
      levels: this.#levels,
    });
    for (let l = 0; l < m; l++) {
      const full = l === m - 1;
      residualRows(gpu, {
        ...this.#rowsCommon(ws, x),
        pred: levelOut,
        pOff: l * B,
        g: ws.upstream,
        gOff: l * B,
        denorm: true,
        recon: full,
        col: full ? 0 : COL_AUX + this.#auxGroups + l,
      });
    }
    if (ws.levelOut) {
      const lv = ws.levelOut;
      gpu.copy(
        lv.buffer,
        lv.offset + (m - 1) * B * d * 4,
        ws.reconstruction.buffer,
        ws.reconstruction.offset,
        B * d * 4,
      );
    }
    cumulativeLevels(gpu, ws.upstream, m, B * d);
  }

  /** Aux-k reconstructions of the dead latents and their residuals (x − x̂ of their level). */
  #auxDecode(ws: SparseWorkspace, x: Tensor): void {
    const { gpu, cfg, params } = this.#ctx;
    const B = ws.batchRows, m = this.#levels.length, groups = this.#auxGroups;
    const perLevel = groups > 1;
    decodeRows(gpu, {
      ent: ws.entries,
      rowPtr: ws.auxCount,
      stride: ws.auxSlotsPerRow,
      base: ws.mainCapacity,
      wDec: params.get("W_dec")!,
      bias: null,
      out: ws.auxOut,
      B,
      levels: perLevel ? this.#levels : [cfg.dSae],
      separateLevels: perLevel,
    });
    for (let j = 0; j < groups; j++) {
      // Residual of the level's own reconstruction (per level), or of x̂.
      const levelOwn = perLevel && ws.levelOut !== null;
      residualRows(gpu, {
        ...this.#rowsCommon(ws, x),
        pred: ws.auxOut,
        pOff: j * B,
        xhat: levelOwn ? ws.levelOut! : ws.reconstruction,
        xhatOff: levelOwn ? j * B : 0,
        g: ws.upstream,
        gOff: (m + j) * B,
        denorm: false,
        recon: false,
        col: COL_AUX + j,
        wIdx: this.#deadCountIndex(j) + (perLevel ? 1 : SC_AUXW - SC_NDEAD),
      });
    }
  }

  #rowsCommon(ws: SparseWorkspace, x: Tensor) {
    const B = ws.batchRows;
    return {
      x,
      xOff: 0,
      rowNorm: ws.rowNorm,
      rowData: ws.rowStats,
      scalars: ws.scalars,
      rows: B,
      rOff: 0,
      B,
      gscale: 2 / B,
      wIdx: -1,
    };
  }

  /** Entry dots, the sort by latent, the per-latent gather, b_dec. */
  #backward(ws: SparseWorkspace, useAux: boolean): void {
    const { gpu, cfg, params, grads, outputs } = this.#ctx;
    const B = ws.batchRows, d = cfg.dIn, n = cfg.dSae;
    const sb: SparseBackwardArgs = {
      ent: ws.entries,
      rowPtr: ws.rowPtr,
      ups: ws.upstream,
      wDec: params.get("W_dec")!,
      B,
      d,
      n,
      auxBase: ws.mainCapacity,
      kAux: ws.auxSlotsPerRow,
      auxN: ws.auxCount,
      count: ws.mainCapacity + (useAux ? ws.auxCapacity : 0),
      levels: this.#levels,
      auxPerLevel: this.#auxGroups > 1,
    };
    entryDots(gpu, sb);
    sortEntries(gpu, sb, ws.sort);
    latentGather(
      gpu,
      sb,
      ws.sort,
      ws.inputCentred,
      grads.get("W_dec")!,
      grads.get("W_enc")!,
      ws.latentStats,
    );
    const gBEnc = grads.get("b_enc")!, fc = outputs.firedCounts, ls = ws.latentStats;
    gpu.copy(ls.buffer, ls.offset, gBEnc.buffer, gBEnc.offset, n * 4);
    gpu.copy(ls.buffer, ls.offset + n * 4, fc.buffer, fc.offset, n * 4);
    reduceAll("sum", fc, { out: ws.latentSums, outIndex: 1 });
    reduceCols("sum", rowsView(ws.upstream, 0, B), { out: ws.upstreamSums });
    bDecGrad(
      gpu,
      params.get("W_enc")!,
      false,
      ws.latentStats,
      0,
      ws.upstreamSums,
      grads.get("b_dec")!,
      cfg.applyBDecToInput,
    );
    reduceRows("sum", ws.rowStats, { out: ws.rowSums });
  }

  #assembleLosses(ws: SparseWorkspace): void {
    const { gpu, cfg, outputs } = this.#ctx;
    const groups = this.#auxGroups;
    const aux = Array.from(
      { length: groups },
      (_, j) =>
        `RS[${COL_AUX + j}] * u.invB * SC[${
          this.#deadCountIndex(j) + (groups > 1 ? 1 : SC_AUXW - SC_NDEAD)
        }]`,
    ).join(" + ");
    const terms = [
      "RS[0] * u.invB",
      aux,
      ...this.#levels.slice(0, -1).map((_, l) => `RS[${COL_AUX + groups + l}] * u.invB`),
    ];
    assembleLosses(
      gpu,
      terms,
      ws.rowSums,
      ws.latentSums,
      ws.scalars,
      ws.scalars,
      outputs.losses,
      outputs.recon,
      outputs.l0Sum,
      ws.batchRows,
      cfg.dIn,
    );
  }

  /** x̂ and the dense feature acts of the last step (densified on demand). */
  debug(): StepDebug {
    const ws = this.#ws;
    if (!ws) return { saeOut: null, featureActs: null };
    const { gpu, cfg } = this.#ctx;
    ws.denseActs ??= ws.tensors.alloc([ws.batchRows, cfg.dSae]);
    densify(
      gpu,
      ws.entries,
      ws.rowPtr,
      ws.decoderNorms,
      ws.denseActs,
      ws.mainCapacity,
      cfg.rescaleActsByDecoderNorm!,
    );
    return { saeOut: ws.reconstruction, featureActs: ws.denseActs };
  }

  /** Releases the workspace. */
  dispose(): void {
    this.#ws?.tensors.dispose();
    this.#ws = null;
  }
}
