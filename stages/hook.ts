/**
 * The hook stage: runs the language model on each token block (one forward, stopped after the
 * deepest layer any hook needs) and emits the activations at one or several hook points, on the
 * GPU — SAELens's `get_activations` + `get_filtered_llm_batch` (spec §4.3, §4.6):
 *
 * - `seqpos_slice` keeps the positions `range(context_size)[slice(*seqpos_slice)]`;
 * - `hook_head_index` keeps one head of a `[batch, pos, head, d_head]` hook, and other 4-d hooks
 *   (`hook_z`, `hook_q`, …) are flattened to `[…, head·d_head]`;
 * - rows whose token id is in `excludeSpecialTokens` are dropped (SAELens filters after the
 *   slice; every hook keeps the same rows, so several SAEs see the same positions).
 *
 * All of it is one row gather per hook ({@link gatherRows}), recorded behind the forward in the
 * same submit; nothing is read back.
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { Tensor as GpuTensor } from "../gpu/tensor.ts";
import { gatherRows } from "../gpu/kernels/gather.ts";
import { disposeCache } from "../model/hooks/gpu.ts";
import type { HookedTransformer } from "../model/hooked_transformer.ts";
import { seqposIndices, type SeqposSlice } from "../config/seqpos.ts";
import {
  type ActivationBlock,
  activationKey,
  type HookSpec,
  StageError,
  type TokenBlock,
} from "./types.ts";

/** Options of {@link hook}. */
export interface HookStageOptions {
  /** Where to read activations; each gives one entry of {@link ActivationBlock.acts}. */
  hooks: readonly HookSpec[];
  /** SAELens `seqpos_slice` (default `[null]`: every position). */
  seqposSlice?: SeqposSlice;
  /** Token ids whose positions are dropped (SAELens `exclude_special_tokens`, resolved). */
  excludeSpecialTokens?: readonly number[] | null;
}

/**
 * The layer to stop after for a hook (TransformerLens / SAELens
 * `extract_stop_at_layer_from_tlens_hook_name`): `blocks.N.…` needs blocks 0…N, so N + 1;
 * anything else needs the whole model (undefined).
 *
 * @example
 * ```ts
 * import { stopAtLayerFor } from "./hook.ts";
 * if (stopAtLayerFor("blocks.3.hook_resid_pre") !== 4) throw new Error();
 * if (stopAtLayerFor("ln_final.hook_normalized") !== undefined) throw new Error();
 * ```
 */
export function stopAtLayerFor(hookName: string): number | undefined {
  const m = /^blocks\.(\d+)\./.exec(hookName);
  return m ? Number(m[1]) + 1 : undefined;
}

/** The `stopAtLayer` of one forward serving every hook in `names` (undefined: run it all). */
export function stopAtLayerForAll(names: readonly string[]): number | undefined {
  let stop = 0;
  for (const n of names) {
    const s = stopAtLayerFor(n);
    if (s === undefined) return undefined;
    stop = Math.max(stop, s);
  }
  return stop;
}

/**
 * Checks `hooks` against the model's hook points: a name the model lacks is a {@link StageError}
 * listing the closest names; a head index needs a 4-d hook with that many heads.
 */
