/**
 * Matching Pursuit SAE inference on the GPU (SAELens ≥ 6.26 `matching_pursuit`): the tied
 * encoder runs `max_iterations` (default d_in) pursuit iterations, each one scores GEMM
 * r·W_decᵀ and one per-token step (`pursuitStep`); tokens that stop early (support no longer
 * growing, or ‖r‖ < `residual_threshold`) leave their later iterations as no-ops, so the cost is
 * that of `max_iterations` iterations whatever the data (SAELens stops when every token is done,
 * which needs a read-back per iteration). SAELens fires neither acts hook in this encode;
 * saeflow fires `hook_sae_acts_post` so that latent edits and the error term work as for every
 * other SAE. Decode f·W_dec (+ b_dec when `apply_b_dec_to_input`).
 * @module
 */

import { matmul } from "../../../gpu/kernels/matmul/mod.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import type { SAEConfig } from "../../config_types.ts";
import { linear } from "../../_ops.ts";
import { SaeError } from "../../errors.ts";
import type { SaeArchitectureImpl } from "../unit.ts";
import { pursuitStep } from "./kernels.ts";
import { pursuitSettings } from "./reference.ts";

/** The settings of `cfg` (max_iterations null → d_in). */
export function settingsOf(cfg: SAEConfig) {
  return pursuitSettings(cfg as unknown as Parameters<typeof pursuitSettings>[0]);
}

/** The Matching Pursuit SAE's GPU inference. */
export const matchingPursuitInference: SaeArchitectureImpl = {
  paramShapes: (cfg) => ({ W_dec: [cfg.dSae, cfg.dIn], b_dec: [cfg.dIn] }),
  encode(ctx) {
    const { cfg, params: p } = ctx, gpu = p.W_dec.gpu;
    const n = ctx.x.shape[0], m = cfg.dSae, s = settingsOf(cfg);
    if (n * m * 4 > gpu.maxBindingSize) {
      throw new SaeError(
        `matching_pursuit encode: ${n} rows × d_sae ${m} exceed one storage binding ` +
          `(${gpu.maxBindingSize} bytes); encode fewer rows at a time`,
      );
    }
    const o = { gpu };
    const residual = ctx.x.clone(), acts = Tensor.zeros([n, m], "f32", o);
    const done = Tensor.zeros([n], "u32", o), scores = Tensor.empty([n, m], "f32", o);
    const scratch = {
      idx: Tensor.zeros([1], "u32", o),
      value: Tensor.zeros([1], "f32", o),
      stats: Tensor.zeros([1], "f32", o),
    };
    for (let t = 0; t < s.iterations; t++) {
      matmul(residual, p.W_dec, { transB: true, out: scores });
      pursuitStep(gpu, {
        scores,
        wDec: p.W_dec,
        residual,
        acts,
        done,
        t,
        history: { idx: scratch.idx, value: scratch.value, stride: 0 },
        rowStats: { tensor: scratch.stats, col: 0, rOff: 0, B: 0 },
        record: false,
        residualThreshold: s.threshold,
        stopOnDuplicateSupport: s.stopOnDuplicate,
      });
    }
    for (const t of [residual, done, scores, scratch.idx, scratch.value, scratch.stats]) {
      t.dispose();
    }
    return ctx.hook("hook_sae_acts_post", acts);
  },
  decode: (cfg, p, f) => linear(f, p.W_dec, cfg.applyBDecToInput ? p.b_dec : null),
  foldWDecNorm() {
    throw new SaeError(
      "foldWDecNorm: not safe for a matching_pursuit SAE (folding the decoder norms may change " +
        "the activations)",
    );
  },
};
