/**
 * Transcoders, spec §3.7. Input processing normalises but never subtracts b_dec (which has
 * d_out entries); decode y = f·W_dec + b_dec has no run-time denormalisation; skip variants add
 * x·W_skipᵀ of the raw input; JumpReLU variants use ReLU(h)·1[h > θ] with θ as stored (no ReLU
 * clamp).
 *
 * Training (saeflow; SAELens only loads transcoders): the input x is read at `hook_name`, the
 * target y at `hook_name_out`; the standard (ReLU) or JumpReLU training pass runs with y as what
 * the decoder reconstructs — mse = mean_b Σ_j (ŷ − y)², plus `l1_loss` or `l0_loss` /
 * `pre_act_loss` exactly as for the SAE — and skip variants add x·W_skipᵀ to ŷ before the loss,
 * so W_skip gets ∂L/∂W_skip = Σ_b (∂L/∂ŷ_b)ᵀ·x_b. Run-time normalisation is refused (the target
 * would need its own), as is b_dec on the input.
 */
import {
  type ArchTrainResult,
  checkRows,
  type Grads64,
  matmulTransB,
  param,
  type ParamsLike,
  type RefSaeConfig,
  SaeReferenceError,
  type TrainCtx,
} from "../../reference/common.ts";
import { decodeAffine64, encodeAffine64 } from "../../reference/linear.ts";
import { normIn64, type NormStateRef } from "../../reference/normalization.ts";
import { jumpreluActs64, jumpreluTrain } from "../jumprelu/reference.ts";
import { relu64, standardTrain } from "../standard/reference.ts";
import { kaimingUniform } from "../../reference/weights.ts";
import type { RefRng } from "../../../util/rng.ts";
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
  const wDec = kaimingUniform(rng, dSae, dOut);
  // A training config's decoder_init_norm (default 0.1) rescales the decoder rows, as for SAEs.
  const norm = cfg.decoderInitNorm;
  if (typeof norm === "number") {
    for (let i = 0; i < dSae; i++) {
      const row = wDec.subarray(i * dOut, (i + 1) * dOut);
      const len = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
      for (let j = 0; j < dOut; j++) row[j] = (row[j] / len) * norm;
    }
  }
  const out: SaeParams = {
    W_dec: Float32Array.from(wDec),
    W_enc: Float32Array.from(kaimingUniform(rng, dIn, dSae)),
    b_enc: new Float32Array(dSae),
    b_dec: new Float32Array(dOut),
  };
  if (hasSkip(arch)) out.W_skip = new Float32Array(dOut * dIn);
  if (arch.startsWith("jumprelu")) {
    out.threshold = new Float32Array(dSae).fill(cfg.jumpreluInitThreshold ?? 0);
  }
  return out;
}

/**
 * A transcoder's training pass: `inner` (the standard or JumpReLU pass) reconstructing the
 * target, with the skip term added to ŷ and its gradient when `skip`.
 */
function transcoderTrain(
  inner: (ctx: TrainCtx) => ArchTrainResult,
  skip: boolean,
): (ctx: TrainCtx) => ArchTrainResult {
  return (ctx) => {
    const { cfg, x, n, dIn } = ctx, arch = cfg.architecture;
    if (cfg.applyBDecToInput) {
      throw new SaeReferenceError(
        `applyBDecToInput: must be false for ${arch} (b_dec has dOut entries)`,
      );
    }
    if (cfg.normalizeActivations !== "none") {
      throw new SaeReferenceError(
        `normalizeActivations: "${cfg.normalizeActivations}" cannot train a ${arch} (its ` +
          `target would need a normalisation of its own); use "none"`,
      );
    }
    if (cfg.useGhostGrads) throw new SaeReferenceError(`useGhostGrads: not for ${arch}`);
    const dOut = requireDOut(cfg), target = ctx.opts.target;
    if (!target) {
      throw new SaeReferenceError(
        `target: training a ${arch} needs the target activations [${n}, ${dOut}] (hook_name_out)`,
      );
    }
    checkRows(target, n, dOut, "target");
    const offset = skip ? transcoderSkip64(cfg, ctx.p, x, n) : undefined;
    const r = inner({ ...ctx, target, dOut, outputOffset: offset });
    if (!skip) return r;
    const backward = (): Grads64 => {
      const grads = r.backward();
      // ∂L/∂W_skip[o, i] = Σ_b (2/n)(ŷ − y)[b, o]·x[b, i] (the skip term is on the raw input).
      const g = new Float64Array(dOut * dIn);
      for (let b = 0; b < n; b++) {
        for (let o = 0; o < dOut; o++) {
          const up = (2 * (r.saeOut[b * dOut + o] - target[b * dOut + o])) / n;
          if (up === 0) continue;
          for (let i = 0; i < dIn; i++) g[o * dIn + i] += up * x[b * dIn + i];
        }
      }
      grads.W_skip = g;
      return grads;
    };
    return { ...r, backward };
  };
}

/** The ReLU transcoder's reference. */
export const transcoderReference: ReferenceArchitecture = {
  encode: transcoderEncode64,
  decode: transcoderDecode64,
  transcoder: true,
  train: transcoderTrain(standardTrain, false),
  init: initTranscoder,
  foldWDecNorm: () => ["b_enc"],
};

/** The skip transcoder's reference. */
export const skipTranscoderReference: ReferenceArchitecture = {
  ...transcoderReference,
  skip: transcoderSkip64,
  train: transcoderTrain(standardTrain, true),
};

/** The JumpReLU transcoder's reference. */
export const jumpreluTranscoderReference: ReferenceArchitecture = {
  ...transcoderReference,
  train: transcoderTrain(jumpreluTrain, false),
  foldWDecNorm: () => ["b_enc", "threshold"],
};

/** The JumpReLU skip transcoder's reference. */
export const jumpreluSkipTranscoderReference: ReferenceArchitecture = {
  ...jumpreluTranscoderReference,
  skip: transcoderSkip64,
  train: transcoderTrain(jumpreluTrain, true),
};
