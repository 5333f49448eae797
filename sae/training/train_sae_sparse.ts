/**
 * The recorded training step of the TopK family (topk, batchtopk, matryoshka_batchtopk): the
 * encoder GEMM is the only dense product; selection makes sparse entries (token, latent, a),
 * the decoder gathers k rows per token, and the backward is sparse too: one dot per entry for
 * ∂L/∂h, a deterministic counting sort by latent, and a per-latent gather for ∂W_dec rows,
 * ∂W_enc columns and ∂b_enc (about 2·d·n + 8·k·d FLOPs per token). Aux-k (dead latents) and the
 * Matryoshka inner losses ride on the same entries with their own upstream rows.
 *
 * Only the `[rows, d_sae]` pre-activations are windowed (micro-batches of the encoder GEMM and
 * the selection); everything after works on sparse entries and `[B, d_in]` rows. BatchTopK keeps
 * the whole `[B, d_sae]` pre-activation (in one buffer, bound window by window) because its
 * threshold is global; the shared `kthLargest` finds it (integer atomics only).
 * @module
 */

import { reduceAll, reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { matryoshkaWidthsRef } from "../reference/mod.ts";
import { gemm } from "./kernels/_gemm.ts";
import { rowsView } from "./kernels/_util.ts";
import { assembleLosses, bDecGrad, SC_AUXW, SC_NDEAD, stepScalars } from "./kernels/latent.ts";
import { prepRows, residualRows } from "./kernels/rows.ts";
import { auxSelect, batchRowCount, batchRowWrite, topkSelect } from "./kernels/select.ts";
import { fill } from "../../gpu/kernels/elementwise.ts";
import { kthLargest } from "../../gpu/kernels/kth_largest.ts";
import {
  cumulativeLevels,
  decodeRows,
  densify,
  scaleEncoder,
  scanU32,
  thresholdUpdate,
} from "./kernels/sparse_decode.ts";
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
  TrainSaeError,
  Workspace,
} from "./train_sae_common.ts";

/** rowData columns: four recon terms, aux-k, then the Matryoshka inner levels. */
const COL_AUX = 4, COL_INNER = 5;

/** Level widths: Matryoshka widths (validated, d_sae appended), else `[d_sae]`. */
function levelsOf(ctx: Pick<StepContext, "cfg">): number[] {
  const { cfg } = ctx;
  if (cfg.architecture !== "matryoshka_batchtopk") return [cfg.dSae];
  return matryoshkaWidthsRef({ ...cfg, matryoshkaWidths: cfg.matryoshkaWidths ?? [] });
}

/** Loss keys of a TopK-family architecture. */
export function sparseLossKeys(ctx: Pick<StepContext, "cfg">): string[] {
  const inner = levelsOf(ctx).slice(0, -1).map((w) => `inner_mse_loss_${w}`);
  return ["mse_loss", "auxiliary_reconstruction_loss", ...inner];
}

interface SparseWs {
  B: number;
  ws: Workspace;
  windows: { start: number; count: number }[];
  mainCap: number;
  auxCap: number;
  xt: Tensor;
  xbar: Tensor;
  saeOut: Tensor;
  rowNorm: Tensor;
  rowData: Tensor;
  h: Tensor;
  wEncS: Tensor | null;
  bEncS: Tensor | null;
  lvlOut: Tensor | null;
  ups: Tensor;
  auxOut: Tensor;
  ent: Tensor;
  rowPtr: Tensor;
  auxN: Tensor;
  norms: Tensor;
  scalars: Tensor;
  rowSums: Tensor;
  latSums: Tensor;
  lat: Tensor;
  csg: Tensor;
  sort: SortScratch;
  kth: Tensor;
  gt: Tensor;
  rowMin: Tensor;
  fDebug: Tensor | null;
}

/** The recorded step of the TopK family. */
export class SparseStep implements ArchStep {
  readonly levels: number[];
  readonly batch: boolean;
  readonly k: number;
  readonly kAux: number;
  #ws: SparseWs | null = null;

