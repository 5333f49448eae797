/**
 * TopK SAE, spec §3.4, plus the pieces the BatchTopK family reuses: optional decoder-norm
 * rescaling (h·n in encode, f/n in decode; SAELens detaches nothing, so n gets gradient from
 * both sides) and the aux-k loss on dead latents.
 *
 * Aux-k follows NEWEST SAELens: r = (x − x̂) detached, r̂ = a·W_dec with a/n when rescaling
 * (i.e. unit-norm decoder rows), and NO b_dec (6.18 used decode(a), which added b_dec).
 */
import {
  addDecoderNormGrad,
  type ArchTrainResult,
  type Grads64,
  param,
  type RefSaeConfig,
  rowNorms,
  SaeReferenceError,
  sortedDescending,
  sumSquaredMean,
  toF32,
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
import { copyParams, foldNorms } from "../../reference/weights.ts";
import type { ParamsLike, SaeParams } from "../../reference/common.ts";
import type { RefEncoded, ReferenceArchitecture } from "../unit.ts";
import { normOut64, normOutBackward, type NormStateRef } from "../../reference/normalization.ts";

/** Trainable parameters of the TopK family (topk_threshold is a buffer, not trained). */
export const TOPK_PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"] as const;

/** Reads `rescaleActsByDecoderNorm`, which must be explicit for the TopK family. */
export function requireRescale(cfg: RefSaeConfig): boolean {
  if (typeof cfg.rescaleActsByDecoderNorm !== "boolean") {
    throw new SaeReferenceError(
      `rescaleActsByDecoderNorm: required (boolean) for ${cfg.architecture}`,
    );
  }
  return cfg.rescaleActsByDecoderNorm;
}

/** Reads `k`, which must be a positive number (an integer for per-token TopK). */
export function requireK(cfg: RefSaeConfig, integer: boolean): number {
  const k = cfg.k;
  if (typeof k !== "number" || !(k > 0) || (integer && !Number.isInteger(k))) {
    throw new SaeReferenceError(
      `k: expected a positive ${integer ? "integer" : "number"} for ${cfg.architecture}, got ${k}`,
    );
  }
  return k;
}

/** Per row, marks the k largest entries (ties → lower index). */
export function topKMask64(h: ArrayLike<number>, n: number, dSae: number, k: number): Uint8Array {
  if (k > dSae) throw new SaeReferenceError(`k: ${k} exceeds dSae ${dSae}`);
  const sel = new Uint8Array(n * dSae);
  for (let b = 0; b < n; b++) {
    const order = sortedDescending(dSae, (i) => h[b * dSae + i]);
    for (let t = 0; t < k; t++) sel[b * dSae + order[t]] = 1;
  }
  return sel;
}

/**
 * SAELens `TopK(k)` activation: keep each row's k largest values, ReLU them, zeros elsewhere
 * (so fewer than k may be nonzero). Ties go to the lower index.
 *
 * @example
 * ```ts
 * import { topKRef } from "./reference.ts";
 * const f = topKRef([3, -1, 2, 5], 1, 4, 2); // [3, 0, 0, 5]
 * if (f[0] !== 3 || f[2] !== 0 || f[3] !== 5) throw new Error("wrong");
 * ```
 */
export function topKRef(h: ArrayLike<number>, n: number, dSae: number, k: number): Float32Array {
  const sel = topKMask64(h, n, dSae, k);
  return toF32(Float64Array.from(h, (v, i) => (sel[i] && v > 0 ? v : 0)));
}

/** Cached forward state of a TopK-family training pass. */
export interface TopKForward {
  xTilde: Float64Array;
  norm: NormStateRef;
  rescale: boolean;
  norms: Float64Array;
  /** x̃·W_enc + b_enc (the hook_sae_acts_pre value). */
  hRaw: Float64Array;
  /** hRaw ⊙ n when rescaling, else hRaw (the training `hidden_pre`). */
  h: Float64Array;
  /** Selected & positive: where ∂f/∂h = 1. */
  pass: Uint8Array;
  f: Float64Array;
  /** Decoder input: f/n when rescaling, else f. */
  a: Float64Array;
  saeOut: Float64Array;
}

/** Encode + select + decode shared by TopK, BatchTopK and Matryoshka. */
export function topkFamilyForward(
  ctx: TrainCtx,
  select: (h: Float64Array) => Uint8Array,
): TopKForward {
  const { cfg, p, x, n, dIn, dSae } = ctx;
  const what = `${cfg.architecture} SAE`;
  const wEnc = param(p, "W_enc", dIn * dSae, what);
  const bEnc = param(p, "b_enc", dSae, what);
  const wDec = param(p, "W_dec", dSae * dIn, what);
  const bDec = param(p, "b_dec", dIn, what);
  const rescale = requireRescale(cfg);
  const { xTilde, norm } = processInput64(cfg, p, x, n);
  const hRaw = encodeAffine64(xTilde, wEnc, bEnc, n, dIn, dSae);
  const norms = rowNorms(wDec, dSae, dIn);
  const h = rescale ? Float64Array.from(hRaw, (v, k) => v * norms[k % dSae]) : hRaw;
  const sel = select(h);
  const pass = Uint8Array.from(h, (v, k) => (sel[k] && v > 0 ? 1 : 0));
  const f = Float64Array.from(h, (v, k) => (pass[k] ? v : 0));
  const a = rescale ? Float64Array.from(f, (v, k) => v / norms[k % dSae]) : f;
  const saeOut = normOut64(norm, decodeAffine64(a, wDec, bDec, n, dSae, dIn), n, dIn);
  return { xTilde, norm, rescale, norms, hRaw, h, pass, f, a, saeOut };
}

/**
 * Backward of the TopK-family encode/decode given gA = ∂L/∂a (decoder input), extra ∂L/∂h
 * (e.g. from aux-k) and ∂L/∂n so far; finishes with the encoder and decoder-norm chain rule.
 */
export function topkFamilyBackward(
  ctx: TrainCtx,
  fw: TopKForward,
  grads: Grads64,
  gA: Float64Array,
  gH: Float64Array,
  gN: Float64Array,
): void {
  const { cfg, p, n, dIn, dSae } = ctx;
  const { rescale, norms } = fw;
  for (let k = 0; k < n * dSae; k++) {
    const i = k % dSae;
    let gF = gA[k];
    if (rescale) {
      gF = gA[k] / norms[i];
      gN[i] -= (gA[k] * fw.f[k]) / (norms[i] * norms[i]); // a = f/n
    }
    if (fw.pass[k]) gH[k] += gF;
  }
  if (rescale) {
    for (let k = 0; k < n * dSae; k++) {
      gN[k % dSae] += gH[k] * fw.hRaw[k]; // h = hRaw·n
      gH[k] *= norms[k % dSae];
    }
  }
  encoderBackward(cfg, grads, gH, fw.xTilde, p.W_enc, n, "b_enc");
  addDecoderNormGrad(grads.W_dec, gN, p.W_dec, norms, dSae, dIn);
}

/** One aux-k term: raw loss (before coefficient and scale), its scale and a backward. */
export interface AuxKTerm {
  lossRaw: number;
  scale: number;
  /** Adds weight·∂lossRaw/∂(W_dec, h, n) into grads.W_dec, gH and gN. */
  backward(weight: number, grads: Grads64, gH: Float64Array, gN: Float64Array): void;
}

/**
 * Aux-k on dead latents in columns [lo, hi): k_aux = dIn // 2, scale = min(N_dead/k_aux, 1),
 * the top min(k_aux, N_dead) dead pre-activations per row (raw values, no ReLU) reconstruct
 * the detached residual through W_dec (rows unit-normalised when rescaling), no b_dec.
 * Returns null when no latent in the range is dead.
 */
export function auxKTerm(
  ctx: TrainCtx,
  fw: TopKForward,
  lo: number,
  hi: number,
  residual: Float64Array,
): AuxKTerm | null {
  const { p, n, dIn, dSae, opts } = ctx;
  const dead: number[] = [];
  if (opts.deadMask) { for (let i = lo; i < hi; i++) if (opts.deadMask[i]) dead.push(i); }
  if (dead.length === 0) return null;
  const kAux0 = Math.floor(dIn / 2);
  const scale = Math.min(dead.length / kAux0, 1);
  const kAux = Math.min(kAux0, dead.length);
  const wDec = p.W_dec, { rescale, norms, h } = fw;
  const chosen: number[][] = [];
  const diff = new Float64Array(n * dIn);
  for (let b = 0; b < n; b++) {
    const order = sortedDescending(dead.length, (t) => h[b * dSae + dead[t]]);
    const rowChosen = Array.from(order.subarray(0, kAux), (t) => dead[t]);
    chosen.push(rowChosen);
    for (let j = 0; j < dIn; j++) diff[b * dIn + j] = -residual[b * dIn + j];
    for (const i of rowChosen) {
      const ai = rescale ? h[b * dSae + i] / norms[i] : h[b * dSae + i];
      for (let j = 0; j < dIn; j++) diff[b * dIn + j] += ai * wDec[i * dIn + j];
    }
  }
  const lossRaw = n ? diff.reduce((s, v) => s + v * v, 0) / n : 0;
  const backward = (weight: number, grads: Grads64, gH: Float64Array, gN: Float64Array): void => {
    for (let b = 0; b < n; b++) {
      for (const i of chosen[b]) {
        const hv = h[b * dSae + i];
        const ai = rescale ? hv / norms[i] : hv;
        let dot = 0;
        for (let j = 0; j < dIn; j++) {
          const gR = (weight * 2 * diff[b * dIn + j]) / n;
          grads.W_dec[i * dIn + j] += ai * gR;
          dot += gR * wDec[i * dIn + j];
        }
        if (rescale) {
          gH[b * dSae + i] += dot / norms[i];
          gN[i] -= (dot * hv) / (norms[i] * norms[i]);
        } else {
          gH[b * dSae + i] += dot;
        }
      }
    }
  };
  return { lossRaw, scale, backward };
}

/** Full-width aux-k term for TopK/BatchTopK: residual r = x − x̂ (detached). */
export function fullAuxK(ctx: TrainCtx, fw: TopKForward): AuxKTerm | null {
  const r = Float64Array.from(fw.saeOut, (v, k) => ctx.x[k] - v);
  return auxKTerm(ctx, fw, 0, ctx.dSae, r);
}

/** Shared TopK/BatchTopK training pass (MSE + full-width aux-k). */
export function topkLikeTrain(
  ctx: TrainCtx,
  select: (h: Float64Array) => Uint8Array,
): ArchTrainResult & { fw: TopKForward } {
  const { cfg, p, x, n, dIn, dSae } = ctx;
  const coef = cfg.auxLossCoefficient ?? 1.0;
  const fw = topkFamilyForward(ctx, select);
  const mse = sumSquaredMean(fw.saeOut, x, n, dIn);
  const aux = fullAuxK(ctx, fw);
  const losses = {
    mse_loss: mse.loss,
    auxiliary_reconstruction_loss: aux ? coef * aux.scale * aux.lossRaw : 0,
  };
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
    const gH = new Float64Array(n * dSae), gN = new Float64Array(dSae);
    if (aux) aux.backward(coef * aux.scale, grads, gH, gN);
    topkFamilyBackward(ctx, fw, grads, gA, gH, gN);
    return grads;
  };
  return {
    fw,
    saeOut: fw.saeOut,
    featureActs: fw.f,
    hiddenPre: fw.h,
    losses,
    metrics: {},
    backward,
  };
}

