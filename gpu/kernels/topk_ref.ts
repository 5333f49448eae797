/**
 * Plain-TS references of the top-k kernels (`topk.ts`, `kth_largest.ts`): the order they all
 * share, per-row top-k, the batch-level K-th largest value and the BatchTopK mask.
 *
 * The order: by value descending, equal values by lower index first (so every selection is
 * unique and deterministic); `-0` equals `+0`; NaN ranks below every number, `-Infinity`
 * included (it is selected only when fewer than k numbers are allowed).
 * @module
 */

/**
 * The order key of a float (as the kernels compute it): larger value → larger key, `-0` and `+0`
 * share a key, NaN → 1 (below −∞, whose key is 0x007fffff). Key 0 marks an excluded entry.
 */
export function orderKey(v: number): number {
  if (Number.isNaN(v)) return 1;
  const f = new Float32Array([v === 0 ? 0 : v]);
  const b = new Uint32Array(f.buffer)[0];
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** True when entry (a, ia) ranks before (b, ib): larger key first, then lower index. */
function before(ka: number, ia: number, kb: number, ib: number): boolean {
  return ka > kb || (ka === kb && ia < ib);
}

/** Options of {@link topkRowsRef}. */
export interface TopkRefOptions {
  /** Replace selected negative values (and NaN) by 0, keeping their indices (SAELens TopK). */
  relu?: boolean;
  /** `[n]`: entries whose mask is 0 are never selected. */
  mask?: ArrayLike<number>;
}

/**
 * Per-row top-k of `x [rows, n]`: values `[rows, k]` sorted descending (ties: lower index first)
 * and their indices. When a row has fewer than k allowed entries, the remaining slots hold
 * value 0 and index −1.
 *
 * @example
 * ```ts
 * import { topkRowsRef } from "./topk_ref.ts";
 * const { values, indices } = topkRowsRef(new Float32Array([1, 3, 3, -2]), 1, 4, 3);
 * // values [3, 3, 1], indices [1, 2, 0]
 * if (indices[0] !== 1 || values[2] !== 1) throw new Error("unexpected");
 * ```
 */
export function topkRowsRef(
  x: ArrayLike<number>,
  rows: number,
  n: number,
  k: number,
  options: TopkRefOptions = {},
): { values: Float32Array; indices: Int32Array } {
  const values = new Float32Array(rows * k);
  const indices = new Int32Array(rows * k).fill(-1);
  for (let r = 0; r < rows; r++) {
    const keys: number[] = [];
    const idx: number[] = [];
    for (let j = 0; j < n; j++) {
      if (options.mask && !options.mask[j]) continue;
      keys[j] = orderKey(x[r * n + j]);
      idx.push(j);
    }
    idx.sort((a, b) => (before(keys[a], a, keys[b], b) ? -1 : 1));
    for (let s = 0; s < Math.min(k, idx.length); s++) {
      const v = Math.fround(x[r * n + idx[s]]);
      values[r * k + s] = options.relu && !(v > 0) ? 0 : v;
      indices[r * k + s] = idx[s];
    }
  }
  return { values, indices };
}

/** The K-th largest entry of a flat array in the shared order (see the module doc). */
export interface KthRef {
  /** Its order key ({@link orderKey}). */
  key: number;
  /** Its flat index. */
  index: number;
  /** Its value. */
  value: number;
}

/**
 * The K-th largest of `x` (1 ≤ K ≤ x.length) in the shared order: exactly K entries rank at or
 * above it, so keeping those keeps exactly K values even with ties.
 */
export function kthLargestRef(x: ArrayLike<number>, K: number): KthRef {
  if (!Number.isInteger(K) || K < 1 || K > x.length) {
    throw new RangeError(`kthLargestRef: K is ${K}, expected an integer in [1, ${x.length}]`);
  }
  const keys = Array.from(x, orderKey);
  const idx = Array.from(keys, (_, i) => i);
  idx.sort((a, b) => (before(keys[a], a, keys[b], b) ? -1 : 1));
  const index = idx[K - 1];
  return { key: keys[index], index, value: Math.fround(x[index]) };
}

/**
 * The BatchTopK selection: `x` with every entry ranking below `kth` set to 0 (exactly K entries
 * kept); with `relu`, kept negatives become 0 as well.
 */
export function batchTopKMaskRef(
  x: ArrayLike<number>,
  kth: { key: number; index: number },
  relu = false,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = orderKey(x[i]);
    if (!before(k, i, kth.key, kth.index) && !(k === kth.key && i === kth.index)) continue;
    const v = Math.fround(x[i]);
    out[i] = relu && !(v > 0) ? 0 : v;
  }
  return out;
}
