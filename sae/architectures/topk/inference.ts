/**
 * TopK SAE inference on the GPU (spec §3.4): keep each token's k largest pre-activations (ReLU);
 * with `rescale_acts_by_decoder_norm` the selection runs on h·‖W_dec rows‖ and decode divides
 * the acts by the norms again.
 * @module
 */

import type { SaeArchitectureImpl } from "../unit.ts";
import { ew, linear, rowNorms, topkActs } from "../../_ops.ts";
import { SaeError } from "../../errors.ts";
import { affineEncode, baseShapes } from "../shared.ts";

/** The TopK SAE's GPU inference. */
export const topkInference: SaeArchitectureImpl = {
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
