/**
 * Weight folding and export transforms (spec §3.0, §3.4, §3.5). Each returns NEW float32
 * params and leaves the input untouched; parameters a transform does not name are copied.
 */
import { type ParamsLike, type RefSaeConfig, type SaeParams, SaeReferenceError } from "./common.ts";
import { copyParams, foldNorms } from "./weights.ts";
import { findArchitectureUnit } from "../architectures/mod.ts";
import { requireDOut } from "../architectures/transcoder/reference.ts";
export { copyParams, foldNorms };
export { exportTopKRef } from "../architectures/topk/reference.ts";
export { exportBatchTopKRef } from "../architectures/batchtopk/reference.ts";

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
  const ref = findArchitectureUnit(cfg.architecture)?.reference;
  if (!ref?.foldWDecNorm) {
    throw new SaeReferenceError(`architecture: unknown "${cfg.architecture}"`);
  }
  return foldNorms(cfg, params, ref.foldWDecNorm(cfg), ref.transcoder ? requireDOut(cfg) : cfg.dIn);
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
