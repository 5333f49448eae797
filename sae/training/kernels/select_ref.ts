/**
 * Plain-TS references of the TopK-family selection kernels (`select.ts`). They return, per
 * token, the selected (latent, decoder weight) pairs sorted by latent index (the GPU emits TopK
 * entries in heap order; compare after sorting).
 * @module
 */

/** One selected latent of a token. */
export interface SelEntry {
  idx: number;
  coef: number;
}

function order(vals: number[], idx: number[]): number[] {
  return idx.slice().sort((a, b) => (vals[b] - vals[a]) || (a - b));
}

function hsOf(h: Float32Array, norms: Float32Array, n: number, t: number, i: number, rs: boolean) {
  return rs ? Math.fround(h[t * n + i] * norms[i]) : h[t * n + i];
}

/**
 * Reference of `topkSelect`: per token the k largest hs, positive ones only, a = hs/n or hs.
 *
 * @example
 * ```ts
 * import { topkSelectRef } from "./select_ref.ts";
 * const r = topkSelectRef(new Float32Array([3, -1, 2, 5]), new Float32Array([1, 1, 1, 1]),
 *   1, 4, 2, false);
 * if (r[0].map((e) => e.idx).join() !== "0,3") throw new Error(JSON.stringify(r));
 * ```
 */
export function topkSelectRef(
  h: Float32Array,
  norms: Float32Array,
  rows: number,
  n: number,
  k: number,
  rescale: boolean,
): SelEntry[][] {
  const out: SelEntry[][] = [];
  for (let t = 0; t < rows; t++) {
    const hs = Array.from({ length: n }, (_, i) => hsOf(h, norms, n, t, i, rescale));
    const top = order(hs, hs.map((_, i) => i)).slice(0, k).filter((i) => hs[i] > 0);
    out.push(
      top.sort((a, b) => a - b).map((i) => ({
        idx: i,
        coef: rescale ? Math.fround(hs[i] / norms[i]) : hs[i],
      })),
    );
  }
  return out;
}

/** Reference of `auxSelect`: the top min(kAux, N_dead) dead latents by hs (no ReLU). */
export function auxSelectRef(
  h: Float32Array,
  norms: Float32Array,
  dead: Uint32Array,
  rows: number,
  n: number,
  kAux: number,
  rescale: boolean,
): SelEntry[][] {
  const deadIdx = Array.from({ length: n }, (_, i) => i).filter((i) => dead[i] !== 0);
  const out: SelEntry[][] = [];
  for (let t = 0; t < rows; t++) {
    const hs = Array.from({ length: n }, (_, i) => hsOf(h, norms, n, t, i, rescale));
    const top = order(hs, deadIdx).slice(0, kAux);
    out.push(
      top.sort((a, b) => a - b).map((i) => ({
        idx: i,
        coef: rescale ? Math.fround(hs[i] / norms[i]) : hs[i],
      })),
    );
  }
  return out;
}

/**
 * Reference of the BatchTopK selection: the ⌊k·rows⌋ largest ReLU(hs) over all tokens (ties →
 * lower flat index), positive ones only; also each token's smallest selected value (∞ if none).
 */
export function batchTopKSelectRef(
  h: Float32Array,
  norms: Float32Array,
  rows: number,
  n: number,
  k: number,
  rescale: boolean,
): { entries: SelEntry[][]; rowMin: number[] } {
  const keep = Math.trunc(k * rows);
  const v = Array.from(
    { length: rows * n },
    (_, f) => Math.max(hsOf(h, norms, n, Math.floor(f / n), f % n, rescale), 0),
  );
  const sel = order(v, v.map((_, f) => f)).slice(0, keep).filter((f) => v[f] > 0);
  const entries: SelEntry[][] = Array.from({ length: rows }, () => []);
  const rowMin = new Array(rows).fill(Infinity);
  for (const f of sel.sort((a, b) => a - b)) {
    const t = Math.floor(f / n), i = f % n;
    entries[t].push({ idx: i, coef: rescale ? Math.fround(v[f] / norms[i]) : v[f] });
    rowMin[t] = Math.min(rowMin[t], v[f]);
  }
  return { entries, rowMin };
}