export function checkHooks(model: HookedTransformer, hooks: readonly HookSpec[]): void {
  const names = model.hookNames();
  const known = new Set(names);
  for (const h of hooks) {
    if (!known.has(h.hookName)) {
      const close = names
        .map((n) => [n, editDistance(n, h.hookName)] as const)
        .sort((a, b) => a[1] - b[1])
        .slice(0, 3)
        .map(([n]) => n);
      throw new StageError(
        `hook ${JSON.stringify(h.hookName)} is not a hook point of ${model.cfg.modelName}; ` +
          `closest: ${close.join(", ")}`,
      );
    }
    if (h.headIndex != null) {
      if (!Number.isSafeInteger(h.headIndex) || h.headIndex < 0) {
        throw new StageError(
          `hook_head_index is ${h.headIndex} for ${h.hookName}, expected a head number >= 0`,
        );
      }
    }
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Runs the model on one token block and returns its activations (what the stage emits per
 * block). Exposed for {@link ActivationsStore}-style pull use and for tests.
 */
export async function harvest(
  model: HookedTransformer,
  block: TokenBlock,
  options: HookStageOptions,
): Promise<ActivationBlock> {
  const { nSeq, contextSize: T, tokens } = block;
  const dVocab = model.cfg.dVocab;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < dVocab)) {
      throw new StageError(
        `hook: token ${t} at [${Math.floor(i / T)}, ${i % T}] is outside the model's ` +
          `vocabulary [0, ${dVocab})`,
      );
    }
  }
  const positions = seqposIndices(T, options.seqposSlice ?? [null]);
  const exclude = new Set(options.excludeSpecialTokens ?? []);
  // Rows (sequence, position) that stay, as indices into the [nSeq·T] positions.
  const keep: number[] = [];
  for (let b = 0; b < nSeq; b++) {
    for (const p of positions) {
      if (!exclude.has(tokens[b * T + p])) keep.push(b * T + p);
    }
  }
  const tokenIds = Int32Array.from(keep, (i) => tokens[i]);
  const names = [...new Set(options.hooks.map((h) => h.hookName))];
  using input = GpuTensor.from(tokens, [nSeq, T], { gpu: model.gpu });
  const { cache, residual, logits } = await model.runWithCache(input, {
    namesFilter: names,
    stopAtLayer: stopAtLayerForAll(names),
  });
  residual?.dispose();
  logits?.dispose();
  const acts = new Map<string, Tensor>();
  try {
    for (const h of options.hooks) {
      const key = activationKey(h);
      if (acts.has(key)) continue;
      const value = cache.get(h.hookName);
      if (!value) throw new StageError(`hook: the forward did not produce ${h.hookName}`);
      acts.set(key, select(value, h, keep, nSeq, T));
    }
  } catch (err) {
    for (const t of acts.values()) t.dispose();
    throw err;
  } finally {
    disposeCache(cache);
  }
  return { acts, tokenIds, rows: keep.length, cursor: block.cursor };
}

/** The kept rows of one cached hook value `[B, T, …]` as `[rows, d]`. */
function select(value: Tensor, h: HookSpec, keep: number[], B: number, T: number): Tensor {
  const s = value.shape;
  if (s[0] !== B || s[1] !== T || s.length < 3 || s.length > 4) {
    throw new StageError(
      `hook: ${h.hookName} has shape [${s.join(", ")}], expected [${B}, ${T}, …] of rank 3 or 4`,
    );
  }
  if (h.headIndex != null) {
    if (s.length !== 4) {
      throw new StageError(
        `hook_head_index ${h.headIndex} given for ${h.hookName}, whose activations ` +
          `[${s.join(", ")}] have no head dimension`,
      );
    }
    const [, , H, dHead] = s;
    if (h.headIndex >= H) {
      throw new StageError(
        `hook_head_index is ${h.headIndex}, but ${h.hookName} has ${H} heads (0 … ${H - 1})`,
      );
    }
    const rows = value.reshape([B * T * H, dHead]);
    return gatherRows(rows, Int32Array.from(keep, (i) => i * H + h.headIndex!));
  }
  const width = s.length === 4 ? s[2] * s[3] : s[2];
  return gatherRows(value.reshape([B * T, width]), Int32Array.from(keep));
}

/**
 * The hook stage: token blocks in, activation blocks (GPU tensors owned by the consumer) out.
 *
 * @example
 * ```ts ignore
 * const acts = tokens.pipeThrough(hook(model, { hooks: [{ hookName: "blocks.2.hook_resid_pre" }] }));
 * ```
 */
export function hook(
  model: HookedTransformer,
  options: HookStageOptions,
): TransformStream<TokenBlock, ActivationBlock> {
  if (options.hooks.length === 0) throw new StageError("hook: no hook points given");
  checkHooks(model, options.hooks);
  return new TransformStream({
    async transform(block, controller) {
      controller.enqueue(await harvest(model, block, options));
    },
  });
}
