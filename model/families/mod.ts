/**
 * Hugging Face `config.json` → {@link ModelConfig}, following TransformerLens's
 * `convert_hf_model_config` per architecture (spec transformer_lens.md §3).
 * @module
 */

import { type ActFn, type AttnType, defineModelConfig, type ModelConfig } from "./config.ts";
import { ModelError } from "./tensor.ts";

/** `model_type` values {@link modelConfigFromHf} accepts, with their HF LM class. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, string>> = {
  gpt2: "GPT2LMHeadModel",
  gpt_neo: "GPTNeoForCausalLM",
  gpt_neox: "GPTNeoXForCausalLM",
  llama: "LlamaForCausalLM",
  mistral: "MistralForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  gemma: "GemmaForCausalLM",
  gemma2: "Gemma2ForCausalLM",
};

/** Options of {@link modelConfigFromHf}. */
export interface HfConfigOptions {
  /** TL `model_name` (e.g. `"gpt2"`, `"gemma-2-2b"`); defaults to `_name_or_path`'s last part. */
  modelName?: string;
  /**
   * Override the context length. TL caps some models (TinyStories 512, Llama-3.1+/Qwen2/Mistral
   * 2048); pass that here to reproduce TL's `n_ctx` and `W_pos` rows exactly.
   */
  nCtx?: number;
}

/** A parsed Hugging Face `config.json` object. */
// deno-lint-ignore no-explicit-any
export type Json = Record<string, any>;

/**
 * Converts a parsed HF `config.json` into a TL-style {@link ModelConfig} (unprocessed: LN/RMS).
 * Throws a {@link ModelError} naming the `model_type`/field for anything unsupported.
 *
 * @example
 * ```ts
 * import { modelConfigFromHf } from "./hf_config.ts";
 * const cfg = modelConfigFromHf({ model_type: "gpt2", n_layer: 2, n_embd: 16, n_head: 4,
 *   vocab_size: 50, n_positions: 32 });
 * if (cfg.dHead !== 4 || cfg.actFn !== "gelu_new") throw new Error("unreachable");
 * ```
 */
