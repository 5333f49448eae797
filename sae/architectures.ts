/**
 * The GPU implementations of SAE architectures (what `SAE` runs), keyed like the config registry
 * (`sae/registry.ts`): tensor names and shapes, encode (with the acts_pre/acts_post hook points),
 * decode, the transcoder flags, and what `foldWDecNorm` scales. Built in: standard, gated,
 * jumprelu, topk, transcoder, skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder.
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { unary } from "../gpu/kernels/elementwise.ts";
import { matmul } from "../gpu/kernels/matmul.ts";
import { ConfigError } from "../config/errors.ts";
import { MAX_SIZE_FIELD } from "../config/fields.ts";
import type { SAEConfig } from "./config.ts";
import { type ArchitectureSpec, listArchitectures, registerArchitecture } from "./registry.ts";
import { gatedActs, gatedMagnitude, jumpRelu } from "./kernels/activations.ts";
import { ew, linear, linearT, rowNorms, topkActs } from "./_ops.ts";
import { SaeError } from "./sae_errors.ts";

/** The two hook points inside `encode`. */
export type EncodeHookName = "hook_sae_acts_pre" | "hook_sae_acts_post";

/** What an architecture's `encode` gets. */
export interface EncodeContext {
  /** The SAE's config. */
  cfg: SAEConfig;
  /** The SAE's tensors by SAELens name. */
  params: Readonly<Record<string, Tensor>>;
  /** The processed input x̃ `[n, dIn]` (normalised, b_dec subtracted when configured). */
  x: Tensor;
  /**
   * Passes `t` (`[n, dSae]`, owned by the caller) through a hook point and returns the tensor
   * that flows on: `t` itself, or a replacement, in which case `t` has been disposed.
   */
  hook(name: EncodeHookName, t: Tensor): Tensor;
  /**
   * False when no hook can run in this pass (`hook` is the identity), so ops may be fused past
   * the hook points. Set it to true when calling another architecture's `encode` with a `hook`
   * of your own.
   */
  hooksActive?: boolean;
}

/** A GPU implementation of one architecture. */
export interface SaeArchitectureImpl {
  /** Tensor names (SAELens) and shapes of an SAE with this config. */
  paramShapes(cfg: SAEConfig): Record<string, number[]>;
  /**
   * x̃ → feature activations `[n, dSae]`: must call `ctx.hook("hook_sae_acts_pre", …)` on the
   * pre-activation and return `ctx.hook("hook_sae_acts_post", acts)`. Disposes its temporaries.
   */
  encode(ctx: EncodeContext): Tensor;
  /** acts `[n, dSae]` → reconstruction before `hook_sae_recons`; default `f·W_dec + b_dec`. */
  decode?(cfg: SAEConfig, params: Readonly<Record<string, Tensor>>, f: Tensor): Tensor;
  /**
   * Transcoder semantics (spec §3.7): no b_dec subtraction on input, no run-time
   * denormalisation, no `hook_sae_output`, no error term; output width `dOut`.
   */
  transcoder?: boolean;
  /** A term of the raw input added to the output (skip transcoders: x·W_skipᵀ). */
  skip?(cfg: SAEConfig, params: Readonly<Record<string, Tensor>>, x: Tensor): Tensor;
  /**
   * Per-latent tensors (besides W_enc columns and W_dec rows) that `foldWDecNorm` scales by the
   * decoder norms. Throw a {@link SaeError} when folding is not allowed; omit = not supported.
   */
  foldWDecNorm?(cfg: SAEConfig): readonly string[];
}

/** Output width: `dOut` for transcoders, else `dIn`. */
export function outputWidth(cfg: SAEConfig, impl: SaeArchitectureImpl): number {
  return impl.transcoder ? dOutOf(cfg) : cfg.dIn;
}

function dOutOf(cfg: SAEConfig): number {
  if (!Number.isSafeInteger(cfg.dOut) || (cfg.dOut ?? 0) < 1) {
    throw new SaeError(
      `config (${cfg.architecture}): d_out is ${cfg.dOut}, expected a positive integer`,
    );
  }
  return cfg.dOut!;
}

function affineEncode(ctx: EncodeContext, activate: (h: Tensor) => Tensor): Tensor {
  const { params: p } = ctx;
  const h = ctx.hook("hook_sae_acts_pre", linear(ctx.x, p.W_enc, p.b_enc));
  const f = activate(h);
  h.dispose();
  return ctx.hook("hook_sae_acts_post", f);
}

const relu = (h: Tensor) => unary("relu", h);

