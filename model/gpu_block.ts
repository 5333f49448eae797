/**
 * One transformer block of the GPU forward, hook for hook as the reference (`reference.ts`,
 * `attention.ts`, `mlp.ts`): resid_pre → ln1 (×3 streams when its hooks are hooked) → q/k/v
 * (→ q/k norm → rotary) → attention (fused unless scores or pattern are requested) → z → output
 * (per-head hook_result when enabled) → ln1_post → attn_out → resid_mid → mlp_in → ln2 →
 * mlp.hook_in → MLP (fused epilogues unless hook_pre/pre_linear are requested) → ln2_post →
 * mlp_out → resid_post. Every intermediate is released as soon as it is consumed.
 * @module
 */

import { binary } from "../gpu/kernels/binary.ts";
import { Tensor } from "../gpu/tensor.ts";
import { attnTypeOf, kvHeadCount, type ModelConfig } from "./config.ts";
import type { GpuHookContext } from "./gpu_hooks.ts";
import { normWithHooks } from "./gpu_norm.ts";
import type { GpuLayer } from "./gpu_params.ts";
import { type AttnDims, attnFused, attnScores, attnZ, softmaxMasked } from "./kernels/attention.ts";
import { linear } from "./kernels/linear.ts";
import { applyAct, gatedCombine, headResult, sumHeads } from "./kernels/pointwise.ts";
import { rotary } from "./kernels/rotary.ts";

/** Everything a block needs besides its weights. */
export interface BlockEnv {
  /** The model config. */
  cfg: ModelConfig;
  /** The run's hooks and cache. */
  ctx: GpuHookContext;
  /** Batch size. */
  B: number;
  /** Positions. */
  P: number;
  /** Rotary tables (rotary models only). */
  rotary: { sin: Tensor; cos: Tensor } | null;
}

/** A tensor owned by the caller reshaped: a view when the cache holds it, else re-owned. */
function adopt(ctx: GpuHookContext, t: Tensor, shape: number[]): Tensor {
  if (ctx.isCached(t) || !t.owned) return t.reshape(shape);
  // Ownership moves to the new object; the old one is dropped without dispose().
  return new Tensor(t.gpu, t.buffer, shape, t.dtype, t.offset, true);
}

async function attention(env: BlockEnv, p: GpuLayer, l: number, streams: Tensor[]) {
  const { cfg, ctx, B, P } = env;
  const H = cfg.nHeads, Hkv = kvHeadCount(cfg), d = cfg.dHead;
  const a = `blocks.${l}.attn.`;
  const proj = async (x: Tensor, w: typeof p.q, n: number, name: string) =>
    await ctx.fire(a + name, linear(x, w, { outShape: [B, P, n, d] }));
  let q = await proj(streams[0], p.q, H, "hook_q");
  let k = await proj(streams[1], p.k, Hkv, "hook_k");
  const v = await proj(streams[2], p.v, Hkv, "hook_v");
  if (cfg.useQkNorm) {
    // TL flattens to [B·P·heads, d] around these norms, so their hooks are 2-D.
    const qk = async (t: Tensor, n: number, name: string, w: Tensor) => {
      const flat = t.reshape([B * P * n, d]);
      const out = await normWithHooks(ctx, a + name, "RMS", cfg.eps, { w, b: null }, flat);
      ctx.release(t);
      return adopt(ctx, out, [B, P, n, d]);
    };
    q = await qk(q, H, "q_norm", p.qNorm!);
    k = await qk(k, Hkv, "k_norm", p.kNorm!);
  }
  if (env.rotary) {
    const { sin, cos } = env.rotary;
    const rot = async (t: Tensor, name: string) => {
      const r = rotary(t, sin, cos, cfg.rotaryDim!, cfg.rotaryAdjacentPairs);
      ctx.release(t);
      return await ctx.fire(a + name, r);
    };
    q = await rot(q, "hook_rot_q");
    k = await rot(k, "hook_rot_k");
  }
  let scale = cfg.useAttnScale ? cfg.attnScale : 1;
  if (cfg.scaleAttnByInverseLayerIdx) scale *= l + 1;
  const dims: AttnDims = {
    B,
    P,
    H,
    Hkv,
    d,
    scale,
    softcap: cfg.attnScoresSoftCap,
    window: attnTypeOf(cfg, l) === "local" ? cfg.windowSize : null,
  };
  let z: Tensor;
  if (ctx.wants(a + "hook_attn_scores") || ctx.wants(a + "hook_pattern")) {
    const scores = await ctx.fire(a + "hook_attn_scores", attnScores(q, k, dims));
    const pattern = await ctx.fire(a + "hook_pattern", softmaxMasked(scores));
    ctx.release(scores);
    z = attnZ(pattern, v, dims);
    ctx.release(pattern);
  } else {
    z = attnFused(q, k, v, dims);
  }
  ctx.release(q);
  ctx.release(k);
  ctx.release(v);
  z = await ctx.fire(a + "hook_z", z);
  let out: Tensor;
  if (cfg.useAttnResult) {
    const result = await ctx.fire(a + "hook_result", headResult(z, p.WO));
    out = sumHeads(result, p.bO);
    ctx.release(result);
  } else {
    out = linear(z.reshape([B, P, H * d]), p.o);
  }
  ctx.release(z);
  return out;
}

