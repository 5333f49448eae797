/**
 * HF → TL weight mapping for the Llama-style families (Llama 2/3, Mistral, Qwen2, Qwen3) and
 * Gemma 1/2 (spec transformer_lens.md §3.5-3.7).
 * @module
 */

import { kvHeadCount, kvPrefix, type ModelConfig } from "./config.ts";
import type { HostTensor, ParamMap } from "./tensor.ts";
import {
  gatherBias,
  gatherInProj,
  type HfLookup,
  outProjFromLinear,
  put,
  transpose,
  unembedFrom,
  zerosOf,
} from "./weights_util.ts";

/** Shared attention + gated-MLP mapping of one layer (no norms). */
function attnAndMlp(cfg: ModelConfig, hf: HfLookup, p: ParamMap, l: number): void {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  const Hkv = kvHeadCount(cfg), g = kvPrefix(cfg);
  const h = `layers.${l}.`, b = `blocks.${l}.`, a = h + "self_attn.";
  const row = (hh: number, k: number) => hh * d + k;
  const proj = (name: string, heads: number) =>
    gatherInProj(hf.get(a + `${name}.weight`, [heads * d, D]), heads, D, d, row, "outIn");
  const bias = (name: string, heads: number) => {
    const t = hf.maybe(a + `${name}.bias`, [heads * d]);
    return t ? gatherBias(t, heads, d, row) : zerosOf([heads, d]);
  };
  put(p, b + "attn.W_Q", proj("q_proj", H));
  put(p, b + `attn.${g}W_K`, proj("k_proj", Hkv));
  put(p, b + `attn.${g}W_V`, proj("v_proj", Hkv));
  put(p, b + "attn.b_Q", bias("q_proj", H));
  put(p, b + `attn.${g}b_K`, bias("k_proj", Hkv));
  put(p, b + `attn.${g}b_V`, bias("v_proj", Hkv));
  put(p, b + "attn.W_O", outProjFromLinear(hf.get(a + "o_proj.weight", [D, H * d]), H, d));
  put(p, b + "attn.b_O", hf.maybe(a + "o_proj.bias", [D]) ?? zerosOf([D]));
  if (cfg.useQkNorm) {
    put(p, b + "attn.q_norm.w", hf.get(a + "q_norm.weight", [d]));
    put(p, b + "attn.k_norm.w", hf.get(a + "k_norm.weight", [d]));
  }
  const m = h + "mlp.";
  put(p, b + "mlp.W_in", transpose(hf.get(m + "up_proj.weight", [M, D])));
  put(p, b + "mlp.W_gate", transpose(hf.get(m + "gate_proj.weight", [M, D])));
  put(p, b + "mlp.b_in", hf.maybe(m + "up_proj.bias", [M]) ?? zerosOf([M]));
  put(p, b + "mlp.W_out", transpose(hf.get(m + "down_proj.weight", [D, M])));
  put(p, b + "mlp.b_out", hf.maybe(m + "down_proj.bias", [D]) ?? zerosOf([D]));
}

/** Llama / Mistral / Qwen2 / Qwen3 (`model.` prefix, RMSNorm, gated MLP, rotary). */
export function convertLlamaWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const D = cfg.dModel;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("embed_tokens.weight", [cfg.dVocab, D]));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `layers.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "input_layernorm.weight", [D]));
    attnAndMlp(cfg, hf, p, l);
    put(p, b + "ln2.w", hf.get(h + "post_attention_layernorm.weight", [D]));
  }
  put(p, "ln_final.w", hf.get("norm.weight", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "embed_tokens.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** Gemma's HF norms multiply by (1 + w); TL stores 1 + w, computed in float32. */
function onePlus(t: HostTensor): HostTensor {
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = t.data[i] + 1;
  return { data: out, shape: [...t.shape] };
}

/** Gemma 1 and Gemma 2: pre-scaled embedding, (1 + w) norms, Gemma-2 sandwich norms. */
export function convertGemmaWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
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
    attnAndMlp(cfg, hf, p, l);
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
