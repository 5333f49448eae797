// GPT-2 fixture: a tiny config, its HF tensors (Conv1D [in, out], fused c_attn) and the naive
// HF forward (learned positions, LayerNorm, 1/√d scores, tied head).
import type { FamilyFixture, HfT, Json, NaiveResult, TensorSpec } from "./_harness.ts";
import { act, attend, HfWeights, split, type Vec } from "./_naive.ts";

function specs(cfg: Json): TensorSpec[] {
  const out: TensorSpec[] = [];
  const D = cfg.n_embd, L = cfg.n_layer, V = cfg.vocab_size, M = 4 * D, pos = cfg.n_positions;
  out.push(["transformer.wte.weight", [V, D], "w"], ["transformer.wpe.weight", [pos, D], "w"]);
  for (let l = 0; l < L; l++) {
    const h = `transformer.h.${l}.`;
    out.push([h + "ln_1.weight", [D], "n"], [h + "ln_1.bias", [D], "b"]);
    out.push([h + "attn.c_attn.weight", [D, 3 * D], "w"], [h + "attn.c_attn.bias", [3 * D], "b"]);
    out.push([h + "attn.c_proj.weight", [D, D], "w"], [h + "attn.c_proj.bias", [D], "b"]);
    out.push([h + "mlp.c_fc.weight", [D, M], "w"], [h + "mlp.c_fc.bias", [M], "b"]);
    out.push([h + "mlp.c_proj.weight", [M, D], "w"], [h + "mlp.c_proj.bias", [D], "b"]);
    out.push([h + "ln_2.weight", [D], "n"], [h + "ln_2.bias", [D], "b"]);
  }
  out.push(["transformer.ln_f.weight", [D], "n"], ["transformer.ln_f.bias", [D], "b"]);
  return out;
}

function naive(cfg: Json, tensors: Map<string, HfT>, tokens: number[]): NaiveResult {
  const w = new HfWeights(tensors), f = act(cfg.activation_function);
  const pre = w.has("transformer.wte.weight") ? "transformer." : "";
  const D = cfg.n_embd, H = cfg.n_head, d = D / H, eps = cfg.layer_norm_epsilon;
  const wte = w.get(pre + "wte.weight").data, wpe = w.get(pre + "wpe.weight").data;
  let x: Vec[] = tokens.map((tok, p) =>
    Array.from({ length: D }, (_, j) => wte[tok * D + j] + wpe[p * D + j])
  );
  const hidden: Vec[][] = [];
  for (let l = 0; l < cfg.n_layer; l++) {
    hidden.push(x.map((r) => [...r]));
    const h = `${pre}h.${l}.`;
    const a = x.map((r) => w.layerNorm(r, h + "ln_1", eps));
    const qkv = a.map((r) => w.conv1d(r, h + "attn.c_attn.weight", h + "attn.c_attn.bias"));
    const q = qkv.map((r) => split(r.slice(0, D), H, d));
    const k = qkv.map((r) => split(r.slice(D, 2 * D), H, d));
    const v = qkv.map((r) => split(r.slice(2 * D), H, d));
    const z = attend(q, k, v, 1 / Math.sqrt(d), Infinity, 0);
    const attnOut = z.map((r) =>
      w.conv1d(r.flat(), h + "attn.c_proj.weight", h + "attn.c_proj.bias")
    );
    x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j]));
    const mlp = x.map((r) => {
      const hIn = w.layerNorm(r, h + "ln_2", eps);
      const u = w.conv1d(hIn, h + "mlp.c_fc.weight", h + "mlp.c_fc.bias").map(f);
      return w.conv1d(u, h + "mlp.c_proj.weight", h + "mlp.c_proj.bias");
    });
    x = x.map((r, p) => r.map((xi, j) => xi + mlp[p][j]));
  }
  hidden.push(x);
  const fin = x.map((r) => w.layerNorm(r, pre + "ln_f", eps));
  const head = w.has("lm_head.weight") ? "lm_head.weight" : pre + "wte.weight";
  return { logits: fin.map((r) => w.linear(r, head)), hidden };
}

/** GPT-2. */
export const GPT2_FIXTURE: FamilyFixture = {
  configs: {
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
  },
  specs,
  naive,
};
