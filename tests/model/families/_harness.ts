// Tiny random models in Hugging Face layout: config.json + tensors, written to a temp dir with
// the project's safetensors writer and loaded back through model/local.ts.
import { writeSafetensors } from "../../io/safetensors.ts";
import { f32ToBf16, f32ToF16 } from "../../io/dtypes.ts";
import type { StTensor } from "../../io/safetensors_write.ts";

/** Seeded uniform PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An HF tensor in float32. */
export interface HfT {
  data: Float32Array;
  shape: number[];
}

// deno-lint-ignore no-explicit-any
export type Json = Record<string, any>;

/** Tiny HF configs, one per family/mechanism. */
export const CONFIGS: Record<string, Json> = {
  gpt2: {
    model_type: "gpt2",
    n_layer: 2,
    n_embd: 16,
    n_head: 4,
    vocab_size: 23,
    n_positions: 12,
    layer_norm_epsilon: 1e-5,
    activation_function: "gelu_new",
  },
  gpt_neo: {
    model_type: "gpt_neo",
    hidden_size: 16,
    num_heads: 4,
    num_layers: 2,
    attention_types: [[["global", "local"], 1]],
    window_size: 3,
    max_position_embeddings: 12,
    vocab_size: 23,
    layer_norm_epsilon: 1e-5,
    activation_function: "gelu_new",
  },
  gpt_neox: {
    model_type: "gpt_neox",
    hidden_size: 16,
    num_attention_heads: 2,
    intermediate_size: 32,
    num_hidden_layers: 2,
    rotary_pct: 0.5,
    rotary_emb_base: 10000,
    max_position_embeddings: 12,
    vocab_size: 23,
    layer_norm_eps: 1e-5,
    hidden_act: "gelu",
    use_parallel_residual: true,
    tie_word_embeddings: false,
  },
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
  gemma: {
    model_type: "gemma",
    hidden_size: 16,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
    intermediate_size: 24,
    num_hidden_layers: 2,
    max_position_embeddings: 32,
    vocab_size: 23,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: "gelu",
  },
  gemma2: {
    model_type: "gemma2",
    hidden_size: 16,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    intermediate_size: 24,
    num_hidden_layers: 2,
    max_position_embeddings: 32,
    vocab_size: 23,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    query_pre_attn_scalar: 6,
    attn_logit_softcapping: 1.5,
    final_logit_softcapping: 2.5,
    sliding_window: 3,
    hidden_activation: "gelu_pytorch_tanh",
  },
};

