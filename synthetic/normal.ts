/**
 * Standard-normal helpers of the synthetic generator, on the host in f64: the upper tail
 * Φ̄(z) = P(Z > z) (a rational erfc approximation, relative error below 1.2e-7), its inverse, a
 * fast tabulated Φ̄ for the per-feature inner loop (Gaussian draws: `GaussianSource` of
 * `util/rng.ts`).
 * @module
 */

/**
 * erfc(x) by the Chebyshev-fitted rational approximation of Numerical Recipes (`erfcc`):
 * relative error below 1.2e-7 everywhere.
 */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 +
      t * (1.00002368 +
          t * (0.37409196 +
              t * (0.09678418 +
                  t * (-0.18628806 +
                      t * (0.27886807 +
                          t *
                            (-1.13520398 +
                              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? r : 2 - r;
}

/**
 * Upper tail of the standard normal, Φ̄(z) = P(Z > z) = erfc(z/√2)/2.
 *
 * @example
 * ```ts
 * import { normalUpperTail } from "./normal.ts";
 * if (Math.abs(normalUpperTail(0) - 0.5) > 1e-7) throw new Error();
 * if (Math.abs(normalUpperTail(1.959964) - 0.025) > 1e-7) throw new Error();
 * ```
 */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * The z with Φ̄(z) = p, for p in (0, 1): Acklam's rational approximation refined by two Newton
 * steps on {@link normalUpperTail}. p ≤ 0 gives +∞, p ≥ 1 gives −∞.
 *
 * @example
 * ```ts
 * import { normalUpperTail, normalUpperTailInverse } from "./normal.ts";
 * const z = normalUpperTailInverse(5e-4);
 * if (Math.abs(normalUpperTail(z) - 5e-4) > 1e-9) throw new Error(`z ${z}`);
 * ```
 */
export function normalUpperTailInverse(p: number): number {
  if (!(p > 0)) return Infinity;
  if (!(p < 1)) return -Infinity;
  // Acklam's inverse of the lower CDF at q = 1 − p, then negate-free: Φ̄⁻¹(p) = Φ⁻¹(1 − p).
  const q = 1 - p;
  const a = [
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  let z: number;
  if (q < 0.02425) {
    const s = Math.sqrt(-2 * Math.log(q));
    z = (((((c[0] * s + c[1]) * s + c[2]) * s + c[3]) * s + c[4]) * s + c[5]) /
      ((((d[0] * s + d[1]) * s + d[2]) * s + d[3]) * s + 1);
  } else if (q > 1 - 0.02425) {
    const s = Math.sqrt(-2 * Math.log(p));
    z = -(((((c[0] * s + c[1]) * s + c[2]) * s + c[3]) * s + c[4]) * s + c[5]) /
      ((((d[0] * s + d[1]) * s + d[2]) * s + d[3]) * s + 1);
  } else {
    const s = q - 0.5, r = s * s;
    z = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * s /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  for (let i = 0; i < 2; i++) {
    const density = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    if (density === 0) break;
    z += (normalUpperTail(z) - p) / density;
  }
  return z;
}

/** Range and resolution of the {@link fastUpperTail} table. */
const TABLE_LIMIT = 8, TABLE_STEPS_PER_UNIT = 512;
const TABLE_SIZE = 2 * TABLE_LIMIT * TABLE_STEPS_PER_UNIT + 1;
let table: Float64Array | null = null;

/** The tabulated Φ̄ on [−8, 8] in steps of 1/512 (built on first use). */
export function upperTailTable(): Float64Array {
  if (!table) {
    table = new Float64Array(TABLE_SIZE + 1);
    for (let i = 0; i < TABLE_SIZE; i++) {
      table[i] = normalUpperTail(-TABLE_LIMIT + i / TABLE_STEPS_PER_UNIT);
    }
    table[TABLE_SIZE] = table[TABLE_SIZE - 1];
  }
  return table;
}

/**
 * Φ̄(z) by linear interpolation in {@link upperTailTable} (absolute error below 2e-7; exactly 1
 * below −8 and 0 above 8). This is what the generator's correlated sampling uses per feature.
 *
 * @example
 * ```ts
 * import { fastUpperTail, normalUpperTail, upperTailTable } from "./normal.ts";
 * const t = upperTailTable();
 * for (const z of [-3.3, -0.01, 0.7, 2.5, 3.9]) {
 *   if (Math.abs(fastUpperTail(t, z) - normalUpperTail(z)) > 2e-7) throw new Error(`${z}`);
 * }
 * ```
 */
export function fastUpperTail(t: Float64Array, z: number): number {
  const x = (z + TABLE_LIMIT) * TABLE_STEPS_PER_UNIT;
  if (!(x > 0)) return z !== z ? NaN : 1;
  if (x >= TABLE_SIZE - 1) return 0;
  const i = x | 0;
  const f = x - i;
  return t[i] + (t[i + 1] - t[i]) * f;
}
