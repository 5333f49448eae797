/**
 * The TL parameter set a config implies (names and shapes, spec transformer_lens.md §3), and
 * checked access to it. Every family's weight conversion produces it; the reference and GPU
 * forwards read it.
 * @module
 */

import { type HostTensor, numel, sameShape, shapeStr } from "../util/host_tensor.ts";
import { kvHeadCount, kvPrefix, type ModelConfig } from "./config.ts";
import { ModelError } from "./errors.ts";

/** Parameters by TransformerLens name (`blocks.0.attn.W_Q`, …). */
export type ParamMap = Map<string, HostTensor>;

/**
 * Every parameter the reference forward pass reads for `cfg`, with its shape, in TL state-dict
 * order. Norm weights appear only for LN/RMS (not after fold_ln: LNPre/RMSPre); Gemma-2's
 * `ln1_post`/`ln2_post` and Qwen3's `attn.q_norm`/`k_norm` are always weighted.
 *
 * @example
 * ```ts
 * import { defineModelConfig, expectedParamShapes } from "./mod.ts";
 * const cfg = defineModelConfig({ nLayers: 1, dModel: 8, nHeads: 2, dVocab: 5, nCtx: 4,
 *   actFn: "gelu_new" });
 * const shapes = expectedParamShapes(cfg);
 * if (shapes.get("blocks.0.attn.W_Q")!.join() !== "2,8,4") throw new Error("unreachable");
 * ```
 */
export function expectedParamShapes(cfg: ModelConfig): Map<string, number[]> {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M, dVocab: V } = cfg;
  const Hkv = kvHeadCount(cfg), g = kvPrefix(cfg);
  const out = new Map<string, number[]>();
  const norm = (name: string) => {
    const t = cfg.normalizationType;
    if (t === "LN" || t === "RMS") out.set(`${name}.w`, [D]);
    if (t === "LN") out.set(`${name}.b`, [D]);
  };
  out.set("embed.W_E", [V, D]);
  if (cfg.positionalEmbeddingType === "standard") out.set("pos_embed.W_pos", [cfg.nCtx, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = `blocks.${l}.`;
    norm(b + "ln1");
    if (cfg.useNormalizationBeforeAndAfter) out.set(b + "ln1_post.w", [D]);
    norm(b + "ln2");
    if (cfg.useNormalizationBeforeAndAfter) out.set(b + "ln2_post.w", [D]);
    out.set(b + "attn.W_Q", [H, D, d]);
    out.set(b + `attn.${g}W_K`, [Hkv, D, d]);
    out.set(b + `attn.${g}W_V`, [Hkv, D, d]);
    out.set(b + "attn.W_O", [H, d, D]);
    out.set(b + "attn.b_Q", [H, d]);
    out.set(b + `attn.${g}b_K`, [Hkv, d]);
    out.set(b + `attn.${g}b_V`, [Hkv, d]);
    out.set(b + "attn.b_O", [D]);
    if (cfg.useQkNorm) {
      out.set(b + "attn.q_norm.w", [d]);
      out.set(b + "attn.k_norm.w", [d]);
    }
    out.set(b + "mlp.W_in", [D, M]);
    if (cfg.gatedMlp) out.set(b + "mlp.W_gate", [D, M]);
    out.set(b + "mlp.b_in", [M]);
    out.set(b + "mlp.W_out", [M, D]);
    out.set(b + "mlp.b_out", [D]);
  }
  norm("ln_final");
  out.set("unembed.W_U", [D, V]);
  out.set("unembed.b_U", [V]);
  return out;
}

/**
 * Checks that `params` holds exactly the parameters of {@link expectedParamShapes} (no missing,
 * no extra, right shapes and lengths); throws a {@link ModelError} naming the first problem.
 */
export function validateParams(cfg: ModelConfig, params: ParamMap): void {
  const expected = expectedParamShapes(cfg);
  for (const [name, shape] of expected) getParam(params, name, shape);
  for (const name of params.keys()) {
    if (!expected.has(name)) {
      throw new ModelError(
        `unexpected parameter "${name}" for normalizationType ${cfg.normalizationType}`,
      );
    }
  }
}

/** The parameter `name`, checked against `shape`. */
export function getParam(params: ParamMap, name: string, shape: number[]): HostTensor {
  const t = params.get(name);
  if (!t) throw new ModelError(`missing parameter "${name}" (expected ${shapeStr(shape)})`);
  if (!sameShape(t.shape, shape) || t.data.length !== numel(shape)) {
    throw new ModelError(
      `parameter "${name}": shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`,
    );
  }
  return t;
}
