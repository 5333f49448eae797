/**
 * The recorded training step of the dense architectures (standard incl. legacy ghost grads,
 * jumprelu, gated): forward (2 GEMMs), loss and hand-derived backward (3 GEMMs; b_dec through
 * x̃ = x − b_dec is a vector-matrix product), plus per-token and per-latent statistics, all on
 * the GPU with no readback. Rows are processed in micro-batch windows when the `[rows, d_sae]`
 * workspace would exceed one storage binding; weight gradients then accumulate over windows
 * (GEMM accumulate) and every sum keeps a fixed order.
 *
 * Gated runs its main and auxiliary paths as one stacked `[2R, ·]` decoder GEMM pair. Like
 * SAELens, its auxiliary path re-encodes the input without run-time normalisation: under
 * constant_norm_rescale / layer_norm the aux gate gets its own encoder GEMM on x − b_dec (and
 * its own W_enc gradient GEMM); otherwise both paths share z = x̃·W_enc.
 * @module
 */

import { binary } from "../../gpu/kernels/binary.ts";
import { reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { gemm } from "./kernels/_gemm.ts";
import { rowsView } from "./kernels/_util.ts";
import { DENSE_Q, type DenseArch, denseBackward, denseForward } from "./kernels/dense_acts.ts";
import {
  assembleLosses,
  bDecGrad,
  decoderNormGrad,
  FINALIZE,
  latentFinalize,
  SC_NDEAD,
  stepScalars,
} from "./kernels/latent.ts";
import { ghostRows, lpNormRows, prepRows, residualRows } from "./kernels/rows.ts";
import {
  type ArchStep,
  checkInput,
  planWindows,
  type StepContext,
  type StepDebug,
  TrainSaeError,
  Workspace,
} from "./train_sae_common.ts";

/** Rows per chunk of the fused backward's per-latent partial sums. */
const CHUNK_ROWS = 64;
/** rowData columns beyond the four recon terms. */
const COL_LP = 4, COL_GHOST = 5, COL_AUX = 4;

interface DenseWs {
  B: number;
  ws: Workspace;
  windows: { start: number; count: number }[];
  R: number;
  xt: Tensor;
  /** gated under run-time normalisation: the aux path's input x − apply·b_dec `[B, d]`. */
  xAux: Tensor | null;
  xbar: Tensor;
  saeOut: Tensor;
  rowNorm: Tensor;
  rowData: Tensor;
  h: Tensor;
  f: Tensor;
  y2: Tensor | null;
  g: Tensor;
  gf: Tensor;
  expDead: Tensor | null;
  raw: Tensor | null;
  ghostDot: Tensor | null;
  partials: Tensor;
  chunksTotal: number;
  colSums: Tensor;
  lo: Tensor;
  latSums: Tensor;
  rowSums: Tensor;
  csg: Tensor;
  csgTmp: Tensor;
  norms: Tensor;
  scalars: Tensor;
}

/** Loss keys of a dense architecture (SAELens names, in `losses` order). */
export function denseLossKeys(ctx: StepContext): string[] {
  const arch = ctx.cfg.architecture;
  if (arch === "standard") {
    return ["mse_loss", "l1_loss", ...(ctx.extras.useGhostGrads ? ["ghost_grad_loss"] : [])];
  }
  if (arch === "jumprelu") {
    const pre = ctx.cfg.preActLossCoefficient;
    return ["mse_loss", "l0_loss", ...(pre !== undefined && pre !== null ? ["pre_act_loss"] : [])];
  }
  return ["mse_loss", "l1_loss", "auxiliary_reconstruction_loss"];
}

/** The recorded step of standard / jumprelu / gated SAEs. */
export class DenseStep implements ArchStep {
  readonly arch: DenseArch;
  #ws: DenseWs | null = null;

  constructor(readonly ctx: StepContext) {
    this.arch = ctx.cfg.architecture as DenseArch;
    if (this.arch === "jumprelu") {
      const m = ctx.cfg.jumpreluSparsityLossMode ?? "step";
      if (m !== "step" && m !== "tanh") {
        throw new TrainSaeError(`jumprelu_sparsity_loss_mode: "${m}" is not "step" or "tanh"`);
      }
    }
  }

  #workspace(B: number): DenseWs {
    if (this.#ws && this.#ws.B === B) return this.#ws;
    this.#ws?.ws.dispose();
    const { gpu, cfg } = this.ctx;
    const d = cfg.dIn, n = cfg.dSae, arch = this.arch;
    const stack = arch === "gated" ? 2 : 1;
    const split = this.#split();
    const ghost = arch === "standard" && !!this.ctx.extras.useGhostGrads;
    if (B * d * 4 > gpu.maxBindingSize) {
      throw new TrainSaeError(
        `a batch of ${B}×${d} f32 exceeds maxStorageBufferBindingSize (${gpu.maxBindingSize} bytes)`,
      );
    }
    const windows = planWindows(gpu, B, [stack * n, stack * d], [n, d], this.ctx.maxWindowRows);
    const R = windows[0].count;
    const ws = new Workspace(gpu);
    const q = DENSE_Q[arch];
    const chunksTotal = windows.reduce((s, w) => s + Math.ceil(w.count / CHUNK_ROWS), 0);
    const rs = arch === "standard" ? 6 : arch === "gated" ? 5 : 4;
    const lRows = FINALIZE[arch].rows.length;
    this.#ws = {
      B,
      ws,
      windows,
      R,
      xt: ws.alloc([B, d]),
      xAux: split ? ws.alloc([B, d]) : null,
      xbar: ws.alloc([d]),
      saeOut: ws.alloc([B, d]),
      rowNorm: ws.alloc([2, B]),
      rowData: ws.alloc([rs, B]),
      h: ws.alloc([(split ? 2 : 1) * R, n]),
      f: ws.alloc([stack * R, n]),
      y2: arch === "gated" ? ws.alloc([2 * R, d]) : null,
      g: ws.alloc([stack * R, d]),
      gf: ws.alloc([stack * R, n]),
      expDead: ghost ? ws.alloc([R, n]) : null,
      raw: ghost ? ws.alloc([R, d]) : null,
      ghostDot: ghost ? ws.alloc([R, n]) : null,
      partials: ws.alloc([chunksTotal, q * n]),
      chunksTotal,
      colSums: ws.alloc([q * n]),
      lo: ws.alloc([lRows, n]),
      latSums: ws.alloc([lRows]),
      rowSums: ws.alloc([rs]),
      csg: ws.alloc([d]),
      csgTmp: ws.alloc([d]),
      norms: ws.alloc([n]),
      scalars: ws.alloc([4]),
    };
    // Columns that a configuration never writes must still sum to zero.
    gpu.clear(this.#ws.rowData.buffer, this.#ws.rowData.offset, this.#ws.rowData.byteLength);
    return this.#ws;
  }

  /** Records one training step (see `TrainingSAE.recordStep`). */
  record(x: Tensor, coef: Tensor, dead: Tensor | null): void {
    const { gpu, cfg, params: P, grads: G, outputs: out, extras } = this.ctx;
    const arch = this.arch, d = cfg.dIn, n = cfg.dSae;
    const B = checkInput(x, d);
    const w = this.#workspace(B);
    const ghost = arch === "standard" && !!extras.useGhostGrads && dead !== null;
    const lp = cfg.lpNorm ?? 1;
    const preCoef = cfg.preActLossCoefficient;
    const preAct = arch === "jumprelu" && preCoef !== undefined && preCoef !== null && !!dead;
    const wEnc = P.get("W_enc")!, wDec = P.get("W_dec")!, bDec = P.get("b_dec")!;
    const gWEnc = G.get("W_enc")!, gWDec = G.get("W_dec")!;

    reduceRows("l2", wDec, { out: w.norms });
    reduceCols("mean", x, { out: w.xbar });
    stepScalars(gpu, dead, w.scalars, 0, 1);
    if (extras.useGhostGrads && !ghost) {
      // Without a dead mask the ghost loss is 0: clear what an earlier step wrote.
      gpu.clear(w.rowData.buffer, w.rowData.offset + COL_GHOST * B * 4, B * 4);
    }
    const split = this.#split();
    if (split) {
      // SAELens' gated aux losses recompute the gate from x − b_dec without normalisation. This
      // call's (s, μ) are overwritten by the next one; ‖x − x̄‖² is the same in both.
      prepRows(gpu, x, bDec, w.xbar, w.xAux!, w.rowNorm, w.rowData, "none", cfg.applyBDecToInput);
    }
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

    let chunkOff = 0;
    w.windows.forEach((win, wi) => {
      const c = win.count, first = wi === 0;
      const xtW = rowsView(w.xt, win.start, c);
      const h = rowsView(w.h, 0, c);
      const stack = arch === "gated" ? 2 : 1;
      const f = rowsView(w.f, 0, stack * c);
      const g = rowsView(w.g, 0, stack * c);
      const gf = rowsView(w.gf, 0, stack * c);
      const yMain = rowsView(w.saeOut, win.start, c);
      // Forward.
      if (arch === "standard") {
        if (ghost) {
          gemm(gpu, xtW, wEnc, h, { bias: P.get("b_enc")! });
          denseForward(gpu, arch, { h, out: f, dead: dead!, expDead: rowsView(w.expDead!, 0, c) });
        } else gemm(gpu, xtW, wEnc, f, { bias: P.get("b_enc")!, relu: true });
      } else if (arch === "jumprelu") {
        gemm(gpu, xtW, wEnc, h, { bias: P.get("b_enc")! });
        denseForward(gpu, arch, { h, out: f, params: [P.get("threshold")!] });
      } else {
        gemm(gpu, xtW, wEnc, h);
        if (split) gemm(gpu, rowsView(w.xAux!, win.start, c), wEnc, rowsView(w.h, c, c));
        denseForward(gpu, arch, {
          h: split ? rowsView(w.h, 0, 2 * c) : h,
          split,
          out: f,
          params: [P.get("b_gate")!, P.get("r_mag")!, P.get("b_mag")!],
        });
      }
      const y = arch === "gated" ? rowsView(w.y2!, 0, 2 * c) : yMain;
      gemm(gpu, f, wDec, y, { bias: bDec });
      const common = {
        x,
        xOff: win.start,
        rowNorm: w.rowNorm,
        rowData: w.rowData,
        scalars: w.scalars,
        rows: c,
        rOff: win.start,
        B,
        gscale: 2 / B,
        wIdx: -1,
      };
      residualRows(gpu, {
        ...common,
        pred: y,
        pOff: 0,
        g,
        gOff: 0,
        denorm: true,
        recon: true,
        col: 0,
      });
      if (arch === "gated") {
        residualRows(gpu, {
          ...common,
          pred: y,
          pOff: c,
          g,
          gOff: c,
          denorm: false,
          recon: false,
          col: COL_AUX,
        });
        gpu.copy(w.y2!.buffer, w.y2!.offset, w.saeOut.buffer, yMain.offset, c * d * 4);
      }
      if (arch === "standard" && lp !== 1) {
        lpNormRows(gpu, f, w.norms, w.rowData, win.start, B, COL_LP, lp);
      }
      // Backward.
      gemm(gpu, g, wDec, gf, { transB: true });
      gemm(gpu, f, g, gWDec, { transA: true, accumulate: !first });
      let ed: Tensor | undefined, gd: Tensor | undefined;
      if (ghost) {
        ed = rowsView(w.expDead!, 0, c);
        gd = rowsView(w.ghostDot!, 0, c);
        const raw = rowsView(w.raw!, 0, c);
        gemm(gpu, ed, wDec, raw);
        ghostRows(gpu, x, w.saeOut, raw, w.rowData, w.scalars, win.start, B, COL_GHOST, SC_NDEAD);
        gemm(gpu, ed, raw, gWDec, { transA: true, accumulate: true });
        gemm(gpu, raw, wDec, gd, { transB: true });
      }
      denseBackward(gpu, arch, {
        acts: arch === "standard" ? f : split ? rowsView(w.h, 0, 2 * c) : h,
        split,
        gf,
        norms: w.norms,
        coef,
        params: arch === "jumprelu"
          ? [P.get("threshold")!]
          : arch === "gated"
          ? [P.get("b_gate")!, P.get("r_mag")!, P.get("b_mag")!]
          : undefined,
        rowData: w.rowData,
        expDead: ed,
        ghostDot: gd,
        dead: dead ?? undefined,
        scalars: w.scalars,
        partials: w.partials,
        chunkRows: CHUNK_ROWS,
        chunkOff,
        rOff: win.start,
        B,
        lp,
        lpCol: COL_LP,
        eps: cfg.jumpreluBandwidth ?? 0.05,
        tanhScale: cfg.jumpreluTanhScale ?? 4,
        preCoef: preCoef ?? 0,
        tanh: (cfg.jumpreluSparsityLossMode ?? "step") === "tanh",
        ste: !!extras.jumpreluSteToInput,
        preAct,
        nDeadIdx: SC_NDEAD,
      });
      chunkOff += Math.ceil(c / CHUNK_ROWS);
      gemm(gpu, xtW, rowsView(w.gf, 0, c), gWEnc, { transA: true, accumulate: !first });
      if (split) {
        const xa = rowsView(w.xAux!, win.start, c);
        gemm(gpu, xa, rowsView(w.gf, c, c), gWEnc, { transA: true, accumulate: true });
      }
      if (first) reduceCols("sum", g, { out: w.csg });
      else {
        reduceCols("sum", g, { out: w.csgTmp });
        binary("add", w.csg, w.csgTmp, { out: w.csg });
      }
    });

    // Per-latent sums, gradients of the per-latent parameters, losses.
    reduceCols("sum", w.partials, { out: w.colSums });
    const fin = FINALIZE[arch];
    latentFinalize(
      gpu,
      arch,
      w.colSums,
      w.norms,
      coef,
      w.scalars,
      arch === "jumprelu" ? P.get("threshold")! : null,
      w.lo,
      B,
      arch === "standard" ? lp : (preCoef ?? 0),
      preAct ? 1 : 0,
    );
    reduceRows("sum", w.lo, { out: w.latSums });
    reduceRows("sum", w.rowData, { out: w.rowSums });
    decoderNormGrad(gpu, gWDec, wDec, w.lo, fin.gN, w.norms);
    bDecGrad(gpu, wEnc, false, w.lo, fin.bDecVec, w.csg, G.get("b_dec")!, cfg.applyBDecToInput);
    for (const [name, row] of Object.entries(fin.grads)) {
      const t = G.get(name)!;
      gpu.copy(w.lo.buffer, w.lo.offset + row * n * 4, t.buffer, t.offset, n * 4);
    }
    const fc = out.firedCounts;
    gpu.copy(w.lo.buffer, w.lo.offset + n * 4, fc.buffer, fc.offset, n * 4);
    assembleLosses(
      gpu,
      this.#terms(),
      w.rowSums,
      w.latSums,
      coef,
      w.scalars,
      out.losses,
      out.recon,
      out.l0Sum,
      B,
      d,
    );
  }

  /** Gated under constant_norm_rescale / layer_norm: the aux path has its own encoder input. */
  #split(): boolean {
    const mode = this.ctx.cfg.normalizeActivations;
    return this.arch === "gated" && (mode === "constant_norm_rescale" || mode === "layer_norm");
  }

  #terms(): string[] {
    const { cfg, extras } = this.ctx;
    const mse = "RS[0] * u.invB";
    if (this.arch === "standard") {
      const l1 = (cfg.lpNorm ?? 1) === 1 ? "LS[0]" : `COEF[0] * u.invB * RS[${COL_LP}]`;
      return [mse, l1, ...(extras.useGhostGrads ? [`RS[${COL_GHOST}] * u.invBD`] : [])];
    }
    if (this.arch === "jumprelu") {
      const pre = cfg.preActLossCoefficient;
      return [mse, "LS[0]", ...(pre !== undefined && pre !== null ? ["LS[2]"] : [])];
    }
    return [mse, "LS[0]", `RS[${COL_AUX}] * u.invB`];
  }

  /** x̂ of the last step, and f when the step ran as one window. */
  debug(): StepDebug {
    const w = this.#ws;
    if (!w) return { saeOut: null, featureActs: null };
    const single = w.windows.length === 1;
    return {
      saeOut: w.saeOut,
      featureActs: single ? rowsView(w.f, 0, w.B) : null,
    };
  }

  dispose(): void {
    this.#ws?.ws.dispose();
    this.#ws = null;
  }
}
