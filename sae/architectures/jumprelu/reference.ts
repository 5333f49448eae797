/**
 * JumpReLU SAE, spec §3.3 (newest SAELens: θ trained directly, clamped with ReLU where used).
 * f = h·1[h > θ]; straight-through estimators with a rectangle kernel of width ε give θ its
 * gradient; `l0_loss` in "step" or "tanh" mode; optional `pre_act_loss` on dead latents.
 */
import {
  addDecoderNormGrad,
  type ArchTrainResult,
  coefficient,
  type Grads64,
  param,
  rowNorms,
  SaeReferenceError,
  sumSquaredMean,
  type TrainCtx,
  zeroGrads,
} from "../../reference/common.ts";
import {
  affineHidden64,
  decodeAffine64,
  decoderBackward,
  encodeAffine64,
  encoderBackward,
  processInput64,
} from "../../reference/linear.ts";
import { initTiedParams } from "../../reference/weights.ts";
import type { ReferenceArchitecture } from "../unit.ts";
import { normOut64, normOutBackward } from "../../reference/normalization.ts";

/** Trainable parameters of the JumpReLU SAE. */
export const JUMPRELU_PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"] as const;

/** Inference activation ReLU(h)·1[h > θ] (strict); `theta` as given (callers clamp if needed). */
export function jumpreluActs64(
  h: ArrayLike<number>,
  theta: ArrayLike<number>,
  n: number,
  dSae: number,
): Float64Array {
  const f = new Float64Array(n * dSae);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < dSae; i++) {
      const v = h[b * dSae + i];
      f[b * dSae + i] = v > 0 && v > theta[i] ? v : 0;
    }
  }
  return f;
}

/**
 * Anthropic's pre-activation loss restricted to dead latents:
 * coef · mean_b Σ_i ReLU(θ_i − h_bi)·D_i·n_i; 0 when the mask is absent or empty.
 *
 * @example
 * ```ts
 * import { calculatePreActLossRef } from "./reference.ts";
 * const loss = calculatePreActLossRef(1, [1, 2, 1.5, 0.5],
 *   [0.5, 1.5, 1.0, 0.8, 0.8, 2.5, 1.2, 0.2], new Uint8Array([1, 0, 1, 0]), [2, 1, 1.5, 3], 2, 4);
 * if (Math.abs(loss - 1.3) > 1e-9) throw new Error(String(loss));
 * ```
 */
export function calculatePreActLossRef(
  coef: number,
  threshold: ArrayLike<number>,
  hiddenPre: ArrayLike<number>,
  deadMask: Uint8Array | undefined,
  wDecNorm: ArrayLike<number>,
  n: number,
  dSae: number,
): number {
  if (!deadMask || !deadMask.some((v) => v !== 0) || n === 0) return 0;
  let s = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < dSae; i++) {
      if (!deadMask[i]) continue;
      const u = threshold[i] - hiddenPre[b * dSae + i];
      if (u > 0) s += u * wDecNorm[i];
    }
  }
  return (coef * s) / n;
}

/** rect(u) = 1 if −0.5 < u < 0.5 (both strict), with u = (h − θ)/ε as torch computes it. */
function rect(h: number, theta: number, eps: number): boolean {
  const u = (h - theta) / eps;
  return u > -0.5 && u < 0.5;
}

