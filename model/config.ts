/**
 * `ModelConfig`: the TransformerLens `HookedTransformerConfig` subset saeflow's reference model
 * understands, in camelCase. Build one with {@link defineModelConfig} (fills TL's derived defaults
 * and validates) or from a Hugging Face `config.json` with `modelConfigFromHf`.
 * @module
 */

import { ModelError } from "./errors.ts";

/** Activation functions (TL `act_fn` names). `gelu` is the exact erf GELU. */
export type ActFn = "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu" | "silu" | "relu";

/** Norm types. `LNPre`/`RMSPre` are the parameter-free norms used after `fold_ln`. */
export type NormalizationType = "LN" | "LNPre" | "RMS" | "RMSPre";

/** Positional scheme: learned absolute (`W_pos`) or rotary on q/k. */
export type PositionalEmbeddingType = "standard" | "rotary";

/** Per-layer attention span: full causal, or causal within `windowSize`. */
export type AttnType = "global" | "local";

/** Llama-3.1-style "NTK-by-parts" rotary frequency scaling (HF `rope_type: "llama3"`). */
export interface NtkByPartsRope {
  /** Wavelength scaling for low frequencies (8 for Llama-3.1, 32 for 3.2). */
  factor: number;
  /** HF `low_freq_factor` (1). */
  lowFreqFactor: number;
  /** HF `high_freq_factor` (4). */
  highFreqFactor: number;
  /** HF `original_max_position_embeddings` (8192). */
  originalCtxLen: number;
}

/** TransformerLens-style model configuration (camelCase of `HookedTransformerConfig`). */
export interface ModelConfig {
  /** Short model name (TL `model_name`), e.g. `"gpt2"`. */
  modelName: string;
  /** HF architecture class, e.g. `"GPT2LMHeadModel"` (TL `original_architecture`). */
  originalArchitecture: string;
  /** Number of transformer blocks. */
  nLayers: number;
  /** Residual stream width D. */
  dModel: number;
  /** Number of query heads H. */
  nHeads: number;
  /** Per-head width d. */
  dHead: number;
  /** MLP hidden width M. */
  dMlp: number;
  /** Vocabulary size V (rows of `W_E`). */
  dVocab: number;
  /** Output vocabulary size (columns of `W_U`); equals `dVocab` for every supported model. */
  dVocabOut: number;
  /** Context length: rows of `W_pos` and the longest accepted input. */
  nCtx: number;
  /**
   * Key/value heads for grouped-query attention, or `null` for plain multi-head attention.
   * When set, k/v weights are stored as `attn._W_K/_W_V [Hkv,D,d]` (TL naming) even if Hkv = H.
   */
  nKeyValueHeads: number | null;
  /** MLP activation. */
  actFn: ActFn;
  /** Norm type of ln1/ln2/ln_final (becomes LNPre/RMSPre after fold_ln). */
  normalizationType: NormalizationType;
  /** Norm epsilon, added inside the square root. */
  eps: number;
  /** True for RMS-normed families (Llama, Qwen, Gemma); blocks center_writing_weights. */
  finalRms: boolean;
  /** Learned absolute positions or rotary. */
  positionalEmbeddingType: PositionalEmbeddingType;
  /** Rotated components per head (first `rotaryDim` of d); `null` when not rotary. */
  rotaryDim: number | null;
  /** Rotary base θ. */
  rotaryBase: number;
  /** GPT-J style adjacent pairs (true) or NeoX/Llama half-split (false). */
  rotaryAdjacentPairs: boolean;
  /** Llama-3.1 NTK-by-parts frequency scaling, or `null`. */
  ntkByPartsRope: NtkByPartsRope | null;
  /** NeoX/GPT-J: resid_post = resid_pre + attn(ln1 x) + mlp(ln2 x); no hook_resid_mid. */
  parallelAttnMlp: boolean;
  /** Gated MLP (W_gate, hook_pre_linear): Llama, Qwen, Gemma. */
  gatedMlp: boolean;
  /** Divide scores by `attnScale` (false for GPT-Neo). */
  useAttnScale: boolean;
  /** Score divisor, default √dHead (Gemma-2: √query_pre_attn_scalar). */
  attnScale: number;
  /** Also multiply the divisor by (layer + 1) (stanford-crfm GPT-2s). */
  scaleAttnByInverseLayerIdx: boolean;
  /** Whether any layer uses local (sliding-window) attention. */
  useLocalAttn: boolean;
  /** Local window: a key k is visible to query q when 0 ≤ q − k < windowSize. */
  windowSize: number | null;
  /** Per-layer attention type (length nLayers) when `useLocalAttn`, else `null`. */
  attnTypes: AttnType[] | null;
  /** Attention score soft cap c (s ← c·tanh(s/c)); ≤ 0 disables (Gemma-2: 50). */
  attnScoresSoftCap: number;
  /** Final logit soft cap (Gemma-2: 30); ≤ 0 disables. Also disables center_unembed. */
  outputLogitsSoftCap: number;
  /** Gemma-2 sandwich norms: ln1_post on attn_out, ln2_post on mlp_out. */
  useNormalizationBeforeAndAfter: boolean;
  /** Qwen3 per-head RMSNorm on q and k (`attn.q_norm.w`, `attn.k_norm.w` [d]). */
  useQkNorm: boolean;
  /**
   * Gemma: the embedding is multiplied by √dModel. Informational only: the weight mapping
   * bakes the factor into `embed.W_E`, so the forward pass never rescales.
   */
  useNormalizedEmbedding: boolean;
  /**
   * Gemma: HF norms multiply by (1 + w). Informational only: the weight mapping stores 1 + w
   * in the TL norm weights.
   */
  normWeightPlusOne: boolean;
  /** HF `tie_word_embeddings`: W_U comes from the input embedding when lm_head is absent. */
  tieWordEmbeddings: boolean;
  /** TL `default_prepend_bos` (false for Qwen). */
  defaultPrependBos: boolean;
  /** Fire `attn.hook_result` [B,P,H,D] (per-head output without b_O). Off by default as in TL. */
  useAttnResult: boolean;
  /** Fire `blocks.L.hook_mlp_in` (a copy of the MLP's residual input). Off by default. */
  useHookMlpIn: boolean;
}

