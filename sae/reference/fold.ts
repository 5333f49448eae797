/**
 * Weight folding and export transforms (spec §3.0, §3.4, §3.5). Each returns NEW float32
 * params and leaves the input untouched; parameters a transform does not name are copied.
 */
import {
  param,
  type ParamsLike,
  type RefSaeConfig,
  rowNorms,
  type SaeParams,
  SaeReferenceError,
} from "./common.ts";
import { requireRescale } from "./topk.ts";
import { isTranscoder, requireDOut } from "./transcoder.ts";

function copyParams(p: ParamsLike): SaeParams {
  const out: SaeParams = {};
  for (const [name, v] of Object.entries(p)) out[name] = Float32Array.from(v);
  return out;
}

/** W_dec ← W_dec/n (rows), W_enc ← W_enc·n (columns), and `perLatent` vectors ← ·n. */
function foldNorms(cfg: RefSaeConfig, p: ParamsLike, perLatent: string[]): SaeParams {
  const { dIn, dSae, architecture: arch } = cfg;
  const dOut = isTranscoder(arch) ? requireDOut(cfg) : dIn;
  const wDec = param(p, "W_dec", dSae * dOut, arch);
  const wEnc = param(p, "W_enc", dIn * dSae, arch);
  const norms = rowNorms(wDec, dSae, dOut).map((v) => Math.max(v, 1e-8));
  const out = copyParams(p);
  for (let i = 0; i < dSae; i++) {
    for (let j = 0; j < dOut; j++) out.W_dec[i * dOut + j] = wDec[i * dOut + j] / norms[i];
  }
  for (let j = 0; j < dIn; j++) {
    for (let i = 0; i < dSae; i++) out.W_enc[j * dSae + i] = wEnc[j * dSae + i] * norms[i];
  }
  for (const name of perLatent) {
    if (p[name] === undefined) continue;
    const v = param(p, name, dSae, arch);
    for (let i = 0; i < dSae; i++) out[name][i] = v[i] * norms[i];
  }
  return out;
}

/**
 * `fold_W_dec_norm()`: with n = max(‖W_dec rows‖, 1e-8), W_dec ← W_dec/n, W_enc ← W_enc·n,
 * b_enc ← b_enc·n; gated also b_gate, b_mag (not r_mag); jumprelu (and JumpReLU transcoders)
 * also threshold. TopK family only with `rescaleActsByDecoderNorm` (else an error, like
 * SAELens' NotImplementedError), and then features are unchanged.
 *
 * @example
 * ```ts
 * import { foldWDecNormRef } from "./fold.ts";
 * const cfg = { architecture: "standard", dIn: 1, dSae: 1, applyBDecToInput: false,
 *   normalizeActivations: "none" };
 * const p = foldWDecNormRef(cfg, { W_enc: new Float32Array([1]), b_enc: new Float32Array([1]),
 *   W_dec: new Float32Array([2]), b_dec: new Float32Array([0]) });
 * if (p.W_dec[0] !== 1 || p.W_enc[0] !== 2 || p.b_enc[0] !== 2) throw new Error("wrong");
 * ```
 */
export function foldWDecNormRef(cfg: RefSaeConfig, params: ParamsLike): SaeParams {
  const arch = cfg.architecture;
  if (arch === "topk" || arch === "batchtopk" || arch === "matryoshka_batchtopk") {
    if (!requireRescale(cfg)) {
      throw new SaeReferenceError(
        `foldWDecNormRef: not safe for ${arch} when rescaleActsByDecoderNorm is false (it may change the top-k set)`,
      );
    }
    return foldNorms(cfg, params, ["b_enc"]);
  }
  if (arch === "gated") return foldNorms(cfg, params, ["b_gate", "b_mag"]);
  if (
    arch === "jumprelu" || arch === "jumprelu_transcoder" || arch === "jumprelu_skip_transcoder"
  ) {
    return foldNorms(cfg, params, ["b_enc", "threshold"]);
  }
  if (arch === "standard" || arch === "transcoder" || arch === "skip_transcoder") {
    return foldNorms(cfg, params, ["b_enc"]);
  }
  throw new SaeReferenceError(`architecture: unknown "${arch}"`);
}

/**
 * `fold_activation_norm_scaling_factor(s)`: W_enc ← s·W_enc, W_dec ← W_dec/s, b_dec ← b_dec/s
 * (the caller then sets normalizeActivations to "none"). encode(x/s) with the result equals
 * encode(x) before (for architectures without decoder-norm rescaling); decode output is /s.
 */
export function foldActivationNormScalingFactorRef(params: ParamsLike, s: number): SaeParams {
  const out = copyParams(params);
  for (const [name, f] of [["W_enc", s], ["W_dec", 1 / s], ["b_dec", 1 / s]] as const) {
    const v = params[name];
    if (v === undefined) {
      throw new SaeReferenceError(`params.${name}: missing (needed to fold the scaling factor)`);
    }
    for (let i = 0; i < v.length; i++) out[name][i] = name === "W_enc" ? v[i] * f : v[i] / s;
  }
  return out;
}

/**
 * Export of a TopK-family training SAE as an inference model: with rescaling on, b_enc ← b_enc·n,
 * W_enc ← W_enc·n, W_dec ← W_dec/n (n clamped at 1e-8); the config keeps
 * rescaleActsByDecoderNorm (harmless since n = 1 afterwards). Without rescaling: a copy.
 */
export function exportTopKRef(cfg: RefSaeConfig, params: ParamsLike): SaeParams {
  return requireRescale(cfg) ? foldNorms(cfg, params, ["b_enc"]) : copyParams(params);
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
