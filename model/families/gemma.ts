/**
 * Gemma 1 and 2 (`gemma`, `gemma2`; spec transformer_lens.md §3.7): Llama's attention and gated
 * MLP ({@link llamaAttnAndMlp}) with a √D-scaled embedding, (1 + w) RMSNorms, the tanh GELU, and
 * for Gemma 2 sandwich norms, score and logit soft caps, `query_pre_attn_scalar` and
 * alternating local/global layers.
 * @module
 */

import { defineModelConfig, type ModelConfig } from "../config.ts";
import type { HostTensor } from "../../util/host_tensor.ts";
import type { ParamMap } from "../params.ts";
import type { HfConfigReader, ModelFamily } from "./family.ts";
import { type HfLookup, put, unembedFrom, zerosOf } from "./hf_weights.ts";
import { llamaAttnAndMlp } from "./llama.ts";

function config(r: HfConfigReader): ModelConfig {
  const hf = r.json;
  const d = r.num("hidden_size"), h = r.num("num_attention_heads");
  const dHead = r.num("head_dim", d / h);
  const nLayers = r.num("num_hidden_layers");
  const g2 = r.modelType === "gemma2";
  const base = {
    ...r.common,
    nLayers,
    dModel: d,
    nHeads: h,
    dHead,
    nKeyValueHeads: r.num("num_key_value_heads", h),
    dMlp: r.num("intermediate_size"),
    dVocab: r.num("vocab_size"),
    nCtx: r.nCtx(r.num("max_position_embeddings")),
    eps: r.num("rms_norm_eps", 1e-6),
    normalizationType: "RMS" as const,
    finalRms: true,
    gatedMlp: true,
    positionalEmbeddingType: "rotary" as const,
    rotaryDim: dHead,
    rotaryBase: r.ropeTheta("rope_theta"),
    rotaryAdjacentPairs: false,
    useNormalizedEmbedding: true,
    normWeightPlusOne: true,
    tieWordEmbeddings: hf.tie_word_embeddings ?? true,
  };
  // Gemma-1 runs the tanh GELU whatever its config says; TL names it gelu_new.
  if (!g2) return defineModelConfig({ ...base, actFn: "gelu_new" });
  const window = r.num("sliding_window", 4096);
  return defineModelConfig({
    ...base,
    actFn: r.actFn(hf.hidden_activation ?? hf.hidden_act ?? "gelu_pytorch_tanh"),
    attnScale: Math.sqrt(r.num("query_pre_attn_scalar", dHead)),
    attnScoresSoftCap: hf.attn_logit_softcapping ?? -1,
    outputLogitsSoftCap: hf.final_logit_softcapping ?? -1,
    useNormalizationBeforeAndAfter: true,
    useLocalAttn: true,
    windowSize: window,
    // TL's legacy order: global on even layers, local on odd (HF is the reverse; TL issue #778).
    attnTypes: Array.from({ length: nLayers }, (_, i) => (i % 2 === 0 ? "global" : "local")),
  });
}

/** Gemma's HF norms multiply by (1 + w); TL stores 1 + w, computed in float32. */
function onePlus(t: HostTensor): HostTensor {
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = t.data[i] + 1;
  return { data: out, shape: [...t.shape] };
}

/** Pre-scaled embedding, (1 + w) norms, Gemma-2 sandwich norms. */
function convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const D = cfg.dModel;
  const p: ParamMap = new Map();
  const emb = hf.get("embed_tokens.weight", [cfg.dVocab, D]);
  // HF multiplies by a model-dtype tensor √D; in float32 that is fround(√D).
  const scale = Math.fround(Math.sqrt(D));
  const W_E = new Float32Array(emb.data.length);
  for (let i = 0; i < W_E.length; i++) W_E[i] = emb.data[i] * scale;
  put(p, "embed.W_E", { data: W_E, shape: [cfg.dVocab, D] });
  const g2 = cfg.useNormalizationBeforeAndAfter;
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `layers.${l}.`, b = `blocks.${l}.`;
    const norm = (name: string) => onePlus(hf.get(h + `${name}.weight`, [D]));
    put(p, b + "ln1.w", norm("input_layernorm"));
    llamaAttnAndMlp(cfg, hf, p, l);
    if (g2) {
      // Gemma-2: post_attention_layernorm acts on attn_out; pre_feedforward is the MLP's ln2.
      put(p, b + "ln1_post.w", norm("post_attention_layernorm"));
      put(p, b + "ln2.w", norm("pre_feedforward_layernorm"));
      put(p, b + "ln2_post.w", norm("post_feedforward_layernorm"));
    } else {
      put(p, b + "ln2.w", norm("post_attention_layernorm"));
    }
  }
  put(p, "ln_final.w", onePlus(hf.get("norm.weight", [D])));
  // W_U is the unscaled (tied) embedding.
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "embed_tokens.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** The Gemma family: Gemma 1 and Gemma 2. */
export const GEMMA: ModelFamily = {
  name: "gemma",
  modelTypes: { gemma: "GemmaForCausalLM", gemma2: "Gemma2ForCausalLM" },
  weightPrefix: "model.",
  config,
  convertWeights,
};