/** The fields without TL defaults; everything else is optional in {@link defineModelConfig}. */
export type ModelConfigInput =
  & Pick<ModelConfig, "nLayers" | "dModel" | "nHeads" | "dVocab" | "nCtx" | "actFn">
  & Partial<ModelConfig>;

/**
 * Fills TL's derived defaults (dHead = D/H, dMlp = 4·D, dVocabOut = dVocab, rotaryDim = dHead,
 * attnScale = √dHead, …) and validates the result.
 *
 * @example
 * ```ts
 * import { defineModelConfig } from "./config.ts";
 * const cfg = defineModelConfig({ nLayers: 2, dModel: 16, nHeads: 4, dVocab: 50, nCtx: 32,
 *   actFn: "gelu_new" });
 * if (cfg.dHead !== 4 || cfg.dMlp !== 64 || cfg.attnScale !== 2) throw new Error("unreachable");
 * ```
 */
export function defineModelConfig(input: ModelConfigInput): ModelConfig {
  const dHead = input.dHead ?? Math.floor(input.dModel / input.nHeads);
  const positional = input.positionalEmbeddingType ?? "standard";
  const cfg: ModelConfig = {
    nLayers: input.nLayers,
    dModel: input.dModel,
    nHeads: input.nHeads,
    dVocab: input.dVocab,
    nCtx: input.nCtx,
    actFn: input.actFn,
    modelName: "custom",
    originalArchitecture: "custom",
    dHead,
    dMlp: 4 * input.dModel,
    dVocabOut: input.dVocab,
    nKeyValueHeads: null,
    normalizationType: "LN",
    eps: 1e-5,
    finalRms: false,
    positionalEmbeddingType: positional,
    rotaryDim: positional === "rotary" ? dHead : null,
    rotaryBase: 10000,
    rotaryAdjacentPairs: false,
    ntkByPartsRope: null,
    parallelAttnMlp: false,
    gatedMlp: false,
    useAttnScale: true,
    attnScale: Math.sqrt(dHead),
    scaleAttnByInverseLayerIdx: false,
    useLocalAttn: false,
    windowSize: null,
    attnTypes: null,
    attnScoresSoftCap: -1,
    outputLogitsSoftCap: -1,
    useNormalizationBeforeAndAfter: false,
    useQkNorm: false,
    useNormalizedEmbedding: false,
    normWeightPlusOne: false,
    tieWordEmbeddings: false,
    defaultPrependBos: true,
    useAttnResult: false,
    useHookMlpIn: false,
    ...stripUndefined(input),
  } as ModelConfig;
  validateModelConfig(cfg);
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Number of k/v heads actually stored (Hkv for GQA, else H). */
export function kvHeadCount(cfg: ModelConfig): number {
  return cfg.nKeyValueHeads ?? cfg.nHeads;
}

/** TL parameter-name prefix for k/v tensors: `"_"` for GQA configs (`_W_K`), else `""`. */
export function kvPrefix(cfg: ModelConfig): "" | "_" {
  return cfg.nKeyValueHeads === null ? "" : "_";
}

/** Attention type of `layer` (`"global"` unless local attention is configured). */
export function attnTypeOf(cfg: ModelConfig, layer: number): AttnType {
  return cfg.useLocalAttn && cfg.attnTypes ? cfg.attnTypes[layer] : "global";
}

/** Throws a {@link ModelError} naming the first inconsistent field of `cfg`. */
export function validateModelConfig(cfg: ModelConfig): void {
  const bad = (field: string, why: string): never => {
    throw new ModelError(`ModelConfig.${field}: ${why}`);
  };
  if (!Number.isSafeInteger(cfg.nLayers) || cfg.nLayers < 0) {
    bad("nLayers", `${cfg.nLayers} is not ≥ 0`);
  }
  for (const f of ["dModel", "nHeads", "dHead", "dMlp", "dVocab", "nCtx"] as const) {
    if (!Number.isSafeInteger(cfg[f]) || cfg[f] <= 0 || cfg[f] > 2 ** 31 - 1) {
      bad(f, `${cfg[f]} is not a positive integer ≤ 2147483647`);
    }
  }
  const acts: ActFn[] = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "silu", "relu"];
  if (!acts.includes(cfg.actFn)) bad("actFn", `"${cfg.actFn}" is not one of ${acts.join(", ")}`);
  if (!["LN", "LNPre", "RMS", "RMSPre"].includes(cfg.normalizationType)) {
    bad("normalizationType", `"${cfg.normalizationType}" is not LN, LNPre, RMS or RMSPre`);
  }
  if (cfg.dVocabOut !== cfg.dVocab) bad("dVocabOut", "must equal dVocab");
  if (cfg.nKeyValueHeads !== null) {
    const g = cfg.nKeyValueHeads;
    if (!Number.isSafeInteger(g) || g <= 0 || cfg.nHeads % g !== 0) {
      bad("nKeyValueHeads", `${g} must be a positive divisor of nHeads ${cfg.nHeads}`);
    }
  }
  if (cfg.positionalEmbeddingType === "rotary") {
    const r = cfg.rotaryDim;
    if (r === null || !Number.isSafeInteger(r) || r <= 0 || r % 2 !== 0 || r > cfg.dHead) {
      bad("rotaryDim", `${r} must be an even integer in (0, dHead=${cfg.dHead}]`);
    }
  } else if (cfg.positionalEmbeddingType !== "standard") {
    bad("positionalEmbeddingType", `"${cfg.positionalEmbeddingType}" is not standard or rotary`);
  }
  if (cfg.useLocalAttn) {
    if (!cfg.attnTypes || cfg.attnTypes.length !== cfg.nLayers) {
      bad("attnTypes", `needs one entry per layer (${cfg.nLayers})`);
    }
    if (cfg.attnTypes!.some((t) => t !== "global" && t !== "local")) {
      bad("attnTypes", `entries must be "global" or "local"`);
    }
    if (cfg.windowSize === null || !Number.isSafeInteger(cfg.windowSize) || cfg.windowSize <= 0) {
      bad("windowSize", `${cfg.windowSize} must be a positive integer with local attention`);
    }
  }
  if (!(cfg.eps >= 0)) bad("eps", `${cfg.eps} must be ≥ 0`);
  if (cfg.useAttnScale && !(cfg.attnScale > 0)) bad("attnScale", `${cfg.attnScale} must be > 0`);
}