/** ReLU(x̃·W_enc + b_enc): fused into the product when no hook needs the pre-activation. */
function reluEncode(ctx: EncodeContext): Tensor {
  if (ctx.hooksActive !== false) return affineEncode(ctx, relu);
  const { W_enc, b_enc } = ctx.params;
  return matmul(ctx.x, W_enc, { bias: b_enc, activation: "relu" });
}
const jump = (p: Readonly<Record<string, Tensor>>) => (h: Tensor) => jumpRelu(h, p.threshold);

function baseShapes(cfg: SAEConfig, dOut = cfg.dIn): Record<string, number[]> {
  return {
    W_enc: [cfg.dIn, cfg.dSae],
    b_enc: [cfg.dSae],
    W_dec: [cfg.dSae, dOut],
    b_dec: [dOut],
  };
}

const standard: SaeArchitectureImpl = {
  paramShapes: (cfg) => baseShapes(cfg),
  encode: reluEncode,
  foldWDecNorm: () => ["b_enc"],
};

const gated: SaeArchitectureImpl = {
  paramShapes: (cfg) => ({
    W_enc: [cfg.dIn, cfg.dSae],
    b_gate: [cfg.dSae],
    r_mag: [cfg.dSae],
    b_mag: [cfg.dSae],
    W_dec: [cfg.dSae, cfg.dIn],
    b_dec: [cfg.dIn],
  }),
  encode(ctx) {
    const p = ctx.params;
    // π_mag = x̃·(W_enc ⊙ exp(r_mag)) + b_mag computed as (x̃·W_enc)·exp(r_mag) + b_mag, so one
    // product serves both the gate and the magnitude path.
    const h0 = linear(ctx.x, p.W_enc);
    const piMag = ctx.hook("hook_sae_acts_pre", gatedMagnitude(h0, p.r_mag, p.b_mag));
    const f = gatedActs(h0, p.b_gate, piMag);
    h0.dispose();
    piMag.dispose();
    return ctx.hook("hook_sae_acts_post", f);
  },
  foldWDecNorm: () => ["b_gate", "b_mag"],
};

const jumprelu: SaeArchitectureImpl = {
  paramShapes: (cfg) => ({ ...baseShapes(cfg), threshold: [cfg.dSae] }),
  encode: (ctx) => affineEncode(ctx, jump(ctx.params)),
  foldWDecNorm: () => ["b_enc", "threshold"],
};

const topk: SaeArchitectureImpl = {
  paramShapes: (cfg) => baseShapes(cfg),
  encode(ctx) {
    const { cfg, params: p } = ctx;
    return affineEncode(ctx, (h) => {
      if (!cfg.rescaleActsByDecoderNorm) return topkActs(h, cfg.k ?? 100);
      const norms = rowNorms(p.W_dec);
      const scaled = ew("mul", h, norms);
      norms.dispose();
      const f = topkActs(scaled, cfg.k ?? 100);
      scaled.dispose();
      return f;
    });
  },
  decode(cfg, p, f) {
    if (!cfg.rescaleActsByDecoderNorm) return linear(f, p.W_dec, p.b_dec);
    const norms = rowNorms(p.W_dec);
    const unscaled = ew("div", f, norms);
    norms.dispose();
    const out = linear(unscaled, p.W_dec, p.b_dec);
    unscaled.dispose();
    return out;
  },
  foldWDecNorm(cfg) {
    if (!cfg.rescaleActsByDecoderNorm) {
      throw new SaeError(
        "foldWDecNorm: not supported for a topk SAE with rescale_acts_by_decoder_norm false " +
          "(scaling the latents by their decoder norms can change which k are selected)",
      );
    }
    return ["b_enc"];
  },
};

const transcoderShapes = (cfg: SAEConfig) => baseShapes(cfg, dOutOf(cfg));
const skipTerm = (_cfg: SAEConfig, p: Readonly<Record<string, Tensor>>, x: Tensor) =>
  linearT(x, p.W_skip);

const transcoder: SaeArchitectureImpl = {
  paramShapes: transcoderShapes,
  encode: reluEncode,
  transcoder: true,
  foldWDecNorm: () => ["b_enc"],
};

const skipTranscoder: SaeArchitectureImpl = {
  ...transcoder,
  paramShapes: (cfg) => ({ ...transcoderShapes(cfg), W_skip: [dOutOf(cfg), cfg.dIn] }),
  skip: skipTerm,
};

const jumpreluTranscoder: SaeArchitectureImpl = {
  ...transcoder,
  paramShapes: (cfg) => ({ ...transcoderShapes(cfg), threshold: [cfg.dSae] }),
  encode: (ctx) => affineEncode(ctx, jump(ctx.params)),
  foldWDecNorm: () => ["b_enc", "threshold"],
};