  constructor(readonly ctx: StepContext) {
    const { cfg, extras } = ctx;
    const arch = cfg.architecture;
    this.batch = arch !== "topk";
    this.levels = levelsOf(ctx);
    this.k = cfg.k ?? 100;
    this.kAux = Math.floor(cfg.dIn / 2);
    if (!(this.k > 0) || (!this.batch && (!Number.isSafeInteger(this.k) || this.k > cfg.dSae))) {
      throw new TrainSaeError(
        `k: expected ${
          this.batch ? "a positive number" : `an integer in 1..${cfg.dSae}`
        } for ${arch}, got ${this.k}`,
      );
    }
    if (typeof cfg.rescaleActsByDecoderNorm !== "boolean") {
      throw new TrainSaeError(`rescale_acts_by_decoder_norm: required (boolean) for ${arch}`);
    }
    if (extras.useMatryoshkaAuxLoss) {
      throw new TrainSaeError("useMatryoshkaAuxLoss: the per-level aux-k loss is not implemented");
    }
    if (this.kAux < 1) throw new TrainSaeError(`d_in must be ≥ 2 for the aux-k loss of ${arch}`);
  }

  #workspace(B: number): SparseWs {
    if (this.#ws && this.#ws.B === B) return this.#ws;
    this.#ws?.ws.dispose();
    const { gpu, cfg } = this.ctx;
    const d = cfg.dIn, n = cfg.dSae, m = this.levels.length;
    const mainCap = this.batch ? Math.trunc(this.k * B) : B * this.k;
    if (mainCap > B * n) {
      throw new TrainSaeError(`k: ⌊${this.k}·${B}⌋ = ${mainCap} exceeds the ${B * n} activations`);
    }
    const auxCap = B * this.kAux;
    if ((m + 1) * B * d * 4 > gpu.maxBindingSize || (mainCap + auxCap) * 16 > gpu.maxBindingSize) {
      throw new TrainSaeError(
        `a batch of ${B} rows needs bindings over maxStorageBufferBindingSize ` +
          `(${gpu.maxBindingSize} bytes); use smaller batches`,
      );
    }
    const windows = planWindows(gpu, B, [n], [n, d], this.ctx.maxWindowRows);
    const ws = new Workspace(gpu);
    const rs = COL_INNER + m - 1;
    const count = mainCap + auxCap;
    const chunks = Math.max(sortChunks(count).chunks, sortChunks(mainCap).chunks);
    const w: SparseWs = {
      B,
      ws,
      windows,
      mainCap,
      auxCap,
      xt: ws.alloc([B, d]),
      xbar: ws.alloc([d]),
      saeOut: ws.alloc([B, d]),
      rowNorm: ws.alloc([2, B]),
      rowData: ws.alloc([rs, B]),
      h: ws.alloc([this.batch ? B : windows[0].count, n]),
      wEncS: cfg.rescaleActsByDecoderNorm ? ws.alloc([d, n]) : null,
      bEncS: cfg.rescaleActsByDecoderNorm ? ws.alloc([n]) : null,
      lvlOut: m > 1 ? ws.alloc([m * B, d]) : null,
      ups: ws.alloc([(m + 1) * B, d]),
      auxOut: ws.alloc([B, d]),
      ent: ws.alloc([count, 4], "u32"),
      rowPtr: ws.alloc([B + 1], "u32"),
      auxN: ws.alloc([B], "u32"),
      norms: ws.alloc([n]),
      scalars: ws.alloc([4]),
      rowSums: ws.alloc([rs]),
      latSums: ws.alloc([2]),
      lat: ws.alloc([2, n]),
      csg: ws.alloc([d]),
      sort: {
        cnt: ws.alloc([chunks, n], "u32"),
        tot: ws.alloc([n], "u32"),
        start: ws.alloc([n + 1], "u32"),
        list: ws.alloc([count], "u32"),
      },
      kth: ws.alloc([4], "u32"),
      gt: ws.alloc([B], "u32"),
      rowMin: ws.alloc([B]),
      fDebug: null,
    };
    for (const t of [w.rowData, w.latSums, w.ups]) {
      gpu.clear(t.buffer, t.offset, t.byteLength);
    }
    this.#ws = w;
    return w;
  }