/** `[name, shape, kind]` of every HF tensor of `cfg` (kind: "w" weight, "b" bias, "n" norm). */
export function hfTensorSpecs(cfg: Json): [string, number[], "w" | "b" | "n"][] {
  const out: [string, number[], "w" | "b" | "n"][] = [];
  const t = cfg.model_type as string;
  if (t === "gpt2" || t === "gpt_neo") {
    const D = cfg.n_embd ?? cfg.hidden_size, L = cfg.n_layer ?? cfg.num_layers;
    const V = cfg.vocab_size, M = 4 * D, pos = cfg.n_positions ?? cfg.max_position_embeddings;
    out.push(["transformer.wte.weight", [V, D], "w"], ["transformer.wpe.weight", [pos, D], "w"]);
    for (let l = 0; l < L; l++) {
      const h = `transformer.h.${l}.`;
      out.push([h + "ln_1.weight", [D], "n"], [h + "ln_1.bias", [D], "b"]);
      if (t === "gpt2") {
        out.push([h + "attn.c_attn.weight", [D, 3 * D], "w"], [
          h + "attn.c_attn.bias",
          [3 * D],
          "b",
        ]);
        out.push([h + "attn.c_proj.weight", [D, D], "w"], [h + "attn.c_proj.bias", [D], "b"]);
        out.push([h + "mlp.c_fc.weight", [D, M], "w"], [h + "mlp.c_fc.bias", [M], "b"]);
        out.push([h + "mlp.c_proj.weight", [M, D], "w"], [h + "mlp.c_proj.bias", [D], "b"]);
      } else {
        for (const p of ["q_proj", "k_proj", "v_proj"]) {
          out.push([h + `attn.attention.${p}.weight`, [D, D], "w"]);
        }
        out.push([h + "attn.attention.out_proj.weight", [D, D], "w"]);
        out.push([h + "attn.attention.out_proj.bias", [D], "b"]);
        out.push([h + "mlp.c_fc.weight", [M, D], "w"], [h + "mlp.c_fc.bias", [M], "b"]);
        out.push([h + "mlp.c_proj.weight", [D, M], "w"], [h + "mlp.c_proj.bias", [D], "b"]);
      }
      out.push([h + "ln_2.weight", [D], "n"], [h + "ln_2.bias", [D], "b"]);
    }
    out.push(["transformer.ln_f.weight", [D], "n"], ["transformer.ln_f.bias", [D], "b"]);
    return out;
  }
  if (t === "gpt_neox") {
    const D = cfg.hidden_size, M = cfg.intermediate_size, V = cfg.vocab_size;
    out.push(["gpt_neox.embed_in.weight", [V, D], "w"]);
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const h = `gpt_neox.layers.${l}.`;
      for (const n of ["input_layernorm", "post_attention_layernorm"]) {
        out.push([h + `${n}.weight`, [D], "n"], [h + `${n}.bias`, [D], "b"]);
      }
      out.push([h + "attention.query_key_value.weight", [3 * D, D], "w"]);
      out.push([h + "attention.query_key_value.bias", [3 * D], "b"]);
      out.push([h + "attention.dense.weight", [D, D], "w"], [h + "attention.dense.bias", [D], "b"]);
      out.push([h + "mlp.dense_h_to_4h.weight", [M, D], "w"], [
        h + "mlp.dense_h_to_4h.bias",
        [M],
        "b",
      ]);
      out.push([h + "mlp.dense_4h_to_h.weight", [D, M], "w"], [
        h + "mlp.dense_4h_to_h.bias",
        [D],
        "b",
      ]);
    }
    out.push(["gpt_neox.final_layer_norm.weight", [D], "n"], [
      "gpt_neox.final_layer_norm.bias",
      [D],
      "b",
    ]);
    out.push(["embed_out.weight", [V, D], "w"]);
    return out;
  }
  // Llama-style and Gemma.
  const D = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H;
  const d = cfg.head_dim ?? D / H, M = cfg.intermediate_size, V = cfg.vocab_size;
  const gemma = t.startsWith("gemma"), normKind = gemma ? "b" : "n"; // Gemma norms are 1 + w
  out.push(["model.embed_tokens.weight", [V, D], "w"]);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const h = `model.layers.${l}.`, a = h + "self_attn.";
    out.push([h + "input_layernorm.weight", [D], normKind]);
    out.push([a + "q_proj.weight", [H * d, D], "w"], [a + "k_proj.weight", [Hkv * d, D], "w"]);
    out.push([a + "v_proj.weight", [Hkv * d, D], "w"], [a + "o_proj.weight", [D, H * d], "w"]);
    if (t === "qwen2") {
      out.push([a + "q_proj.bias", [H * d], "b"], [a + "k_proj.bias", [Hkv * d], "b"]);
      out.push([a + "v_proj.bias", [Hkv * d], "b"]);
    }
    if (t === "qwen3") out.push([a + "q_norm.weight", [d], "n"], [a + "k_norm.weight", [d], "n"]);
    out.push([h + "post_attention_layernorm.weight", [D], normKind]);
    if (t === "gemma2") {
      out.push([h + "pre_feedforward_layernorm.weight", [D], normKind]);
      out.push([h + "post_feedforward_layernorm.weight", [D], normKind]);
    }
    for (const p of ["gate_proj", "up_proj"]) out.push([h + `mlp.${p}.weight`, [M, D], "w"]);
    out.push([h + "mlp.down_proj.weight", [D, M], "w"]);
  }
  out.push(["model.norm.weight", [D], normKind]);
  const tied = cfg.tie_word_embeddings ?? gemma;
  if (!tied) out.push(["lm_head.weight", [V, D], "w"]);
  return out;
}

/** Random HF tensors for `cfg`: weights ±`scale`·U, biases small, norm weights near 1. */
export function randomHfTensors(cfg: Json, seed: number, scale = 0.5): Map<string, HfT> {
  const r = rng(seed);
  const out = new Map<string, HfT>();
  for (const [name, shape, kind] of hfTensorSpecs(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = 2 * r() - 1;
      data[i] = kind === "w" ? scale * u : kind === "b" ? 0.3 * u : 1 + 0.3 * u;
    }
    out.set(name, { data, shape });
  }
  return out;
}

/** How {@link writeHfModel} writes: bf16 or f16 (else f32), in two shards, keys unprefixed. */
export interface WriteHfOptions {
  bf16?: boolean;
  f16?: boolean;
  sharded?: boolean;
  stripPrefix?: string;
}

/** Writes config.json + weights into a new temp dir (optionally bf16/f16 or in two shards). */
export async function writeHfModel(
  cfg: Json,
  tensors: Map<string, HfT>,
  opts: WriteHfOptions = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_model_" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
  const st = new Map<string, StTensor>();
  for (const [name0, t] of tensors) {
    const name = opts.stripPrefix && name0.startsWith(opts.stripPrefix)
      ? name0.slice(opts.stripPrefix.length)
      : name0;
    st.set(
      name,
      opts.bf16
        ? { dtype: "BF16", shape: t.shape, data: f32ToBf16(t.data) }
        : opts.f16
        ? { dtype: "F16", shape: t.shape, data: f32ToF16(t.data) }
        : { dtype: "F32", shape: t.shape, data: t.data },
    );
  }
  if (!opts.sharded) {
    await writeSafetensors(`${dir}/model.safetensors`, st);
    return dir;
  }
  const names = [...st.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < 2; i++) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(`${dir}/${file}`, new Map(shards[i].map((n) => [n, st.get(n)!])));
    for (const n of shards[i]) weightMap[n] = file;
  }
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  return dir;
}
