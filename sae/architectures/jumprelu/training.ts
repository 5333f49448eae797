/**
 * GPU training of the JumpReLU SAE (spec §3.3, newest SAELens: θ trained directly) on the dense
 * driver: f = h·1[h > θ], straight-through estimators with a rectangle kernel of width ε for θ,
 * `l0_loss` in "step" or "tanh" mode, the optional `pre_act_loss` on dead latents and the
 * optional straight-through gradient to the input — with the fused kernels' WGSL and their
 * plain-TS twins. JumpReLU transcoders reuse {@link jumpreluDense}.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
import { gemm } from "../../training/kernels/_gemm.ts";
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
  WGSL_TANH,
} from "../../training/kernels/dense_acts.ts";
import { finalizeRows, type LatentSpec, SC_NDEAD } from "../../training/kernels/latent.ts";
import { TrainSaeError } from "../../training/errors.ts";
import {
  type DenseArchitecture,
  type DenseBatch,
  DenseStep,
} from "../../training/train_sae_dense.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { affineParams } from "../standard/training.ts";

const FORWARD = /* wgsl */ `${FORWARD_PRELUDE}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> THR: array<f32>;
@group(0) @binding(2) var<storage, read_write> F: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${FORWARD_MAIN} {
  ${FORWARD_INDEX}
  let h = H[k];
  F[k] = select(0.0, h, h > max(THR[i], 0.0));
}`;

/**
 * Per-latent sums of the backward: fired, l0 term (count or Σ tanh), Σ ReLU(θ − h) on dead
 * latents, ∂L/∂θ, ∂L/∂n, Σ ∂L/∂h.
 */
const Q = 6;

const BACKWARD = /* wgsl */ `${BACKWARD_PRELUDE}${WGSL_TANH}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> THR: array<f32>;
@group(0) @binding(3) var<storage, read> NORMS: array<f32>;
@group(0) @binding(4) var<storage, read> COEF: array<f32>;
@group(0) @binding(5) var<storage, read> DEAD: array<u32>;
@group(0) @binding(6) var<storage, read> SC: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
  latentPass(
    Q,
    `let li = COEF[0] * u.invB; let th = max(THR[i], 0.0); let nrm = NORMS[i];
  let eps = u.p0; let c = u.p1; let pc = u.p2 * u.invB;
  let tanhMode = (u.flags & 1u) != 0u; let ste = (u.flags & 2u) != 0u;
  let dead = (u.flags & 4u) != 0u && DEAD[i] != 0u && SC[u.x0] > 0.0;
  let gStep = select(li, 0.0, tanhMode);`,
    `let h = H[k]; var g = GF[k];
    let on = h > th;
    let f = select(0.0, h, on);
    if (tanhMode) {
      let t = safeTanh(c * f * nrm);
      let dd = li * c * (1.0 - t * t);
      g += dd * nrm; a4 += dd * f; a1 += t;
    } else if (on) { a1 += 1.0; }
    var gh = select(0.0, g, on);
    let uu = (h - th) / eps;
    if (uu > -0.5 && uu < 0.5) {
      let tg = (th / eps) * g + gStep / eps;
      a3 -= tg;
      if (ste) { gh += tg; }
    }
    if (dead) {
      let u2 = th - h;
      if (u2 > 0.0) { let wp = pc * nrm; a3 += wp; gh -= wp; a4 += pc * u2; a2 += u2; }
    }
    if (on) { a0 += 1.0; }
    GF[k] = gh; a5 += gh;`,
  )
}`;

/** Forward: f = h·1[h > max(θ, 0)]. */
function forward(gpu: Gpu, a: DenseForwardArgs): void {
  const [rows, n] = a.h.shape;
  recordDenseForward(gpu, "jumprelu", FORWARD, rows, n, 0, [a.h, a.params![0], a.out]);
}

