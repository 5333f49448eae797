/**
 * The shape of a realistic-shape check (shared by the `tests/realistic/*_test.ts` files and
 * `deno task gpu-check`), and small helpers: seeded inputs and a closeness test that reports how
 * much of its tolerance it used.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { assertAllClose, assertEquals } from "../assert.ts";

/** One GPU-vs-reference check. `run` throws on a mismatch and returns its measured errors. */
export interface RealisticCheck {
  /** Unique name (`family: what`). */
  name: string;
  /** The kernel family (`topk`, `scatter`, `train_step`, …); `gpu-check --only` filters on it. */
  family: string;
  run(gpu: Gpu): Promise<Record<string, number>>;
}

/** Deterministic uniform [lo, hi) f32 values (xorshift32; fast for millions). */
export function uniform(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(count);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/**
 * Asserts |got − want| ≤ atol + rtol·|want| elementwise (naming `label` and the worst index) and
 * returns the largest fraction of that tolerance used (≤ 1 when it passes).
 */
export function close(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  label: string,
): number {
  assertEquals(got.length, want.length, `${label}: length`);
  assertAllClose(got, want, atol, rtol, label);
  let used = 0;
  for (let i = 0; i < want.length; i++) {
    used = Math.max(used, Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i])));
  }
  return used;
}

/** Asserts bit-exact equality of two arrays (as numbers), naming the first differing index. */
export function exact(got: ArrayLike<number>, want: ArrayLike<number>, label: string): number {
  assertEquals(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      throw new Error(`${label}: index ${i}: expected ${want[i]}, got ${got[i]}`);
    }
  }
  return 0;
}
