/**
 * Standard (ReLU) SAE, spec §3.1: f = ReLU(x̃·W_enc + b_enc), decoder-norm-weighted p-norm
 * sparsity loss `l1_loss`, and the optional legacy (v3–v5) ghost-grads loss of §3.9.
 */
import {
  addDecoderNormGrad,
  type ArchTrainResult,
  coefficient,
  type Grads64,
  param,
  rowNorms,
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

/** Trainable parameters of the standard SAE. */
export const STANDARD_PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"] as const;

/** ReLU applied element-wise (a new array). */
export function relu64(h: ArrayLike<number>): Float64Array {
  return Float64Array.from(h, (v) => (v > 0 ? v : 0));
}

/** Training forward pass of the standard SAE with a backward closure. */
export function standardTrain(ctx: TrainCtx): ArchTrainResult {
  const { cfg, p, n, dIn, dSae, opts, target, dOut } = ctx;
  const what = "standard SAE";
  const wEnc = param(p, "W_enc", dIn * dSae, what);
  const bEnc = param(p, "b_enc", dSae, what);
  const wDec = param(p, "W_dec", dSae * dOut, what);
  const bDec = param(p, "b_dec", dOut, what);
  const lambda = coefficient(opts, "l1", what);
  const lp = cfg.lpNorm ?? 1;

  const { xTilde, norm } = processInput64(cfg, p, ctx.x, n);
  const h = encodeAffine64(xTilde, wEnc, bEnc, n, dIn, dSae);
  const f = relu64(h);
  const saeOut = normOut64(norm, decodeAffine64(f, wDec, bDec, n, dSae, dOut), n, dOut);
  if (ctx.outputOffset) { for (let k = 0; k < n * dOut; k++) saeOut[k] += ctx.outputOffset[k]; }
  const mse = sumSquaredMean(saeOut, target, n, dOut);
  const norms = rowNorms(wDec, dSae, dOut);

  // l1_loss = λ · mean_b ‖f_b ⊙ n‖_p (the p-norm itself, not its p-th power).
  const tokenNorm = new Float64Array(n);
  let l1 = 0;
  for (let b = 0; b < n; b++) {
    let s = 0;
    for (let i = 0; i < dSae; i++) s += Math.abs(f[b * dSae + i] * norms[i]) ** lp;
    tokenNorm[b] = lp === 1 ? s : s ** (1 / lp);
    l1 += tokenNorm[b];
  }
  const losses: Record<string, number> = { mse_loss: mse.loss, l1_loss: n ? (lambda * l1) / n : 0 };
  const ghost = cfg.useGhostGrads ? ghostGradTerm(ctx, h, saeOut, wDec) : undefined;
  if (ghost) losses.ghost_grad_loss = ghost.loss;

  const backward = (): Grads64 => {
    const grads = zeroGrads(p, STANDARD_PARAMS);
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
    for (let b = 0; b < n; b++) {
      if (tokenNorm[b] === 0) continue;
      for (let i = 0; i < dSae; i++) {
        const v = f[b * dSae + i] * norms[i];
        if (v <= 0) continue;
        // ∂‖v‖_p/∂v_i = v_i^{p−1} / ‖v‖_p^{p−1} (= 1 for p = 1), for v_i > 0.
        const dv = (lambda / n) * (lp === 1 ? 1 : (v / tokenNorm[b]) ** (lp - 1));
        gF[b * dSae + i] += dv * norms[i];
        gN[i] += dv * f[b * dSae + i];
      }
    }
    const gH = new Float64Array(n * dSae);
    for (let k = 0; k < n * dSae; k++) gH[k] = h[k] > 0 ? gF[k] : 0;
    if (ghost) ghost.backward(grads, gH);
    encoderBackward(cfg, grads, gH, xTilde, wEnc, n, "b_enc");
    addDecoderNormGrad(grads.W_dec, gN, wDec, norms, dSae, dOut);
    return grads;
  };
  return { saeOut, featureActs: f, hiddenPre: h, losses, metrics: {}, backward };
}

/**
 * Legacy ghost grads (spec §3.9): dead latents reconstruct the residual through exp(h),
 * scaled to half the residual norm, with an elementwise MSE rescaled to the main per-element
 * MSE. `ν` and the rescale factor are detached, as is the residual. Returns loss 0 and no
 * gradient when there is no dead latent.
 */
function ghostGradTerm(
  ctx: TrainCtx,
  h: Float64Array,
  saeOut: Float64Array,
  wDec: ArrayLike<number>,
): { loss: number; backward: (g: Grads64, gH: Float64Array) => void } {
  const { x, n, dIn, dSae, opts } = ctx;
  const dead: number[] = [];
  if (opts.deadMask) { for (let i = 0; i < dSae; i++) if (opts.deadMask[i]) dead.push(i); }
  if (dead.length === 0 || n === 0) return { loss: 0, backward: () => {} };

  const expH = new Float64Array(n * dSae);
  const raw = new Float64Array(n * dIn);
  for (let b = 0; b < n; b++) {
    for (const i of dead) {
      const e = Math.exp(h[b * dSae + i]);
      expH[b * dSae + i] = e;
      for (let j = 0; j < dIn; j++) raw[b * dIn + j] += e * wDec[i * dIn + j];
    }
  }
  const resid = new Float64Array(n * dIn), nu = new Float64Array(n);
  for (let b = 0; b < n; b++) {
    let rr = 0, gg = 0;
    for (let j = 0; j < dIn; j++) {
      const k = b * dIn + j;
      resid[k] = x[k] - saeOut[k];
      rr += resid[k] ** 2;
      gg += raw[k] ** 2;
    }
    nu[b] = Math.sqrt(rr) / (1e-6 + 2 * Math.sqrt(gg));
  }
  // dLoss/d(ghost_out) per element, with the detached rescale s = mse / (m + 1e-6).
  const gGhost = new Float64Array(n * dIn);
  let loss = 0;
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < dIn; j++) {
      const k = b * dIn + j;
      const diff = raw[k] * nu[b] - resid[k];
      const m = diff * diff;
      const s = resid[k] ** 2 / (m + 1e-6);
      loss += s * m;
      gGhost[k] = (2 * s * diff) / (n * dIn);
    }
  }
  const backward = (grads: Grads64, gH: Float64Array): void => {
    for (let b = 0; b < n; b++) {
      for (const i of dead) {
        const e = expH[b * dSae + i];
        let dot = 0;
        for (let j = 0; j < dIn; j++) {
          const gRaw = nu[b] * gGhost[b * dIn + j];
          grads.W_dec[i * dIn + j] += e * gRaw;
          dot += gRaw * wDec[i * dIn + j];
        }
        gH[b * dSae + i] += e * dot;
      }
    }
  };
  return { loss: loss / (n * dIn), backward };
}

/** The standard SAE's reference. */
export const standardReference: ReferenceArchitecture = {
  encode(cfg, p, x, n) {
    const { h, norm } = affineHidden64(cfg, p, x, n);
    return { hiddenPre: h, featureActs: relu64(h), norm };
  },
  train: standardTrain,
  init: (cfg, rng) => ({ ...initTiedParams(cfg, rng), b_enc: new Float32Array(cfg.dSae) }),
  foldWDecNorm: () => ["b_enc"],
};
