/**
 * Finite-difference helpers for gradient tests (SAE and LM backward passes): central
 * differences of a scalar function and a comparison that reports the worst mismatch. Work in
 * float64 on the host; a seeded PRNG for test data is `createRng` in `util/rng.ts`.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** Options of {@link centralDifference}. */
export interface CentralDifferenceOptions {
  /** Only these coordinates (the others come back as NaN); default: all. */
  indices?: readonly number[];
}

function coordinates(n: number, indices?: readonly number[]): readonly number[] {
  if (!indices) return Array.from({ length: n }, (_, i) => i);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new SaeflowError(`finite differences: index ${i} is outside [0, ${n})`);
    }
  }
  return indices;
}

/**
 * The central-difference gradient `(f(x + eps·eᵢ) − f(x − eps·eᵢ)) / (2·eps)` of `f` at `x`
 * (error O(eps²)). `x` is restored before returning.
 *
 * @example
 * ```ts
 * import { centralDifference } from "./finite_diff.ts";
 * const g = centralDifference((x) => x[0] * x[0] + 3 * x[1], new Float64Array([2, 5]));
 * // g ≈ [4, 3]
 * if (Math.abs(g[0] - 4) > 1e-6) throw new Error("unexpected");
 * ```
 */
export function centralDifference(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-3,
  options: CentralDifferenceOptions = {},
): Float64Array {
  if (!(eps > 0)) throw new SaeflowError(`centralDifference: eps must be > 0, got ${eps}`);
  const grad = new Float64Array(x.length).fill(NaN);
  for (const i of coordinates(x.length, options.indices)) {
    const xi = x[i];
    x[i] = xi + eps;
    const plus = f(x);
    x[i] = xi - eps;
    const minus = f(x);
    x[i] = xi;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

/** {@link centralDifference} for an asynchronous `f` (e.g. a loss computed on the GPU). */
export async function centralDifferenceAsync(
  f: (x: Float64Array) => Promise<number>,
  x: Float64Array,
  eps = 1e-3,
  options: CentralDifferenceOptions = {},
): Promise<Float64Array> {
  if (!(eps > 0)) throw new SaeflowError(`centralDifference: eps must be > 0, got ${eps}`);
  const grad = new Float64Array(x.length).fill(NaN);
  for (const i of coordinates(x.length, options.indices)) {
    const xi = x[i];
    x[i] = xi + eps;
    const plus = await f(x);
    x[i] = xi - eps;
    const minus = await f(x);
    x[i] = xi;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

/** Tolerances of {@link checkGradient}: `|a − n| ≤ atol + rtol·|n|` per coordinate. */
export interface GradientTolerance {
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance, times |numeric| (default 1e-3). */
  rtol?: number;
  /** Only these coordinates; default: all. */
  indices?: readonly number[];
}

/** Outcome of {@link checkGradient}: whether all coordinates pass and the worst one. */
export interface GradientCheck {
  /** True when every checked coordinate is within tolerance. */
  ok: boolean;
  /** Index of the coordinate with the largest excess over its tolerance (−1 if none checked). */
  worstIndex: number;
  /** |analytic − numeric| at `worstIndex`. */
  worstError: number;
  /** The error minus the allowed tolerance at `worstIndex` (≤ 0 when it passes). */
  worstExcess: number;
  /** Analytic gradient at `worstIndex`. */
  analytic: number;
  /** Numeric (finite-difference) gradient at `worstIndex`. */
  numeric: number;
  /** Number of coordinates compared. */
  checked: number;
}

/**
 * Compares an analytic gradient with a numeric one. NaN on either side fails (and is the worst).
 *
 * @example
 * ```ts
 * import { checkGradient } from "./finite_diff.ts";
 * const r = checkGradient([1, 2.001], [1, 2], { atol: 1e-4, rtol: 0 });
 * // r.ok === false, r.worstIndex === 1
 * if (r.ok || r.worstIndex !== 1) throw new Error("unexpected");
 * ```
 */
export function checkGradient(
  analytic: ArrayLike<number>,
  numeric: ArrayLike<number>,
  tolerance: GradientTolerance = {},
): GradientCheck {
  if (analytic.length !== numeric.length) {
    throw new SaeflowError(
      `checkGradient: analytic has ${analytic.length} entries, numeric ${numeric.length}`,
    );
  }
  const atol = tolerance.atol ?? 1e-5, rtol = tolerance.rtol ?? 1e-3;
  const result: GradientCheck = {
    ok: true,
    worstIndex: -1,
    worstError: 0,
    worstExcess: -Infinity,
    analytic: NaN,
    numeric: NaN,
    checked: 0,
  };
  for (const i of coordinates(analytic.length, tolerance.indices)) {
    const a = analytic[i], n = numeric[i];
    const error = Math.abs(a - n);
    const excess = Number.isNaN(error) ? Infinity : error - (atol + rtol * Math.abs(n));
    result.checked++;
    if (excess > result.worstExcess || result.worstIndex < 0) {
      Object.assign(result, { worstIndex: i, worstError: error, worstExcess: excess });
      Object.assign(result, { analytic: a, numeric: n });
    }
  }
  result.ok = result.worstExcess <= 0 || result.checked === 0;
  return result;
}
