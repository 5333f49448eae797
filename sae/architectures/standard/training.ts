/**
 * GPU training of the standard SAE (spec §3.1) on the dense driver: the ReLU activation (fused
 * into the encoder product unless legacy ghost grads need h), the decoder-norm-weighted p-norm
 * sparsity loss `l1_loss`, and the legacy (v3–v5) ghost-grads loss on dead latents — with the
 * fused kernels' WGSL and their plain-TS twins.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
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
import { finalizeRows, type LatentSpec, SC_NDEAD } from "../../training/kernels/latent.ts";
import { ghostRows, lpNormRows } from "../../training/kernels/rows.ts";
import { TrainSaeError } from "../../training/errors.ts";
import {
  type DenseArchitecture,
  DenseStep,
  type DenseWindow,
  FIRST_ARCH_COLUMN,
} from "../../training/train_sae_dense.ts";
import type { StepContext } from "../../training/train_sae_common.ts";
import type { TrainingArchitecture } from "../unit.ts";

/** Per-token statistics columns: T_t (the p-norm, lp ≠ 1) and the ghost loss. */
const COL_LP = FIRST_ARCH_COLUMN, COL_GHOST = FIRST_ARCH_COLUMN + 1;

const FORWARD = /* wgsl */ `${FORWARD_PRELUDE}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> DEAD: array<u32>;
@group(0) @binding(2) var<storage, read_write> F: array<f32>;
@group(0) @binding(3) var<storage, read_write> ED: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
${FORWARD_MAIN} {
  ${FORWARD_INDEX}
  let h = H[k];
  F[k] = max(h, 0.0);
  ED[k] = select(0.0, exp(h), DEAD[i] != 0u);
}`;

/** Per-latent sums of the backward: fired, Σ w·f (w = (f·n/T)^{p−1}, 1 for p = 1), Σ ∂L/∂h. */
const Q = 3;

const BACKWARD = /* wgsl */ `${BACKWARD_PRELUDE}
@group(0) @binding(0) var<storage, read> F: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> ED: array<f32>;
@group(0) @binding(3) var<storage, read> GD: array<f32>;
@group(0) @binding(4) var<storage, read> NORMS: array<f32>;
@group(0) @binding(5) var<storage, read> COEF: array<f32>;
@group(0) @binding(6) var<storage, read> RD: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
  latentPass(
    Q,
    `let li = COEF[0] * u.invB; let nrm = NORMS[i];`,
    `let f = F[k];
    var gh = 0.0;
    if (f > 0.0) {
      var wt = 1.0;
      if ((u.flags & 1u) == 0u) { wt = pow(f * nrm / RD[u.x0 * u.B + u.rOff + r], u.p0 - 1.0); }
      gh = GF[k] + li * wt * nrm;
      a0 += 1.0; a1 += wt * f;
    }
    if ((u.flags & 2u) != 0u) { gh += ED[k] * GD[k]; }
    GF[k] = gh; a2 += gh;`,
  )
}`;

/** Forward: f = ReLU(h) and, for ghost grads, exp(h) on dead latents. */
function forward(gpu: Gpu, a: DenseForwardArgs): void {
  if (!a.dead || !a.expDead) {
    throw new TrainSaeError("denseForward(standard): needs dead and expDead (ghost grads)");
  }
  const [rows, n] = a.h.shape;
  recordDenseForward(gpu, "standard", FORWARD, rows, n, 0, [a.h, a.dead, a.out, a.expDead]);
}

/** Reference of {@link forward}: [ReLU(h), dead ? exp(h) : 0]. */
function forwardRef(h: Float32Array, rows: number, n: number, p: DenseForwardRefParams) {
  const count = rows * n;
  const f = new Float32Array(count), ed = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    f[k] = Math.max(h[k], 0);
    ed[k] = p.dead![k % n] ? Math.exp(h[k]) : 0;
  }
  return [f, ed];
}

