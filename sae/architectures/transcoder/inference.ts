/**
 * Transcoder inference on the GPU (spec §3.7): the input is never centred by b_dec (which has
 * d_out entries), the output is `d_out` wide and not denormalised; skip variants add x·W_skipᵀ
 * of the raw input; JumpReLU variants use the JumpReLU activation.
 * @module
 */

import type { Tensor } from "../../../gpu/tensor.ts";
import type { SAEConfig } from "../../config_types.ts";
import type { SaeArchitectureImpl } from "../unit.ts";
import { linearT } from "../../_ops.ts";
import { affineEncode, baseShapes, dOutOf, reluEncode } from "../shared.ts";
import { jumpActivation } from "../jumprelu/inference.ts";

const transcoderShapes = (cfg: SAEConfig) => baseShapes(cfg, dOutOf(cfg));
const skipTerm = (_cfg: SAEConfig, p: Readonly<Record<string, Tensor>>, x: Tensor) =>
  linearT(x, p.W_skip);

/** ReLU transcoder. */
export const transcoderInference: SaeArchitectureImpl = {
  paramShapes: transcoderShapes,
  encode: reluEncode,
  transcoder: true,
  foldWDecNorm: () => ["b_enc"],
};

/** ReLU transcoder with an affine skip connection. */
export const skipTranscoderInference: SaeArchitectureImpl = {
  ...transcoderInference,
  paramShapes: (cfg) => ({ ...transcoderShapes(cfg), W_skip: [dOutOf(cfg), cfg.dIn] }),
  skip: skipTerm,
};

/** JumpReLU transcoder. */
export const jumpreluTranscoderInference: SaeArchitectureImpl = {
  ...transcoderInference,
  paramShapes: (cfg) => ({ ...transcoderShapes(cfg), threshold: [cfg.dSae] }),
  encode: (ctx) => affineEncode(ctx, jumpActivation(ctx.params)),
  foldWDecNorm: () => ["b_enc", "threshold"],
};

/** JumpReLU transcoder with an affine skip connection (Gemma Scope 2). */
export const jumpreluSkipTranscoderInference: SaeArchitectureImpl = {
  ...jumpreluTranscoderInference,
  paramShapes: (cfg) => ({
    ...jumpreluTranscoderInference.paramShapes(cfg),
    W_skip: [dOutOf(cfg), cfg.dIn],
  }),
  skip: skipTerm,
};
