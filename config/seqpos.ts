/**
 * `seqpos_slice`: Python slice arguments `(start, stop[, step])` selecting training positions
 * within each context, with Python's slice semantics and SAELens' validation (§4.6).
 * @module
 */

import { ConfigError, describeValue } from "./errors.ts";

/** Python `slice(*args)` arguments: 1 (`stop`), 2 (`start, stop`) or 3 (`start, stop, step`). */
export type SeqposSlice = readonly (number | null)[];

function checkShape(slice: unknown, where: string): asserts slice is SeqposSlice {
  if (
    !Array.isArray(slice) || slice.length < 1 || slice.length > 3 ||
    !slice.every((v) => v === null || Number.isSafeInteger(v))
  ) {
    throw new ConfigError(
      `${where} is ${describeValue(slice)}, expected 1 to 3 Python slice arguments ` +
        `(integers or null), e.g. [null] or [2, 8] or [0, null, 2]`,
    );
  }
}

/** Python `slice(*args)` → `[start, stop, step]` (missing parts null). */
function sliceParts(slice: SeqposSlice): [number | null, number | null, number | null] {
  if (slice.length === 1) return [null, slice[0], null];
  return [slice[0], slice[1], slice.length === 3 ? slice[2] : null];
}

/** Python's `slice.indices(n)`: the clamped start, stop and step over `range(n)`. */
function sliceIndices(n: number, slice: SeqposSlice): [number, number, number] {
  checkShape(slice, "seqpos_slice");
  const [startArg, stopArg, stepArg] = sliceParts(slice);
  const step = stepArg ?? 1;
  if (step === 0) throw new ConfigError("seqpos_slice: slice step cannot be zero");
  const clamp = (v: number | null, dflt: number, lo: number, hi: number) => {
    if (v === null) return dflt;
    if (v < 0) return Math.max(v + n, lo);
    return Math.min(v, hi);
  };
  if (step > 0) return [clamp(startArg, 0, 0, n), clamp(stopArg, n, 0, n), step];
  return [clamp(startArg, n - 1, -1, n - 1), clamp(stopArg, -1, -1, n - 1), step];
}

/**
 * The positions `range(contextSize)[slice(*slice)]` selects, with Python semantics (negative
 * indices count from the end, out-of-range bounds clamp, a negative step walks backwards).
 *
 * @example
 * ```ts
 * import { seqposIndices } from "./seqpos.ts";
 * if (seqposIndices(10, [2, 8]).join() !== "2,3,4,5,6,7") throw new Error();
 * if (seqposIndices(10, [-3]).join() !== "0,1,2,3,4,5,6") throw new Error();
 * ```
 */
export function seqposIndices(contextSize: number, slice: SeqposSlice): number[] {
  const [start, stop, step] = sliceIndices(contextSize, slice);
  const out: number[] = [];
  if (step > 0) { for (let i = start; i < stop; i += step) out.push(i); }
  else for (let i = start; i > stop; i += step) out.push(i);
  return out;
}

/**
 * `len(range(contextSize)[slice(*slice)])`: the training context length T′ after slicing.
 *
 * @example
 * ```ts
 * import { seqposSliceLength } from "./seqpos.ts";
 * if (seqposSliceLength(10, [2, 8]) !== 6) throw new Error();
 * if (seqposSliceLength(128, [null]) !== 128) throw new Error();
 * if (seqposSliceLength(10, [-4, null]) !== 4) throw new Error();
 * ```
 */
export function seqposSliceLength(contextSize: number, slice: SeqposSlice): number {
  // Arithmetic, not seqposIndices(...).length: a huge context must not build a huge array.
  const [start, stop, step] = sliceIndices(contextSize, slice);
  return Math.max(0, Math.ceil((stop - start) / step));
}

/**
 * SAELens' `_validate_seqpos`: with three arguments the step (null counts as 1) must be > 1 —
 * SAELens rejects an explicit step of 1 or null, so omit the step instead — and the slice must
 * select at least one position of `range(contextSize)`. Throws a {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { validateSeqposSlice } from "./seqpos.ts";
 * validateSeqposSlice([2, 8], 10);
 * let threw = false;
 * try { validateSeqposSlice([6, 3], 10); } catch { threw = true; }
 * if (!threw) throw new Error("unreachable");
 * ```
 */
export function validateSeqposSlice(slice: unknown, contextSize: number): void {
  checkShape(slice, "seqpos_slice");
  if (slice.length === 3) {
    const step = slice[2] || 1;
    if (step <= 1) {
      throw new ConfigError(
        `seqpos_slice is ${describeValue(slice)}: the step ${describeValue(slice[2])} must be ` +
          `greater than 1 (as in SAELens; for a step of 1 give only [start, stop])`,
      );
    }
  }
  if (seqposSliceLength(contextSize, slice) === 0) {
    throw new ConfigError(
      `seqpos_slice is ${describeValue(slice)}: it selects no position of a context of ` +
        `${contextSize} tokens; adjust seqpos_slice or context_size`,
    );
  }
}