/** Reference of {@link forward}. */
function forwardRef(h: Float32Array, _rows: number, n: number, p: DenseForwardRefParams) {
  return [Float32Array.from(h, (v, k) => (v > Math.max(p.threshold![k % n], 0) ? v : 0))];
}

/** Backward: the STE gradients of θ and (optionally) h, the l0 and pre-act terms, the sums. */
function backward(gpu: Gpu, a: DenseBackwardArgs): void {
  const [rows, n] = a.acts.shape;
  recordDenseBackward(
    gpu,
    "jumprelu",
    BACKWARD,
    a,
    rows,
    n,
    {
      p0: a.eps!,
      p1: a.tanhScale!,
      p2: a.preCoef ?? 0,
      flags: (a.tanh ? 1 : 0) | (a.ste ? 2 : 0) | (a.preAct ? 4 : 0),
      x0: a.nDeadIdx ?? 0,
    },
    [
      a.acts,
      a.gf,
      a.params![0],
      a.norms,
      a.coef,
      a.dead ?? a.norms,
      a.scalars ?? a.norms,
      a.partials,
    ],
  );
}

/** Reference of {@link backward} (float64 inside). */
function backwardRef(a: DenseBackwardRefArgs): { gh: Float32Array; sums: Float32Array } {
  const { rows, n } = a;
  const sums = new Float64Array(Q * n), gh = new Float32Array(rows * n);
  const li = a.coef / a.B;
  const preAct = a.preCoef !== undefined && !!a.dead && a.dead.some((v) => v !== 0);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const k = r * n + i, nrm = a.norms[i];
      const acc = (j: number, v: number) => (sums[j * n + i] += v);
      const h = a.acts[k], th = Math.max(a.threshold![i], 0), eps = a.eps!;
      const on = h > th, f = on ? h : 0;
      let g = a.gf[k];
      if (a.tanh) {
        const t = Math.tanh(a.tanhScale! * f * nrm);
        const dd = li * a.tanhScale! * (1 - t * t);
        g += dd * nrm;
        acc(4, dd * f);
        acc(1, t);
      } else if (on) acc(1, 1);
      let out = on ? g : 0;
      const u = (h - th) / eps;
      if (u > -0.5 && u < 0.5) {
        const tg = (th / eps) * g + (a.tanh ? 0 : li) / eps;
        acc(3, -tg);
        if (a.ste) out += tg;
      }
      if (preAct && a.dead![i]) {
        const u2 = th - h;
        if (u2 > 0) {
          const pc = a.preCoef! / a.B;
          acc(3, pc * nrm);
          out -= pc * nrm;
          acc(4, pc * u2);
          acc(2, u2);
        }
      }
      if (on) acc(0, 1);
      gh[k] = out;
      acc(5, out);
    }
  }
  return { gh, sums: Float32Array.from(sums) };
}

/** The JumpReLU SAE's fused kernels. */
export const jumpreluKernels: DenseKernels = {
  name: "jumprelu",
  q: Q,
  forward,
  forwardRef,
  backward,
  backwardRef,
};

/** Finalisation: l0 term, fired, pre-act term, ∂L/∂n, ∂θ (where θ > 0), ∂b_enc. */
export const jumpreluLatent: LatentSpec = {
  name: "jumprelu",
  q: Q,
  rows: finalizeRows([
    ["li * a1", (c) => c.li * c.a[1]],
    ["a0", (c) => c.a[0]],
    [
      "select(0.0, u.p0 * u.invB * nrm * a2, (u.flags & 1u) != 0u && SC[0] > 0.0)",
      (c) => ((c.flags & 1) && c.nDead > 0 ? c.p0 * c.invB * c.nrm * c.a[2] : 0),
    ],
    ["a4", (c) => c.a[4]],
    ["select(0.0, a3, xv > 0.0)", (c) => (c.xv > 0 ? c.a[3] : 0)],
    ["a5", (c) => c.a[5]],
  ]),
  gN: 3,
  bDecVec: 5,
  grads: { threshold: 4, b_enc: 5 },
};

