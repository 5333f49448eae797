/**
 * Gated SAE inference on the GPU (spec §3.2): one product x̃·W_enc serves the gate
 * (+ b_gate) and the magnitude path (·exp(r_mag) + b_mag); f = 1[π_gate > 0]·ReLU(π_mag).
 * @module
 */

import type { SaeArchitectureImpl } from "../unit.ts";
import { gatedActs, gatedMagnitude } from "../../kernels/activations.ts";
import { linear } from "../../_ops.ts";

/** The gated SAE's GPU inference. */
export const gatedInference: SaeArchitectureImpl = {
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