/** Training forward pass of the JumpReLU SAE with a backward closure. */
export function jumpreluTrain(ctx: TrainCtx): ArchTrainResult {
  const { cfg, p, n, dIn, dSae, opts, target, dOut } = ctx;
  const what = "jumprelu SAE";
  const wEnc = param(p, "W_enc", dIn * dSae, what);
  const bEnc = param(p, "b_enc", dSae, what);
  const wDec = param(p, "W_dec", dSae * dOut, what);
  const bDec = param(p, "b_dec", dOut, what);
  const thetaRaw = param(p, "threshold", dSae, what);
  const mode = cfg.jumpreluSparsityLossMode ?? "step";
  if (mode !== "step" && mode !== "tanh") {
    throw new SaeReferenceError(
      `jumpreluSparsityLossMode: invalid sparsity loss mode "${mode}" (expected "step" or "tanh")`,
    );
  }
  const lambda = coefficient(opts, "l0", what);
  const eps = cfg.jumpreluBandwidth ?? 0.05;
  const c = cfg.jumpreluTanhScale ?? 4.0;
  const preCoef = cfg.preActLossCoefficient;
  const theta = Float64Array.from(thetaRaw, (t) => (t > 0 ? t : 0));

  const { xTilde, norm } = processInput64(cfg, p, ctx.x, n);
  const h = encodeAffine64(xTilde, wEnc, bEnc, n, dIn, dSae);
  const f = new Float64Array(n * dSae);
  for (let k = 0; k < n * dSae; k++) f[k] = h[k] > theta[k % dSae] ? h[k] : 0;
  const saeOut = normOut64(norm, decodeAffine64(f, wDec, bDec, n, dSae, dOut), n, dOut);
  if (ctx.outputOffset) { for (let k = 0; k < n * dOut; k++) saeOut[k] += ctx.outputOffset[k]; }
  const mse = sumSquaredMean(saeOut, target, n, dOut);
  const norms = rowNorms(wDec, dSae, dOut);

  let l0 = 0;
  for (let k = 0; k < n * dSae; k++) {
    l0 += mode === "step"
      ? (h[k] > theta[k % dSae] ? 1 : 0)
      : Math.tanh(c * f[k] * norms[k % dSae]);
  }
  const losses: Record<string, number> = { mse_loss: mse.loss, l0_loss: n ? (lambda * l0) / n : 0 };
  const dead = opts.deadMask;
  const preActive = preCoef !== undefined && preCoef !== null && !!dead &&
    dead.some((v) => v !== 0);
  if (preCoef !== undefined && preCoef !== null) {
    losses.pre_act_loss = calculatePreActLossRef(preCoef, theta, h, dead, norms, n, dSae);
  }

  const backward = (): Grads64 => {
    const grads = zeroGrads(p, JUMPRELU_PARAMS);
    const gF = decoderBackward(
      grads,
      f,
      normOutBackward(norm, mse.grad, n, dOut),
      wDec,
      n,
      dSae,
      dOut,
    );
    const gN = new Float64Array(dSae);
    if (mode === "tanh") {
      for (let k = 0; k < n * dSae; k++) {
        const i = k % dSae;
        const t = Math.tanh(c * f[k] * norms[i]);
        const d = (lambda / n) * c * (1 - t * t);
        gF[k] += d * norms[i];
        gN[i] += d * f[k];
      }
    }
    const gTheta = new Float64Array(dSae);
    const gH = new Float64Array(n * dSae);
    const gStep = mode === "step" ? lambda / n : 0;
    for (let k = 0; k < n * dSae; k++) {
      const i = k % dSae;
      if (h[k] > theta[i]) gH[k] = gF[k]; // no STE to the input by default
      if (rect(h[k], theta[i], eps)) {
        // JumpReLU: ∂/∂θ = −(θ/ε)·rect·g;  Step (l0 "step" mode): ∂/∂θ = −(1/ε)·rect·g.
        gTheta[i] -= (theta[i] / eps) * gF[k] + gStep / eps;
        if (cfg.jumpreluSteToInput) gH[k] += (theta[i] / eps) * gF[k] + gStep / eps;
      }
    }
    if (preActive) {
      for (let k = 0; k < n * dSae; k++) {
        const i = k % dSae;
        const u = theta[i] - h[k];
        if (!dead![i] || u <= 0) continue;
        const w = (preCoef! / n) * norms[i];
        gTheta[i] += w;
        gH[k] -= w;
        gN[i] += (preCoef! / n) * u;
      }
    }
    // θ = ReLU(threshold): gradient passes only where threshold > 0.
    for (let i = 0; i < dSae; i++) grads.threshold[i] = thetaRaw[i] > 0 ? gTheta[i] : 0;
    encoderBackward(cfg, grads, gH, xTilde, wEnc, n, "b_enc");
    addDecoderNormGrad(grads.W_dec, gN, wDec, norms, dSae, dOut);
    return grads;
  };
  return { saeOut, featureActs: f, hiddenPre: h, losses, metrics: {}, backward };
}

/** The JumpReLU SAE's reference. */
export const jumpreluReference: ReferenceArchitecture = {
  encode(cfg, p, x, n) {
    const { h, norm } = affineHidden64(cfg, p, x, n);
    const raw = param(p, "threshold", cfg.dSae, cfg.architecture);
    const theta = Float64Array.from(raw, (t) => (t > 0 ? t : 0));
    return { hiddenPre: h, featureActs: jumpreluActs64(h, theta, n, cfg.dSae), norm };
  },
  train: jumpreluTrain,
  init: (cfg, rng) => ({
    ...initTiedParams(cfg, rng),
    b_enc: new Float32Array(cfg.dSae),
    threshold: new Float32Array(cfg.dSae).fill(cfg.jumpreluInitThreshold ?? 0.01),
  }),
  foldWDecNorm: () => ["b_enc", "threshold"],
};
