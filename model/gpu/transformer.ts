/**
 * The WebGPU forward pass of a TransformerLens `HookedTransformer`, in one file, top-down:
 *
 * ```text
 * tokens ─► embed (+ learned positions) ─► block × nLayers ─► ln_final ─► unembed (─► soft cap)
 * block:  resid_pre ─► ln1 ─► attention (─► ln1_post) ─► + ─► resid_mid
 *           ─► ln2 ─► MLP (─► ln2_post) ─► + ─► resid_post
 *         (parallel attn/MLP: both branches read resid_pre and add to it; no resid_mid)
 * attention: q/k/v ─► (q/k RMSNorm) ─► (rotary) ─► scores ─► pattern ─► z ─► W_O
 * MLP:    W_in ─► act ─► W_out, or gated: act(x·W_gate) · (x·W_in) ─► W_out
 * ```
 *
 * Every TL hook point of the reference forward (`model/reference/`) fires with the same names,
 * shapes and order, but is materialised only when requested (a hook, a cache filter or a
 * spliced SAE asks for it through the {@link GpuHookContext}); otherwise fused kernels run
 * (attention without scores or pattern, linear layers with activation epilogues, norms in one
 * pass). No family is named here: the config's flags choose the mechanisms. Parameters are
 * uploaded once ({@link GpuModel}, layouts in `params.ts`); a forward records its dispatches
 * without submitting, so a caller that reads nothing until the end gets one submit per forward.
 * Every intermediate is released as soon as it is consumed.
 * @module
 */

import { binary } from "../../gpu/kernels/binary.ts";
import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { attnTypeOf, kvHeadCount, type ModelConfig, type NormalizationType } from "../config.ts";
import { ModelError } from "../errors.ts";
import { GpuHookContext } from "../hooks/gpu.ts";
import type { ParamMap } from "../params.ts";
import {
  disposeParams,
  type GpuLayer,
  type GpuNorm,
  type GpuParams,
  RotaryCache,
  uploadParams,
} from "./params.ts";
import { type AttnDims, attnFused, attnScores, attnZ, softmaxMasked } from "./kernels/attention.ts";
import { checkTokenRange, embedGather, posBroadcast } from "./kernels/embed.ts";
import { linear } from "./kernels/linear.ts";
import { norm } from "./kernels/norm.ts";
import { applyAct, gatedCombine, headResult, sumHeads } from "./kernels/pointwise.ts";
import { rotary } from "./kernels/rotary.ts";

/** A model's config and its parameters on one GPU device. */
export class GpuModel {
  /** Parameters in the GPU layouts. */
  readonly params: GpuParams;
  readonly #rotary: RotaryCache | null;
  #disposed = false;

  /** Uploads (validated) TL parameters `params` for `cfg` to `gpu`. */
  constructor(readonly gpu: Gpu, readonly cfg: ModelConfig, params: ParamMap) {
    this.params = uploadParams(gpu, cfg, params);
    this.#rotary = cfg.positionalEmbeddingType === "rotary" ? new RotaryCache(gpu, cfg) : null;
  }

  /** Rotary tables for `P` positions (uploads if needed), or null for non-rotary models. */
  rotaryTables(P: number): { sin: Tensor; cos: Tensor } | null {
    return this.#rotary ? this.#rotary.tables(P) : null;
  }

