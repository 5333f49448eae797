/**
 * Small helpers every kernel uses: dispatch-grid folding (a dispatch has at most 65535
 * workgroups per dimension), the matching WGSL snippet, and row windows for tensors larger than
 * one storage binding.
 * @module
 */

import type { Gpu } from "./device.ts";
import { GpuError } from "./device.ts";

/**
 * A grid of `[x, y, 1]` workgroups covering `count` workgroups with `x` within the device limit.
 * Kernels recover the linear workgroup index with {@link WGSL_LINEAR_WORKGROUP}; they must
 * ignore indices ≥ `count` (the grid can overshoot by less than one row of `x`).
 */
export function grid1d(gpu: Gpu, count: number): [number, number, number] {
  const max = gpu.maxWorkgroupsPerDimension;
  if (count <= max) return [count, 1, 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new GpuError(`${count} workgroups do not fit a ${max}×${max} grid`);
  return [Math.ceil(count / y), y, 1];
}

/** WGSL: `linearWorkgroup(wid, nwg)` = wid.x + wid.y · nwg.x, the counterpart of {@link grid1d}. */
export const WGSL_LINEAR_WORKGROUP = /* wgsl */ `
fn linearWorkgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
`;

/** A window of rows `[start, start + count)` of a row-major matrix. */
export interface RowWindow {
  /** First row of the window. */
  start: number;
  /** Number of rows in the window. */
  count: number;
}

/**
 * Splits `rows` rows of `rowBytes` bytes each into windows whose bindings fit the device's
 * `maxStorageBufferBindingSize` and whose byte offsets are aligned to
 * `minStorageBufferOffsetAlignment`. `extraRowBytes` lets several matrices share the split
 * (pass the largest row size among the bound matrices).
 * @throws {GpuError} naming the limit when a single row is already too large.
 */
export function rowWindows(gpu: Gpu, rows: number, rowBytes: number): RowWindow[] {
  if (rows === 0) return [];
  const limit = gpu.maxBindingSize;
  if (rowBytes > limit) {
    throw new GpuError(
      `one row of ${rowBytes} bytes exceeds maxStorageBufferBindingSize (${limit} bytes)`,
    );
  }
  if (rows * rowBytes <= limit) return [{ start: 0, count: rows }];
  const align = gpu.bindingOffsetAlignment;
  // Rows per window: as many as fit, rounded down so that start·rowBytes stays aligned.
  const rowsPerAlign = align / gcd(align, rowBytes);
  let per = Math.floor(limit / rowBytes);
  per -= per % rowsPerAlign;
  if (per === 0) {
    throw new GpuError(
      `cannot split rows of ${rowBytes} bytes into aligned windows under ${limit} bytes`,
    );
  }
  const out: RowWindow[] = [];
  for (let start = 0; start < rows; start += per) {
    out.push({ start, count: Math.min(per, rows - start) });
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Integer ceiling division. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}
