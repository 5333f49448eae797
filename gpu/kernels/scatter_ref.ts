/**
 * Plain-TS references of the sparse decode / backward kernels (`scatter.ts`,
 * `counting_sort.ts`). Index lists are `idx [rows, k]` (i32) of latent ids; an id outside
 * `[0, dSae)` (−1 pads short lists) is skipped everywhere. Sums run in float32, in the order the
 * kernels use: bias first, then slots in (row, slot) order.
 * @module
 */

function valid(j: number, dSae: number): boolean {
  return j >= 0 && j < dSae;
}

/**
 * The sparse decoder: `out[r] = bias + Σ_s vals[r, s] · W[idx[r, s]]`, `W [dSae, d]`.
 *
 * @example
 * ```ts
 * import { gatherRowsWeightedRef } from "./scatter_ref.ts";
 * const W = new Float32Array([1, 2, 10, 20]); // dSae 2, d 2
 * const out = gatherRowsWeightedRef(W, 2, 2, new Int32Array([1, -1]), new Float32Array([3, 5]), 1, 2);
 * if (out[0] !== 30 || out[1] !== 60) throw new Error("unexpected");
 * ```
 */
export function gatherRowsWeightedRef(
  W: Float32Array,
  dSae: number,
  d: number,
  idx: Int32Array,
  vals: Float32Array,
  rows: number,
  k: number,
  bias?: Float32Array,
): Float32Array {
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) {
      let acc = bias ? bias[c] : 0;
      for (let s = 0; s < k; s++) {
        const j = idx[r * k + s];
        if (valid(j, dSae)) acc = Math.fround(acc + Math.fround(vals[r * k + s] * W[j * d + c]));
      }
      out[r * d + c] = acc;
    }
  }
  return out;
}

/** Latent gradients: `out[r, s] = G[r] · W[idx[r, s]]` (0 for skipped ids), `G [rows, d]`. */
export function sparseDotRef(
  G: Float32Array,
  W: Float32Array,
  idx: Int32Array,
  rows: number,
  k: number,
  d: number,
  dSae: number,
): Float32Array {
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < k; s++) {
      const j = idx[r * k + s];
      if (!valid(j, dSae)) continue;
      let acc = 0;
      for (let c = 0; c < d; c++) acc = Math.fround(acc + Math.fround(G[r * d + c] * W[j * d + c]));
      out[r * k + s] = acc;
    }
  }
  return out;
}

/** A counting sort of the slots of `idx [rows, k]` by latent id. */
export interface CountingSortRef {
  /** `[dSae + 1]`: slots of latent j are `order[offsets[j] .. offsets[j + 1])`. */
  offsets: Uint32Array;
  /** Flat slot positions `r·k + s`, grouped by latent, in (row, slot) order within a latent. */
  order: Uint32Array;
  /** `[dSae]`: number of slots naming each latent. */
  counts: Uint32Array;
}

/** Stable counting sort of the slots of `idx` by latent id (skipped ids left out). */
export function countingSortRef(
  idx: Int32Array,
  rows: number,
  k: number,
  dSae: number,
): CountingSortRef {
  const counts = new Uint32Array(dSae);
  for (let p = 0; p < rows * k; p++) if (valid(idx[p], dSae)) counts[idx[p]]++;
  const offsets = new Uint32Array(dSae + 1);
  for (let j = 0; j < dSae; j++) offsets[j + 1] = offsets[j] + counts[j];
  const order = new Uint32Array(offsets[dSae]);
  const cursor = offsets.slice(0, dSae);
  for (let p = 0; p < rows * k; p++) if (valid(idx[p], dSae)) order[cursor[idx[p]]++] = p;
  return { offsets, order, counts };
}

/**
 * The sparse scatter-add: `out[j] = Σ_{(r, s): idx[r, s] = j} coeff[r, s] · X[r]`, `X [rows, d]`,
 * `out [dSae, d]` (∂L/∂W_dec rows with coeff = latent values and X = ∂L/∂x̂; ∂L/∂W_enc as
 * `[dSae, d]` with coeff = latent gradients and X = x − b_dec). Unused latents get zero rows.
 */
export function scatterAddRowsRef(
  idx: Int32Array,
  coeff: Float32Array,
  X: Float32Array,
  rows: number,
  k: number,
  d: number,
  dSae: number,
): Float32Array {
  const out = new Float32Array(dSae * d);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < k; s++) {
      const j = idx[r * k + s];
      if (!valid(j, dSae)) continue;
      const c = coeff[r * k + s];
      for (let t = 0; t < d; t++) {
        out[j * d + t] = Math.fround(out[j * d + t] + Math.fround(c * X[r * d + t]));
      }
    }
  }
  return out;
}

/** `out[j] = Σ_{(r, s): idx[r, s] = j} vals[r, s]` (∂L/∂b_enc, firing counts with vals = 1). */
export function scatterAddValuesRef(
  idx: Int32Array,
  vals: Float32Array,
  rows: number,
  k: number,
  dSae: number,
): Float32Array {
  const out = new Float32Array(dSae);
  for (let p = 0; p < rows * k; p++) {
    if (valid(idx[p], dSae)) out[idx[p]] = Math.fround(out[idx[p]] + vals[p]);
  }
  return out;
}
