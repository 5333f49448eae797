/**
 * GPU training of the gated SAE (spec §3.2) on the dense driver. The main path f and the
 * auxiliary path ReLU(π_gate) are stacked as `[2R, ·]`, so one decoder GEMM pair serves both.
 * Like SAELens, the auxiliary path re-encodes the input without run-time normalisation: under
 * constant_norm_rescale / layer_norm ("split" mode) the aux gate gets its own encoder GEMM on
 * x − b_dec (and its own W_enc gradient GEMM); otherwise both paths share z = x̃·W_enc. With the
 * fused kernels' WGSL and their plain-TS twins.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import { gemm } from "../../training/kernels/_gemm.ts";
import { rowsView } from "../../../gpu/kernel.ts";
import {
  BACKWARD_PRELUDE,
  type DenseBackwardArgs,
  type DenseBackwardRefArgs,
  type DenseForwardArgs,
  type DenseForwardRefParams,
  type DenseKernels,
  FORWARD_INDEX,
  FORWARD_MAIN,
  FORWARD_PRELUDE,
  latentPass,
  recordDenseBackward,
  recordDenseForward,
} from "../../training/kernels/dense_acts.ts";
import { finalizeRows, type LatentSpec } from "../../training/kernels/latent.ts";
import { prepRows } from "../../training/kernels/rows.ts";
import {
  type DenseArchitecture,
  DenseStep,
  type DenseWindow,
  FIRST_ARCH_COLUMN,
} from "../../training/train_sae_dense.ts";
import type { StepContext } from "../../training/train_sae_common.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { l1Coefficients } from "../standard/training.ts";

/** Per-token statistics column of the auxiliary reconstruction's squared error. */
const COL_AUX = FIRST_ARCH_COLUMN;

const FORWARD = /* wgsl */ `${FORWARD_PRELUDE}
@group(0) @binding(0) var<storage, read> Z: array<f32>;
@group(0) @binding(1) var<storage, read> BG: array<f32>;
@group(0) @binding(2) var<storage, read> RM: array<f32>;
@group(0) @binding(3) var<storage, read> BM: array<f32>;
@group(0) @binding(4) var<storage, read_write> FA: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
${FORWARD_MAIN} {
  ${FORWARD_INDEX}
  let z = Z[k];
  let pg = z + BG[i];
  let pm = z * exp(RM[i]) + BM[i];
  FA[k] = select(0.0, pm, pg > 0.0 && pm > 0.0);
  // Split: the aux gate reads its own pre-activation (un-normalised input) from the second half.
  var pa = pg;
  if (u.flag == 1u) { pa = Z[k + u.count] + BG[i]; }
  FA[k + u.count] = max(pa, 0.0);
}`;

/**
 * Per-latent sums of the backward: fired, Σ ReLU(π_gate), ∂L/∂b_mag, ∂L/∂r_mag, ∂L/∂b_gate,
 * Σ ∂L/∂z.
 */
const Q = 6;

const BACKWARD = /* wgsl */ `${BACKWARD_PRELUDE}
@group(0) @binding(0) var<storage, read> Z: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> BG: array<f32>;
@group(0) @binding(3) var<storage, read> RM: array<f32>;
@group(0) @binding(4) var<storage, read> BM: array<f32>;
@group(0) @binding(5) var<storage, read> NORMS: array<f32>;
@group(0) @binding(6) var<storage, read> COEF: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
  latentPass(
    Q,
    `let li = COEF[0] * u.invB; let bg = BG[i]; let e = exp(RM[i]); let bm = BM[i];
  let nrm = NORMS[i]; let half = u.rows * u.n; let split = (u.flags & 1u) != 0u;`,
    `let z = Z[k];
    let pg = z + bg;
    let pm = z * e + bm;
    let g = GF[k];
    var gz = 0.0;
    if (pg > 0.0 && pm > 0.0) { a0 += 1.0; a2 += g; a3 += g * z * e; gz = g * e; }
    var pa = pg;
    if (split) { pa = Z[k + half] + bg; }
    var gg = 0.0;
    if (pa > 0.0) { gg = GF[k + half] + li * nrm; a1 += pa; }
    a4 += gg;
    let tot = gz + gg;
    a5 += tot;
    if (split) { GF[k] = gz; GF[k + half] = gg; } else { GF[k] = tot; }`,
  )
}`;

