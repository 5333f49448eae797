/**
 * GPT-Neo (`gpt_neo`, `GPTNeoForCausalLM`): GPT-2's layout with separate nn.Linear q/k/v
 * without biases, no 1/√d score scale, and local (sliding-window) attention on the layers
 * `attention_types` names.
 * @module
 */

import { type AttnType, defineModelConfig, type ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";
import type { HfConfigReader, ModelFamily } from "./family.ts";
import {
  gatherInProj,
  type HfLookup,
  outProjFromLinear,
  posRows,
  put,
  transpose,
  trimPos,
  unembedFrom,
  zerosOf,
} from "./hf_weights.ts";

function config(r: HfConfigReader): ModelConfig {
  const hf = r.json;
  const d = r.num("hidden_size"), h = r.num("num_heads"), nLayers = r.num("num_layers");
  const attnTypes = expandNeoAttentionTypes(hf.attention_types, nLayers);
  return defineModelConfig({
    ...r.common,
    nLayers,
    dModel: d,
    nHeads: h,
    dHead: d / h,
    dMlp: hf.intermediate_size ?? 4 * d,
    dVocab: r.num("vocab_size"),
    nCtx: r.nCtx(r.num("max_position_embeddings")),
    eps: r.num("layer_norm_epsilon", 1e-5),
    actFn: r.actFn(hf.activation_function ?? "gelu_new"),
    useAttnScale: false,
    attnScale: 1,
    useLocalAttn: true,
    windowSize: r.num("window_size", 256),
    attnTypes,
    normalizationType: "LN",
    tieWordEmbeddings: hf.tie_word_embeddings ?? true,
  });
}

/** HF's `[[types, repeats], …]` → one type per layer. */
function expandNeoAttentionTypes(spec: unknown, nLayers: number): AttnType[] {
  const raw = spec ?? [[["global", "local"], nLayers / 2]];
  const out: AttnType[] = [];
  if (!Array.isArray(raw)) throw new ModelError(`config.json (gpt_neo): bad attention_types`);
  for (const item of raw) {
    const [types, reps] = item as [AttnType[], number];
    for (let r = 0; r < reps; r++) out.push(...types);
  }
  if (out.length !== nLayers) {
    throw new ModelError(
      `config.json (gpt_neo): attention_types expand to ${out.length} layers, num_layers is ${nLayers}`,
    );
  }
  return out;
}

function convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("wte.weight", [cfg.dVocab, D]));
  put(p, "pos_embed.W_pos", trimPos(hf.get("wpe.weight", [posRows(hf, "wpe.weight"), D]), cfg));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `h.${l}.`, b = `blocks.${l}.`, a = h + "attn.attention.";
    put(p, b + "ln1.w", hf.get(h + "ln_1.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "ln_1.bias", [D]));
    for (const [x, name] of [["Q", "q_proj"], ["K", "k_proj"], ["V", "v_proj"]]) {
      const w = hf.get(a + `${name}.weight`, [H * d, D]);
      put(p, b + `attn.W_${x}`, gatherInProj(w, H, D, d, (hh, k) => hh * d + k, "outIn"));
      put(p, b + `attn.b_${x}`, zerosOf([H, d]));
    }
    put(p, b + "attn.W_O", outProjFromLinear(hf.get(a + "out_proj.weight", [D, H * d]), H, d));
    put(p, b + "attn.b_O", hf.get(a + "out_proj.bias", [D]));
    put(p, b + "ln2.w", hf.get(h + "ln_2.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "ln_2.bias", [D]));
    put(p, b + "mlp.W_in", transpose(hf.get(h + "mlp.c_fc.weight", [M, D])));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.c_fc.bias", [M]));
    put(p, b + "mlp.W_out", transpose(hf.get(h + "mlp.c_proj.weight", [D, M])));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.c_proj.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("ln_f.weight", [D]));
  put(p, "ln_final.b", hf.get("ln_f.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "wte.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** The GPT-Neo family. */
export const GPT_NEO: ModelFamily = {
  name: "neo",
  modelTypes: { gpt_neo: "GPTNeoForCausalLM" },
  weightPrefix: "transformer.",
  config,
  convertWeights,
};
