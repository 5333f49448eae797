/**
 * Standard SAE inference on the GPU: f = ReLU(x̃·W_enc + b_enc), fused into the encoder product
 * when no hook reads the pre-activation; decode f·W_dec + b_dec.
 * @module
 */

import type { SaeArchitectureImpl } from "../unit.ts";
import { baseShapes, reluEncode } from "../shared.ts";

/** The standard SAE's GPU inference. */
export const standardInference: SaeArchitectureImpl = {
  paramShapes: (cfg) => baseShapes(cfg),
  encode: reluEncode,
  foldWDecNorm: () => ["b_enc"],
};