/** The pre-act loss coefficient, or null when the loss is off. */
function preActCoefficient(cfg: TrainingSAEConfig): number | null {
  const c = cfg.preActLossCoefficient;
  return c === undefined || c === null ? null : c;
}

/** The pre-act loss runs this step: a coefficient and a dead mask. */
function preActActive(batch: DenseBatch): boolean {
  return preActCoefficient(batch.cfg) !== null && batch.deadMask !== null;
}

/** The JumpReLU SAE (and the JumpReLU transcoders) on the dense driver. */
export const jumpreluDense: DenseArchitecture = {
  kernels: jumpreluKernels,
  latent: jumpreluLatent,
  rowColumns: 0,
  forward(win) {
    const { gpu, params } = win;
    gemm(gpu, win.inputRows, params.get("W_enc")!, win.preActs, { bias: params.get("b_enc")! });
    forward(gpu, { h: win.preActs, out: win.acts, params: [params.get("threshold")!] });
  },
  backward(win) {
    const { cfg } = win;
    backward(win.gpu, {
      acts: win.preActs,
      gf: win.gradActs,
      norms: win.decoderNorms,
      coef: win.coefficients,
      params: [win.params.get("threshold")!],
      rowData: win.rowStats,
      dead: win.deadMask ?? undefined,
      scalars: win.scalars,
      partials: win.partials,
      chunkRows: win.chunkRows,
      chunkOff: win.chunkOffset,
      rOff: win.start,
      B: win.batchRows,
      eps: cfg.jumpreluBandwidth ?? 0.05,
      tanhScale: cfg.jumpreluTanhScale ?? 4,
      preCoef: preActCoefficient(cfg) ?? 0,
      tanh: (cfg.jumpreluSparsityLossMode ?? "step") === "tanh",
      ste: !!win.extras.jumpreluSteToInput,
      preAct: preActActive(win),
      nDeadIdx: SC_NDEAD,
    });
  },
  finalizeUniforms: (batch) => ({
    p0: preActCoefficient(batch.cfg) ?? 0,
    flags: preActActive(batch) ? 1 : 0,
    extra: batch.params.get("threshold")!,
  }),
  lossTerms: (ctx) => ["LS[0]", ...(preActCoefficient(ctx.cfg) !== null ? ["LS[2]"] : [])],
};

/** SAELens `get_coefficients()` of JumpReLU: l0. */
export const l0Coefficients = (cfg: TrainingSAEConfig) => [
  { name: "l0", value: cfg.l0Coefficient ?? 1, warmUpSteps: cfg.l0WarmUpSteps ?? 0 },
];

/** JumpReLU loss names: mse, l0 and (with its coefficient) pre_act_loss. */
export const jumpreluLossKeys = (cfg: TrainingSAEConfig) => [
  "mse_loss",
  "l0_loss",
  ...(preActCoefficient(cfg) !== null ? ["pre_act_loss"] : []),
];

/** Refuses a sparsity-loss mode other than "step" or "tanh". */
export function checkJumpreluMode(cfg: TrainingSAEConfig): void {
  const m = cfg.jumpreluSparsityLossMode ?? "step";
  if (m !== "step" && m !== "tanh") {
    throw new TrainSaeError(`jumprelu_sparsity_loss_mode: "${m}" is not "step" or "tanh"`);
  }
}

/** The JumpReLU SAE's GPU training. */
export const jumpreluTraining: TrainingArchitecture = {
  params: (cfg) => ({ ...affineParams(cfg), threshold: [cfg.dSae] }),
  coefficients: l0Coefficients,
  lossKeys: jumpreluLossKeys,
  extras: ["jumpreluSteToInput"],
  validate: checkJumpreluMode,
  createStep: (ctx) => new DenseStep(ctx, jumpreluDense),
};
