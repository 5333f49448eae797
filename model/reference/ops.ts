/**
 * Numeric building blocks of the reference forward pass. Storage is float32; every reduction
 * (dot products, means, softmax sums) accumulates in float64 and is rounded once on store.
 * @module
 */

import type { ActFn, ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";

/**
 * `y[r, :] = x[r, :] · W + b` for `rows` rows: x `[rows, dIn]`, W `[dIn, dOut]` (TL's
 * right-multiplying layout), optional bias `[dOut]`. Float64 accumulation.
 *
 * @example
 * ```ts
 * import { linear } from "./ops.ts";
 * const y = linear(Float32Array.of(1, 2), 1, 2, Float32Array.of(1, 0, 0, 1), 2, Float32Array.of(0, 1));
 * if (y[0] !== 1 || y[1] !== 3) throw new Error("unreachable");
 * ```
 */
export function linear(
  x: Float32Array,
  rows: number,
  dIn: number,
  W: Float32Array,
  dOut: number,
  bias?: Float32Array,
  wOffset = 0,
): Float32Array {
  const out = new Float32Array(rows * dOut);
  const acc = new Float64Array(dOut);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    const xo = r * dIn;
    for (let i = 0; i < dIn; i++) {
      const xi = x[xo + i];
      if (xi === 0) continue;
      const wo = wOffset + i * dOut;
      for (let j = 0; j < dOut; j++) acc[j] += xi * W[wo + j];
    }
    const oo = r * dOut;
    if (bias) { for (let j = 0; j < dOut; j++) out[oo + j] = acc[j] + bias[j]; }
    else for (let j = 0; j < dOut; j++) out[oo + j] = acc[j];
  }
  return out;
}

/** Element-wise `a + b` (same length), rounded to float32. */
export function add(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) throw new ModelError(`add: lengths ${a.length} and ${b.length}`);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/**
 * The error function, accurate to ~1e-15 (JavaScript has no `Math.erf`): Taylor series for
 * |x| < 2.5, continued fraction for erfc beyond.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = ax, sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  if (ax > 6) return x < 0 ? -1 : 1;
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
  let frac = ax;
  for (let n = 60; n >= 1; n--) frac = ax + (n / 2) / frac;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The scalar activation function named by `act` (float64 in, float64 out). */
export function activation(act: ActFn): (x: number) => number {
  switch (act) {
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case "gelu_fast":
      return (x) => 0.5 * x * (1 + Math.tanh(0.7978845608 * x * (1 + 0.044715 * x * x)));
    case "gelu":
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case "silu":
      return (x) => x / (1 + Math.exp(-x));
    case "relu":
      return (x) => (x > 0 ? x : 0);
  }
  throw new ModelError(`unsupported activation "${act}"`);
}

/**
 * In-place softmax over each row of `[rows, n]`. −∞ entries get probability 0; a row that is
 * entirely −∞ (or yields NaN) becomes all zeros, matching TL's NaN → 0 replacement.
 */
export function softmaxRows(x: Float32Array, rows: number, n: number): void {
  const e = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let max = -Infinity;
    for (let j = 0; j < n; j++) if (x[o + j] > max) max = x[o + j];
    let sum = 0;
    for (let j = 0; j < n; j++) {
      e[j] = Math.exp(x[o + j] - max);
      sum += e[j];
    }
    for (let j = 0; j < n; j++) {
      const p = e[j] / sum;
      x[o + j] = Number.isNaN(p) ? 0 : p;
    }
  }
}

/** Rotary sin/cos tables `[nPos, rotaryDim]` (row p = position p). */
export interface RotaryTables {
  /** Sine table, `[nPos, rotaryDim]` row-major. */
  sin: Float32Array;
  /** Cosine table, `[nPos, rotaryDim]` row-major. */
  cos: Float32Array;
  /** Number of rotated dimensions per head. */
  rotaryDim: number;
}

/**
 * TL's `calculate_sin_cos_rotary`, emulating its float32 arithmetic (frequencies, angles and
 * sin/cos rounded to float32 as torch computes them) so positions in the thousands match.
 * NeoX layout `[θ0…θn−1, θ0…θn−1]`, or GPT-J `[θ0,θ0,θ1,θ1,…]` with `rotaryAdjacentPairs`.
 */
export function rotaryTables(cfg: ModelConfig, nPos: number): RotaryTables {
  const rd = cfg.rotaryDim;
  if (rd === null) throw new ModelError("rotaryTables: config has no rotaryDim");
  const f = Math.fround;
  const half = rd / 2;
  const freq = new Float64Array(half);
  const ntk = cfg.ntkByPartsRope;
  for (let i = 0; i < half; i++) {
    if (ntk) {
      const inv = f(1 / f(cfg.rotaryBase ** f((2 * i) / rd)));
      const lowWave = ntk.originalCtxLen / ntk.lowFreqFactor;
      const highWave = ntk.originalCtxLen / ntk.highFreqFactor;
      const wavelen = f((2 * Math.PI) / inv);
      let invL = wavelen > lowWave ? f(inv / ntk.factor) : inv;
      if (!(wavelen < highWave) && !(wavelen > lowWave)) {
        const smooth = f(
          (ntk.originalCtxLen / wavelen - ntk.lowFreqFactor) /
            (ntk.highFreqFactor - ntk.lowFreqFactor),
        );
        invL = f(f(f(f(1 - smooth) * invL) / ntk.factor) + f(smooth * invL));
      }
      freq[i] = f(1 / invL);
    } else {
      freq[i] = f(cfg.rotaryBase ** f(i / half));
    }
  }
  const sin = new Float32Array(nPos * rd), cos = new Float32Array(nPos * rd);
  for (let p = 0; p < nPos; p++) {
    for (let j = 0; j < rd; j++) {
      const i = cfg.rotaryAdjacentPairs ? j >> 1 : j % half;
      const angle = f(p / freq[i]);
      sin[p * rd + j] = Math.sin(angle);
      cos[p * rd + j] = Math.cos(angle);
    }
  }
  return { sin, cos, rotaryDim: rd };
}

/**
 * Applies rotary to `x` `[B, P, nH, d]` in a new array: the first `rotaryDim` components of
 * each head become x·cos + rotate(x)·sin at their position; the rest pass through.
 */
export function applyRotary(
  x: Float32Array,
  B: number,
  P: number,
  nH: number,
  d: number,
  tables: RotaryTables,
  adjacentPairs: boolean,
): Float32Array {
  const out = new Float32Array(x);
  const rd = tables.rotaryDim, half = rd / 2;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < P; p++) {
      const t = p * rd;
      for (let h = 0; h < nH; h++) {
        const o = ((b * P + p) * nH + h) * d;
        for (let j = 0; j < rd; j++) {
          let rot: number;
          if (adjacentPairs) rot = j % 2 === 0 ? -x[o + j + 1] : x[o + j - 1];
          else rot = j < half ? -x[o + j + half] : x[o + j - half];
          out[o + j] = x[o + j] * tables.cos[t + j] + rot * tables.sin[t + j];
        }
      }
    }
  }
  return out;
}
