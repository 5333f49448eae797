/**
 * The WebGPU forward pass of a TransformerLens `HookedTransformer`: embedding → blocks →
 * ln_final → unembed (→ output soft cap), with every TL hook point of the reference forward
 * (same names, shapes and order) materialised only when requested. Parameters are uploaded once
 * ({@link GpuModel}); a forward records its dispatches without submitting, so a caller that
 * reads nothing until the end gets one submit per forward.
 * @module
 */

import { binary } from "../gpu/kernels/binary.ts";
import type { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import type { ModelConfig } from "./config.ts";
import { blockForward } from "./gpu_block.ts";
import { GpuHookContext } from "./gpu_hooks.ts";
import { normWithHooks } from "./gpu_norm.ts";
import { disposeParams, type GpuParams, RotaryCache, uploadParams } from "./gpu_params.ts";
import { checkTokenRange, embedGather, posBroadcast } from "./kernels/embed.ts";
import { linear } from "./kernels/linear.ts";
import { ModelError, type ParamMap } from "./tensor.ts";

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