  /** True after {@link dispose}. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees every GPU buffer of the model. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    disposeParams(this.params);
    this.#rotary?.dispose();
  }
}

/** Options of {@link gpuForward}. */
export interface GpuForwardOptions {
  /** Hooks, cache filter and splices of this run (default: none). */
  ctx?: GpuHookContext;
  /**
   * Run only blocks 0 … k−1 and return the residual (TL `stop_at_layer`; negative counts from
   * the end). Later hooks never fire.
   */
  stopAtLayer?: number;
}

/** Result of {@link gpuForward}. The caller owns (and disposes) the tensors. */
export interface GpuForwardResult {
  /** Logits `[B, P, V]`, or null when stopped early. */
  logits: Tensor | null;
  /** With `stopAtLayer`: the residual `[B, P, D]` after block k−1 (or the embedding). */
  residual: Tensor | null;
  /** The run's hook context (its `cache` holds the cached hook values). */
  ctx: GpuHookContext;
}

/** Resolves TL's `stop_at_layer` (Python slicing for negatives) to a block count. */
export function resolveStop(cfg: ModelConfig, stopAtLayer: number | undefined): number {
  if (stopAtLayer !== undefined && !Number.isSafeInteger(stopAtLayer)) {
    throw new ModelError(`stopAtLayer is ${stopAtLayer}, expected an integer (or undefined)`);
  }
  let stop = stopAtLayer ?? cfg.nLayers;
  if (stop < 0) stop = Math.max(0, cfg.nLayers + stop);
  return Math.min(stop, cfg.nLayers);
}

/** Checks host token ids and uploads them as an i32 `[B, P]` tensor. */
export function uploadTokens(gpu: Gpu, cfg: ModelConfig, tokens: number[][]): Tensor {
  const B = tokens.length;
  if (B === 0) throw new ModelError("forward: empty batch");
  const P = tokens[0].length;
  if (P === 0) throw new ModelError("forward: empty sequences");
  const ids = new Int32Array(B * P);
  for (let b = 0; b < B; b++) {
    if (tokens[b].length !== P) {
      throw new ModelError("forward: every batch row must have the same length (pad first)");
    }
    for (let p = 0; p < P; p++) {
      const t = tokens[b][p];
      if (!Number.isInteger(t) || t < 0 || t >= cfg.dVocab) {
        throw new ModelError(`forward: token ${t} at [${b},${p}] outside [0, ${cfg.dVocab})`);
      }
      ids[b * P + p] = t;
    }
  }
  return Tensor.from(ids, [B, P], { gpu });
}

/**
 * Runs `model` on i32 `tokens` `[B, P]` (not consumed). Records dispatches only, except where a
 * hook reads a value back or new rotary tables must be uploaded first. Ids outside
 * `[0, d_vocab)` are found on the GPU: the next read-back (the logits, a loss, a hook's read,
 * `gpu.sync()`) throws a `ModelError` naming them.
 */
export async function gpuForward(
  model: GpuModel,
  tokens: Tensor,
  opts: GpuForwardOptions = {},
): Promise<GpuForwardResult> {
  if (model.disposed) throw new ModelError("forward: the model was disposed");
  const { cfg, params } = model;
  if (tokens.dtype !== "i32" || tokens.rank !== 2 || tokens.disposed) {
    throw new ModelError(`forward: tokens ${tokens} must be a live i32 tensor [batch, pos]`);
  }
  const [B, P] = tokens.shape;
  if (B === 0 || P === 0) throw new ModelError(`forward: tokens ${tokens} are empty`);
  const standard = cfg.positionalEmbeddingType === "standard";
  if (standard && P > cfg.nCtx) {
    throw new ModelError(`forward: ${P} positions exceed nCtx ${cfg.nCtx}`);
  }
  // Ids uploaded from the host were checked by uploadTokens; a caller's tensor is checked on the
  // GPU, and the next read-back (of the logits, a loss, a hook's read) throws a ModelError.
  checkTokenRange(tokens, cfg.dVocab);
  const ctx = opts.ctx ?? new GpuHookContext();
  const stop = resolveStop(cfg, opts.stopAtLayer);
  const rotary = model.rotaryTables(P);

  let resid: Tensor;
  if (ctx.wants("hook_embed") || (standard && ctx.wants("hook_pos_embed"))) {
    const embed = await ctx.fire("hook_embed", embedGather(tokens, params.embed, null));
    if (standard) {
      const pos = await ctx.fire("hook_pos_embed", posBroadcast(params.pos!, B, P));
      resid = binary("add", embed, pos);
      ctx.release(embed);
      ctx.release(pos);
    } else {
      resid = embed;
    }
  } else {
    resid = embedGather(tokens, params.embed, standard ? params.pos : null);
  }

  const env = { cfg, ctx, B, P, rotary };
  for (let l = 0; l < stop; l++) resid = await blockForward(env, params.layers[l], l, resid);
  if (stop < cfg.nLayers || opts.stopAtLayer !== undefined) {
    // The caller owns the result: never hand out the cache's own tensor.
    return { logits: null, residual: ctx.isCached(resid) ? resid.clone() : resid, ctx };
  }
  const normed = await normWithHooks(
    ctx,
    "ln_final",
    cfg.normalizationType,
    cfg.eps,
    params.lnFinal,
    resid,
  );
  ctx.release(resid);
  const logits = linear(normed, params.unembed, { softcap: cfg.outputLogitsSoftCap });
  ctx.release(normed);
  return { logits, residual: null, ctx };
}

// ─── block ───────────────────────────────────────────────────────

/** Everything a block needs besides its weights. */
interface BlockEnv {
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

const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);

/** Runs block `l` on `residIn` (consumed) and returns resid_post (owned by the caller). */
async function blockForward(
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

// ─── attention ───────────────────────────────────────────────────

/** Attention of block `l` on its three (normalized) input streams; returns `[B, P, D]`. */
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

/** A tensor owned by the caller reshaped: a view when the cache holds it, else re-owned. */
function adopt(ctx: GpuHookContext, t: Tensor, shape: number[]): Tensor {
  if (ctx.isCached(t) || !t.owned) return t.reshape(shape);
  // Ownership moves to the new object; the old one is dropped without dispose().
  return new Tensor(t.gpu, t.buffer, shape, t.dtype, t.offset, true);
}

// ─── MLP ─────────────────────────────────────────────────────────

/** The MLP of block `l` on its normalized input `[B, P, D]`; returns `[B, P, D]`. */
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

// ─── norms ───────────────────────────────────────────────────────

/**
 * Runs norm `prefix` of `kind` on `x` (not consumed) and returns the module output (owned by
 * the caller). For RMS the output is hook_normalized · w.
 */
async function normWithHooks(
  ctx: GpuHookContext,
  prefix: string,
  kind: NormalizationType,
  eps: number,
  weights: GpuNorm,
  x: Tensor,
): Promise<Tensor> {
  const scaleName = `${prefix}.hook_scale`, normName = `${prefix}.hook_normalized`;
  const wantScale = ctx.wants(scaleName), wantNorm = ctx.wants(normName);
  // RMS's hook_normalized is taken before the weight: split the weight off when it is wanted.
  const splitWeight = kind === "RMS" && wantNorm;
  const opts = { w: weights.w, b: weights.b, skipWeight: splitWeight };
  let out: Tensor;
  if (ctx.hooked(scaleName)) {
    // The (possibly replaced) scale feeds the normalisation: compute it, fire, then normalise.
    const first = norm(x, kind, eps, { ...opts, wantScale: true });
    ctx.release(first.out);
    const scale = await ctx.fire(scaleName, first.scale!);
    out = norm(x, kind, eps, { ...opts, scaleIn: scale }).out;
    ctx.release(scale);
  } else {
    const r = norm(x, kind, eps, { ...opts, wantScale });
    out = r.out;
    if (r.scale) ctx.release(await ctx.fire(scaleName, r.scale));
  }
  if (!wantNorm) return out;
  out = await ctx.fire(normName, out);
  if (!splitWeight) return out;
  const weighted = binary("mul", out, weights.w!);
  ctx.release(out);
  return weighted;
}
