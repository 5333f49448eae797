/**
 * GPT-NeoX / Pythia (`gpt_neox`, `GPTNeoXForCausalLM`): parallel attention and MLP, partial
 * rotary (`rotary_pct`), fused q/k/v interleaved per head, an untied `embed_out` head.
 * @module
 */

import { defineModelConfig, kvHeadCount, type ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";
import type { HfConfigReader, ModelFamily } from "./family.ts";
import {
  gatherBias,
  gatherInProj,
  type HfLookup,
  outProjFromLinear,
  put,
  transpose,
  unembedFrom,
  zerosOf,
} from "./hf_weights.ts";

function config(r: HfConfigReader): ModelConfig {
  const hf = r.json;
  const d = r.num("hidden_size"), h = r.num("num_attention_heads"), dHead = d / h;
  const pct = hf.rotary_pct ?? hf.partial_rotary_factor ?? 0.25;
  if (hf.rope_scaling) r.unsupported("rope_scaling", hf.rope_scaling);
  return defineModelConfig({
    ...r.common,
    nLayers: r.num("num_hidden_layers"),
    dModel: d,
    nHeads: h,
    dHead,
    dMlp: r.num("intermediate_size"),
    dVocab: r.num("vocab_size"),
    nCtx: r.nCtx(r.num("max_position_embeddings")),
    eps: r.num("layer_norm_eps", 1e-5),
    actFn: r.actFn(hf.hidden_act ?? "gelu"),
    // TL always uses the parallel form; HF honours use_parallel_residual (true for Pythia).
    parallelAttnMlp: hf.use_parallel_residual ?? true,
    positionalEmbeddingType: "rotary",
    rotaryDim: Math.round(pct * dHead),
    // TL keeps the default 10000; HF reads rotary_emb_base (10000 for every Pythia).
    rotaryBase: r.ropeTheta("rotary_emb_base"),
    rotaryAdjacentPairs: false,
    normalizationType: "LN",
    tieWordEmbeddings: hf.tie_word_embeddings ?? false,
  });
}

function convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  if (kvHeadCount(cfg) !== H) throw new ModelError("GPT-NeoX has no grouped-query attention");
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("embed_in.weight", [cfg.dVocab, D]));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `layers.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "input_layernorm.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "input_layernorm.bias", [D]));
    // Fused QKV rows are ordered (head, qkv, d_head): interleaved per head, unlike GPT-2.
    const qkv = hf.get(h + "attention.query_key_value.weight", [3 * D, D]);
    const qkvB = hf.maybe(h + "attention.query_key_value.bias", [3 * D]);
    ["Q", "K", "V"].forEach((x, i) => {
      const row = (hh: number, k: number) => hh * 3 * d + i * d + k;
      put(p, b + `attn.W_${x}`, gatherInProj(qkv, H, D, d, row, "outIn"));
      put(p, b + `attn.b_${x}`, qkvB ? gatherBias(qkvB, H, d, row) : zerosOf([H, d]));
    });
    const dense = hf.get(h + "attention.dense.weight", [D, H * d]);
    put(p, b + "attn.W_O", outProjFromLinear(dense, H, d));
    put(p, b + "attn.b_O", hf.maybe(h + "attention.dense.bias", [D]) ?? zerosOf([D]));
    put(p, b + "ln2.w", hf.get(h + "post_attention_layernorm.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "post_attention_layernorm.bias", [D]));
    put(p, b + "mlp.W_in", transpose(hf.get(h + "mlp.dense_h_to_4h.weight", [M, D])));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.dense_h_to_4h.bias", [M]));
    put(p, b + "mlp.W_out", transpose(hf.get(h + "mlp.dense_4h_to_h.weight", [D, M])));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.dense_4h_to_h.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("final_layer_norm.weight", [D]));
  put(p, "ln_final.b", hf.get("final_layer_norm.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "embed_in.weight", "embed_out.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** The GPT-NeoX family (Pythia). */
export const GPT_NEOX: ModelFamily = {
  name: "neox",
  modelTypes: { gpt_neox: "GPTNeoXForCausalLM" },
  weightPrefix: "gpt_neox.",
  config,
  convertWeights,
};
