/**
 * Per-row top-k on the GPU: the TopK SAE activation (`relu`), the aux-k selection among dead
 * latents (`mask`) and BatchTopK's per-row sparse lists (`threshold`). The algorithm (group
 * maxima → lower bound → candidates → ranks, with an exact radix-select fallback) is described
 * in `topk_wgsl.ts`; the reference is `topkRowsRef` in `topk_ref.ts`.
 *
 * Semantics: per row, values sorted descending, equal values by lower index first; `-0` equals
 * `+0`; NaN ranks below −∞ (selected only when fewer than k numbers are allowed). Rows with fewer
 * than k allowed entries get value 0 and index −1 in the remaining slots.
 * @module
 */

import type { BufferBinding } from "../device.ts";
import {
  asRows,
  checkInt,
  checkTensor,
  CPU_LOOP_BUDGET,
  grid1d,
  nextPow2,
  packUniform,
  prevPow2,
  spans,
  windowOf,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { loDigits, loInit, type RadixSource, recordRadix, WG } from "./_radix.ts";
import {
  BOUND_WGSL,
  collectWgsl,
  groupMaxWgsl,
  keySource,
  OVERFLOW_WGSL,
  RANK_WGSL,
  SORT_BLOCK_WGSL,
  SORT_MERGE_WGSL,
  SORT_OUT_WGSL,
  type TopkVariant,
  variantKey,
} from "./topk_wgsl.ts";

export {
  kthLargestRef,
  type KthRef,
  orderKey,
  type TopkRefOptions,
  topkRowsRef,
} from "./topk_ref.ts";

/** Largest k {@link topkRows} accepts. */
export const TOPK_MAX_K = 1024;

/** Options of {@link topkRows}. */
export interface TopkOptions {
  /** Replace selected negatives (and NaN) by 0 after selection, keeping indices (SAELens TopK). */
  relu?: boolean;
  /** u32/i32 `[n]`: entries whose mask is 0 are never selected (aux-k: dead latents only). */
  mask?: Tensor;
  /**
   * u32 `[4]` from `kthLargest` over this whole tensor: only entries ranking at or above that
   * K-th entry of the flattened batch are selected (BatchTopK as per-row lists of ≤ k entries).
   */
  threshold?: Tensor;
  /** Where to write: values f32 and indices i32, both `[...lead, k]`. */
  out?: { values: Tensor; indices: Tensor };
  /** Testing: at most this many rows per window (forces the row-window path). */
  windowRows?: number;
  /** Testing: groups per row (a power of two; default ~16k, at most 4096 and n/8). */
  groups?: number;
  /** Testing: candidate slots per row (default min(n, 2k + 64)); small values force the exact fallback. */
  capacity?: number;
  /** Final ordering of the candidates: `rank` (S² compares per row) or `merge` (merge sort). */
  sort?: "rank" | "merge";
}

/** Per-row top-k result: values f32 and indices i32, both `[...lead, k]`. */
export interface TopkResult {
  /** Top-k values, f32 `[...lead, k]`. */
  values: Tensor;
  /** Column indices of the values, i32 `[...lead, k]`. */
  indices: Tensor;
}

/**
 * The k largest entries of each row of `x [..., n]` (f32), sorted descending (ties: lower index
 * first), with their indices. Records dispatches only.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { readAll, Tensor } from "../tensor.ts";
 * import { topkRows } from "./topk.ts";
 * await getGpu();
 * using x = Tensor.from(new Float32Array([0.5, -2, 3, 3, 1, 0]), [2, 3]);
 * const { values, indices } = topkRows(x, 2, { relu: true });
 * const [v, i] = await readAll([values, indices]);
 * // v = [3, 0.5, 3, 1], i = [2, 0, 0, 1]
 * if (i[0] !== 2 || v[1] !== 0.5 || i[2] !== 0) throw new Error("unexpected");
 * values.dispose();
 * indices.dispose();
 * ```
 */
export function topkRows(x: Tensor, k: number, options: TopkOptions = {}): TopkResult {
  const op = "topkRows";
  checkTensor(x, op, "x", { dtype: "f32" });
  const [rows, n] = asRows(x, op, "x");
  checkInt(k, 1, Math.min(n, TOPK_MAX_K), op, "k");
  const gpu = x.gpu;
  const outShape = [...x.shape.slice(0, -1), k];
  const variant: TopkVariant = { mask: !!options.mask, threshold: !!options.threshold };
  if (options.mask) {
    checkTensor(options.mask, op, "mask", { dtype: ["u32", "i32"], shape: [n] });
  }
  if (options.threshold) {
    checkTensor(options.threshold, op, "threshold", { dtype: "u32", shape: [4] });
  }
  let values: Tensor, indices: Tensor;
  if (options.out) {
    ({ values, indices } = options.out);
    checkTensor(values, op, "out.values", { dtype: "f32", shape: outShape });
    checkTensor(indices, op, "out.indices", { dtype: "i32", shape: outShape });
  } else {
    values = Tensor.empty(outShape, "f32", { gpu });
    indices = Tensor.empty(outShape, "i32", { gpu });
  }
  if (rows === 0) return { values, indices };

  // ~16k groups keeps the candidate scan (about k groups of n/G entries) small; groups of ≥ 8
  // entries keep the group-maximum pass from paying per invocation rather than per entry.
  // At least 2k groups, or the k-th largest group maximum does not exist.
  const g = options.groups ?? Math.min(
    nextPow2(n),
    Math.max(nextPow2(2 * k), Math.min(nextPow2(16 * k), 4096, prevPow2(Math.max(64, n / 8)))),
  );
  const cap = options.capacity ?? Math.min(n, 2 * k + 64);
  checkInt(cap, 1, n, op, "capacity");
  const p2 = nextPow2(Math.max(16, cap));
  const sort = options.sort ?? (cap <= 256 ? "rank" : "merge");
  const lanes = Math.min(g, 256);
  const chunk = Math.min(n, CPU_LOOP_BUDGET >> 2);
  const chunks = Math.ceil(n / chunk);
  const windows = spans(gpu, rows, Math.max(n, k, g, 2 * p2, 16 * chunks), {
    aligned: [n, k],
    maxCount: options.windowRows,
  });
  const wr = Math.max(...windows.map((w) => w.count));
  const gm = Tensor.empty([wr * g], "u32", { gpu });
  const rs = Tensor.empty([wr, 4], "u32", { gpu });
  const st = Tensor.empty([wr, 4], "u32", { gpu });
  const cnt = Tensor.empty([wr], "u32", { gpu });
  const cand = Tensor.empty([wr * p2, 2], "u32", { gpu });
  const cand2 = sort === "merge" ? Tensor.empty([wr * p2, 2], "u32", { gpu }) : null;
  const partial = Tensor.empty([wr * chunks * 16], "u32", { gpu });
  const vk = variantKey(variant);
  const relu = options.relu ? 1 : 0;
  for (const w of windows) {
    const xw = windowOf(x, w.start * n, w.count * n);
    const src: BufferBinding[] = [xw];
    if (options.mask) src.push(options.mask.binding());
    if (options.threshold) src.push(options.threshold.binding());
    const uni = (width = 0) =>
      gpu.uniform(
        packUniform(
          "uuuuuuuuuuuu",
          w.count,
          n,
          k,
          g,
          cap,
          relu,
          w.start,
          loInit(n),
          lanes,
          0,
          width,
          p2,
        ),
      );
    const p = uni();
    const perRow = grid1d(gpu, Math.ceil(w.count / WG));
    const wgPerRow = grid1d(gpu, w.count);
    gpu.dispatch(
      gpu.pipeline(`topk_groupmax_${vk}`, groupMaxWgsl(variant)),
      [p, gm, ...src],
      grid1d(gpu, Math.ceil((w.count * lanes) / WG)),
    );
    gpu.dispatch(gpu.pipeline("topk_bound", BOUND_WGSL), [p, gm, rs, cnt], perRow);
    gpu.dispatch(
      gpu.pipeline(`topk_collect_${vk}`, collectWgsl(variant, false)),
      [p, gm, rs, cnt, cand, ...src],
      wgPerRow,
    );
    gpu.dispatch(gpu.pipeline("topk_overflow", OVERFLOW_WGSL), [p, cnt, st], perRow);
    const source: RadixSource = {
      key: `topk_${vk}`,
      decl: `${keySource(variant, 3, "q.s0", "q.s1")}
fn srcLen(seg: u32) -> u32 { return q.s0; }
fn srcElem(seg: u32, i: u32) -> vec2<u32> { return vec2<u32>(keyAt(seg, i), ~i); }`,
      bindings: src,
      params: [n, w.start, 0, 0],
    };
    recordRadix(
      gpu,
      st,
      partial,
      w.count,
      chunk,
      chunks,
      [
        { base: 0, count: w.count * chunks, source },
      ],
      8,
      loDigits(n),
    );
    gpu.dispatch(
      gpu.pipeline(`topk_collect_again_${vk}`, collectWgsl(variant, true)),
      [p, st, cnt, cand, ...src],
      wgPerRow,
    );
    const outs = [
      windowOf(values, w.start * k, w.count * k),
      windowOf(indices, w.start * k, w.count * k),
      xw,
    ];
    if (!cand2) {
      gpu.dispatch(gpu.pipeline("topk_rank", RANK_WGSL), [p, cnt, cand, ...outs], wgPerRow);
      continue;
    }
    gpu.dispatch(gpu.pipeline("topk_sort_block", SORT_BLOCK_WGSL), [p, cnt, cand, cand2], wgPerRow);
    let [from, to] = [cand2, cand];
    for (let width = 16; width < p2; width *= 2) {
      gpu.dispatch(
        gpu.pipeline("topk_sort_merge", SORT_MERGE_WGSL),
        [uni(width), cnt, from, to],
        wgPerRow,
      );
      [from, to] = [to, from];
    }
    gpu.dispatch(gpu.pipeline("topk_sort_out", SORT_OUT_WGSL), [p, cnt, from, ...outs], wgPerRow);
  }
  for (const t of [gm, rs, st, cnt, cand, cand2, partial]) t?.dispose();
  return { values, indices };
}