/** Forward: [f, ReLU(π_gate)] stacked as `[2·rows, n]` from z (and z_aux when split). */
function forward(gpu: Gpu, a: DenseForwardArgs): void {
  const split = !!a.split;
  const [hRows, n] = a.h.shape;
  const rows = split ? hRows / 2 : hRows;
  recordDenseForward(gpu, "gated", FORWARD, rows, n, split ? 1 : 0, [a.h, ...a.params!, a.out]);
}

/**
 * Reference of {@link forward} (h = z) → [f, ReLU(π_gate)] concatenated as `[2·rows, n]`; with
 * `hAux`, the second half is ReLU(z_aux + b_gate).
 */
function forwardRef(h: Float32Array, rows: number, n: number, p: DenseForwardRefParams) {
  const count = rows * n;
  const fa = new Float32Array(2 * count);
  for (let k = 0; k < count; k++) {
    const i = k % n, pg = h[k] + p.b_gate![i], pm = h[k] * Math.exp(p.r_mag![i]) + p.b_mag![i];
    fa[k] = pg > 0 && pm > 0 ? pm : 0;
    fa[count + k] = Math.max(p.hAux ? p.hAux[k] + p.b_gate![i] : pg, 0);
  }
  return [fa];
}

/** Backward: ∂L/∂z (main path through the magnitude, aux path through the gate), the sums. */
function backward(gpu: Gpu, a: DenseBackwardArgs): void {
  const split = !!a.split;
  const [aRows, n] = a.acts.shape;
  const rows = split ? aRows / 2 : aRows;
  recordDenseBackward(gpu, "gated", BACKWARD, a, rows, n, { flags: split ? 1 : 0 }, [
    a.acts,
    a.gf,
    ...a.params!,
    a.norms,
    a.coef,
    a.partials,
  ]);
}

/** Reference of {@link backward} (float64 inside). */
function backwardRef(a: DenseBackwardRefArgs): { gh: Float32Array; sums: Float32Array } {
  const { rows, n } = a;
  const split = !!a.actsAux;
  const sums = new Float64Array(Q * n), gh = new Float32Array((split ? 2 : 1) * rows * n);
  const li = a.coef / a.B;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const k = r * n + i, nrm = a.norms[i];
      const acc = (j: number, v: number) => (sums[j * n + i] += v);
      const z = a.acts[k], e = Math.exp(a.r_mag![i]);
      const pg = z + a.b_gate![i], pm = z * e + a.b_mag![i];
      const g = a.gf[k];
      let gz = 0, gg = 0;
      if (pg > 0 && pm > 0) {
        acc(0, 1);
        acc(2, g);
        acc(3, g * z * e);
        gz = g * e;
      }
      const pa = a.actsAux ? a.actsAux[k] + a.b_gate![i] : pg;
      if (pa > 0) {
        gg = a.gf[rows * n + k] + li * nrm;
        acc(1, pa);
      }
      acc(4, gg);
      if (a.actsAux) {
        gh[k] = gz;
        gh[rows * n + k] = gg;
      } else gh[k] = gz + gg;
      acc(5, gz + gg);
    }
  }
  return { gh, sums: Float32Array.from(sums) };
}

/** The gated SAE's fused kernels. */
export const gatedKernels: DenseKernels = {
  name: "gated",
  q: Q,
  forward,
  forwardRef,
  backward,
  backwardRef,
};

/** Finalisation: l1 term, fired, ∂L/∂n, then ∂b_gate, ∂b_mag, ∂r_mag, Σ ∂L/∂z. */
export const gatedLatent: LatentSpec = {
  name: "gated",
  q: Q,
  rows: finalizeRows([
    ["li * nrm * a1", (c) => c.li * c.nrm * c.a[1]],
    ["a0", (c) => c.a[0]],
    ["li * a1", (c) => c.li * c.a[1]],
    ["a4", (c) => c.a[4]],
    ["a2", (c) => c.a[2]],
    ["a3", (c) => c.a[3]],
    ["a5", (c) => c.a[5]],
  ]),
  gN: 2,
  bDecVec: 6,
  grads: { b_gate: 3, b_mag: 4, r_mag: 5 },
};

