/**
 * Matryoshka BatchTopK SAE (Bussmann et al. 2025), spec §3.6: the BatchTopK loss plus, for
 * every level width w but the last, `inner_mse_loss_<w>` of the reconstruction from the
 * first w latents. Optional (newest) `useMatryoshkaAuxLoss`: one aux-k term per level on that
 * level's dead latents against that level's residual.
 *
 * SAELens deletes the run-time normalisation state after the first decode, so it cannot run
 * matryoshka with constant_norm_rescale / layer_norm; here every level is denormalised.
 */
import {
  type ArchTrainResult,
  type Grads64,
  type RefSaeConfig,
  SaeReferenceError,
  sumSquaredMean,
  type TrainCtx,
  zeroGrads,
} from "../../reference/common.ts";
import { decoderBackward } from "../../reference/linear.ts";
import { normOut64, normOutBackward } from "../../reference/normalization.ts";
import {
  batchTopKMask64,
  currentTopkThreshold,
  exportBatchTopKRef,
  initBatchTopK,
  updateTopkThresholdRef,
} from "../batchtopk/reference.ts";
import type { ReferenceArchitecture } from "../unit.ts";
import {
  type AuxKTerm,
  auxKTerm,
  fullAuxK,
  requireK,
  TOPK_PARAMS,
  topkFamilyBackward,
  topkFamilyDecode64,
  topkFamilyEncode64,
  topkFamilyFold,
  topkFamilyForward,
} from "../topk/reference.ts";

/**
 * Resolves `matryoshkaWidths` like SAELens: empty → error; d_sae appended if the last width
 * differs; then widths must be strictly increasing.
 *
 * @example
 * ```ts
 * import { matryoshkaWidthsRef } from "./reference.ts";
 * const w = matryoshkaWidthsRef({ architecture: "matryoshka_batchtopk", dIn: 4, dSae: 8,
 *   applyBDecToInput: true, normalizeActivations: "none", matryoshkaWidths: [2, 4] });
 * if (w.join() !== "2,4,8") throw new Error(w.join());
 * ```
 */
export function matryoshkaWidthsRef(cfg: RefSaeConfig): number[] {
  const widths = [...(cfg.matryoshkaWidths ?? [])];
  if (widths.length === 0) throw new SaeReferenceError("matryoshkaWidths: must not be empty");
  if (widths[widths.length - 1] !== cfg.dSae) widths.push(cfg.dSae);
  for (let j = 1; j < widths.length; j++) {
    if (!(widths[j - 1] < widths[j]) || widths[0] <= 0) {
      throw new SaeReferenceError(
        `matryoshkaWidths: must be strictly increasing positive widths ending at dSae, got [${widths}]`,
      );
    }
  }
  return widths;
}

/** Columns [lo, hi) of a row-major [n, d] matrix. */
function sliceCols(a: Float64Array, n: number, d: number, lo: number, hi: number): Float64Array {
  const out = new Float64Array(n * (hi - lo));
  for (let b = 0; b < n; b++) out.set(a.subarray(b * d + lo, b * d + hi), b * (hi - lo));
  return out;
}

/** Training forward pass of the Matryoshka BatchTopK SAE with a backward closure. */
export function matryoshkaTrain(ctx: TrainCtx): ArchTrainResult {
  const { cfg, p, x, n, dIn, dSae } = ctx;
  const k = requireK(cfg, false);
  const widths = matryoshkaWidthsRef(cfg);
  const coef = cfg.auxLossCoefficient ?? 1.0;
  const theta = currentTopkThreshold(ctx);
  const fw = topkFamilyForward(ctx, (h) => batchTopKMask64(h, n, dSae, k));
  const mse = sumSquaredMean(fw.saeOut, x, n, dIn);

  // Prefix reconstructions b_dec + Σ_{levels ≤ j} a[:, level]·W_dec[level], denormalised.
  const levelOut: Float64Array[] = [];
  const partial = new Float64Array(n * dIn);
  for (let b = 0; b < n; b++) for (let j = 0; j < dIn; j++) partial[b * dIn + j] = p.b_dec[j];
  let prev = 0;
  for (const w of widths) {
    for (let b = 0; b < n; b++) {
      for (let i = prev; i < w; i++) {
        const ai = fw.a[b * dSae + i];
        if (ai === 0) continue;
        for (let j = 0; j < dIn; j++) partial[b * dIn + j] += ai * p.W_dec[i * dIn + j];
      }
    }
    levelOut.push(normOut64(fw.norm, partial, n, dIn));
    prev = w;
  }

  const auxTerms: AuxKTerm[] = [];
  if (cfg.useMatryoshkaAuxLoss) {
    prev = 0;
    widths.forEach((w, j) => {
      const r = Float64Array.from(levelOut[j], (v, t) => x[t] - v);
      const term = auxKTerm(ctx, fw, prev, w, r);
      if (term) auxTerms.push(term);
      prev = w;
    });
  } else {
    const term = fullAuxK(ctx, fw);
    if (term) auxTerms.push(term);
  }
  const auxLoss = coef * auxTerms.reduce((s, t) => s + t.scale * t.lossRaw, 0);
  const losses: Record<string, number> = {
    mse_loss: mse.loss,
    auxiliary_reconstruction_loss: auxLoss,
  };
  const inner = widths.slice(0, -1).map((w, j) => {
    const term = sumSquaredMean(levelOut[j], x, n, dIn);
    losses[`inner_mse_loss_${w}`] = term.loss;
    return { w, grad: term.grad };
  });
  const next = updateTopkThresholdRef(theta, fw.f, cfg.topkThresholdLr ?? 0.01);

  const backward = (): Grads64 => {
    const grads = zeroGrads(p, TOPK_PARAMS);
    const gA = decoderBackward(
      grads,
      fw.a,
      normOutBackward(fw.norm, mse.grad, n, dIn),
      p.W_dec,
      n,
      dSae,
      dIn,
    );
    for (const { w, grad } of inner) {
      const gLevel = decoderBackward(
        grads,
        sliceCols(fw.a, n, dSae, 0, w),
        normOutBackward(fw.norm, grad, n, dIn),
        p.W_dec,
        n,
        w,
        dIn,
      );
      for (let b = 0; b < n; b++) for (let i = 0; i < w; i++) gA[b * dSae + i] += gLevel[b * w + i];
    }
    const gH = new Float64Array(n * dSae), gN = new Float64Array(dSae);
    for (const t of auxTerms) t.backward(coef * t.scale, grads, gH, gN);
    topkFamilyBackward(ctx, fw, grads, gA, gH, gN);
    return grads;
  };
  return {
    saeOut: fw.saeOut,
    featureActs: fw.f,
    hiddenPre: fw.h,
    losses,
    metrics: { topk_threshold: next },
    topkThreshold: next,
    backward,
  };
}

/** The Matryoshka BatchTopK SAE's reference. */
export const matryoshkaReference: ReferenceArchitecture = {
  encode(cfg, p, x, n) {
    return topkFamilyEncode64(cfg, p, x, n, (hs) => {
      matryoshkaWidthsRef(cfg);
      return batchTopKMask64(hs, n, cfg.dSae, requireK(cfg, false));
    });
  },
  decode: topkFamilyDecode64,
  train: matryoshkaTrain,
  init: initBatchTopK,
  foldWDecNorm: topkFamilyFold,
  exportInference: exportBatchTopKRef,
};