  /** Records one training step (see `TrainingSAE.recordStep`). */
  record(x: Tensor, _coef: Tensor, dead: Tensor | null): void {
    const { gpu, cfg, params: P, grads: G, outputs: out, buffers } = this.ctx;
    const d = cfg.dIn, n = cfg.dSae, m = this.levels.length;
    const B = checkInput(x, d);
    const w = this.#workspace(B);
    const rescale = cfg.rescaleActsByDecoderNorm!;
    const useAux = dead !== null;
    const wEnc = P.get("W_enc")!, wDec = P.get("W_dec")!, bDec = P.get("b_dec")!;
    const count = w.mainCap + (useAux ? w.auxCap : 0);

    reduceRows("l2", wDec, { out: w.norms });
    reduceCols("mean", x, { out: w.xbar });
    stepScalars(gpu, dead, w.scalars, cfg.auxLossCoefficient ?? 1, this.kAux);
    prepRows(
      gpu,
      x,
      bDec,
      w.xbar,
      w.xt,
      w.rowNorm,
      w.rowData,
      cfg.normalizeActivations,
      cfg.applyBDecToInput,
    );

    // Encoder GEMM and selection, window by window.
    const hOf = (win: { start: number; count: number }) =>
      rowsView(w.h, this.batch ? win.start : 0, win.count);
    // With the rescale, encode with W_enc·diag(n) and b_enc·n: the GEMM yields hs = h·n.
    let encW = wEnc, encB = P.get("b_enc")!;
    if (rescale) {
      scaleEncoder(gpu, wEnc, encB, w.norms, w.wEncS!, w.bEncS!);
      encW = w.wEncS!;
      encB = w.bEncS!;
    }
    for (const win of w.windows) {
      const h = hOf(win);
      gemm(gpu, rowsView(w.xt, win.start, win.count), encW, h, { bias: encB });
      if (!this.batch) topkSelect(gpu, h, w.norms, w.ent, w.rowPtr, this.k, win.start, B, rescale);
      if (useAux) {
        auxSelect(
          gpu,
          h,
          w.norms,
          dead!,
          w.scalars,
          w.ent,
          w.auxN,
          this.kAux,
          w.mainCap,
          win.start,
          rescale,
          SC_NDEAD,
        );
      }
    }
    if (this.batch && w.mainCap === 0) {
      // ⌊k·B⌋ = 0: nothing is selected.
      gpu.clear(w.rowPtr.buffer, w.rowPtr.offset, w.rowPtr.byteLength);
      fill(w.rowMin, Infinity);
    } else if (this.batch) {
      // The ⌊k·B⌋-th largest hs of the whole batch (ties by lower flat index), then per-row lists.
      kthLargest(w.h, w.mainCap, { out: w.kth });
      for (const win of w.windows) batchRowCount(gpu, hOf(win), w.kth, w.gt, win.start);
      scanU32(gpu, w.gt, null, w.rowPtr, B);
      for (const win of w.windows) {
        batchRowWrite(
          gpu,
          hOf(win),
          w.norms,
          w.kth,
          w.rowPtr,
          w.ent,
          w.rowMin,
          win.start,
          rescale,
        );
      }
    }