export function modelConfigFromHf(hf: Json, opts: HfConfigOptions = {}): ModelConfig {
  const modelType = familyOf(hf);
  const arch = SUPPORTED_MODEL_TYPES[modelType];
  const nameOrPath = typeof hf._name_or_path === "string" ? hf._name_or_path : "";
  const modelName = opts.modelName ?? (nameOrPath.split("/").pop() || modelType);
  const common = { modelName, originalArchitecture: arch };
  const num = (field: string, fallback?: number): number => {
    const v = hf[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ModelError(`config.json (${modelType}): field "${field}" missing or not a number`);
    }
    return v;
  };
  const nCtx = (v: number) => opts.nCtx ?? v;
  switch (modelType) {
    case "gpt2": {
      const d = num("n_embd"), h = num("n_head");
      return defineModelConfig({
        ...common,
        nLayers: num("n_layer"),
        dModel: d,
        nHeads: h,
        dHead: d / h,
        dMlp: hf.n_inner ?? 4 * d,
        dVocab: num("vocab_size"),
        nCtx: nCtx(hf.n_ctx ?? num("n_positions")),
        eps: num("layer_norm_epsilon", 1e-5),
        actFn: actFnOf(hf.activation_function ?? "gelu_new", modelType),
        scaleAttnByInverseLayerIdx: hf.scale_attn_by_inverse_layer_idx ?? false,
        normalizationType: "LN",
        tieWordEmbeddings: hf.tie_word_embeddings ?? true,
      });
    }
    case "gpt_neo": {
      const d = num("hidden_size"), h = num("num_heads"), nLayers = num("num_layers");
      const attnTypes = expandNeoAttentionTypes(hf.attention_types, nLayers);
      return defineModelConfig({
        ...common,
        nLayers,
        dModel: d,
        nHeads: h,
        dHead: d / h,
        dMlp: hf.intermediate_size ?? 4 * d,
        dVocab: num("vocab_size"),
        nCtx: nCtx(num("max_position_embeddings")),
        eps: num("layer_norm_epsilon", 1e-5),
        actFn: actFnOf(hf.activation_function ?? "gelu_new", modelType),
        useAttnScale: false,
        attnScale: 1,
        useLocalAttn: true,
        windowSize: num("window_size", 256),
        attnTypes,
        normalizationType: "LN",
        tieWordEmbeddings: hf.tie_word_embeddings ?? true,
      });
    }
    case "gpt_neox": {
      const d = num("hidden_size"), h = num("num_attention_heads"), dHead = d / h;
      const pct = hf.rotary_pct ?? hf.partial_rotary_factor ?? 0.25;
      if (hf.rope_scaling) unsupported(modelType, "rope_scaling", hf.rope_scaling);
      return defineModelConfig({
        ...common,
        nLayers: num("num_hidden_layers"),
        dModel: d,
        nHeads: h,
        dHead,
        dMlp: num("intermediate_size"),
        dVocab: num("vocab_size"),
        nCtx: nCtx(num("max_position_embeddings")),
        eps: num("layer_norm_eps", 1e-5),
        actFn: actFnOf(hf.hidden_act ?? "gelu", modelType),
        // TL always uses the parallel form; HF honours use_parallel_residual (true for Pythia).
        parallelAttnMlp: hf.use_parallel_residual ?? true,
        positionalEmbeddingType: "rotary",
        rotaryDim: Math.round(pct * dHead),
        // TL keeps the default 10000; HF reads rotary_emb_base (10000 for every Pythia).
        rotaryBase: ropeTheta(hf, "rotary_emb_base"),
        rotaryAdjacentPairs: false,
        normalizationType: "LN",
        tieWordEmbeddings: hf.tie_word_embeddings ?? false,
      });
    }
    case "llama":
    case "mistral":
    case "qwen2":
    case "qwen3":
      return llamaLike(hf, modelType, common, num, nCtx);
    case "gemma":
    case "gemma2":
      return gemmaLike(hf, modelType, common, num, nCtx);
  }
  throw new ModelError(`unreachable model_type ${modelType}`);
}

function llamaLike(
  hf: Json,
  modelType: string,
  common: { modelName: string; originalArchitecture: string },
  num: (f: string, d?: number) => number,
  nCtx: (v: number) => number,
): ModelConfig {
  const d = num("hidden_size"), h = num("num_attention_heads");
  const dHead = hf.head_dim ?? d / h;
  const hkv = num("num_key_value_heads", h);
  // Qwen2/Qwen3 always use TL's grouped naming (_W_K); Llama/Mistral only when Hkv < H.
  const alwaysGrouped = modelType === "qwen2";
  let ntk = null;
  const scaling = hf.rope_scaling ?? null;
  if (scaling) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== "llama3") unsupported(modelType, "rope_scaling", scaling);
    ntk = {
      factor: scaling.factor,
      lowFreqFactor: scaling.low_freq_factor,
      highFreqFactor: scaling.high_freq_factor,
      originalCtxLen: scaling.original_max_position_embeddings,
    };
  }
  if (modelType === "qwen2" && hf.use_sliding_window) {
    unsupported(modelType, "use_sliding_window", true);
  }
  const window = modelType === "mistral" ? hf.sliding_window ?? null : null;
  const nLayers = num("num_hidden_layers");
  return defineModelConfig({
    ...common,
    nLayers,
    dModel: d,
    nHeads: h,
    dHead,
    nKeyValueHeads: alwaysGrouped || hkv !== h ? hkv : null,
    dMlp: num("intermediate_size"),
    dVocab: num("vocab_size"),
    nCtx: nCtx(num("max_position_embeddings")),
    eps: num("rms_norm_eps", 1e-6),
    actFn: actFnOf(hf.hidden_act ?? "silu", modelType),
    normalizationType: "RMS",
    finalRms: true,
    gatedMlp: true,
    positionalEmbeddingType: "rotary",
    rotaryDim: dHead,
    rotaryBase: ropeTheta(hf, "rope_theta"),
    rotaryAdjacentPairs: false,
    ntkByPartsRope: ntk,
    useQkNorm: modelType === "qwen3",
    useLocalAttn: window !== null,
    windowSize: window,
    attnTypes: window !== null ? Array<AttnType>(nLayers).fill("local") : null,
    defaultPrependBos: !modelType.startsWith("qwen"),
    tieWordEmbeddings: hf.tie_word_embeddings ?? false,
  });
}

