/**
 * A first look at what an SAE learned: the features with the largest activations on some text,
 * each with the contexts that activate it most (a tiny feature dashboard, printed after the demo
 * run). Activations are computed on the GPU; only the SAE's latents of the few batches looked at
 * are read back.
 * @module
 */

import { readAll } from "../gpu/tensor.ts";
import type { Tokenizer } from "../hub/tokenizer.ts";
import type { HookedTransformer } from "../model/hooked_transformer.ts";
import type { SAE } from "../sae/sae.ts";
import { harvest } from "../stages/hook.ts";
import { activationKey, startCursor } from "../stages/types.ts";
import { PipelineError } from "./errors.ts";

/** One context of a feature: the tokens before the activating one, that token, the value. */
export interface FeatureContext {
  /** Text of up to `contextTokens` tokens before the activating token. */
  before: string;
  /** Text of the activating token. */
  token: string;
  /** The feature's activation there. */
  value: number;
}

/** A feature and its strongest contexts. */
export interface TopFeature {
  /** Latent index. */
  index: number;
  /** Its largest activation over the tokens looked at. */
  max: number;
  /** Fraction of tokens where it fires (> 0). */
  density: number;
  /** Strongest contexts, strongest first. */
  contexts: FeatureContext[];
}

/** Options of {@link topFeatures}. */
export interface TopFeaturesOptions {
  /** How many features (default 5). */
  features?: number;
  /** Contexts per feature (default 3). */
  contexts?: number;
  /** Tokens of context shown before the activating token (default 24). */
  contextTokens?: number;
  /** Skip the first positions of each sequence (BOS and its neighbours say little; default 4). */
  skipFirst?: number;
}

function show(tok: Tokenizer | null, ids: ArrayLike<number>): string {
  if (!tok) return Array.from(ids).join(" ");
  return Array.from(ids, (id) => tok.tokenToString(id)).join("")
    .replaceAll("\n", "⏎");
}

/**
 * The SAE's strongest features on `tokens` (row-major `[nSeq, contextSize]`), read at the SAE's
 * hook (its metadata's `hook_name`, `hook_head_index`).
 */
export async function topFeatures(
  model: HookedTransformer,
  sae: SAE,
  tokens: Int32Array,
  contextSize: number,
  options: TopFeaturesOptions = {},
): Promise<TopFeature[]> {
  const { features = 5, contexts = 3, contextTokens = 24, skipFirst = 4 } = options;
  const m = sae.cfg.metadata;
  if (!m.hookName) throw new PipelineError("topFeatures: the SAE's metadata has no hook_name");
  const spec = { hookName: m.hookName, headIndex: m.hookHeadIndex ?? null };
  const nSeq = tokens.length / contextSize;
  const out = await harvest(model, { tokens, nSeq, contextSize, cursor: startCursor() }, {
    hooks: [spec],
  });
  const x = out.acts.get(activationKey(spec))!;
  using f = sae.encode(x);
  x.dispose();
  const [fs] = (await readAll([f])) as Float32Array[];
  const dSae = sae.cfg.dSae, rows = nSeq * contextSize;
  const shown = [...Array(rows).keys()].filter((p) => p % contextSize >= skipFirst);
  const max = new Float32Array(dSae);
  const fired = new Uint32Array(dSae);
  for (const p of shown) {
    for (let j = 0; j < dSae; j++) {
      const v = fs[p * dSae + j];
      if (v > max[j]) max[j] = v;
      if (v > 0) fired[j]++;
    }
  }
  const order = [...max.keys()].sort((a, b) => max[b] - max[a]).slice(0, features);
  const tok = model.tokenizer;
  return order.filter((j) => max[j] > 0).map((j) => {
    const best = [...shown].sort((a, b) => fs[b * dSae + j] - fs[a * dSae + j]).slice(0, contexts);
    return {
      index: j,
      max: max[j],
      density: fired[j] / shown.length,
      contexts: best.map((p) => {
        const start = Math.max(p - contextTokens, p - (p % contextSize));
        return {
          before: show(tok, tokens.subarray(start, p)),
          token: show(tok, tokens.subarray(p, p + 1)),
          value: fs[p * dSae + j],
        };
      }),
    };
  });
}

/** Lines showing {@link topFeatures}' result, as the demo prints them. */
export function formatTopFeatures(top: TopFeature[]): string[] {
  const lines: string[] = [];
  for (const f of top) {
    lines.push(
      `feature ${f.index} (max ${f.max.toFixed(2)}, fires on ${
        (100 * f.density).toFixed(1)
      } % of tokens):`,
    );
    for (const c of f.contexts) lines.push(`    …${c.before}[${c.token}]  ${c.value.toFixed(2)}`);
  }
  return lines;
}
