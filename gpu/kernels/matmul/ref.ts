/**
 * Plain-TypeScript reference of saeflow's matmul (float64 accumulation), the oracle every GPU
 * variant is tested against, plus the activation formulas the WGSL epilogues mirror.
 * @module
 */

/** Activation fused into the matmul epilogue. `gelu_tanh` is GPT-2's `gelu_new`. */
export type MatmulActivation = "none" | "relu" | "gelu_tanh";

/** √(2/π), the constant of the tanh approximation of GELU. */
export const GELU_TANH_C = Math.sqrt(2 / Math.PI);

/**
 * GPT-2's `gelu_new`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 *
 * @example
 * ```ts
 * import { geluTanh } from "./ref.ts";
 * if (geluTanh(0) !== 0) throw new Error("gelu(0) must be 0");
 * ```
 */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_TANH_C * (x + 0.044715 * x * x * x)));
}

/** Applies `activation` to one value. */
export function applyActivation(x: number, activation: MatmulActivation): number {
  if (activation === "relu") return x > 0 ? x : 0;
  if (activation === "gelu_tanh") return geluTanh(x);
  return x;
}

/** Options of {@link matmulRef}; the meaning matches `matmul`'s options. */
export interface MatmulRefOptions {
  /** `a` is stored `[k, m]` (the product uses Aᵀ). */
  transA?: boolean;
  /** `b` is stored `[n, k]` (the product uses Bᵀ). */
  transB?: boolean;
  /** Per-column bias `[n]`, added before the activation. */
  bias?: ArrayLike<number>;
  /** Activation applied to alpha·A·B + bias. */
  activation?: MatmulActivation;
  /** When given, the result is added to these values (`[m, n]`): C = C₀ + act(alpha·A·B + bias). */
  accumulateInto?: ArrayLike<number>;
  /** Scale of the product (default 1). */
  alpha?: number;
}

/**
 * C = [C₀ +] act(alpha·op(A)·op(B) + bias) for row-major f32 data, accumulated in float64.
 * `a` is `[m, k]` (or `[k, m]` with `transA`), `b` is `[k, n]` (or `[n, k]` with `transB`);
 * the result is `[m, n]`.
 *
 * @example
 * ```ts
 * import { matmulRef } from "./ref.ts";
 * const c = matmulRef(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), 2, 2, 2);
 * if (c[1] !== 2 || c[2] !== 3) throw new Error("identity product");
 * ```
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
  options: MatmulRefOptions = {},
): Float32Array {
  const { transA = false, transB = false, bias, activation = "none", accumulateInto } = options;
  const alpha = options.alpha ?? 1;
  if (a.length !== m * k) {
    throw new RangeError(`matmulRef: a has ${a.length} elements, expected m·k = ${m * k}`);
  }
  if (b.length !== k * n) {
    throw new RangeError(`matmulRef: b has ${b.length} elements, expected k·n = ${k * n}`);
  }
  if (bias && bias.length !== n) {
    throw new RangeError(`matmulRef: bias has ${bias.length} elements, expected n = ${n}`);
  }
  if (accumulateInto && accumulateInto.length !== m * n) {
    throw new RangeError(
      `matmulRef: accumulateInto has ${accumulateInto.length} elements, expected m·n = ${m * n}`,
    );
  }
  const out = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * m + i] : a[i * k + p];
      if (transB) {
        for (let j = 0; j < n; j++) row[j] += av * b[j * k + p];
      } else {
        const base = p * n;
        for (let j = 0; j < n; j++) row[j] += av * b[base + j];
      }
    }
    for (let j = 0; j < n; j++) {
      let v = alpha * row[j] + (bias ? bias[j] : 0);
      v = applyActivation(v, activation);
      if (accumulateInto) v += accumulateInto[i * n + j];
      out[i * n + j] = v;
    }
  }
  return out;
}
