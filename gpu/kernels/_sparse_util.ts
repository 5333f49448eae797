/**
 * Private helpers of the sparse kernels (top-k, gather, scatter, counting sort): argument checks
 * and row windows that fit one storage binding.
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import type { DType, Tensor } from "../tensor.ts";
import { type Span, spans } from "./_op_util.ts";

/** Throws unless `t` is a live tensor of one of `dtypes` with `rank` dims (when given). */
export function checkTensor(
  t: Tensor,
  op: string,
  name: string,
  dtypes: DType[],
  rank?: number,
): void {
  if (t.disposed) throw new GpuError(`${op}: ${name} ${t} was used after dispose()`);
  if (!dtypes.includes(t.dtype)) {
    throw new GpuError(`${op}: ${name} must be ${dtypes.join(" or ")}, got ${t}`);
  }
  if (rank !== undefined && t.rank !== rank) {
    throw new GpuError(`${op}: ${name} must have rank ${rank}, got ${t}`);
  }
}

/** Throws unless `t` has exactly `shape`. */
export function checkDims(t: Tensor, shape: readonly number[], op: string, name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new GpuError(
      `${op}: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

/** Throws unless `k` is an integer in [lo, hi]. */
export function checkInt(k: number, lo: number, hi: number, op: string, name: string): void {
  if (!Number.isInteger(k) || k < lo || k > hi) {
    throw new GpuError(`${op}: ${name} is ${k}, expected an integer in [${lo}, ${hi}]`);
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Row windows for `rows` rows where each bound matrix has `boundElems[i]` elements per row
 * (windows of them are bound at row offsets, so starts stay aligned) and each per-window
 * scratch buffer has `scratchElems[i]` elements per row (bound whole, so only its size counts).
 * `maxRows` (tests) forces smaller windows, rounded to the alignment.
 * @throws {GpuError} naming the binding limit when one aligned row group does not fit.
 */
export function sparseWindows(
  gpu: Gpu,
  rows: number,
  boundElems: number[],
  scratchElems: number[] = [],
  maxRows?: number,
): Span[] {
  const widest = Math.max(1, ...boundElems, ...scratchElems);
  const natural = spans(gpu, rows, widest, boundElems);
  if (!maxRows || natural.every((s) => s.count <= maxRows)) return natural;
  const alignElems = Math.max(1, gpu.bindingOffsetAlignment / 4);
  let align = 1;
  for (const e of [widest, ...boundElems]) {
    if (e > 0) {
      const u = alignElems / gcd(alignElems, e);
      align = (align / gcd(align, u)) * u;
    }
  }
  const per = Math.max(align, Math.floor(maxRows / align) * align);
  const out: Span[] = [];
  for (let start = 0; start < rows; start += per) {
    out.push({ start, count: Math.min(per, rows - start) });
  }
  return out;
}

/** The smallest power of two ≥ `x` (x ≥ 1). */
export function nextPow2(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

/** The largest power of two ≤ `x` (x ≥ 1). */
export function prevPow2(x: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, x)));
}
