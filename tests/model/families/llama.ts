// Llama-family fixture (Llama with GQA, Llama-3.1 rope scaling, Mistral's sliding window, Qwen2
// biases, Qwen3 q/k norms): tiny configs, their HF tensors and the naive HF forward (RMSNorm,
// gated MLP, rotary on whole heads, GQA repeat_kv). Gemma's fixture reuses the forward with its
// traits (`llamaLikeSpecs`, `naiveLlamaLike`).
import type {
  FamilyFixture,
  HfT,
  Json,
  NaiveOptions,
  NaiveResult,
  TensorSpec,
} from "./_harness.ts";
import { act, attend, HfWeights, invFreqs, rmsNorm, rope, split, type Vec } from "./_naive.ts";

/** What a Llama-like model type adds to the plain layout. */
export interface LlamaLikeTraits {
  /** Norm weights are stored as w with HF computing (1 + w) (Gemma). */
  plusOne?: boolean;
  /** q/k/v projections have biases (Qwen2). */
  qkvBias?: boolean;
  /** Per-head q/k RMSNorm (Qwen3). */
  qkNorm?: boolean;
  /** Gemma-2 sandwich norms, soft caps and query_pre_attn_scalar. */
  gemma2?: boolean;
  /** The embedding is multiplied by √D (Gemma). */
  scaleEmbedding?: boolean;
  /** `tie_word_embeddings` when absent. */
  tiedByDefault?: boolean;
  /** The activation HF runs (default `hidden_act`). */
  act?: string;
  /** HF's rule for sliding-window layers. */
  hfLocal?: (cfg: Json, layer: number) => boolean;
}

/** Every HF tensor of a Llama-like `cfg`. */
export function llamaLikeSpecs(cfg: Json, t: LlamaLikeTraits): TensorSpec[] {
  const out: TensorSpec[] = [];
  const D = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H;
  const d = cfg.head_dim ?? D / H, M = cfg.intermediate_size, V = cfg.vocab_size;
  const normKind = t.plusOne ? "b" : "n"; // Gemma norms are 1 + w
  out.push(["model.embed_tokens.weight", [V, D], "w"]);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const h = `model.layers.${l}.`, a = h + "self_attn.";
    out.push([h + "input_layernorm.weight", [D], normKind]);
    out.push([a + "q_proj.weight", [H * d, D], "w"], [a + "k_proj.weight", [Hkv * d, D], "w"]);
    out.push([a + "v_proj.weight", [Hkv * d, D], "w"], [a + "o_proj.weight", [D, H * d], "w"]);
    if (t.qkvBias) {
      out.push([a + "q_proj.bias", [H * d], "b"], [a + "k_proj.bias", [Hkv * d], "b"]);
      out.push([a + "v_proj.bias", [Hkv * d], "b"]);
    }
    if (t.qkNorm) out.push([a + "q_norm.weight", [d], "n"], [a + "k_norm.weight", [d], "n"]);
    out.push([h + "post_attention_layernorm.weight", [D], normKind]);
    if (t.gemma2) {
      out.push([h + "pre_feedforward_layernorm.weight", [D], normKind]);
      out.push([h + "post_feedforward_layernorm.weight", [D], normKind]);
    }
    for (const p of ["gate_proj", "up_proj"]) out.push([h + `mlp.${p}.weight`, [M, D], "w"]);
    out.push([h + "mlp.down_proj.weight", [D, M], "w"]);
  }
  out.push(["model.norm.weight", [D], normKind]);
  const tied = cfg.tie_word_embeddings ?? t.tiedByDefault ?? false;
  if (!tied) out.push(["lm_head.weight", [V, D], "w"]);
  return out;
}