function gemmaLike(
  hf: Json,
  modelType: string,
  common: { modelName: string; originalArchitecture: string },
  num: (f: string, d?: number) => number,
  nCtx: (v: number) => number,
): ModelConfig {
  const d = num("hidden_size"), h = num("num_attention_heads");
  const dHead = num("head_dim", d / h);
  const nLayers = num("num_hidden_layers");
  const g2 = modelType === "gemma2";
  const base = {
    ...common,
    nLayers,
    dModel: d,
    nHeads: h,
    dHead,
    nKeyValueHeads: num("num_key_value_heads", h),
    dMlp: num("intermediate_size"),
    dVocab: num("vocab_size"),
    nCtx: nCtx(num("max_position_embeddings")),
    eps: num("rms_norm_eps", 1e-6),
    normalizationType: "RMS" as const,
    finalRms: true,
    gatedMlp: true,
    positionalEmbeddingType: "rotary" as const,
    rotaryDim: dHead,
    rotaryBase: ropeTheta(hf, "rope_theta"),
    rotaryAdjacentPairs: false,
    useNormalizedEmbedding: true,
    normWeightPlusOne: true,
    tieWordEmbeddings: hf.tie_word_embeddings ?? true,
  };
  // Gemma-1 runs the tanh GELU whatever its config says; TL names it gelu_new.
  if (!g2) return defineModelConfig({ ...base, actFn: "gelu_new" });
  const window = num("sliding_window", 4096);
  return defineModelConfig({
    ...base,
    actFn: actFnOf(hf.hidden_activation ?? hf.hidden_act ?? "gelu_pytorch_tanh", modelType),
    attnScale: Math.sqrt(num("query_pre_attn_scalar", dHead)),
    attnScoresSoftCap: hf.attn_logit_softcapping ?? -1,
    outputLogitsSoftCap: hf.final_logit_softcapping ?? -1,
    useNormalizationBeforeAndAfter: true,
    useLocalAttn: true,
    windowSize: window,
    // TL's legacy order: global on even layers, local on odd (HF is the reverse; TL issue #778).
    attnTypes: Array.from({ length: nLayers }, (_, i) => (i % 2 === 0 ? "global" : "local")),
  });
}

function familyOf(hf: Json): string {
  if (typeof hf !== "object" || hf === null) throw new ModelError("config.json is not an object");
  const mt = hf.model_type;
  if (typeof mt === "string" && mt in SUPPORTED_MODEL_TYPES) return mt;
  const arch = Array.isArray(hf.architectures) ? hf.architectures[0] : undefined;
  for (const [t, a] of Object.entries(SUPPORTED_MODEL_TYPES)) if (a === arch) return t;
  throw new ModelError(
    `config.json: unsupported model_type "${mt}" (architectures ${
      JSON.stringify(hf.architectures ?? null)
    }); supported: ${Object.keys(SUPPORTED_MODEL_TYPES).join(", ")}`,
  );
}

function actFnOf(name: string, modelType: string): ActFn {
  const map: Record<string, ActFn> = {
    gelu_new: "gelu_new",
    gelu_pytorch_tanh: "gelu_pytorch_tanh",
    gelu_fast: "gelu_fast",
    gelu: "gelu",
    silu: "silu",
    swish: "silu",
    relu: "relu",
  };
  const act = map[name];
  if (!act) unsupported(modelType, "activation", name);
  return act;
}

function ropeTheta(hf: Json, field: string): number {
  const v = hf[field] ?? hf.rope_parameters?.rope_theta ?? 10000;
  if (typeof v !== "number") throw new ModelError(`config.json: "${field}" is not a number`);
  return v;
}

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

function unsupported(modelType: string, field: string, value: unknown): never {
  throw new ModelError(
    `config.json (${modelType}): unsupported ${field} ${JSON.stringify(value)}`,
  );
}
