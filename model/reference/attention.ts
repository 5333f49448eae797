/**
 * Attention with TL hook points (spec transformer_lens.md §1.2 step 4): hook_q/k/v
 * [B,P,H|Hkv,d] → optional q/k RMSNorm (Qwen3) → rotary (hook_rot_q/k) → scores / attnScale →
 * soft cap → causal/local mask (−∞) → hook_attn_scores [B,H,P,P] → softmax (NaN→0) →
 * hook_pattern → hook_z [B,P,H,d] → optional hook_result [B,P,H,D] → output [B,P,D].
 * @module
 */

import { attnTypeOf, kvHeadCount, kvPrefix, type ModelConfig } from "../config.ts";
import type { HookRunner } from "../hooks/reference.ts";
import { applyNorm } from "./norms.ts";
import { applyRotary, linear, type RotaryTables, softmaxRows } from "./ops.ts";
import { getParam, type ParamMap } from "../params.ts";

/** x `[B·P, D]` times per-head W `[nH, D, d]` plus b `[nH, d]` → `[B, P, nH, d]`. */
function headProjection(
  x: Float32Array,
  rows: number,
  D: number,
  W: Float32Array,
  b: Float32Array,
  nH: number,
  d: number,
): Float32Array {
  const out = new Float32Array(rows * nH * d);
  for (let h = 0; h < nH; h++) {
    const y = linear(x, rows, D, W, d, b.subarray(h * d, (h + 1) * d), h * D * d);
    for (let r = 0; r < rows; r++) {
      out.set(y.subarray(r * d, (r + 1) * d), (r * nH + h) * d);
    }
  }
  return out;
}

/** Inputs of one attention layer: the three (already normalized) streams. */
export interface AttentionInputs {
  query: Float32Array;
  key: Float32Array;
  value: Float32Array;
}

/** Runs attention of layer `l` on `[B, P, D]` inputs; returns `[B, P, D]` (before ln1_post). */
export function attentionForward(
  run: HookRunner,
  cfg: ModelConfig,
  params: ParamMap,
  l: number,
  inputs: AttentionInputs,
  B: number,
  P: number,
  rotary: RotaryTables | null,
): Float32Array {
  const { dModel: D, nHeads: H, dHead: d } = cfg;
  const Hkv = kvHeadCount(cfg), g = kvPrefix(cfg), group = H / Hkv;
  const pre = `blocks.${l}.attn.`;
  const p = (name: string, shape: number[]) => getParam(params, pre + name, shape).data;
  const rows = B * P;

  let q: Float32Array = headProjection(
    inputs.query,
    rows,
    D,
    p("W_Q", [H, D, d]),
    p("b_Q", [H, d]),
    H,
    d,
  );
  q = run.fireData(pre + "hook_q", q, [B, P, H, d]);
  const Wk = p(`${g}W_K`, [Hkv, D, d]), bk = p(`${g}b_K`, [Hkv, d]);
  let k: Float32Array = headProjection(inputs.key, rows, D, Wk, bk, Hkv, d);
  k = run.fireData(pre + "hook_k", k, [B, P, Hkv, d]);
  const Wv = p(`${g}W_V`, [Hkv, D, d]), bv = p(`${g}b_V`, [Hkv, d]);
  let v: Float32Array = headProjection(inputs.value, rows, D, Wv, bv, Hkv, d);
  v = run.fireData(pre + "hook_v", v, [B, P, Hkv, d]);

  if (cfg.useQkNorm) {
    // TL flattens to [B·P·heads, d] before the norm, so these hooks have 2-D shapes.
    q = applyNorm(run, pre + "q_norm", "RMS", q, [rows * H], d, cfg.eps, { w: p("q_norm.w", [d]) });
    k = applyNorm(run, pre + "k_norm", "RMS", k, [rows * Hkv], d, cfg.eps, {
      w: p("k_norm.w", [d]),
    });
  }
  if (rotary) {
    const adj = cfg.rotaryAdjacentPairs;
    q = run.fireData(pre + "hook_rot_q", applyRotary(q, B, P, H, d, rotary, adj), [B, P, H, d]);
    k = run.fireData(pre + "hook_rot_k", applyRotary(k, B, P, Hkv, d, rotary, adj), [
      B,
      P,
      Hkv,
      d,
    ]);
  }

  // Scores [B, H, Pq, Pk].
  let scale = cfg.useAttnScale ? cfg.attnScale : 1;
  if (cfg.scaleAttnByInverseLayerIdx) scale *= l + 1;
  const cap = cfg.attnScoresSoftCap;
  const local = attnTypeOf(cfg, l) === "local";
  const window = cfg.windowSize ?? Infinity;
  let scores: Float32Array = new Float32Array(B * H * P * P);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < P; i++) {
        const so = ((b * H + h) * P + i) * P;
        const qo = ((b * P + i) * H + h) * d;
        for (let j = 0; j < P; j++) {
          if (j > i || (local && i - j >= window)) {
            scores[so + j] = -Infinity;
            continue;
          }
          const ko = ((b * P + j) * Hkv + hk) * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
          let s = dot / scale;
          if (cap > 0) s = cap * Math.tanh(s / cap);
          scores[so + j] = s;
        }
      }
    }
  }
  scores = run.fireData(pre + "hook_attn_scores", scores, [B, H, P, P]);
  let pattern: Float32Array = new Float32Array(scores);
  softmaxRows(pattern, B * H * P, P);
  pattern = run.fireData(pre + "hook_pattern", pattern, [B, H, P, P]);

  // z[b, i, h, :] = Σ_j pattern[b, h, i, j] · v[b, j, h / group, :] (all j, so hook edits count).
  let z: Float32Array = new Float32Array(rows * H * d);
  const acc = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < P; i++) {
        acc.fill(0);
        const po = ((b * H + h) * P + i) * P;
        for (let j = 0; j < P; j++) {
          const w = pattern[po + j];
          if (w === 0) continue;
          const vo = ((b * P + j) * Hkv + hk) * d;
          for (let c = 0; c < d; c++) acc[c] += w * v[vo + c];
        }
        z.set(acc, ((b * P + i) * H + h) * d);
      }
    }
  }
  z = run.fireData(pre + "hook_z", z, [B, P, H, d]);

  const WO = p("W_O", [H, d, D]), bO = p("b_O", [D]);
  if (!cfg.useAttnResult) return linear(z, rows, H * d, WO, D, bO);
  // Per-head outputs without b_O, then summed.
  let result: Float32Array = new Float32Array(rows * H * D);
  for (let h = 0; h < H; h++) {
    const zh = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) zh.set(z.subarray((r * H + h) * d, (r * H + h + 1) * d), r * d);
    const y = linear(zh, rows, d, WO, D, undefined, h * d * D);
    for (let r = 0; r < rows; r++) result.set(y.subarray(r * D, (r + 1) * D), (r * H + h) * D);
  }
  result = run.fireData(pre + "hook_result", result, [B, P, H, D]);
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < D; c++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += result[(r * H + h) * D + c];
      out[r * D + c] = s + bO[c];
    }
  }
  return out;
}
