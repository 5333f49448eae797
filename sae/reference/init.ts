/**
 * Training weight initialisation (spec §3.0 "Weight init"), reproducible through {@link RefRng}.
 */
import { type RefSaeConfig, type SaeParams, SaeReferenceError } from "./common.ts";
import type { RefRng } from "./rng.ts";
import { hasSkip, isTranscoder, requireDOut } from "./transcoder.ts";

/** torch `kaiming_uniform_` (a = 0) on a [rows, cols] tensor: U(−√(6/cols), √(6/cols)). */
function kaimingUniform(rng: RefRng, rows: number, cols: number): Float64Array {
  const bound = Math.sqrt(6 / cols);
  return Float64Array.from({ length: rows * cols }, () => rng.uniform(-bound, bound));
}

/**
 * Initial parameters of a training SAE: W_dec Kaiming-uniform on [dSae, dIn] (fan_in dIn),
 * rows rescaled to `decoderInitNorm` (default 0.1; null keeps them), W_enc = W_decᵀ, zero
 * biases; gated b_gate/r_mag/b_mag = 0; jumprelu threshold = jumpreluInitThreshold (default
 * 0.01); BatchTopK family topk_threshold = [0]. Transcoders (inference classes): W_dec
 * [dSae, dOut] and an independent W_enc [dIn, dSae] (fan_in dSae), zero b_enc/b_dec,
 * W_skip = 0, JumpReLU threshold = 0.
 *
 * @example
 * ```ts
 * import { initTrainingParamsRef } from "./init.ts";
 * import { createRng } from "./rng.ts";
 * const p = initTrainingParamsRef({ architecture: "standard", dIn: 4, dSae: 8,
 *   applyBDecToInput: true, normalizeActivations: "none" }, createRng(0));
 * const row0 = Math.hypot(...p.W_dec.subarray(0, 4));
 * if (Math.abs(row0 - 0.1) > 1e-6) throw new Error(String(row0));
 * ```
 */
export function initTrainingParamsRef(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  const { dIn, dSae, architecture: arch } = cfg;
  if (isTranscoder(arch)) {
    const dOut = requireDOut(cfg);
    const out: SaeParams = {
      W_dec: Float32Array.from(kaimingUniform(rng, dSae, dOut)),
      W_enc: Float32Array.from(kaimingUniform(rng, dIn, dSae)),
      b_enc: new Float32Array(dSae),
      b_dec: new Float32Array(dOut),
    };
    if (hasSkip(arch)) out.W_skip = new Float32Array(dOut * dIn);
    if (arch.startsWith("jumprelu")) out.threshold = new Float32Array(dSae);
    return out;
  }
  const wDec64 = kaimingUniform(rng, dSae, dIn);
  const target = cfg.decoderInitNorm === undefined ? 0.1 : cfg.decoderInitNorm;
  if (target !== null) {
    for (let i = 0; i < dSae; i++) {
      const row = wDec64.subarray(i * dIn, (i + 1) * dIn);
      const norm = Math.sqrt(row.reduce((acc, v) => acc + v * v, 0));
      for (let j = 0; j < dIn; j++) row[j] = (row[j] / norm) * target;
    }
  }
  const W_dec = Float32Array.from(wDec64);
  const W_enc = new Float32Array(dIn * dSae);
  for (let i = 0; i < dSae; i++) {
    for (let j = 0; j < dIn; j++) W_enc[j * dSae + i] = W_dec[i * dIn + j];
  }
  const p: SaeParams = { W_enc, W_dec, b_dec: new Float32Array(dIn) };
  switch (arch) {
    case "standard":
    case "topk":
      p.b_enc = new Float32Array(dSae);
      break;
    case "gated":
      p.b_gate = new Float32Array(dSae);
      p.r_mag = new Float32Array(dSae);
      p.b_mag = new Float32Array(dSae);
      break;
    case "jumprelu":
      p.b_enc = new Float32Array(dSae);
      p.threshold = new Float32Array(dSae).fill(cfg.jumpreluInitThreshold ?? 0.01);
      break;
    case "batchtopk":
    case "matryoshka_batchtopk":
      p.b_enc = new Float32Array(dSae);
      p.topk_threshold = new Float32Array(1);
      break;
    default:
      throw new SaeReferenceError(`architecture: unknown "${arch}"`);
  }
  return p;
}
