/**
 * Architecture dispatch: inference encode/decode/forward and the training forward/backward
 * passes of every reference SAE. Inputs may be Float32Array or Float64Array (float64 inside);
 * outputs are Float32Array, except the scalar losses, which keep float64 precision.
 */
import {
  type ArchTrainResult,
  checkRows,
  param,
  type ParamsLike,
  type RefSaeConfig,
  SaeReferenceError,
  toF32,
  type TrainCtx,
  type TrainOptions,
} from "./common.ts";
import { decodeAffine64 } from "./linear.ts";
import { normOut64, type NormStateRef } from "./normalization.ts";
import { findArchitectureUnit, listArchitectures } from "../architectures/mod.ts";
import type { ReferenceArchitecture } from "../architectures/unit.ts";

/** Result of {@link encodeRef}. */
export interface EncodeRef {
  /** The `hook_sae_acts_pre` value (TopK family: before the decoder-norm rescale; gated: π_mag). */
  hiddenPre: Float32Array;
  /** The `hook_sae_acts_post` value. */
  featureActs: Float32Array;
  /** Run-time normalisation state to pass to {@link decodeRef}. */
  normState: NormStateRef;
}

/** Result of {@link trainingForwardRef} (SAELens `TrainStepOutput`). */
export interface TrainingForwardRef {
  sae_out: Float32Array;
  featureActs: Float32Array;
  /** Training `hidden_pre` (TopK family: rescaled by n when rescaling; gated: π_mag). */
  hiddenPre: Float32Array;
  /** mse_loss + Σ other losses. */
  loss: number;
  losses: Record<string, number>;
  metrics: Record<string, number>;
  /** BatchTopK family: the updated threshold (store it back into `topk_threshold`). */
  topkThreshold?: number;
}

/** The reference unit of `cfg.architecture`; unknown → a SaeReferenceError. */
function referenceOf(cfg: RefSaeConfig): ReferenceArchitecture {
  const ref = findArchitectureUnit(cfg.architecture)?.reference;
  if (!ref) throw new SaeReferenceError(`architecture: unknown "${cfg.architecture}"`);
  return ref;
}

function encode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): { hiddenPre: Float64Array; featureActs: Float64Array; norm: NormStateRef } {
  const ref = referenceOf(cfg);
  checkRows(x, n, cfg.dIn, "x");
  return ref.encode(cfg, p, x, n);
}

function decode64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  f: ArrayLike<number>,
  n: number,
  norm: NormStateRef | undefined,
): Float64Array {
  const ref = referenceOf(cfg), { dIn, dSae, architecture: arch } = cfg;
  checkRows(f, n, dSae, "featureActs");
  if (ref.decode && ref.transcoder) return ref.decode(cfg, p, f, n);
  const y = ref.decode ? ref.decode(cfg, p, f, n) : decodeAffine64(
    f,
    param(p, "W_dec", dSae * dIn, arch),
    param(p, "b_dec", dIn, arch),
    n,
    dSae,
    dIn,
  );
  const mode = cfg.normalizeActivations;
  if (mode === "constant_norm_rescale" || mode === "layer_norm") {
    // SAELens keeps this state on the module between encode and decode.
    if (!norm || norm.mode !== mode) {
      throw new SaeReferenceError(
        `decodeRef: normalizeActivations "${mode}" needs the normState returned by encodeRef`,
      );
    }
  }
  return norm ? normOut64(norm, y, n, dIn) : y;
}

/**
 * Inference encode (`SAE.encode`): run-time normalisation, x̃ = x − b_dec·[apply], the
 * architecture's activation. Returns the acts_pre/acts_post hook values.
 *
 * @example
 * ```ts
 * import { encodeRef } from "./sae.ts";
 * const cfg = { architecture: "standard", dIn: 2, dSae: 2, applyBDecToInput: false,
 *   normalizeActivations: "none" };
 * const p = { W_enc: new Float32Array([1, 0, 0, 1]), b_enc: new Float32Array(2),
 *   W_dec: new Float32Array([1, 0, 0, 1]), b_dec: new Float32Array(2) };
 * const { featureActs } = encodeRef(cfg, p, new Float32Array([2, -1]), 1); // [2, 0]
 * if (featureActs[0] !== 2 || featureActs[1] !== 0) throw new Error("wrong");
 * ```
 */
export function encodeRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): EncodeRef {
  const r = encode64(cfg, params, x, n);
  return { hiddenPre: toF32(r.hiddenPre), featureActs: toF32(r.featureActs), normState: r.norm };
}

/**
 * Inference decode (`SAE.decode`): f·W_dec + b_dec (TopK family with rescale: (f/n)·W_dec),
 * then run-time denormalisation using `normState` from {@link encodeRef} (required for
 * constant_norm_rescale / layer_norm). Transcoders: dOut wide, no denormalisation, no skip.
 */
