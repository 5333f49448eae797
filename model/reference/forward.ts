/**
 * The plain-TypeScript reference forward pass of a TransformerLens `HookedTransformer` (plus
 * SAELens's `mlp.hook_in`). It is the ground truth the WebGPU forward is checked against,
 * hook by hook: every TL hook fires in TL's order with TL's shapes (spec transformer_lens.md
 * §1.2-1.3), and a hook may replace its value.
 * @module
 */

import type { ModelConfig } from "../config.ts";
import { attentionForward } from "./attention.ts";
import { type HookFn, HookRunner, type NamesFilter } from "../hooks/reference.ts";
import { mlpForward } from "./mlp.ts";
import { applyNorm, type NormWeights } from "./norms.ts";
import { add, linear, rotaryTables } from "./ops.ts";
import { getParam, type ParamMap } from "../params.ts";
import type { HostTensor } from "../../util/host_tensor.ts";
import { ModelError } from "../errors.ts";

/** Options of {@link referenceForward}. */
export interface ForwardOptions {
  /** Called at every hook point; may return a same-shape replacement. */
  hooks?: HookFn;
  /**
   * Run only blocks 0 … k−1 and return the residual stream (TL `stop_at_layer`); negative k
   * counts from the end as in Python slicing. Hooks after block k−1 never fire.
   */
  stopAtLayer?: number;
  /** Which hook values to cache (default: all; `[]` caches nothing). */
  namesFilter?: NamesFilter;
}

/** Result of {@link referenceForward}. */
export interface ForwardResult {
  /** Logits `[B, P, V]` (after the output soft cap), or `null` when stopped early. */
  logits: HostTensor | null;
  /** With `stopAtLayer`, the residual `[B, P, D]` after block k−1 (or the embedding). */
  residual: HostTensor | null;
  /** Cached hook values by name, in first-firing order. */
  cache: Map<string, HostTensor>;
}

/**
 * Runs the model on `tokens` (`[batch][pos]`, equal-length rows; no padding mask, as TL with
 * right padding). Float32 storage, float64 accumulation.
 *
 * @example
 * ```ts
 * import { defineModelConfig, referenceForward } from "../mod.ts";
 * const cfg = defineModelConfig({ nLayers: 0, dModel: 2, nHeads: 1, dVocab: 3, nCtx: 4,
 *   actFn: "relu", normalizationType: "LNPre" });
 * const z = (...s: number[]) => ({ data: new Float32Array(s.reduce((a, b) => a * b, 1)), shape: s });
 * const params = new Map([["embed.W_E", z(3, 2)], ["pos_embed.W_pos", z(4, 2)],
 *   ["unembed.W_U", z(2, 3)], ["unembed.b_U", z(3)]]);
 * const { logits, cache } = referenceForward(cfg, params, [[0, 1]]);
 * if (logits!.shape.join() !== "1,2,3" || !cache.has("hook_embed")) throw new Error("unreachable");
 * ```
 */
export function referenceForward(
  cfg: ModelConfig,
  params: ParamMap,
  tokens: number[][],
  opts: ForwardOptions = {},
): ForwardResult {
  const run = new HookRunner(opts.hooks, opts.namesFilter);
  const B = tokens.length;
  if (B === 0) throw new ModelError("referenceForward: empty batch");
  const P = tokens[0].length;
  if (P === 0) throw new ModelError("referenceForward: empty sequences");
  if (tokens.some((row) => row.length !== P)) {
    throw new ModelError("referenceForward: every batch row must have the same length (pad first)");
  }
  if (cfg.positionalEmbeddingType === "standard" && P > cfg.nCtx) {
    throw new ModelError(`referenceForward: ${P} positions exceed nCtx ${cfg.nCtx}`);
  }
  const { dModel: D, dVocab: V } = cfg;
  const rows = B * P;
  let stop = opts.stopAtLayer ?? cfg.nLayers;
  if (stop < 0) stop = Math.max(0, cfg.nLayers + stop);
  stop = Math.min(stop, cfg.nLayers);

  // Embedding (+ learned positions).
  const WE = getParam(params, "embed.W_E", [V, D]).data;
  const embed = new Float32Array(rows * D);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < P; p++) {
      const t = tokens[b][p];
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new ModelError(`referenceForward: token ${t} at [${b},${p}] outside [0, ${V})`);
      }
      embed.set(WE.subarray(t * D, (t + 1) * D), (b * P + p) * D);
    }
  }
  let resid: Float32Array = run.fireData("hook_embed", embed, [B, P, D]);
  if (cfg.positionalEmbeddingType === "standard") {
    const Wpos = getParam(params, "pos_embed.W_pos", [cfg.nCtx, D]).data;
    let pos: Float32Array = new Float32Array(rows * D);
    for (let b = 0; b < B; b++) pos.set(Wpos.subarray(0, P * D), b * P * D);
    pos = run.fireData("hook_pos_embed", pos, [B, P, D]);
    resid = add(resid, pos);
  }
  const rotary = cfg.positionalEmbeddingType === "rotary" ? rotaryTables(cfg, P) : null;

  for (let l = 0; l < stop; l++) resid = blockForward(run, cfg, params, l, resid, B, P, rotary);
  if (stop < cfg.nLayers || opts.stopAtLayer !== undefined) {
    return { logits: null, residual: { data: resid, shape: [B, P, D] }, cache: run.cache };
  }

  const finalNormed = applyNorm(
    run,
    "ln_final",
    cfg.normalizationType,
    resid,
    [B, P],
    D,
    cfg.eps,
    normWeights(cfg, params, "ln_final"),
  );
  const WU = getParam(params, "unembed.W_U", [D, V]).data;
  const bU = getParam(params, "unembed.b_U", [V]).data;
  const logits = linear(finalNormed, rows, D, WU, V, bU);
  const cap = cfg.outputLogitsSoftCap;
  if (cap > 0) {
    for (let i = 0; i < logits.length; i++) logits[i] = cap * Math.tanh(logits[i] / cap);
  }
  return { logits: { data: logits, shape: [B, P, V] }, residual: null, cache: run.cache };
}

