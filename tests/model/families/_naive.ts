// Building blocks of the family fixtures' naive forwards: deliberately naive float64 code
// written directly from the Hugging Face module semantics, reading HF-layout tensors
// (nn.Linear [out,in], GPT-2 Conv1D [in,out]), with rotate_half rotary, GQA repeat_kv and
// optional (1+w) RMSNorm. One sequence at a time.
import { erf } from "../../../model/reference/ops.ts";
import type { HfT } from "./_harness.ts";

export type Vec = number[];

/** HF-layout tensors and the layers that read them by name. */
export class HfWeights {
  constructor(readonly w: Map<string, HfT>) {}

  /** True when tensor `n` exists. */
  has(n: string): boolean {
    return this.w.has(n);
  }

  /** Tensor `n` (an error naming it when absent). */
  get(n: string): HfT {
    const x = this.w.get(n);
    if (!x) throw new Error(`naive: missing ${n}`);
    return x;
  }

  /** y = W x (+ b) for nn.Linear weights [out, in]; a missing bias counts as none. */
  linear(x: Vec, name: string, bias?: string): Vec {
    const W = this.get(name), [o, i] = W.shape;
    const b = bias && this.w.has(bias) ? this.get(bias).data : null;
    const y: Vec = [];
    for (let r = 0; r < o; r++) {
      let s = b ? b[r] : 0;
      for (let c = 0; c < i; c++) s += W.data[r * i + c] * x[c];
      y.push(s);
    }
    return y;
  }

  /** GPT-2 Conv1D: y = x W + b with W [in, out]. */
  conv1d(x: Vec, name: string, bias: string): Vec {
    const W = this.get(name), [i, o] = W.shape, b = this.get(bias).data;
    const y: Vec = [];
    for (let c = 0; c < o; c++) {
      let s = b[c];
      for (let r = 0; r < i; r++) s += x[r] * W.data[r * o + c];
      y.push(s);
    }
    return y;
  }

  /** LayerNorm with `<pre>.weight` and `<pre>.bias`. */
  layerNorm(x: Vec, pre: string, eps: number): Vec {
    const m = x.reduce((a, b) => a + b, 0) / x.length;
    const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
    const g = this.get(pre + ".weight").data, b = this.get(pre + ".bias").data;
    return x.map((xi, j) => ((xi - m) / Math.sqrt(v + eps)) * g[j] + b[j]);
  }
}

/** RMSNorm by `weight` (Gemma: by 1 + weight). */
export function rmsNorm(x: Vec, weight: Float32Array, eps: number, plusOne: boolean): Vec {
  const ms = x.reduce((a, b) => a + b * b, 0) / x.length;
  const r = 1 / Math.sqrt(ms + eps);
  return x.map((xi, j) => xi * r * (plusOne ? 1 + weight[j] : weight[j]));
}

/** The tanh GELU (`gelu_new`, `gelu_pytorch_tanh`). */
export const geluTanh = (x: number): number =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** The activation HF names `name`. */
export function act(name: string): (x: number) => number {
  if (name === "gelu_new" || name === "gelu_tanh") return geluTanh;
  if (name === "gelu") return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  if (name === "silu") return (x) => x / (1 + Math.exp(-x));
  throw new Error(`naive: act ${name}`);
}

/** Rotary: HF rotate_half on the first `rd` dims, cos/sin of cat(f, f). */
export function rope(x: Vec, pos: number, rd: number, invFreq: Vec): Vec {
  const half = rd / 2, out = [...x];
  for (let j = 0; j < rd; j++) {
    const th = pos * invFreq[j % half];
    const rot = j < half ? -x[j + half] : x[j - half];
    out[j] = x[j] * Math.cos(th) + rot * Math.sin(th);
  }
  return out;
}

/** inv_freq = base^(-2i/rd), with Llama-3.1's NTK-by-parts `scaling` when given. */
export function invFreqs(rd: number, base: number, scaling?: Record<string, number>): Vec {
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
}

/** Causal attention over per-position q [P][H][d], k/v [P][Hkv][d]; keys ≥ `window` back drop. */
export function attend(
  q: Vec[][],
  k: Vec[][],
  v: Vec[][],
  scale: number,
  window: number,
  softcap: number,
): Vec[][] {
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
}

/** `[n·d]` → n vectors of d. */
export const split = (x: Vec, n: number, d: number): Vec[] =>
  Array.from({ length: n }, (_, h) => x.slice(h * d, (h + 1) * d));