/** Training forward pass of the TopK SAE with a backward closure. */
export function topkTrain(ctx: TrainCtx): ArchTrainResult {
  const k = requireK(ctx.cfg, true);
  return topkLikeTrain(ctx, (h) => topKMask64(h, ctx.n, ctx.dSae, k));
}

/**
 * Inference encode of the TopK family: h = x̃·W_enc + b_enc, scaled by the decoder row norms
 * when rescaling, then the entries `select` marks (ReLU'd); `hiddenPre` is h before the rescale.
 */
export function topkFamilyEncode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  select: (hs: Float64Array) => Uint8Array,
): RefEncoded {
  const { dIn, dSae, architecture: arch } = cfg;
  const { h, norm } = affineHidden64(cfg, p, x, n);
  const norms = rowNorms(param(p, "W_dec", dSae * dIn, arch), dSae, dIn);
  const hs = requireRescale(cfg) ? Float64Array.from(h, (v, k) => v * norms[k % dSae]) : h;
  const sel = select(hs);
  return {
    hiddenPre: h,
    featureActs: Float64Array.from(hs, (v, k) => (sel[k] && v > 0 ? v : 0)),
    norm,
  };
}

/** Decode of the TopK family: (f/n)·W_dec + b_dec when rescaling, else f·W_dec + b_dec. */
export function topkFamilyDecode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  f: ArrayLike<number>,
  n: number,
): Float64Array {
  const { dIn, dSae, architecture: arch } = cfg;
  const wDec = param(p, "W_dec", dSae * dIn, arch);
  let acts: ArrayLike<number> = f;
  if (requireRescale(cfg)) {
    const norms = rowNorms(wDec, dSae, dIn);
    acts = Float64Array.from(f, (v, k) => v / norms[k % dSae]);
  }
  return decodeAffine64(acts, wDec, param(p, "b_dec", dIn, arch), n, dSae, dIn);
}

