/**
 * JumpReLU SAE inference on the GPU (spec §3.3): f = ReLU(h)·1[h > θ] with h = x̃·W_enc + b_enc.
 * @module
 */

import type { Tensor } from "../../../gpu/tensor.ts";
import type { SaeArchitectureImpl } from "../unit.ts";
import { jumpRelu } from "../../kernels/activations.ts";
import { affineEncode, baseShapes } from "../shared.ts";

/** The JumpReLU activation of `p.threshold`, for `affineEncode`. */
export const jumpActivation = (p: Readonly<Record<string, Tensor>>) => (h: Tensor) =>
  jumpRelu(h, p.threshold);

/** The JumpReLU SAE's GPU inference. */
export const jumpreluInference: SaeArchitectureImpl = {
  paramShapes: (cfg) => ({ ...baseShapes(cfg), threshold: [cfg.dSae] }),
  encode: (ctx) => affineEncode(ctx, jumpActivation(ctx.params)),
  foldWDecNorm: () => ["b_enc", "threshold"],
};