/** Backward: ∂L/∂h = 1[f > 0]·(∂L/∂f + λ/B·w·n) (+ exp(h)·ghost dot), and the sums. */
function backward(gpu: Gpu, a: DenseBackwardArgs): void {
  const [rows, n] = a.acts.shape;
  const p0 = a.lp ?? 1;
  const ed = a.expDead ?? a.acts, gd = a.ghostDot ?? a.acts;
  recordDenseBackward(
    gpu,
    "standard",
    BACKWARD,
    a,
    rows,
    n,
    { p0, flags: (p0 === 1 ? 1 : 0) | (a.expDead ? 2 : 0), x0: a.lpCol ?? 0 },
    [a.acts, a.gf, ed, gd, a.norms, a.coef, a.rowData ?? a.norms, a.partials],
  );
}

/** Reference of {@link backward} (float64 inside). */
function backwardRef(a: DenseBackwardRefArgs): { gh: Float32Array; sums: Float32Array } {
  const { rows, n } = a;
  const sums = new Float64Array(Q * n), gh = new Float32Array(rows * n);
  const li = a.coef / a.B, lp = a.lp ?? 1;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const k = r * n + i, nrm = a.norms[i], f = a.acts[k];
      let g = 0;
      if (f > 0) {
        const w = lp === 1 ? 1 : ((f * nrm) / a.tokenNorm![r]) ** (lp - 1);
        g = a.gf[k] + li * w * nrm;
        sums[i] += 1;
        sums[n + i] += w * f;
      }
      if (a.expDead) g += a.expDead[k] * a.ghostDot![k];
      gh[k] = g;
      sums[2 * n + i] += g;
    }
  }
  return { gh, sums: Float32Array.from(sums) };
}

/** The standard SAE's fused kernels. */
export const standardKernels: DenseKernels = {
  name: "standard",
  q: Q,
  forward,
  forwardRef,
  backward,
  backwardRef,
};

/** Finalisation: l1 term (p = 1), fired, ∂L/∂n, ∂b_enc. */
export const standardLatent: LatentSpec = {
  name: "standard",
  q: Q,
  rows: finalizeRows([
    ["select(0.0, li * nrm * a1, u.p0 == 1.0)", (c) => (c.p0 === 1 ? c.li * c.nrm * c.a[1] : 0)],
    ["a0", (c) => c.a[0]],
    ["li * a1", (c) => c.li * c.a[1]],
    ["a2", (c) => c.a[2]],
  ]),
  gN: 2,
  bDecVec: 3,
  grads: { b_enc: 3 },
};

/** Ghost grads run this step: requested, and a dead mask given. */
function ghostActive(win: { extras: StepContext["extras"]; deadMask: Tensor | null }): boolean {
  return !!win.extras.useGhostGrads && win.deadMask !== null;
}

/** The legacy ghost-grads path of one window: its GEMMs and residual, before the fused pass. */
function ghostBackward(win: DenseWindow): { expDead: Tensor; ghostDot: Tensor } {
  const { gpu, params, grads, own, rows: c } = win;
  const wDec = params.get("W_dec")!;
  const expDead = rowsView(own.expDead, 0, c), ghostDot = rowsView(own.ghostDot, 0, c);
  const raw = rowsView(own.ghostRaw, 0, c);
  gemm(gpu, expDead, wDec, raw);
  ghostRows(
    gpu,
    win.target,
    win.reconstruction,
    raw,
    win.rowStats,
    win.scalars,
    win.start,
    win.batchRows,
    COL_GHOST,
    SC_NDEAD,
  );
  gemm(gpu, expDead, raw, grads.get("W_dec")!, { transA: true, accumulate: true });
  gemm(gpu, raw, wDec, ghostDot, { transB: true });
  return { expDead, ghostDot };
}