/** What `fold_W_dec_norm` scales in the TopK family: b_enc, and only with the rescale. */
export function topkFamilyFold(cfg: RefSaeConfig): string[] {
  if (!requireRescale(cfg)) {
    throw new SaeReferenceError(
      `foldWDecNormRef: not safe for ${cfg.architecture} when rescaleActsByDecoderNorm is false (it may change the top-k set)`,
    );
  }
  return ["b_enc"];
}

/**
 * Export of a TopK-family training SAE as an inference model: with rescaling on, b_enc ← b_enc·n,
 * W_enc ← W_enc·n, W_dec ← W_dec/n (n clamped at 1e-8); the config keeps
 * rescaleActsByDecoderNorm (harmless since n = 1 afterwards). Without rescaling: a copy.
 */
export function exportTopKRef(cfg: RefSaeConfig, params: ParamsLike): SaeParams {
  return requireRescale(cfg) ? foldNorms(cfg, params, ["b_enc"]) : copyParams(params);
}

/** The TopK SAE's reference. */
export const topkReference: ReferenceArchitecture = {
  encode: (cfg, p, x, n) =>
    topkFamilyEncode64(cfg, p, x, n, (hs) => topKMask64(hs, n, cfg.dSae, requireK(cfg, true))),
  decode: topkFamilyDecode64,
  train: topkTrain,
  init: (cfg, rng) => ({ ...initTiedParams(cfg, rng), b_enc: new Float32Array(cfg.dSae) }),
  foldWDecNorm: topkFamilyFold,
  exportInference: exportTopKRef,
};
