/**
 * SAE inference (`SAE.encode`, `decode`, `forward`: the `sae/kernels` activations and
 * normalisations over the shared matmul and top-k) against `sae/reference` at d_in 128,
 * d_sae 2048, 128 tokens, for every architecture the GPU SAE implements (TopK with k 64 and 200);
 * and the training-step cases of `train_step_cases.ts` as checks of family `train_step` (the
 * `sae/training/kernels`: selection, sparse decode, sparse backward, dense activations, row and
 * latent kernels).
 * @module
 */

import { forwardRef } from "../../sae/reference/mod.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { randomParams } from "../sae/_sae_helpers.ts";
import { createSAEConfig } from "../../sae/config.ts";
import { SAE } from "../../sae/sae.ts";
import { close, type RealisticCheck, uniform } from "./_check.ts";
import { runTrainStepCase, TRAIN_STEP_CASES } from "./train_step_cases.ts";

const D_IN = 128, D_SAE = 2048, TOKENS = 128;

const ARCHS: { name: string; fields: Record<string, unknown> }[] = [
  { name: "standard", fields: { architecture: "standard" } },
  {
    name: "standard, layer_norm",
    fields: { architecture: "standard", normalizeActivations: "layer_norm" },
  },
  { name: "gated", fields: { architecture: "gated" } },
  { name: "jumprelu", fields: { architecture: "jumprelu" } },
  { name: "topk k 64", fields: { architecture: "topk", k: 64 } },
  {
    name: "topk k 200, decoder-norm rescale",
    fields: { architecture: "topk", k: 200, rescaleActsByDecoderNorm: true },
  },
  { name: "transcoder", fields: { architecture: "transcoder", dOut: 96, applyBDecToInput: false } },
  {
    name: "skip_transcoder",
    fields: { architecture: "skip_transcoder", dOut: 96, applyBDecToInput: false },
  },
  {
    name: "jumprelu_transcoder",
    fields: { architecture: "jumprelu_transcoder", dOut: 96, applyBDecToInput: false },
  },
];

function inferenceCheck(a: { name: string; fields: Record<string, unknown> }): RealisticCheck {
  return {
    name: `sae_inference: ${a.name}, ${TOKENS}x${D_IN}x${D_SAE}`,
    family: "sae_inference",
    run: async (gpu) => {
      const cfg = createSAEConfig({ dIn: D_IN, dSae: D_SAE, ...a.fields } as never);
      const params = randomParams(cfg, 7);
      // W_enc ~ N(0, 0.6²/d_in): O(1) pre-activations as at a trained SAE's scale.
      const s = 1 / Math.sqrt(D_IN);
      for (const k of ["W_enc", "W_dec"]) params[k] = params[k].map((v) => v * s);
      const sae = await SAE.fromParams(cfg, params, { gpu });
      const x = uniform(TOKENS * D_IN, 9, -2, 2);
      try {
        using xt = Tensor.from(x, [TOKENS, D_IN], { gpu });
        const out = sae.forwardWithActivations(xt);
        const [y, f] = await Promise.all([out.output.toArray(), out.featureActs.toArray()]);
        out.output.dispose();
        out.featureActs.dispose();
        const ref = forwardRef(sae.cfg, params, x, TOKENS);
        return {
          feature_acts: close(f, ref.featureActs, 1e-4, 1e-4, "featureActs"),
          output: close(y, ref.output, 1e-4, 1e-4, "output"),
        };
      } finally {
        sae.dispose();
      }
    },
  };
}

/** SAE inference checks of every implemented architecture. */
export const SAE_INFERENCE_CHECKS: RealisticCheck[] = ARCHS.map(inferenceCheck);

/** The training-step cases as checks. */
export const TRAIN_STEP_CHECKS: RealisticCheck[] = TRAIN_STEP_CASES.map((c) => ({
  name: `train_step: ${c.architecture}: ${c.name}`,
  family: "train_step",
  run: async (gpu) => {
    const { errors, l0 } = await runTrainStepCase(gpu, c);
    return { ...errors, l0 };
  },
}));
