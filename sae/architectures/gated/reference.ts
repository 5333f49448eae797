/**
 * Gated SAE (Rajamanoharan et al. 2024), spec §3.2. Gate and magnitude paths share W_enc:
 * π_gate = x̃·W_enc + b_gate, π_mag = (x̃·W_enc)·exp(r_mag) + b_mag, f = 1[π_gate > 0]·ReLU(π_mag).
 * Aux losses recompute π_gate from the un-normalised input and, like SAELens (unlike the
 * paper), do NOT detach W_dec / b_dec in `auxiliary_reconstruction_loss`.
 */
import {
  addDecoderNormGrad,
  type ArchTrainResult,
  coefficient,
  type Grads64,
  matmul,
  param,
  type ParamsLike,
  type RefSaeConfig,
  rowNorms,
  sumSquaredMean,
  type TrainCtx,
  zeroGrads,
} from "../../reference/common.ts";
import {
  decodeAffine64,
  decoderBackward,
  encoderBackward,
  processInput64,
} from "../../reference/linear.ts";
import { normOut64, normOutBackward } from "../../reference/normalization.ts";
import { initTiedParams } from "../../reference/weights.ts";
import type { ReferenceArchitecture } from "../unit.ts";

/** Trainable parameters of the gated SAE (no b_enc). */
export const GATED_PARAMS = ["W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"] as const;

/** Gated encode from the processed input x̃: returns z = x̃·W_enc, π_gate, π_mag (hiddenPre) and f. */
export function gatedEncode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  xTilde: ArrayLike<number>,
  n: number,
): { z: Float64Array; piGate: Float64Array; piMag: Float64Array; f: Float64Array } {
  const { dIn, dSae } = cfg;
  const what = "gated SAE";
  const z = matmul(xTilde, param(p, "W_enc", dIn * dSae, what), n, dIn, dSae);
  const bGate = param(p, "b_gate", dSae, what);
  const rMag = param(p, "r_mag", dSae, what);
  const bMag = param(p, "b_mag", dSae, what);
  const piGate = new Float64Array(n * dSae),
    piMag = new Float64Array(n * dSae),
    f = new Float64Array(n * dSae);
  for (let k = 0; k < n * dSae; k++) {
    const i = k % dSae;
    piGate[k] = z[k] + bGate[i];
    // x̃·(W_enc ⊙ exp(r_mag)) = (x̃·W_enc) ⊙ exp(r_mag), r_mag broadcast over the columns.
    piMag[k] = z[k] * Math.exp(rMag[i]) + bMag[i];
    f[k] = piGate[k] > 0 && piMag[k] > 0 ? piMag[k] : 0;
  }
  return { z, piGate, piMag, f };
}

/** Training forward pass of the gated SAE with a backward closure. */
export function gatedTrain(ctx: TrainCtx): ArchTrainResult {
  const { cfg, p, x, n, dIn, dSae, opts } = ctx;
  const what = "gated SAE";
  const wEnc = param(p, "W_enc", dIn * dSae, what);
  const wDec = param(p, "W_dec", dSae * dIn, what);
  const bDec = param(p, "b_dec", dIn, what);
  const bGate = param(p, "b_gate", dSae, what);
  const rMag = param(p, "r_mag", dSae, what);
  const lambda = coefficient(opts, "l1", what);

  const { xTilde, norm } = processInput64(cfg, p, x, n);
  const { z, piGate, piMag, f } = gatedEncode64(cfg, p, xTilde, n);
  const saeOut = normOut64(norm, decodeAffine64(f, wDec, bDec, n, dSae, dIn), n, dIn);
  const mse = sumSquaredMean(saeOut, x, n, dIn);
  const norms = rowNorms(wDec, dSae, dIn);

  // Aux path: x̃_a = x − b_dec·[apply] without run-time normalisation (SAELens recomputes it).
  const xA = Float64Array.from(x);
  if (cfg.applyBDecToInput) { for (let k = 0; k < n * dIn; k++) xA[k] -= bDec[k % dIn]; }
  const gateAct = matmul(xA, wEnc, n, dIn, dSae);
  for (let k = 0; k < n * dSae; k++) {
    const v = gateAct[k] + bGate[k % dSae];
    gateAct[k] = v > 0 ? v : 0;
  }
  let l1 = 0;
  for (let k = 0; k < n * dSae; k++) l1 += gateAct[k] * norms[k % dSae];
  const aux = sumSquaredMean(decodeAffine64(gateAct, wDec, bDec, n, dSae, dIn), x, n, dIn);
  const losses = {
    mse_loss: mse.loss,
    l1_loss: n ? (lambda * l1) / n : 0,
    auxiliary_reconstruction_loss: aux.loss,
  };

  const backward = (): Grads64 => {
    const grads = zeroGrads(p, GATED_PARAMS);
    // Main path: decoder, then magnitude path (the gate is a hard 0/1 mask, no gradient).
    const gF = decoderBackward(
      grads,
      f,
      normOutBackward(norm, mse.grad, n, dIn),
      wDec,
      n,
      dSae,
      dIn,
    );
    const gZ = new Float64Array(n * dSae);
    for (let k = 0; k < n * dSae; k++) {
      if (!(piGate[k] > 0 && piMag[k] > 0)) continue;
      const i = k % dSae, e = Math.exp(rMag[i]);
      grads.b_mag[i] += gF[k];
      grads.r_mag[i] += gF[k] * z[k] * e;
      gZ[k] = gF[k] * e;
    }
    encoderBackward(cfg, grads, gZ, xTilde, wEnc, n, undefined);
    // Aux path: reconstruction through W_dec/b_dec (not detached) and the weighted L1.
    const gGate = decoderBackward(grads, gateAct, aux.grad, wDec, n, dSae, dIn);
    const gN = new Float64Array(dSae);
    for (let k = 0; k < n * dSae; k++) {
      const i = k % dSae;
      gGate[k] = gateAct[k] > 0 ? gGate[k] + (lambda / n) * norms[i] : 0;
      gN[i] += (lambda / n) * gateAct[k];
    }
    encoderBackward(cfg, grads, gGate, xA, wEnc, n, "b_gate");
    addDecoderNormGrad(grads.W_dec, gN, wDec, norms, dSae, dIn);
    return grads;
  };
  return { saeOut, featureActs: f, hiddenPre: piMag, losses, metrics: {}, backward };
}

/** The gated SAE's reference. */
export const gatedReference: ReferenceArchitecture = {
  encode(cfg, p, x, n) {
    const { xTilde, norm } = processInput64(cfg, p, x, n);
    const g = gatedEncode64(cfg, p, xTilde, n);
    return { hiddenPre: g.piMag, featureActs: g.f, norm };
  },
  train: gatedTrain,
  init: (cfg, rng) => {
    const zeros = () => new Float32Array(cfg.dSae);
    return { ...initTiedParams(cfg, rng), b_gate: zeros(), r_mag: zeros(), b_mag: zeros() };
  },
  foldWDecNorm: () => ["b_gate", "b_mag"],
};
