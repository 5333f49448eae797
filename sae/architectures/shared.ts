/**
 * Pieces several architecture folders share: the base tensor shapes, the affine encoder with its
 * hook points, the ReLU encoder fused into the product, the transcoder output width, and the
 * common config field kinds.
 * @module
 */

import type { Tensor } from "../../gpu/tensor.ts";
import { unary } from "../../gpu/kernels/elementwise.ts";
import { matmul } from "../../gpu/kernels/matmul/mod.ts";
import { MAX_SIZE_FIELD } from "../../config/fields.ts";
import type { SAEConfig } from "../config_types.ts";
import { linear } from "../_ops.ts";
import { SaeError } from "../errors.ts";
import type { EncodeContext } from "./unit.ts";

/** A width or `k`: a positive safe integer the kernels can index. */
export const SIZE = { type: "int", min: 1, max: MAX_SIZE_FIELD } as const;
/** A number ≥ 0. */
export const NON_NEGATIVE = { type: "number", min: 0 } as const;
/** A number > 0. */
export const POSITIVE = { type: "number", min: 0, exclusiveMin: true } as const;
/** A step count ≥ 0. */
export const STEPS = { type: "int", min: 0 } as const;

/** `d_out`, which transcoders require to be a positive integer. */
export function dOutOf(cfg: SAEConfig): number {
  if (!Number.isSafeInteger(cfg.dOut) || (cfg.dOut ?? 0) < 1) {
    throw new SaeError(
      `config (${cfg.architecture}): d_out is ${cfg.dOut}, expected a positive integer`,
    );
  }
  return cfg.dOut!;
}

/** `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, dOut]`, `b_dec [dOut]`. */
export function baseShapes(cfg: SAEConfig, dOut = cfg.dIn): Record<string, number[]> {
  return {
    W_enc: [cfg.dIn, cfg.dSae],
    b_enc: [cfg.dSae],
    W_dec: [cfg.dSae, dOut],
    b_dec: [dOut],
  };
}

/** h = x̃·W_enc + b_enc through `hook_sae_acts_pre`, then `activate(h)` through `…acts_post`. */
export function affineEncode(ctx: EncodeContext, activate: (h: Tensor) => Tensor): Tensor {
  const { params: p } = ctx;
  const h = ctx.hook("hook_sae_acts_pre", linear(ctx.x, p.W_enc, p.b_enc));
  const f = activate(h);
  h.dispose();
  return ctx.hook("hook_sae_acts_post", f);
}

const relu = (h: Tensor) => unary("relu", h);

/** ReLU(x̃·W_enc + b_enc): fused into the product when no hook needs the pre-activation. */
export function reluEncode(ctx: EncodeContext): Tensor {
  if (ctx.hooksActive !== false) return affineEncode(ctx, relu);
  const { W_enc, b_enc } = ctx.params;
  return matmul(ctx.x, W_enc, { bias: b_enc, activation: "relu" });
}
