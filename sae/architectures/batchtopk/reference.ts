/**
 * BatchTopK SAE (Bussmann et al. 2024), spec §3.5: ReLU, then keep the top ⌊k·n⌋ values of
 * the whole batch. Encode/decode/rescale/aux-k come from the TopK family. After every
 * training pass the global threshold θ ← (1 − η)·θ + η·min{f > 0} (float64; skipped if
 * nothing fired) and `metrics.topk_threshold` reports the new θ.
 */
import {
  type ArchTrainResult,
  param,
  SaeReferenceError,
  sortedDescending,
  toF32,
  type TrainCtx,
} from "../../reference/common.ts";
import {
  exportTopKRef,
  requireK,
  topkFamilyDecode64,
  topkFamilyEncode64,
  topkFamilyFold,
  topkLikeTrain,
} from "../topk/reference.ts";
import { initTiedParams } from "../../reference/weights.ts";
import type { ParamsLike, RefSaeConfig, SaeParams } from "../../reference/common.ts";
import type { ReferenceArchitecture } from "../unit.ts";
import type { RefRng } from "../../../util/rng.ts";

/** Marks the top ⌊k·n⌋ entries of ReLU(h) over the whole batch (ties → lower flat index). */
export function batchTopKMask64(
  h: ArrayLike<number>,
  n: number,
  dSae: number,
  k: number,
): Uint8Array {
  const total = n * dSae;
  const keep = Math.trunc(k * n); // Python int(k · num_samples)
  if (keep > total) {
    throw new SaeReferenceError(`k: ⌊${k}·${n}⌋ = ${keep} exceeds the ${total} batch activations`);
  }
  const relu = (i: number) => (h[i] > 0 ? h[i] : 0);
  const order = sortedDescending(total, relu);
  const sel = new Uint8Array(total);
  for (let t = 0; t < keep; t++) sel[order[t]] = 1;
  return sel;
}

/**
 * SAELens `BatchTopK(k)` activation on `[n, dSae]` values: ReLU, then the top ⌊k·n⌋ over
 * the whole batch, zeros elsewhere (a row may keep 0 or many features).
 *
 * @example
 * ```ts
 * import { batchTopKRef } from "./reference.ts";
 * const f = batchTopKRef([1, -2, 3, -4, -5, 6, -7, 8], 2, 4, 2);
 * // [[1, 0, 3, 0], [0, 6, 0, 8]]
 * if (f[0] !== 1 || f[2] !== 3 || f[5] !== 6 || f[7] !== 8) throw new Error("wrong");
 * ```
 */
export function batchTopKRef(
  h: ArrayLike<number>,
  n: number,
  dSae: number,
  k: number,
): Float32Array {
  const sel = batchTopKMask64(h, n, dSae, k);
  return toF32(Float64Array.from(h, (v, i) => (sel[i] && v > 0 ? v : 0)));
}

/**
 * EMA update of the BatchTopK threshold with the smallest positive activation (cast to
 * float32 first, as SAELens' activations are float32; the EMA itself is float64).
 * Returns `theta` unchanged if nothing fired.
 */
export function updateTopkThresholdRef(
  theta: number,
  featureActs: ArrayLike<number>,
  lr: number,
): number {
  let minPos = Infinity;
  for (let i = 0; i < featureActs.length; i++) {
    const v = featureActs[i];
    if (v > 0 && v < minPos) minPos = v;
  }
  if (minPos === Infinity) return theta;
  return (1 - lr) * theta + lr * Math.fround(minPos);
}

/** Reads the current `topk_threshold` buffer (one value). */
export function currentTopkThreshold(ctx: TrainCtx): number {
  return param(ctx.p, "topk_threshold", 1, `${ctx.cfg.architecture} SAE`)[0];
}

/** Training forward pass of the BatchTopK SAE with a backward closure. */
export function batchtopkTrain(ctx: TrainCtx): ArchTrainResult {
  const k = requireK(ctx.cfg, false);
  const theta = currentTopkThreshold(ctx);
  const r = topkLikeTrain(ctx, (h) => batchTopKMask64(h, ctx.n, ctx.dSae, k));
  const next = updateTopkThresholdRef(theta, r.featureActs, ctx.cfg.topkThresholdLr ?? 0.01);
  return { ...r, metrics: { topk_threshold: next }, topkThreshold: next };
}

/**
 * Export of a (Matryoshka) BatchTopK training SAE as a JumpReLU SAE: TopK norm folding (if
 * rescaling), `topk_threshold` removed and `threshold = θ·ones(dSae)` added. The exported
 * config has architecture "jumprelu" and no topkThresholdLr.
 */
export function exportBatchTopKRef(cfg: RefSaeConfig, params: ParamsLike): SaeParams {
  const theta = param(params, "topk_threshold", 1, `${cfg.architecture} export`)[0];
  const out = exportTopKRef(cfg, params);
  delete out.topk_threshold;
  out.threshold = new Float32Array(cfg.dSae).fill(theta);
  return out;
}

/** Training init of the BatchTopK family: tied weights, b_enc = 0, topk_threshold = [0]. */
export function initBatchTopK(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  return {
    ...initTiedParams(cfg, rng),
    b_enc: new Float32Array(cfg.dSae),
    topk_threshold: new Float32Array(1),
  };
}

/** The BatchTopK SAE's reference. */
export const batchtopkReference: ReferenceArchitecture = {
  encode: (cfg, p, x, n) =>
    topkFamilyEncode64(
      cfg,
      p,
      x,
      n,
      (hs) => batchTopKMask64(hs, n, cfg.dSae, requireK(cfg, false)),
    ),
  decode: topkFamilyDecode64,
  train: batchtopkTrain,
  init: initBatchTopK,
  foldWDecNorm: topkFamilyFold,
  exportInference: exportBatchTopKRef,
};