async function mlp(env: BlockEnv, p: GpuLayer, l: number, x: Tensor): Promise<Tensor> {
  const { cfg, ctx } = env;
  const m = `blocks.${l}.mlp.`;
  const h = await ctx.fire(m + "hook_in", x);
  let post: Tensor;
  if (cfg.gatedMlp) {
    if (ctx.wants(m + "hook_pre") || ctx.wants(m + "hook_pre_linear")) {
      const gate = await ctx.fire(m + "hook_pre", linear(h, p.gateOnly!));
      const up = await ctx.fire(m + "hook_pre_linear", linear(h, p.upOnly!));
      post = gatedCombine(gate, up, p.bIn!, cfg.actFn);
      ctx.release(gate);
      ctx.release(up);
    } else {
      post = linear(h, p.mlpIn, { act: cfg.actFn });
    }
  } else if (ctx.wants(m + "hook_pre")) {
    const pre = await ctx.fire(m + "hook_pre", linear(h, p.mlpIn));
    post = applyAct(pre, cfg.actFn);
    ctx.release(pre);
  } else {
    post = linear(h, p.mlpIn, { act: cfg.actFn });
  }
  ctx.release(h);
  post = await ctx.fire(m + "hook_post", post);
  const out = linear(post, p.mlpOut);
  ctx.release(post);
  return out;
}

const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);

/** Runs block `l` on `residIn` (consumed) and returns resid_post (owned by the caller). */
export async function blockForward(
  env: BlockEnv,
  p: GpuLayer,
  l: number,
  residIn: Tensor,
): Promise<Tensor> {
  const { cfg, ctx } = env;
  const b = `blocks.${l}.`;
  const normOf = (name: string, w: GpuLayer["ln1"], x: Tensor, kind = cfg.normalizationType) =>
    normWithHooks(ctx, b + name, kind, cfg.eps, w, x);
  const resid = await ctx.fire(b + "hook_resid_pre", residIn);

  // TL runs ln1 on the query, key and value inputs separately: three firings when hooked.
  let streams: Tensor[];
  if (ctx.hooked(b + "ln1.hook_scale") || ctx.hooked(b + "ln1.hook_normalized")) {
    streams = [];
    for (let i = 0; i < 3; i++) streams.push(await normOf("ln1", p.ln1, resid));
  } else {
    const s = await normOf("ln1", p.ln1, resid);
    streams = [s, s, s];
  }
  let attnOut = await attention(env, p, l, streams);
  for (const s of new Set(streams)) ctx.release(s);
  if (p.ln1Post) {
    const normed = await normOf("ln1_post", p.ln1Post, attnOut, "RMS");
    ctx.release(attnOut);
    attnOut = normed;
  }
  attnOut = await ctx.fire(b + "hook_attn_out", attnOut);

  const mlpBranch = async (x: Tensor): Promise<Tensor> => {
    let input = x;
    if (cfg.useHookMlpIn && ctx.wants(b + "hook_mlp_in")) {
      input = await ctx.fire(b + "hook_mlp_in", x.clone());
    }
    const normed = await normOf("ln2", p.ln2, input);
    if (input !== x) ctx.release(input);
    let out = await mlp(env, p, l, normed);
    if (p.ln2Post) {
      const n2 = await normOf("ln2_post", p.ln2Post, out, "RMS");
      ctx.release(out);
      out = n2;
    }
    return await ctx.fire(b + "hook_mlp_out", out);
  };

  if (cfg.parallelAttnMlp) {
    const mlpOut = await mlpBranch(resid);
    const sum = add(resid, attnOut);
    const post = add(sum, mlpOut);
    for (const t of [sum, resid, attnOut, mlpOut]) ctx.release(t);
    return await ctx.fire(b + "hook_resid_post", post);
  }
  const mid = await ctx.fire(b + "hook_resid_mid", add(resid, attnOut));
  ctx.release(resid);
  ctx.release(attnOut);
  const mlpOut = await mlpBranch(mid);
  const post = add(mid, mlpOut);
  ctx.release(mid);
  ctx.release(mlpOut);
  return await ctx.fire(b + "hook_resid_post", post);
}