/** The standard SAE on the dense driver. */
export const standardDense: DenseArchitecture = {
  kernels: standardKernels,
  latent: standardLatent,
  rowColumns: 2,
  workspace(ctx, alloc, _batchRows, windowRows): Record<string, Tensor> {
    if (!ctx.extras.useGhostGrads) return {};
    const n = ctx.cfg.dSae;
    return {
      expDead: alloc([windowRows, n]),
      ghostRaw: alloc([windowRows, ctx.cfg.dIn]),
      ghostDot: alloc([windowRows, n]),
    };
  },
  prepare(batch) {
    if (batch.extras.useGhostGrads && !ghostActive(batch)) {
      // Without a dead mask the ghost loss is 0: clear what an earlier step wrote.
      const t = batch.rowStats, B = batch.batchRows;
      batch.gpu.clear(t.buffer, t.offset + COL_GHOST * B * 4, B * 4);
    }
  },
  forward(win) {
    const { gpu, params } = win;
    const bEnc = params.get("b_enc")!, wEnc = params.get("W_enc")!;
    if (!ghostActive(win)) {
      gemm(gpu, win.inputRows, wEnc, win.acts, { bias: bEnc, relu: true });
      return;
    }
    gemm(gpu, win.inputRows, wEnc, win.preActs, { bias: bEnc });
    forward(gpu, {
      h: win.preActs,
      out: win.acts,
      dead: win.deadMask!,
      expDead: rowsView(win.own.expDead, 0, win.rows),
    });
  },
  afterDecode(win) {
    const lp = win.cfg.lpNorm ?? 1;
    if (lp === 1) return;
    lpNormRows(
      win.gpu,
      win.acts,
      win.decoderNorms,
      win.rowStats,
      win.start,
      win.batchRows,
      COL_LP,
      lp,
    );
  },
  backward(win) {
    const ghost = ghostActive(win) ? ghostBackward(win) : undefined;
    backward(win.gpu, {
      acts: win.acts,
      gf: win.gradActs,
      norms: win.decoderNorms,
      coef: win.coefficients,
      rowData: win.rowStats,
      expDead: ghost?.expDead,
      ghostDot: ghost?.ghostDot,
      partials: win.partials,
      chunkRows: win.chunkRows,
      chunkOff: win.chunkOffset,
      rOff: win.start,
      B: win.batchRows,
      lp: win.cfg.lpNorm ?? 1,
      lpCol: COL_LP,
    });
  },
  finalizeUniforms: (batch) => ({ p0: batch.cfg.lpNorm ?? 1 }),
  lossTerms(ctx) {
    const l1 = (ctx.cfg.lpNorm ?? 1) === 1 ? "LS[0]" : `COEF[0] * u.invB * RS[${COL_LP}]`;
    return [l1, ...(ctx.extras.useGhostGrads ? [`RS[${COL_GHOST}] * u.invBD`] : [])];
  },
};

/** W_enc, b_enc, W_dec, b_dec of an SAE reconstructing `dOut` dims. */
export function affineParams(cfg: TrainingSAEConfig, dOut = cfg.dIn): Record<string, number[]> {
  return {
    W_enc: [cfg.dIn, cfg.dSae],
    b_enc: [cfg.dSae],
    W_dec: [cfg.dSae, dOut],
    b_dec: [dOut],
  };
}

/** SAELens `get_coefficients()` of the L1-penalised architectures (standard, gated). */
export const l1Coefficients = (cfg: TrainingSAEConfig) => [
  { name: "l1", value: cfg.l1Coefficient ?? 1, warmUpSteps: cfg.l1WarmUpSteps ?? 0 },
];

/** The standard SAE's GPU training. */
export const standardTraining: TrainingArchitecture = {
  params: (cfg) => affineParams(cfg),
  coefficients: l1Coefficients,
  lossKeys: (_cfg, extras) => [
    "mse_loss",
    "l1_loss",
    ...(extras.useGhostGrads ? ["ghost_grad_loss"] : []),
  ],
  extras: ["useGhostGrads"],
  createStep: (ctx) => new DenseStep(ctx, standardDense),
};