export function decodeRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  featureActs: ArrayLike<number>,
  n: number,
  normState?: NormStateRef,
): Float32Array {
  return toF32(decode64(cfg, params, featureActs, n, normState));
}

/** Options of {@link forwardRef}. */
export interface ForwardOptionsRef {
  /** output = x̂ + (x − x̂_clean), where x̂_clean ignores `editFeatureActs`. */
  useErrorTerm?: boolean;
  /** Stand-in for a hook on `hook_sae_acts_post`: edits the acts in place before decoding. */
  editFeatureActs?: (featureActs: Float32Array) => void;
}

/**
 * `SAE.forward`: encode, decode; skip transcoders add x·W_skipᵀ; with `useErrorTerm` the
 * output is x̂ + (x − x̂_clean) (equal to x when no edit is made).
 */
export function forwardRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  opts: ForwardOptionsRef = {},
): { output: Float32Array; featureActs: Float32Array; saeError?: Float32Array } {
  const arch = cfg.architecture, ref = referenceOf(cfg);
  if (opts.useErrorTerm && ref.transcoder) {
    throw new SaeReferenceError(`useErrorTerm: ${arch} has no error term`);
  }
  const enc = encode64(cfg, params, x, n);
  let f: ArrayLike<number> = enc.featureActs;
  if (opts.editFeatureActs) {
    const f32 = toF32(f);
    opts.editFeatureActs(f32);
    f = f32;
  }
  const out = decode64(cfg, params, f, n, enc.norm);
  if (ref.skip) {
    const skip = ref.skip(cfg, params, x, n);
    for (let i = 0; i < out.length; i++) out[i] += skip[i];
  }
  if (!opts.useErrorTerm) return { output: toF32(out), featureActs: toF32(f) };
  const clean = encode64(cfg, params, x, n);
  const xHatClean = decode64(cfg, params, clean.featureActs, n, clean.norm);
  const err = Float64Array.from(xHatClean, (v, i) => x[i] - v);
  return {
    output: toF32(out.map((v, i) => v + err[i])),
    featureActs: toF32(f),
    saeError: toF32(err),
  };
}

function train(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  opts: TrainOptions,
): ArchTrainResult {
  const arch = cfg.architecture;
  checkRows(x, n, cfg.dIn, "x");
  if (opts.deadMask && opts.deadMask.length !== cfg.dSae) {
    throw new SaeReferenceError(
      `deadMask: expected ${cfg.dSae} entries, got ${opts.deadMask.length}`,
    );
  }
  const ctx: TrainCtx = {
    cfg,
    p,
    x,
    n,
    dIn: cfg.dIn,
    dSae: cfg.dSae,
    opts,
    target: x,
    dOut: cfg.dIn,
  };
  const ref = referenceOf(cfg);
  if (!ref.train) {
    const trainable = [...trainableReferences()].join(", ");
    throw new SaeReferenceError(
      `architecture: "${arch}" has no training pass (training: ${trainable})`,
    );
  }
  return ref.train(ctx);
}

/** Names of the architectures whose reference can train. */
function* trainableReferences(): Generator<string> {
  for (const name of listArchitectures()) {
    if (findArchitectureUnit(name)?.reference?.train) yield name;
  }
}

function toForward(r: ArchTrainResult): TrainingForwardRef {
  const loss = Object.values(r.losses).reduce((s, v) => s + v, 0);
  const out: TrainingForwardRef = {
    sae_out: toF32(r.saeOut),
    featureActs: toF32(r.featureActs),
    hiddenPre: toF32(r.hiddenPre),
    loss,
    losses: r.losses,
    metrics: r.metrics,
  };
  if (r.topkThreshold !== undefined) out.topkThreshold = r.topkThreshold;
  return out;
}

/**
 * `TrainingSAE.training_forward_pass`: returns outputs, `loss` = Σ losses with SAELens's loss
 * keys, and metrics. Does not mutate `params` (BatchTopK returns the new threshold instead).
 * Transcoders reconstruct `opts.target` (`[n, dOut]`) rather than x.
 */
export function trainingForwardRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  opts: TrainOptions,
): TrainingForwardRef {
  return toForward(train(cfg, params, x, n, opts));
}

/** ∂loss/∂param for every trainable parameter (hand-derived; same conventions as autograd in SAELens). */
export function trainingBackwardRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  opts: TrainOptions,
): Record<string, Float32Array> {
  return trainingStepRef(cfg, params, x, n, opts).grads;
}

/** Forward and backward of one training step in a single pass. */
export function trainingStepRef(
  cfg: RefSaeConfig,
  params: ParamsLike,
  x: ArrayLike<number>,
  n: number,
  opts: TrainOptions,
): { forward: TrainingForwardRef; grads: Record<string, Float32Array> } {
  const r = train(cfg, params, x, n, opts);
  const g = r.backward();
  const grads: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(g)) grads[name] = toF32(v);
  return { forward: toForward(r), grads };
}
