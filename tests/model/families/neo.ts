// GPT-Neo fixture: a tiny config with a global and a local layer, its HF tensors (nn.Linear
// q/k/v without biases) and the naive HF forward (no 1/√d score scale, sliding window).
import type {
  FamilyFixture,
  HfT,
  Json,
  NaiveOptions,
  NaiveResult,
  TensorSpec,
} from "./_harness.ts";
import { act, attend, HfWeights, split, type Vec } from "./_naive.ts";

function specs(cfg: Json): TensorSpec[] {
  const out: TensorSpec[] = [];
  const D = cfg.hidden_size, L = cfg.num_layers;
  const V = cfg.vocab_size, M = 4 * D, pos = cfg.max_position_embeddings;
  out.push(["transformer.wte.weight", [V, D], "w"], ["transformer.wpe.weight", [pos, D], "w"]);
  for (let l = 0; l < L; l++) {
    const h = `transformer.h.${l}.`;
    out.push([h + "ln_1.weight", [D], "n"], [h + "ln_1.bias", [D], "b"]);
    for (const p of ["q_proj", "k_proj", "v_proj"]) {
      out.push([h + `attn.attention.${p}.weight`, [D, D], "w"]);
    }
    out.push([h + "attn.attention.out_proj.weight", [D, D], "w"]);
    out.push([h + "attn.attention.out_proj.bias", [D], "b"]);
    out.push([h + "mlp.c_fc.weight", [M, D], "w"], [h + "mlp.c_fc.bias", [M], "b"]);
    out.push([h + "mlp.c_proj.weight", [D, M], "w"], [h + "mlp.c_proj.bias", [D], "b"]);
    out.push([h + "ln_2.weight", [D], "n"], [h + "ln_2.bias", [D], "b"]);
  }
  out.push(["transformer.ln_f.weight", [D], "n"], ["transformer.ln_f.bias", [D], "b"]);
  return out;
}

function naive(
  cfg: Json,
  tensors: Map<string, HfT>,
  tokens: number[],
  opts: NaiveOptions,
): NaiveResult {
  const w = new HfWeights(tensors), f = act(cfg.activation_function);
  const pre = w.has("transformer.wte.weight") ? "transformer." : "";
  const D = cfg.hidden_size, H = cfg.num_heads, d = D / H, eps = cfg.layer_norm_epsilon;
  const wte = w.get(pre + "wte.weight").data, wpe = w.get(pre + "wpe.weight").data;
  let x: Vec[] = tokens.map((tok, p) =>
    Array.from({ length: D }, (_, j) => wte[tok * D + j] + wpe[p * D + j])
  );
  const types: string[] = cfg.attention_types.flatMap(([ts, n]: [string[], number]) =>
    Array(n).fill(ts).flat()
  );
  const hidden: Vec[][] = [];
  for (let l = 0; l < cfg.num_layers; l++) {
    hidden.push(x.map((r) => [...r]));
    const h = `${pre}h.${l}.`, at = h + "attn.attention.";
    const a = x.map((r) => w.layerNorm(r, h + "ln_1", eps));
    const q = a.map((r) => split(w.linear(r, at + "q_proj.weight"), H, d));
    const k = a.map((r) => split(w.linear(r, at + "k_proj.weight"), H, d));
    const v = a.map((r) => split(w.linear(r, at + "v_proj.weight"), H, d));
    const window = (opts.isLocal?.(l) ?? types[l] === "local") ? cfg.window_size : Infinity;
    const z = attend(q, k, v, 1, window, 0); // GPT-Neo: no 1/sqrt(d)
    const attnOut = z.map((r) => w.linear(r.flat(), at + "out_proj.weight", at + "out_proj.bias"));
    x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j]));
    const mlp = x.map((r) => {
      const hIn = w.layerNorm(r, h + "ln_2", eps);
      const u = w.linear(hIn, h + "mlp.c_fc.weight", h + "mlp.c_fc.bias").map(f);
      return w.linear(u, h + "mlp.c_proj.weight", h + "mlp.c_proj.bias");
    });
    x = x.map((r, p) => r.map((xi, j) => xi + mlp[p][j]));
  }
  hidden.push(x);
  const fin = x.map((r) => w.layerNorm(r, pre + "ln_f", eps));
  const head = w.has("lm_head.weight") ? "lm_head.weight" : pre + "wte.weight";
  return { logits: fin.map((r) => w.linear(r, head)), hidden };
}

/** GPT-Neo. */
export const NEO_FIXTURE: FamilyFixture = {
  configs: {
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
  },
  specs,
  naive,
};
