/**
 * The Llama family (spec transformer_lens.md §3.5-3.6): Llama 2/3 (with Llama-3.1
 * "NTK-by-parts" rope scaling), Mistral (sliding window on every layer), Qwen2 (q/k/v biases)
 * and Qwen3 (per-head q/k RMSNorm). RMSNorm, gated SiLU MLP, rotary on the whole head,
 * grouped-query attention, HF `model.` keys. What sets the four apart is one row of
 * {@link VARIANTS}. Gemma reuses {@link llamaAttnAndMlp}.
 * @module
 */

import {
  type AttnType,
  defineModelConfig,
  kvHeadCount,
  kvPrefix,
  type ModelConfig,
  type NtkByPartsRope,
} from "../config.ts";
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

/** What one model type of the family changes. */
interface Variant {
  /** HF LM class. */
  architecture: string;
  /** TL's grouped k/v names (`_W_K`) even when Hkv = H (Qwen2); else only when Hkv < H. */
  alwaysGrouped?: boolean;
  /** `sliding_window` applies to every layer (Mistral). */
  slidingWindow?: boolean;
  /** `use_sliding_window: true` is refused (Qwen2: not implemented). */
  refuseSlidingWindow?: boolean;
  /** Per-head q/k RMSNorm (Qwen3). */
  qkNorm?: boolean;
  /** TL `default_prepend_bos` is false (Qwen). */
  noBos?: boolean;
}

const VARIANTS: Record<string, Variant> = {
  llama: { architecture: "LlamaForCausalLM" },
  mistral: { architecture: "MistralForCausalLM", slidingWindow: true },
  qwen2: {
    architecture: "Qwen2ForCausalLM",
    alwaysGrouped: true,
    refuseSlidingWindow: true,
    noBos: true,
  },
  qwen3: { architecture: "Qwen3ForCausalLM", qkNorm: true, noBos: true },
};

function config(r: HfConfigReader): ModelConfig {
  const hf = r.json, v = VARIANTS[r.modelType];
  const d = r.num("hidden_size"), h = r.num("num_attention_heads");
  const dHead = hf.head_dim ?? d / h;
  const hkv = r.num("num_key_value_heads", h);
  let ntk: NtkByPartsRope | null = null;
  const scaling = hf.rope_scaling ?? null;
  if (scaling) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== "llama3") r.unsupported("rope_scaling", scaling);
    ntk = {
      factor: scaling.factor,
      lowFreqFactor: scaling.low_freq_factor,
      highFreqFactor: scaling.high_freq_factor,
      originalCtxLen: scaling.original_max_position_embeddings,
    };
  }
  if (v.refuseSlidingWindow && hf.use_sliding_window) {
    r.unsupported("use_sliding_window", true);
  }
  const window = v.slidingWindow ? hf.sliding_window ?? null : null;
  const nLayers = r.num("num_hidden_layers");
  return defineModelConfig({
    ...r.common,
    nLayers,
    dModel: d,
    nHeads: h,
    dHead,
    nKeyValueHeads: v.alwaysGrouped || hkv !== h ? hkv : null,
    dMlp: r.num("intermediate_size"),
    dVocab: r.num("vocab_size"),
    nCtx: r.nCtx(r.num("max_position_embeddings")),
    eps: r.num("rms_norm_eps", 1e-6),
    actFn: r.actFn(hf.hidden_act ?? "silu"),
    normalizationType: "RMS",
    finalRms: true,
    gatedMlp: true,
    positionalEmbeddingType: "rotary",
    rotaryDim: dHead,
    rotaryBase: r.ropeTheta("rope_theta"),
    rotaryAdjacentPairs: false,
    ntkByPartsRope: ntk,
    useQkNorm: v.qkNorm ?? false,
    useLocalAttn: window !== null,
    windowSize: window,
    attnTypes: window !== null ? Array<AttnType>(nLayers).fill("local") : null,
    defaultPrependBos: !v.noBos,
    tieWordEmbeddings: hf.tie_word_embeddings ?? false,
  });
}

/**
 * One layer's attention (q/k/v/o with optional biases, GQA names, Qwen3 q/k norms) and gated
 * MLP (`gate_proj`, `up_proj`, `down_proj`) under HF's `layers.L.` keys; no norms.
 */
export function llamaAttnAndMlp(cfg: ModelConfig, hf: HfLookup, p: ParamMap, l: number): void {
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

function convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const D = cfg.dModel;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("embed_tokens.weight", [cfg.dVocab, D]));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `layers.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "input_layernorm.weight", [D]));
    llamaAttnAndMlp(cfg, hf, p, l);
    put(p, b + "ln2.w", hf.get(h + "post_attention_layernorm.weight", [D]));
  }
  put(p, "ln_final.w", hf.get("norm.weight", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "embed_tokens.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** The Llama family: Llama, Mistral, Qwen2, Qwen3. */
export const LLAMA: ModelFamily = {
  name: "llama",
  modelTypes: Object.fromEntries(
    Object.entries(VARIANTS).map(([type, v]) => [type, v.architecture]),
  ),
  weightPrefix: "model.",
  config,
  convertWeights,
};