/** ln weights by TL prefix (`blocks.0.ln1`, `ln_final`), per the config's norm type. */
function normWeights(cfg: ModelConfig, params: ParamMap, prefix: string): NormWeights {
  const D = cfg.dModel, t = cfg.normalizationType;
  return {
    w: t === "LN" || t === "RMS" ? getParam(params, `${prefix}.w`, [D]).data : undefined,
    b: t === "LN" ? getParam(params, `${prefix}.b`, [D]).data : undefined,
  };
}

/** One transformer block (spec §1.2 step 5). Returns resid_post `[B, P, D]`. */
function blockForward(
  run: HookRunner,
  cfg: ModelConfig,
  params: ParamMap,
  l: number,
  residIn: Float32Array,
  B: number,
  P: number,
  rotary: ReturnType<typeof rotaryTables> | null,
): Float32Array {
  const D = cfg.dModel, b = `blocks.${l}.`;
  const norm = (name: string, x: Float32Array) =>
    applyNorm(
      run,
      b + name,
      cfg.normalizationType,
      x,
      [B, P],
      D,
      cfg.eps,
      normWeights(cfg, params, b + name),
    );
  const postNorm = (name: string, x: Float32Array) =>
    applyNorm(run, b + name, "RMS", x, [B, P], D, cfg.eps, {
      w: getParam(params, `${b}${name}.w`, [D]).data,
    });

  const resid = run.fireData(b + "hook_resid_pre", residIn, [B, P, D]);
  // TL calls ln1 separately on the query, key and value inputs, so its hooks fire three times.
  const query = norm("ln1", resid);
  const key = norm("ln1", resid);
  const value = norm("ln1", resid);
  let attnOut = attentionForward(run, cfg, params, l, { query, key, value }, B, P, rotary);
  if (cfg.useNormalizationBeforeAndAfter) attnOut = postNorm("ln1_post", attnOut);
  attnOut = run.fireData(b + "hook_attn_out", attnOut, [B, P, D]);

  const mlpBranch = (x: Float32Array): Float32Array => {
    const mlpIn = cfg.useHookMlpIn
      ? run.fireData(b + "hook_mlp_in", new Float32Array(x), [B, P, D])
      : x;
    let out = mlpForward(run, cfg, params, l, norm("ln2", mlpIn), B, P);
    if (cfg.useNormalizationBeforeAndAfter) out = postNorm("ln2_post", out);
    return run.fireData(b + "hook_mlp_out", out, [B, P, D]);
  };

  if (cfg.parallelAttnMlp) {
    const mlpOut = mlpBranch(resid);
    return run.fireData(b + "hook_resid_post", add(add(resid, attnOut), mlpOut), [B, P, D]);
  }
  const mid = run.fireData(b + "hook_resid_mid", add(resid, attnOut), [B, P, D]);
  const mlpOut = mlpBranch(mid);
  return run.fireData(b + "hook_resid_post", add(mid, mlpOut), [B, P, D]);
}
