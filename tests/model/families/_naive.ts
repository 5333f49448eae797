// An independent, deliberately naive float64 forward pass written directly from the Hugging Face
// module semantics, reading HF-layout tensors (nn.Linear [out,in], GPT-2 Conv1D [in,out], fused
// NeoX QKV, rotate_half rotary, GQA repeat_kv, Gemma (1+w) norms). Used to check the weight
// mapping + reference forward end to end. One sequence at a time.
import { erf } from "../../model/reference/ops.ts";
import type { HfT, Json } from "./_fixtures.ts";

type Vec = number[];

/** Options that deliberately deviate from HF to follow TransformerLens. */
export interface NaiveOptions {
  /** Which layers use the sliding window (default: HF's rule for the family). */
  isLocal?: (layer: number) => boolean;
}

/** Result: logits [P][V] and hidden[i] = input of layer i ([P][D]), hidden[L] = final resid. */
export interface NaiveResult {
  logits: Vec[];
  hidden: Vec[][];
}

export function naiveForward(
  cfg: Json,
  w: Map<string, HfT>,
  tokens: number[],
  opts: NaiveOptions = {},
): NaiveResult {
  const t = cfg.model_type as string;
  const get = (n: string): HfT => {
    const x = w.get(n);
    if (!x) throw new Error(`naive: missing ${n}`);
    return x;
  };
  // y = W x (+ b) for nn.Linear weights [out, in].
  const linear = (x: Vec, name: string, bias?: string): Vec => {
    const W = get(name), [o, i] = W.shape;
    const b = bias && w.has(bias) ? get(bias).data : null;
    const y: Vec = [];
    for (let r = 0; r < o; r++) {
      let s = b ? b[r] : 0;
      for (let c = 0; c < i; c++) s += W.data[r * i + c] * x[c];
      y.push(s);
    }
    return y;
  };
  // GPT-2 Conv1D: y = x W + b with W [in, out].
  const conv1d = (x: Vec, name: string, bias: string): Vec => {
    const W = get(name), [i, o] = W.shape, b = get(bias).data;
    const y: Vec = [];
    for (let c = 0; c < o; c++) {
      let s = b[c];
      for (let r = 0; r < i; r++) s += x[r] * W.data[r * o + c];
      y.push(s);
    }
    return y;
  };
  const layerNorm = (x: Vec, pre: string, eps: number): Vec => {
    const m = x.reduce((a, b) => a + b, 0) / x.length;
    const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
    const g = get(pre + ".weight").data, b = get(pre + ".bias").data;
    return x.map((xi, j) => ((xi - m) / Math.sqrt(v + eps)) * g[j] + b[j]);
  };
  const gemma = t.startsWith("gemma");
  const rmsNorm = (x: Vec, weight: Float32Array, eps: number, plusOne = gemma): Vec => {
    const ms = x.reduce((a, b) => a + b * b, 0) / x.length;
    const r = 1 / Math.sqrt(ms + eps);
    return x.map((xi, j) => xi * r * (plusOne ? 1 + weight[j] : weight[j]));
  };
  const geluTanh = (x: number) =>
    0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const act = (x: number): number => {
    const name = t === "gpt2" || t === "gpt_neo"
      ? cfg.activation_function
      : gemma
      ? "gelu_tanh"
      : cfg.hidden_act;
    if (name === "gelu_new" || name === "gelu_tanh") return geluTanh(x);
    if (name === "gelu") return 0.5 * x * (1 + erf(x / Math.SQRT2));
    if (name === "silu") return x / (1 + Math.exp(-x));
    throw new Error(`naive: act ${name}`);
  };

  // Rotary: HF rotate_half on the first `rd` dims, inv_freq = base^(-2i/rd), cos/sin of cat(f,f).
  const rope = (x: Vec, pos: number, rd: number, invFreq: Vec): Vec => {
    const half = rd / 2, out = [...x];
    for (let j = 0; j < rd; j++) {
      const th = pos * invFreq[j % half];
      const rot = j < half ? -x[j + half] : x[j - half];
      out[j] = x[j] * Math.cos(th) + rot * Math.sin(th);
    }
    return out;
  };
  const invFreqs = (rd: number, base: number, scaling?: Json): Vec => {
    const inv = Array.from({ length: rd / 2 }, (_, i) => 1 / base ** ((2 * i) / rd));
    if (!scaling) return inv;
    const { factor, low_freq_factor: lo, high_freq_factor: hi } = scaling;
    const old = scaling.original_max_position_embeddings;
    return inv.map((f) => {
      const wl = (2 * Math.PI) / f;
      if (wl < old / hi) return f;
      if (wl > old / lo) return f / factor;
      const s = (old / wl - lo) / (hi - lo);
      return (1 - s) * (f / factor) + s * f;
    });
  };

  // Generic causal attention over per-position q [P][H][d], k/v [P][Hkv][d].
  const attend = (
    q: Vec[][],
    k: Vec[][],
    v: Vec[][],
    scale: number,
    window: number,
    softcap: number,
  ): Vec[][] => {
    const H = q[0].length, Hkv = k[0].length, d = v[0][0].length;
    return q.map((qi, i) =>
      qi.map((qh, h) => {
        const kvh = Math.floor(h / (H / Hkv));
        const s: Vec = [];
        for (let j = 0; j <= i; j++) {
          if (i - j >= window) {
            s.push(-Infinity);
            continue;
          }
          let dot = 0;
          for (let c = 0; c < qh.length; c++) dot += qh[c] * k[j][kvh][c];
          let sc = dot * scale;
          if (softcap > 0) sc = softcap * Math.tanh(sc / softcap);
          s.push(sc);
        }
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        const out = new Array(d).fill(0);
        for (let j = 0; j <= i; j++) {
          for (let c = 0; c < d; c++) out[c] += (e[j] / z) * v[j][kvh][c];
        }
        return out;
      })
    );
  };
  const split = (x: Vec, n: number, d: number): Vec[] =>
    Array.from({ length: n }, (_, h) => x.slice(h * d, (h + 1) * d));

  let x: Vec[];
  const hidden: Vec[][] = [];
  let logits: Vec[];

  if (t === "gpt2" || t === "gpt_neo") {
    const pre = w.has("transformer.wte.weight") ? "transformer." : "";
    const D = cfg.n_embd ?? cfg.hidden_size, H = cfg.n_head ?? cfg.num_heads, d = D / H;
    const L = cfg.n_layer ?? cfg.num_layers, eps = cfg.layer_norm_epsilon;
    const wte = get(pre + "wte.weight").data, wpe = get(pre + "wpe.weight").data;
    x = tokens.map((tok, p) =>
      Array.from({ length: D }, (_, j) => wte[tok * D + j] + wpe[p * D + j])
    );
    const types: string[] = t === "gpt_neo"
      ? cfg.attention_types.flatMap(([ts, n]: [string[], number]) => Array(n).fill(ts).flat())
      : [];
    for (let l = 0; l < L; l++) {
      hidden.push(x.map((r) => [...r]));
      const h = `${pre}h.${l}.`;
      const a = x.map((r) => layerNorm(r, h + "ln_1", eps));
      let q: Vec[][], k: Vec[][], v: Vec[][], attnOut: Vec[];
      if (t === "gpt2") {
        const qkv = a.map((r) => conv1d(r, h + "attn.c_attn.weight", h + "attn.c_attn.bias"));
        q = qkv.map((r) => split(r.slice(0, D), H, d));
        k = qkv.map((r) => split(r.slice(D, 2 * D), H, d));
        v = qkv.map((r) => split(r.slice(2 * D), H, d));
        const z = attend(q, k, v, 1 / Math.sqrt(d), Infinity, 0);
        attnOut = z.map((r) => conv1d(r.flat(), h + "attn.c_proj.weight", h + "attn.c_proj.bias"));
      } else {
        const at = h + "attn.attention.";
        q = a.map((r) => split(linear(r, at + "q_proj.weight"), H, d));
        k = a.map((r) => split(linear(r, at + "k_proj.weight"), H, d));
        v = a.map((r) => split(linear(r, at + "v_proj.weight"), H, d));
        const window = (opts.isLocal?.(l) ?? types[l] === "local") ? cfg.window_size : Infinity;
        const z = attend(q, k, v, 1, window, 0); // GPT-Neo: no 1/sqrt(d)
        attnOut = z.map((r) => linear(r.flat(), at + "out_proj.weight", at + "out_proj.bias"));
      }
      x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j]));
      const mlp = x.map((r) => {
        const hIn = layerNorm(r, h + "ln_2", eps);
        if (t === "gpt2") {
          const u = conv1d(hIn, h + "mlp.c_fc.weight", h + "mlp.c_fc.bias").map(act);
          return conv1d(u, h + "mlp.c_proj.weight", h + "mlp.c_proj.bias");
        }
        const u = linear(hIn, h + "mlp.c_fc.weight", h + "mlp.c_fc.bias").map(act);
        return linear(u, h + "mlp.c_proj.weight", h + "mlp.c_proj.bias");
      });
      x = x.map((r, p) => r.map((xi, j) => xi + mlp[p][j]));
    }
    hidden.push(x);
    const f = x.map((r) => layerNorm(r, pre + "ln_f", eps));
    const head = w.has("lm_head.weight") ? "lm_head.weight" : pre + "wte.weight";
    logits = f.map((r) => linear(r, head));
    return { logits, hidden };
  }

  if (t === "gpt_neox") {
    const D = cfg.hidden_size, H = cfg.num_attention_heads, d = D / H, eps = cfg.layer_norm_eps;
    const rd = Math.floor(d * cfg.rotary_pct), inv = invFreqs(rd, cfg.rotary_emb_base);
    const emb = get("gpt_neox.embed_in.weight").data;
    x = tokens.map((tok) => Array.from({ length: D }, (_, j) => emb[tok * D + j]));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      hidden.push(x.map((r) => [...r]));
      const h = `gpt_neox.layers.${l}.`;
      const a = x.map((r) => layerNorm(r, h + "input_layernorm", eps));
      // Fused output viewed as (H, 3, d).
      const qkv = a.map((r) =>
        linear(r, h + "attention.query_key_value.weight", h + "attention.query_key_value.bias")
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
        linear(r.flat(), h + "attention.dense.weight", h + "attention.dense.bias")
      );
      const mlpOut = x.map((r) => {
        const m = layerNorm(r, h + "post_attention_layernorm", eps);
        const u = linear(m, h + "mlp.dense_h_to_4h.weight", h + "mlp.dense_h_to_4h.bias").map(act);
        return linear(u, h + "mlp.dense_4h_to_h.weight", h + "mlp.dense_4h_to_h.bias");
      });
      x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j] + mlpOut[p][j]));
    }
    hidden.push(x);
    const f = x.map((r) => layerNorm(r, "gpt_neox.final_layer_norm", eps));
    logits = f.map((r) => linear(r, "embed_out.weight"));
    return { logits, hidden };
  }

  // Llama / Mistral / Qwen2 / Qwen3 / Gemma / Gemma2.
  const D = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H;
  const d = cfg.head_dim ?? D / H, eps = cfg.rms_norm_eps;
  const inv = invFreqs(d, cfg.rope_theta ?? 10000, cfg.rope_scaling);
  const emb = get("model.embed_tokens.weight").data;
  const embScale = gemma ? Math.sqrt(D) : 1;
  x = tokens.map((tok) => Array.from({ length: D }, (_, j) => emb[tok * D + j] * embScale));
  const scale = t === "gemma2" ? cfg.query_pre_attn_scalar ** -0.5 : 1 / Math.sqrt(d);
  const softcap = t === "gemma2" ? cfg.attn_logit_softcapping ?? 0 : 0;
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    hidden.push(x.map((r) => [...r]));
    const h = `model.layers.${l}.`, a = h + "self_attn.";
    const nw = (n: string) => get(h + n + ".weight").data;
    const xa = x.map((r) => rmsNorm(r, nw("input_layernorm"), eps));
    const qkNorm = (vec: Vec, n: string) =>
      t === "qwen3" ? rmsNorm(vec, get(a + n + ".weight").data, eps, false) : vec;
    const q = xa.map((r, p) =>
      split(linear(r, a + "q_proj.weight", a + "q_proj.bias"), H, d).map((qh) =>
        rope(qkNorm(qh, "q_norm"), p, d, inv)
      )
    );
    const k = xa.map((r, p) =>
      split(linear(r, a + "k_proj.weight", a + "k_proj.bias"), Hkv, d).map((kh) =>
        rope(qkNorm(kh, "k_norm"), p, d, inv)
      )
    );
    const v = xa.map((r) => split(linear(r, a + "v_proj.weight", a + "v_proj.bias"), Hkv, d));
    const hfLocal = t === "mistral" ? cfg.sliding_window != null : t === "gemma2" && l % 2 === 0;
    const local = opts.isLocal ? opts.isLocal(l) : hfLocal;
    const window = local ? cfg.sliding_window : Infinity;
    const z = attend(q, k, v, scale, window, softcap);
    let attnOut = z.map((r) => linear(r.flat(), a + "o_proj.weight"));
    if (t === "gemma2") {
      attnOut = attnOut.map((r) => rmsNorm(r, nw("post_attention_layernorm"), eps));
    }
    x = x.map((r, p) => r.map((xi, j) => xi + attnOut[p][j]));
    const preMlp = t === "gemma2" ? "pre_feedforward_layernorm" : "post_attention_layernorm";
    let mlpOut = x.map((r) => {
      const m = rmsNorm(r, nw(preMlp), eps);
      const gate = linear(m, h + "mlp.gate_proj.weight").map(act);
      const up = linear(m, h + "mlp.up_proj.weight");
      return linear(gate.map((g, i) => g * up[i]), h + "mlp.down_proj.weight");
    });
    if (t === "gemma2") {
      mlpOut = mlpOut.map((r) => rmsNorm(r, nw("post_feedforward_layernorm"), eps));
    }
    x = x.map((r, p) => r.map((xi, j) => xi + mlpOut[p][j]));
  }
  hidden.push(x);
  const f = x.map((r) => rmsNorm(r, get("model.norm.weight").data, eps));
  const head = w.has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  logits = f.map((r) => linear(r, head));
  const cap = t === "gemma2" ? cfg.final_logit_softcapping ?? 0 : 0;
  if (cap > 0) logits = logits.map((r) => r.map((z) => cap * Math.tanh(z / cap)));
  return { logits, hidden };
}
