// GPT-NeoX fixture: a tiny Pythia-like config, its HF tensors (fused q/k/v interleaved per head,
// untied embed_out) and the naive HF forward (parallel attention and MLP, partial rotary).
import type { FamilyFixture, HfT, Json, NaiveResult, TensorSpec } from "./_harness.ts";
import { act, attend, HfWeights, invFreqs, rope, type Vec } from "./_naive.ts";

function specs(cfg: Json): TensorSpec[] {
  const out: TensorSpec[] = [];
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
  out.push(["gpt_neox.final_layer_norm.weight", [D], "n"]);
  out.push(["gpt_neox.final_layer_norm.bias", [D], "b"]);
  out.push(["embed_out.weight", [V, D], "w"]);
  return out;
}

function naive(cfg: Json, tensors: Map<string, HfT>, tokens: number[]): NaiveResult {
  const w = new HfWeights(tensors), f = act(cfg.hidden_act);
  const D = cfg.hidden_size, H = cfg.num_attention_heads, d = D / H, eps = cfg.layer_norm_eps;
  const rd = Math.floor(d * cfg.rotary_pct), inv = invFreqs(rd, cfg.rotary_emb_base);
  const emb = w.get("gpt_neox.embed_in.weight").data;
  let x: Vec[] = tokens.map((tok) => Array.from({ length: D }, (_, j) => emb[tok * D + j]));
  const hidden: Vec[][] = [];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    hidden.push(x.map((r) => [...r]));
    const h = `gpt_neox.layers.${l}.`;
    const a = x.map((r) => w.layerNorm(r, h + "input_layernorm", eps));
    // Fused output viewed as (H, 3, d).
    const qkv = a.map((r) =>
      w.linear(r, h + "attention.query_key_value.weight", h + "attention.query_key_value.bias")
    );
    const part = (r: Vec, which: number) =>
      Array.from(
        { length: H },
        (_, hh) => r.slice(hh * 3 * d + which * d, hh * 3 * d + (which + 1) * d),
      );
    const q = qkv.map((r, p) => part(r, 0).map((qh) => rope(qh, p, rd, inv)));
    const k = qkv.map((r, p) => part(r, 1).map((kh) => rope(kh, p, rd, inv)));
    const v = qkv.map((r) => part(r, 2));
    const z = attend(q, k, v, 1 / Math.sqrt(d), Infinity, 0);
    const attnOut = z.map((r) =>
      w.linear(r.flat(), h + "attention.dense.weight", h + "attention.dense.bias")
    );
    const mlpOut = x.map((r) => {
      const m = w.layerNorm(r, h + "post_attention_layernorm", eps);
      const u = w.linear(m, h + "mlp.dense_h_to_4h.weight", h + "mlp.dense_h_to_4h.bias").map(f);
      return w.linear(u, h + "mlp.dense_4h_to_h.weight", h + "mlp.dense_4h_to_h.bias");
    });
    x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j] + mlpOut[p][j]));
  }
  hidden.push(x);
  const fin = x.map((r) => w.layerNorm(r, "gpt_neox.final_layer_norm", eps));
  return { logits: fin.map((r) => w.linear(r, "embed_out.weight")), hidden };
}

/** GPT-NeoX (Pythia). */
export const NEOX_FIXTURE: FamilyFixture = {
  configs: {
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
  },
  specs,
  naive,
};