/** Under constant_norm_rescale / layer_norm the aux path has its own encoder input. */
function isSplit(ctx: { cfg: StepContext["cfg"] }): boolean {
  const mode = ctx.cfg.normalizeActivations;
  return mode === "constant_norm_rescale" || mode === "layer_norm";
}

/** b_gate, r_mag, b_mag. */
function gateParams(win: DenseWindow) {
  const p = win.params;
  return [p.get("b_gate")!, p.get("r_mag")!, p.get("b_mag")!];
}

/** The gated SAE on the dense driver. */
export const gatedDense: DenseArchitecture = {
  kernels: gatedKernels,
  latent: gatedLatent,
  stack: 2,
  encoderRows: (ctx) => (isSplit(ctx) ? 2 : 1),
  rowColumns: 1,
  workspace: (ctx, alloc, batchRows): Record<string, Tensor> =>
    isSplit(ctx) ? { auxInput: alloc([batchRows, ctx.cfg.dIn]) } : {},
  prepare(batch) {
    if (!isSplit(batch)) return;
    // SAELens' gated aux losses recompute the gate from x − b_dec without normalisation. This
    // call's (s, μ) are overwritten by the main input processing; ‖x − x̄‖² is the same.
    prepRows(
      batch.gpu,
      batch.input,
      batch.params.get("b_dec")!,
      batch.inputMean,
      batch.own.auxInput,
      batch.rowNorm,
      batch.rowStats,
      "none",
      batch.cfg.applyBDecToInput,
    );
  },
  forward(win) {
    const { gpu, rows: c } = win;
    const wEnc = win.params.get("W_enc")!, split = isSplit(win);
    gemm(gpu, win.inputRows, wEnc, rowsView(win.preActs, 0, c));
    if (split) {
      gemm(gpu, rowsView(win.own.auxInput, win.start, c), wEnc, rowsView(win.preActs, c, c));
    }
    forward(gpu, { h: win.preActs, split, out: win.acts, params: gateParams(win) });
  },
  afterDecode(win) {
    win.residual({ pOff: win.rows, gOff: win.rows, denorm: false, recon: false, col: COL_AUX });
  },
  backward(win) {
    backward(win.gpu, {
      acts: win.preActs,
      split: isSplit(win),
      gf: win.gradActs,
      norms: win.decoderNorms,
      coef: win.coefficients,
      params: gateParams(win),
      partials: win.partials,
      chunkRows: win.chunkRows,
      chunkOff: win.chunkOffset,
      rOff: win.start,
      B: win.batchRows,
    });
  },
  encoderGradients(win) {
    const c = win.rows, main = rowsView(win.gradActs, 0, c);
    if (!isSplit(win)) return [[win.inputRows, main]];
    const aux = rowsView(win.own.auxInput, win.start, c);
    return [[win.inputRows, main], [aux, rowsView(win.gradActs, c, c)]];
  },
  finalizeUniforms: () => ({}),
  lossTerms: () => ["LS[0]", `RS[${COL_AUX}] * u.invB`],
};

/** The gated SAE's GPU training. */
export const gatedTraining: TrainingArchitecture = {
  params: (cfg) => ({
    W_enc: [cfg.dIn, cfg.dSae],
    b_gate: [cfg.dSae],
    r_mag: [cfg.dSae],
    b_mag: [cfg.dSae],
    W_dec: [cfg.dSae, cfg.dIn],
    b_dec: [cfg.dIn],
  }),
  coefficients: l1Coefficients,
  lossKeys: () => ["mse_loss", "l1_loss", "auxiliary_reconstruction_loss"],
  createStep: (ctx) => new DenseStep(ctx, gatedDense),
};