/** The naive HF forward of a Llama-like model. */
export function naiveLlamaLike(
  cfg: Json,
  tensors: Map<string, HfT>,
  tokens: number[],
  opts: NaiveOptions,
  t: LlamaLikeTraits,
): NaiveResult {
  const w = new HfWeights(tensors), f = act(t.act ?? cfg.hidden_act);
  const plusOne = t.plusOne ?? false;
  const D = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H;
  const d = cfg.head_dim ?? D / H, eps = cfg.rms_norm_eps;
  const inv = invFreqs(d, cfg.rope_theta ?? 10000, cfg.rope_scaling);
  const emb = w.get("model.embed_tokens.weight").data;
  const embScale = t.scaleEmbedding ? Math.sqrt(D) : 1;
  let x: Vec[] = tokens.map((tok) =>
    Array.from({ length: D }, (_, j) => emb[tok * D + j] * embScale)
  );
  const scale = t.gemma2 ? cfg.query_pre_attn_scalar ** -0.5 : 1 / Math.sqrt(d);
  const softcap = t.gemma2 ? cfg.attn_logit_softcapping ?? 0 : 0;
  const hidden: Vec[][] = [];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    hidden.push(x.map((r) => [...r]));
    const h = `model.layers.${l}.`, a = h + "self_attn.";
    const nw = (n: string) => w.get(h + n + ".weight").data;
    const xa = x.map((r) => rmsNorm(r, nw("input_layernorm"), eps, plusOne));
    const qkNorm = (vec: Vec, n: string) =>
      t.qkNorm ? rmsNorm(vec, w.get(a + n + ".weight").data, eps, false) : vec;
    const q = xa.map((r, p) =>
      split(w.linear(r, a + "q_proj.weight", a + "q_proj.bias"), H, d).map((qh) =>
        rope(qkNorm(qh, "q_norm"), p, d, inv)
      )
    );
    const k = xa.map((r, p) =>
      split(w.linear(r, a + "k_proj.weight", a + "k_proj.bias"), Hkv, d).map((kh) =>
        rope(qkNorm(kh, "k_norm"), p, d, inv)
      )
    );
    const v = xa.map((r) => split(w.linear(r, a + "v_proj.weight", a + "v_proj.bias"), Hkv, d));
    const hfLocal = t.hfLocal?.(cfg, l) ?? false;
    const local = opts.isLocal ? opts.isLocal(l) : hfLocal;
    const window = local ? cfg.sliding_window : Infinity;
    const z = attend(q, k, v, scale, window, softcap);
    let attnOut = z.map((r) => w.linear(r.flat(), a + "o_proj.weight"));
    if (t.gemma2) {
      attnOut = attnOut.map((r) => rmsNorm(r, nw("post_attention_layernorm"), eps, plusOne));
    }
    x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j]));
    const preMlp = t.gemma2 ? "pre_feedforward_layernorm" : "post_attention_layernorm";
    let mlpOut = x.map((r) => {
      const m = rmsNorm(r, nw(preMlp), eps, plusOne);
      const gate = w.linear(m, h + "mlp.gate_proj.weight").map(f);
      const up = w.linear(m, h + "mlp.up_proj.weight");
      return w.linear(gate.map((g, i) => g * up[i]), h + "mlp.down_proj.weight");
    });
    if (t.gemma2) {
      mlpOut = mlpOut.map((r) => rmsNorm(r, nw("post_feedforward_layernorm"), eps, plusOne));
    }
    x = x.map((r, p) => r.map((xi, j) => xi + mlpOut[p][j]));
  }
  hidden.push(x);
  const fin = x.map((r) => rmsNorm(r, w.get("model.norm.weight").data, eps, plusOne));
  const head = w.has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  let logits = fin.map((r) => w.linear(r, head));
  const cap = t.gemma2 ? cfg.final_logit_softcapping ?? 0 : 0;
  if (cap > 0) logits = logits.map((r) => r.map((z) => cap * Math.tanh(z / cap)));
  return { logits, hidden };
}

const TRAITS: Record<string, LlamaLikeTraits> = {
  llama: {},
  mistral: { hfLocal: (cfg) => cfg.sliding_window != null },
  qwen2: { qkvBias: true },
  qwen3: { qkNorm: true },
};

/** Llama, Mistral, Qwen2, Qwen3. */
export const LLAMA_FIXTURE: FamilyFixture = {
  configs: {
    llama: {
      model_type: "llama",
      hidden_size: 16,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      intermediate_size: 24,
      num_hidden_layers: 2,
      max_position_embeddings: 32,
      vocab_size: 23,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      hidden_act: "silu",
      tie_word_embeddings: false,
    },
    llama3: {
      model_type: "llama",
      hidden_size: 16,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 24,
      num_hidden_layers: 1,
      max_position_embeddings: 32,
      vocab_size: 23,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
      hidden_act: "silu",
      tie_word_embeddings: true,
    },
    mistral: {
      model_type: "mistral",
      hidden_size: 16,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      intermediate_size: 24,
      num_hidden_layers: 2,
      max_position_embeddings: 32,
      vocab_size: 23,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      sliding_window: 3,
      hidden_act: "silu",
      tie_word_embeddings: false,
    },
    qwen2: {
      model_type: "qwen2",
      hidden_size: 16,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      intermediate_size: 24,
      num_hidden_layers: 2,
      max_position_embeddings: 32,
      vocab_size: 23,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      hidden_act: "silu",
      tie_word_embeddings: true,
    },
    qwen3: {
      model_type: "qwen3",
      hidden_size: 16,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 8,
      intermediate_size: 24,
      num_hidden_layers: 2,
      max_position_embeddings: 32,
      vocab_size: 23,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      hidden_act: "silu",
      tie_word_embeddings: true,
    },
  },
  specs: (cfg) => llamaLikeSpecs(cfg, TRAITS[cfg.model_type]),
  naive: (cfg, w, tokens, opts) => naiveLlamaLike(cfg, w, tokens, opts, TRAITS[cfg.model_type]),
};
