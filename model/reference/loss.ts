/**
 * Next-token cross-entropy as TL's `utils.lm_cross_entropy_loss` (spec transformer_lens.md §5).
 * @module
 */

import type { HostTensor } from "../../util/host_tensor.ts";
import { ModelError } from "../errors.ts";

/** Log-softmax over the last axis, float64 internally, float32 out (same shape). */
export function logSoftmax(logits: HostTensor): HostTensor {
  const V = logits.shape[logits.shape.length - 1];
  const rows = logits.data.length / V;
  const out = new Float32Array(logits.data.length);
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits.data[o + j] > max) max = logits.data[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits.data[o + j] - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < V; j++) out[o + j] = logits.data[o + j] - lse;
  }
  return { data: out, shape: [...logits.shape] };
}

/** Options of {@link lmCrossEntropyLoss}. */
export interface LossOptions {
  /**
   * Optional `[batch][pos]` 0/1 mask: the prediction at p counts only when p and p+1 are both
   * unmasked; the mean divides by the count of kept entries.
   */
  attentionMask?: number[][];
}

/**
 * Per-token losses `−log p(t[b,p+1] | …)` as a `[B, P−1]` tensor when `perToken` is true
 * (masked entries are 0), otherwise their mean (a number, float64). The last position's
 * logits are never used.
 *
 * @example
 * ```ts
 * import { lmCrossEntropyLoss } from "./loss.ts";
 * const logits = { data: new Float32Array(2 * 4), shape: [1, 2, 4] }; // uniform over 4 tokens
 * const loss = lmCrossEntropyLoss(logits, [[0, 3]], false);
 * if (Math.abs(loss - Math.log(4)) > 1e-6) throw new Error("unreachable");
 * ```
 */
export function lmCrossEntropyLoss(
  logits: HostTensor,
  tokens: number[][],
  perToken: true,
  opts?: LossOptions,
): HostTensor;
/** Mean per-token loss (a number, float64) when `perToken` is false or omitted. */
export function lmCrossEntropyLoss(
  logits: HostTensor,
  tokens: number[][],
  perToken?: false,
  opts?: LossOptions,
): number;
export function lmCrossEntropyLoss(
  logits: HostTensor,
  tokens: number[][],
  perToken = false,
  opts: LossOptions = {},
): HostTensor | number {
  const [B, P, V] = logits.shape;
  if (logits.shape.length !== 3 || tokens.length !== B || tokens.some((r) => r.length !== P)) {
    throw new ModelError(
      `lmCrossEntropyLoss: logits [${logits.shape}] do not match tokens [${tokens.length},${
        tokens[0]?.length
      }]`,
    );
  }
  const mask = opts.attentionMask;
  const out = new Float32Array(B * Math.max(P - 1, 0));
  let total = 0, count = 0;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < P - 1; p++) {
      if (mask && !(mask[b][p] && mask[b][p + 1])) continue;
      const o = (b * P + p) * V;
      let max = -Infinity;
      for (let j = 0; j < V; j++) if (logits.data[o + j] > max) max = logits.data[o + j];
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(logits.data[o + j] - max);
      const t = tokens[b][p + 1];
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new ModelError(`lmCrossEntropyLoss: token ${t} at [${b},${p + 1}] outside [0, ${V})`);
      }
      const nll = max + Math.log(sum) - logits.data[o + t];
      out[b * (P - 1) + p] = nll;
      total += nll;
      count++;
    }
  }
  if (perToken) return { data: out, shape: [B, P - 1] };
  return total / count;
}
