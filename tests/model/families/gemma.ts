// Gemma fixture: tiny Gemma 1 (MQA) and Gemma 2 (soft caps, sandwich norms, alternating local
// layers) configs on the Llama-like layout with Gemma's traits: (1 + w) norms, a √D-scaled
// embedding, the tanh GELU, tied embeddings by default.
import type { FamilyFixture } from "./_harness.ts";
import { llamaLikeSpecs, type LlamaLikeTraits, naiveLlamaLike } from "./llama.ts";

const GEMMA1: LlamaLikeTraits = {
  plusOne: true,
  scaleEmbedding: true,
  tiedByDefault: true,
  act: "gelu_tanh",
};
const TRAITS: Record<string, LlamaLikeTraits> = {
  gemma: GEMMA1,
  // HF: sliding window on even layers (TL has the reverse order; the tests pass TL's rule).
  gemma2: { ...GEMMA1, gemma2: true, hfLocal: (_cfg, l) => l % 2 === 0 },
};

/** Gemma 1 and Gemma 2. */
export const GEMMA_FIXTURE: FamilyFixture = {
  configs: {
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
  },
  specs: (cfg) => llamaLikeSpecs(cfg, TRAITS[cfg.model_type]),
  naive: (cfg, w, tokens, opts) => naiveLlamaLike(cfg, w, tokens, opts, TRAITS[cfg.model_type]),
};
