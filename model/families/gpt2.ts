/**
 * GPT-2 (`gpt2`, `GPT2LMHeadModel`; spec transformer_lens.md §3): learned positions, LayerNorm,
 * fused Conv1D q/k/v (`[in, out]` layout), `scale_attn_by_inverse_layer_idx` for the
 * stanford-crfm models, tied unembedding by default.
 * @module
 */

import { defineModelConfig, type ModelConfig } from "../config.ts";
import type { ParamMap } from "../params.ts";
import type { HfConfigReader, ModelFamily } from "./family.ts";
import {
  gatherBias,
  gatherInProj,
  type HfLookup,
  posRows,
  put,
  trimPos,
  unembedFrom,
  zerosOf,
} from "./hf_weights.ts";

function config(r: HfConfigReader): ModelConfig {
  const hf = r.json;
  const d = r.num("n_embd"), h = r.num("n_head");
  return defineModelConfig({
    ...r.common,
    nLayers: r.num("n_layer"),
    dModel: d,
    nHeads: h,
    dHead: d / h,
    dMlp: hf.n_inner ?? 4 * d,
    dVocab: r.num("vocab_size"),
    nCtx: r.nCtx(hf.n_ctx ?? r.num("n_positions")),
    eps: r.num("layer_norm_epsilon", 1e-5),
    actFn: r.actFn(hf.activation_function ?? "gelu_new"),
    scaleAttnByInverseLayerIdx: hf.scale_attn_by_inverse_layer_idx ?? false,
    normalizationType: "LN",
    tieWordEmbeddings: hf.tie_word_embeddings ?? true,
  });
}

function convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("wte.weight", [cfg.dVocab, D]));
  put(p, "pos_embed.W_pos", trimPos(hf.get("wpe.weight", [posRows(hf, "wpe.weight"), D]), cfg));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `h.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "ln_1.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "ln_1.bias", [D]));
    const qkv = hf.get(h + "attn.c_attn.weight", [D, 3 * D]);
    const qkvB = hf.get(h + "attn.c_attn.bias", [3 * D]);
    ["Q", "K", "V"].forEach((x, i) => {
      const col = (hh: number, k: number) => i * D + hh * d + k;
      put(p, b + `attn.W_${x}`, gatherInProj(qkv, H, D, d, col, "inOut"));
      put(p, b + `attn.b_${x}`, gatherBias(qkvB, H, d, col));
    });
    put(p, b + "attn.W_O", hf.get(h + "attn.c_proj.weight", [H * d, D]), [H, d, D]);
    put(p, b + "attn.b_O", hf.get(h + "attn.c_proj.bias", [D]));
    put(p, b + "ln2.w", hf.get(h + "ln_2.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "ln_2.bias", [D]));
    put(p, b + "mlp.W_in", hf.get(h + "mlp.c_fc.weight", [D, M]));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.c_fc.bias", [M]));
    put(p, b + "mlp.W_out", hf.get(h + "mlp.c_proj.weight", [M, D]));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.c_proj.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("ln_f.weight", [D]));
  put(p, "ln_final.b", hf.get("ln_f.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "wte.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** The GPT-2 family. */
export const GPT2: ModelFamily = {
  name: "gpt2",
  modelTypes: { gpt2: "GPT2LMHeadModel" },
  weightPrefix: "transformer.",
  config,
  convertWeights,
};