const jumpreluSkipTranscoder: SaeArchitectureImpl = {
  ...jumpreluTranscoder,
  paramShapes: (cfg) => ({
    ...jumpreluTranscoder.paramShapes(cfg),
    W_skip: [dOutOf(cfg), cfg.dIn],
  }),
  skip: skipTerm,
};

const impls = new Map<string, SaeArchitectureImpl>();

/**
 * Registers a GPU architecture implementation under `name` (duplicate → {@link SaeError}).
 * The config side must be registered too: pass its `configSpec` here (it is then registered
 * with `registerArchitecture` of `sae/registry.ts`) unless it already is.
 *
 * @example
 * ```ts
 * import { getSaeArchitecture, registerSaeArchitecture } from "./architectures.ts";
 * import { unary } from "../gpu/kernels/elementwise.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { SAE } from "./sae.ts";
 * // A "shifted ReLU" SAE: f = ReLU(h − 1), with the standard tensors.
 * const standard = getSaeArchitecture("standard");
 * registerSaeArchitecture("doc_shifted_relu", {
 *   paramShapes: standard.paramShapes,
 *   encode(ctx) {
 *     const h = standard.encode({ ...ctx, hook: (_n, t) => t }); // ReLU(h)
 *     const f = unary("addScalar", h, { c: -1 });
 *     h.dispose();
 *     return ctx.hook("hook_sae_acts_post", unary("relu", f, { out: f }));
 *   },
 * }, { inferenceFields: [], trainingFields: null, exportsAs: "doc_shifted_relu" });
 * // Identity weights: the pre-activations are the inputs themselves.
 * const eye = [1, 0, 0, 1];
 * const sae = await SAE.fromParams(
 *   { architecture: "doc_shifted_relu", dIn: 2, dSae: 2 },
 *   { W_enc: eye, b_enc: [0, 0], W_dec: eye, b_dec: [0, 0] },
 * );
 * using x = Tensor.from([0.5, 3, -2, 1.25], [2, 2]);
 * using f = sae.encode(x);
 * const got = await f.toArray();
 * if (got.join() !== "0,2,0,0.25") throw new Error(`shifted ReLU features ${got}`);
 * sae.dispose();
 * ```
 */
export function registerSaeArchitecture(
  name: string,
  impl: SaeArchitectureImpl,
  configSpec?: ArchitectureSpec,
): void {
  if (impls.has(name)) {
    throw new SaeError(`SAE architecture ${JSON.stringify(name)} is already registered`);
  }
  if (configSpec) registerArchitecture(name, configSpec);
  else if (!listArchitectures().includes(name)) {
    throw new SaeError(
      `SAE architecture ${JSON.stringify(name)} has no config: pass its configSpec (the fields ` +
        `its cfg.json adds) or register it with registerArchitecture first`,
    );
  }
  impls.set(name, impl);
}

/** The implementation of `name`; throws a {@link SaeError} listing the registered ones. */
export function getSaeArchitecture(name: string, where = "SAE"): SaeArchitectureImpl {
  const impl = impls.get(name);
  if (!impl) {
    throw new SaeError(
      `${where}: architecture ${JSON.stringify(name)} has no GPU implementation; registered: ` +
        [...impls.keys()].join(", "),
    );
  }
  return impl;
}

/** Names of the architectures `SAE` can run. */
export function listSaeArchitectures(): string[] {
  return [...impls.keys()];
}

// Gemma Scope 2 transcoders (newest SAELens) are JumpReLU transcoders with an affine skip; the
// registry of built-in architectures does not list it, so its config side is added here.
if (!listArchitectures().includes("jumprelu_skip_transcoder")) {
  registerArchitecture("jumprelu_skip_transcoder", {
    inferenceFields: [{
      name: "d_out",
      kind: { type: "int", min: 1, max: MAX_SIZE_FIELD },
      default: 768,
    }],
    trainingFields: null,
    validate(cfg) {
      if (cfg.applyBDecToInput) {
        throw new ConfigError(
          "config (jumprelu_skip_transcoder): apply_b_dec_to_input is true, expected false (a " +
            "transcoder's b_dec has d_out entries and cannot be subtracted from its input)",
        );
      }
    },
  });
}

for (
  const [name, impl] of [
    ["standard", standard],
    ["gated", gated],
    ["jumprelu", jumprelu],
    ["topk", topk],
    ["transcoder", transcoder],
    ["skip_transcoder", skipTranscoder],
    ["jumprelu_transcoder", jumpreluTranscoder],
    ["jumprelu_skip_transcoder", jumpreluSkipTranscoder],
  ] as const
) registerSaeArchitecture(name, impl);
