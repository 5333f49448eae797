/**
 * Plain-TS references of the reductions in `reduce.ts` (float64 accumulation, f32 results).
 * @module
 */

import { GpuError } from "../device.ts";

/** Reductions: sum, mean, sum of squares, L2 norm (√ of the sum of squares), max. */
export type ReduceOp = "sum" | "mean" | "sumsq" | "l2" | "max";

/** Every reduction op name. */
export const REDUCE_OPS: ReduceOp[] = ["sum", "mean", "sumsq", "l2", "max"];

function reduceSeq(op: ReduceOp, get: (i: number) => number, count: number): number {
  if (!REDUCE_OPS.includes(op)) throw new GpuError(`unknown reduction "${op}"`);
  if (op === "max") {
    let m = -Infinity;
    for (let i = 0; i < count; i++) m = Math.max(m, get(i));
    return m;
  }
  let s = 0;
  for (let i = 0; i < count; i++) {
    const v = get(i);
    s += op === "sumsq" || op === "l2" ? v * v : v;
  }
  return op === "mean" ? s / count : op === "l2" ? Math.sqrt(s) : s;
}

/**
 * Reference of `reduceRows`: `op` over each row of the row-major `[m, n]` matrix `x`.
 *
 * @example
 * ```ts
 * import { reduceRowsRef } from "./reduce_ref.ts";
 * const sums = reduceRowsRef("sum", new Float32Array([1, 2, 3, 4]), 2, 2);
 * if (sums.join() !== "3,7") throw new Error(`row sums ${sums}`);
 * ```
 */
export function reduceRowsRef(op: ReduceOp, x: Float32Array, m: number, n: number): Float32Array {
  checkDims(x, m, n, "reduceRowsRef");
  const out = new Float32Array(m);
  for (let r = 0; r < m; r++) out[r] = reduceSeq(op, (j) => x[r * n + j], n);
  return out;
}

/** Reference of `reduceCols`: `op` over each column of the row-major `[m, n]` matrix `x`. */
export function reduceColsRef(op: ReduceOp, x: Float32Array, m: number, n: number): Float32Array {
  checkDims(x, m, n, "reduceColsRef");
  const out = new Float32Array(n);
  for (let c = 0; c < n; c++) out[c] = reduceSeq(op, (i) => x[i * n + c], m);
  return out;
}

/** Reference of `reduceAll`: `op` over every element (a 1-element array). */
export function reduceAllRef(op: ReduceOp, x: Float32Array): Float32Array {
  return Float32Array.of(reduceSeq(op, (i) => x[i], x.length));
}

function checkDims(x: Float32Array, m: number, n: number, fn: string): void {
  if (x.length !== m * n) throw new GpuError(`${fn}: x has ${x.length} elements, not ${m}×${n}`);
}
