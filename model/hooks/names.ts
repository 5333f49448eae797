/**
 * The hook points the reference forward pass fires for a config, in TL's first-firing order
 * (the order of `run_with_cache` keys). A GPU forward can use this list to match
 * {@link referenceForward} hook by hook.
 * @module
 */

import type { ModelConfig } from "../config.ts";

/**
 * Hook names in first-firing order (each once, although ln1's hooks fire three times).
 * With `stopAtLayer` = k, only the embedding hooks and blocks 0 … k−1 are listed.
 *
 * @example
 * ```ts
 * import { defineModelConfig, hookNames } from "../mod.ts";
 * const cfg = defineModelConfig({ nLayers: 1, dModel: 4, nHeads: 1, dVocab: 5, nCtx: 8,
 *   actFn: "gelu_new" });
 * const names = hookNames(cfg);
 * if (names[0] !== "hook_embed" || names.at(-1) !== "ln_final.hook_normalized") {
 *   throw new Error("unreachable");
 * }
 * ```
 */
export function hookNames(cfg: ModelConfig, opts: { stopAtLayer?: number } = {}): string[] {
  const names = ["hook_embed"];
  if (cfg.positionalEmbeddingType === "standard") names.push("hook_pos_embed");
  let stop = opts.stopAtLayer ?? cfg.nLayers;
  if (stop < 0) stop = Math.max(0, cfg.nLayers + stop);
  stop = Math.min(stop, cfg.nLayers);
  const norm = (p: string) => names.push(`${p}.hook_scale`, `${p}.hook_normalized`);
  for (let l = 0; l < stop; l++) {
    const b = `blocks.${l}.`, a = `${b}attn.`;
    names.push(b + "hook_resid_pre");
    norm(b + "ln1");
    names.push(a + "hook_q", a + "hook_k", a + "hook_v");
    if (cfg.useQkNorm) {
      norm(a + "q_norm");
      norm(a + "k_norm");
    }
    if (cfg.positionalEmbeddingType === "rotary") names.push(a + "hook_rot_q", a + "hook_rot_k");
    names.push(a + "hook_attn_scores", a + "hook_pattern", a + "hook_z");
    if (cfg.useAttnResult) names.push(a + "hook_result");
    if (cfg.useNormalizationBeforeAndAfter) norm(b + "ln1_post");
    names.push(b + "hook_attn_out");
    if (!cfg.parallelAttnMlp) names.push(b + "hook_resid_mid");
    if (cfg.useHookMlpIn) names.push(b + "hook_mlp_in");
    norm(b + "ln2");
    names.push(b + "mlp.hook_in", b + "mlp.hook_pre");
    if (cfg.gatedMlp) names.push(b + "mlp.hook_pre_linear");
    names.push(b + "mlp.hook_post");
    if (cfg.useNormalizationBeforeAndAfter) norm(b + "ln2_post");
    names.push(b + "hook_mlp_out", b + "hook_resid_post");
  }
  if (stop === cfg.nLayers && opts.stopAtLayer === undefined) norm("ln_final");
  return names;
}