    // Sparse decode (every Matryoshka level at once) and the residuals.
    const levelOut = w.lvlOut ?? w.saeOut;
    decodeRows(gpu, {
      ent: w.ent,
      rowPtr: w.rowPtr,
      wDec,
      bias: bDec,
      out: levelOut,
      B,
      levels: this.levels,
    });
    const common = {
      x,
      xOff: 0,
      rowNorm: w.rowNorm,
      rowData: w.rowData,
      scalars: w.scalars,
      rows: B,
      rOff: 0,
      B,
      gscale: 2 / B,
      wIdx: -1,
    };
    for (let l = 0; l < m; l++) {
      const full = l === m - 1;
      residualRows(gpu, {
        ...common,
        pred: levelOut,
        pOff: l * B,
        g: w.ups,
        gOff: l * B,
        denorm: true,
        recon: full,
        col: full ? 0 : COL_INNER + l,
      });
    }
    if (w.lvlOut) {
      const lv = w.lvlOut;
      gpu.copy(
        lv.buffer,
        lv.offset + (m - 1) * B * d * 4,
        w.saeOut.buffer,
        w.saeOut.offset,
        B * d * 4,
      );
    }
    cumulativeLevels(gpu, w.ups, m, B * d);
    if (useAux) {
      decodeRows(gpu, {
        ent: w.ent,
        rowPtr: w.auxN,
        stride: this.kAux,
        base: w.mainCap,
        wDec,
        bias: null,
        out: w.auxOut,
        B,
        levels: [n],
      });
      residualRows(gpu, {
        ...common,
        pred: w.auxOut,
        pOff: 0,
        xhat: w.saeOut,
        g: w.ups,
        gOff: m * B,
        denorm: false,
        recon: false,
        col: COL_AUX,
        wIdx: SC_AUXW,
      });
    }

    // Sparse backward.
    const sb: SparseBackwardArgs = {
      ent: w.ent,
      rowPtr: w.rowPtr,
      ups: w.ups,
      wDec,
      B,
      d,
      n,
      auxBase: w.mainCap,
      kAux: this.kAux,
      auxN: w.auxN,
      count,
      levels: this.levels,
    };
    entryDots(gpu, sb);
    sortEntries(gpu, sb, w.sort);
    latentGather(gpu, sb, w.sort, w.xt, G.get("W_dec")!, G.get("W_enc")!, w.lat);
    const gBEnc = G.get("b_enc")!, fc = out.firedCounts;
    gpu.copy(w.lat.buffer, w.lat.offset, gBEnc.buffer, gBEnc.offset, n * 4);
    gpu.copy(w.lat.buffer, w.lat.offset + n * 4, fc.buffer, fc.offset, n * 4);
    reduceAll("sum", fc, { out: w.latSums, outIndex: 1 });
    reduceCols("sum", rowsView(w.ups, 0, B), { out: w.csg });
    bDecGrad(gpu, wEnc, false, w.lat, 0, w.csg, G.get("b_dec")!, cfg.applyBDecToInput);
    reduceRows("sum", w.rowData, { out: w.rowSums });
    if (this.batch) {
      thresholdUpdate(
        gpu,
        w.rowMin,
        buffers.get("topk_threshold")!,
        out.metrics,
        cfg.topkThresholdLr ?? 0.01,
      );
    }
    const terms = [
      "RS[0] * u.invB",
      `RS[${COL_AUX}] * u.invB * SC[${SC_AUXW}]`,
      ...this.levels.slice(0, -1).map((_, l) => `RS[${COL_INNER + l}] * u.invB`),
    ];
    assembleLosses(
      gpu,
      terms,
      w.rowSums,
      w.latSums,
      w.scalars,
      w.scalars,
      out.losses,
      out.recon,
      out.l0Sum,
      B,
      d,
    );
  }

  /** x̂ and the dense feature acts of the last step (densified on demand). */
  debug(): StepDebug {
    const w = this.#ws;
    if (!w) return { saeOut: null, featureActs: null };
    const { gpu, cfg } = this.ctx;
    w.fDebug ??= w.ws.alloc([w.B, cfg.dSae]);
    densify(gpu, w.ent, w.rowPtr, w.norms, w.fDebug, w.mainCap, cfg.rescaleActsByDecoderNorm!);
    return { saeOut: w.saeOut, featureActs: w.fDebug };
  }

  dispose(): void {
    this.#ws?.ws.dispose();
    this.#ws = null;
  }
}
