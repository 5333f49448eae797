/**
 * Transcoders (inference-only), spec §3.7. Input processing normalises but never subtracts
 * b_dec (which has d_out entries); decode y = f·W_dec + b_dec has no run-time
 * denormalisation; skip variants add x·W_skipᵀ of the raw input; JumpReLU variants use
 * ReLU(h)·1[h > θ] with θ as stored (no ReLU clamp).
 */
import {
  matmulTransB,
  param,
  type ParamsLike,
  type RefSaeConfig,
  SaeReferenceError,
} from "../../reference/common.ts";
import { decodeAffine64, encodeAffine64 } from "../../reference/linear.ts";
import { normIn64, type NormStateRef } from "../../reference/normalization.ts";
import { jumpreluActs64 } from "../jumprelu/reference.ts";
import { relu64 } from "../standard/reference.ts";
import { kaimingUniform } from "../../reference/weights.ts";
import type { RefRng } from "../../reference/rng.ts";
import type { SaeParams } from "../../reference/common.ts";
import type { ReferenceArchitecture } from "../unit.ts";

/** True for the transcoder architectures. */
export function isTranscoder(arch: string): boolean {
  return arch === "transcoder" || arch === "skip_transcoder" || arch === "jumprelu_transcoder" ||
    arch === "jumprelu_skip_transcoder";
}

/** True for transcoders with a W_skip connection. */
export function hasSkip(arch: string): boolean {
  return arch === "skip_transcoder" || arch === "jumprelu_skip_transcoder";
}

/** `dOut`, required for transcoders. */
export function requireDOut(cfg: RefSaeConfig): number {
  if (!Number.isSafeInteger(cfg.dOut) || cfg.dOut! <= 0) {
    throw new SaeReferenceError(
      `dOut: required positive integer for ${cfg.architecture}, got ${cfg.dOut}`,
    );
  }
  return cfg.dOut!;
}

/** Transcoder encode: returns hook_sae_acts_pre, acts and the normalisation state. */
export function transcoderEncode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): { hiddenPre: Float64Array; featureActs: Float64Array; norm: NormStateRef } {
  const { dIn, dSae, architecture: arch } = cfg;
  if (cfg.applyBDecToInput) {
    throw new SaeReferenceError(
      `applyBDecToInput: must be false for ${arch} (b_dec has dOut entries)`,
    );
  }
  const { x: xn, state } = normIn64(cfg.normalizeActivations, x, n, dIn);
  const h = encodeAffine64(
    xn,
    param(p, "W_enc", dIn * dSae, arch),
    param(p, "b_enc", dSae, arch),
    n,
    dIn,
    dSae,
  );
  const f = arch.startsWith("jumprelu")
    ? jumpreluActs64(h, param(p, "threshold", dSae, arch), n, dSae)
    : relu64(h);
  return { hiddenPre: h, featureActs: f, norm: state };
}

/** Transcoder decode y = f·W_dec + b_dec (dOut wide; no denormalisation, no skip). */
export function transcoderDecode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  f: ArrayLike<number>,
  n: number,
): Float64Array {
  const dOut = requireDOut(cfg);
  const arch = cfg.architecture;
  return decodeAffine64(
    f,
    param(p, "W_dec", cfg.dSae * dOut, arch),
    param(p, "b_dec", dOut, arch),
    n,
    cfg.dSae,
    dOut,
  );
}

/** Skip connection x·W_skipᵀ (W_skip is [dOut, dIn]) on the raw input. */
export function transcoderSkip64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): Float64Array {
  const dOut = requireDOut(cfg);
  return matmulTransB(x, param(p, "W_skip", dOut * cfg.dIn, cfg.architecture), n, cfg.dIn, dOut);
}

/**
 * Transcoder init (inference classes): W_dec [dSae, dOut] Kaiming-uniform (fan_in dOut), an
 * independent W_enc [dIn, dSae] (fan_in dSae), zero b_enc/b_dec, W_skip = 0, threshold = 0.
 */
function initTranscoder(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  const { dIn, dSae, architecture: arch } = cfg;
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

/** The ReLU transcoder's reference. */
export const transcoderReference: ReferenceArchitecture = {
  encode: transcoderEncode64,
  decode: transcoderDecode64,
  transcoder: true,
  init: initTranscoder,
  foldWDecNorm: () => ["b_enc"],
};

/** The skip transcoder's reference. */
export const skipTranscoderReference: ReferenceArchitecture = {
  ...transcoderReference,
  skip: transcoderSkip64,
};

/** The JumpReLU transcoder's reference. */
export const jumpreluTranscoderReference: ReferenceArchitecture = {
  ...transcoderReference,
  foldWDecNorm: () => ["b_enc", "threshold"],
};

/** The JumpReLU skip transcoder's reference. */
export const jumpreluSkipTranscoderReference: ReferenceArchitecture = {
  ...jumpreluTranscoderReference,
  skip: transcoderSkip64,
};
