/**
 * The language-model kernels (`model/gpu/kernels`: embedding, LN/RMS norms, linear epilogues,
 * rotary, fused and hooked attention, pointwise, the per-token loss) through the GPU forward of
 * two random 2-layer models at d_model 256 with 4 heads of 64, on 2 × 128 tokens: a GPT-2-like
 * one (LN, learned positions, gelu_new) and a Llama-like one (RMS, rotary, gated SiLU MLP,
 * grouped-query attention with 2 k/v heads). Logits of the fused path, every cached hook of the
 * hooked path and the per-token loss against `referenceForward` / `lmCrossEntropyLoss`
 * (|Δ| ≤ 2e-5 + 1e-4·|ref|, −∞ exactly).
 * @module
 */

import {
  defineModelConfig,
  expectedParamShapes,
  lmCrossEntropyLoss,
  type ModelConfig,
  referenceForward,
} from "../../model/mod.ts";
import { gpuForward, GpuModel, uploadTokens } from "../../model/gpu/transformer.ts";
import { disposeCache, GpuHookContext } from "../../model/hooks/gpu.ts";
import { lmLossPerToken } from "../../model/gpu/kernels/loss.ts";
import type { ParamMap } from "../../model/params.ts";
import { worstError } from "../model/gpu/_helpers.ts";
import { assertEquals } from "../assert.ts";
import { type RealisticCheck, uniform } from "./_check.ts";

const BATCH = 2, CONTEXT = 128;

/** Random TL parameters: norm weights ≈ 1, embeddings ±1, matrices ±√(3/fan-in)·1.5. */
function randomParams(cfg: ModelConfig, seed: number): ParamMap {
  const params: ParamMap = new Map();
  let s = seed;
  for (const [name, shape] of expectedParamShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/ln\w*\.w$/.test(name)) data = uniform(size, s++, 0.8, 1.2);
    else if (/\.b(_\w+)?$/.test(name)) data = uniform(size, s++, -0.05, 0.05);
    else if (/W_E|W_pos/.test(name)) data = uniform(size, s++, -1, 1);
    else {
      const fanIn = shape.length === 3
        ? (name.endsWith("W_O") ? shape[0] * shape[1] : shape[1])
        : shape[0];
      const a = 1.5 * Math.sqrt(3 / fanIn);
      data = uniform(size, s++, -a, a);
    }
    params.set(name, { data, shape });
  }
  return params;
}

function tokens(vocab: number, seed: number): number[][] {
  const u = uniform(BATCH * CONTEXT, seed, 0, 1);
  return Array.from(
    { length: BATCH },
    (_, b) => Array.from({ length: CONTEXT }, (_, p) => Math.floor(u[b * CONTEXT + p] * vocab)),
  );
}

function check(label: string, got: Float32Array, want: ArrayLike<number>): number {
  const err = worstError(got, want);
  if (err > 0) throw new Error(`${label}: differs from the reference (excess ${err})`);
  return err;
}

function lmCheck(name: string, cfg: ModelConfig): RealisticCheck {
  return {
    name:
      `lm_forward: ${name}, d_model ${cfg.dModel}, ${cfg.nHeads} heads, ${BATCH}x${CONTEXT} tokens`,
    family: "lm_forward",
    run: async (gpu) => {
      const params = randomParams(cfg, 3);
      const toks = tokens(cfg.dVocab, 5);
      const ref = referenceForward(cfg, params, toks, { namesFilter: () => true });
      const model = new GpuModel(gpu, cfg, params);
      try {
        using tok = uploadTokens(gpu, cfg, toks);
        const fused = await gpuForward(model, tok);
        const logits = fused.logits!;
        const loss = lmLossPerToken(logits, tok);
        const [lg, ls] = await Promise.all([logits.toArray(), loss.toArray()]);
        logits.dispose();
        loss.dispose();
        const err: Record<string, number> = {};
        err.logits = check("fused logits", lg as Float32Array, ref.logits!.data);
        const wantLoss = lmCrossEntropyLoss(ref.logits!, toks, true);
        err.loss = check("per-token loss", ls as Float32Array, wantLoss.data);
        const ctx = new GpuHookContext({ namesFilter: () => true });
        const hooked = await gpuForward(model, tok, { ctx });
        try {
          assertEquals([...ctx.cache.keys()], [...ref.cache.keys()], "hook names");
          let worst = 0;
          for (const [hook, t] of ctx.cache) {
            const v = await t.toArray() as Float32Array;
            worst = Math.max(worst, check(hook, v, ref.cache.get(hook)!.data));
          }
          err.hooks = worst;
          err.hooked_logits = check(
            "hooked logits",
            await hooked.logits!.toArray() as Float32Array,
            ref.logits!.data,
          );
        } finally {
          hooked.logits?.dispose();
          disposeCache(ctx.cache);
        }
        return err;
      } finally {
        model.dispose();
      }
    },
  };
}

const common = { nLayers: 2, dModel: 256, nHeads: 4, dVocab: 2048, nCtx: 256 };

/** The LM forward checks. */
export const MODEL_CHECKS: RealisticCheck[] = [
  lmCheck("GPT-2-like (LN, learned positions, gelu_new)", {
    ...defineModelConfig({ ...common, actFn: "gelu_new" }),
  }),
  lmCheck(
    "Llama-like (RMS, rotary, gated SiLU, 2 k/v heads)",
    defineModelConfig({
      ...common,
      actFn: "silu",
      normalizationType: "RMS",
      positionalEmbeddingType: "rotary",
      gatedMlp: true,
      dMlp: 688,
      nKeyValueHeads: 2,
    } as never),
  ),
];
