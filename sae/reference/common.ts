/**
 * Shared types and float64 linear-algebra helpers for the plain-TS reference SAE math.
 * Every reference function accepts `ArrayLike<number>` (Float32Array or Float64Array) and
 * accumulates in float64, so passing Float64Array parameters gives a float64-exact loss
 * (used by the finite-difference tests).
 */
import { SaeReferenceError } from "./errors.ts";

export { SaeReferenceError };

/** SAE parameters keyed by SAELens tensor name, row-major (`W_enc [dIn, dSae]`, …). */
export type SaeParams = Record<string, Float32Array>;

/** Read-only parameters of any numeric array type (Float32Array or Float64Array). */
export type ParamsLike = Readonly<Record<string, ArrayLike<number>>>;

/** Gradients (or any float64 tensors) keyed by parameter name. */
export type Grads64 = Record<string, Float64Array>;

/** Architectures the reference implements. */
export type RefArchitecture =
  | "standard"
  | "gated"
  | "jumprelu"
  | "topk"
  | "batchtopk"
  | "matryoshka_batchtopk"
  | "transcoder"
  | "skip_transcoder"
  | "jumprelu_transcoder"
  | "jumprelu_skip_transcoder"
  | "matching_pursuit";

/** Run-time activation normalisation modes (SAELens `normalize_activations`). */
export type NormalizeActivations =
  | "none"
  | "expected_average_only_in"
  | "constant_norm_rescale"
  | "layer_norm";

/**
 * Minimal structural SAE config the reference reads: camelCase versions of SAELens fields.
 * Optional fields default to the SAELens (newest) training defaults where one exists;
 * `k` and `rescaleActsByDecoderNorm` must be given for the TopK family (their SAELens
 * defaults differ between inference and training classes).
 */
export interface RefSaeConfig {
  /** One of {@link RefArchitecture}. */
  architecture: string;
  /** Input width (SAELens `d_in`). */
  dIn: number;
  /** Number of latents (SAELens `d_sae`). */
  dSae: number;
  /** Transcoders only: output width. */
  dOut?: number;
  /** Subtract b_dec from the input before encoding (SAELens `apply_b_dec_to_input`). */
  applyBDecToInput: boolean;
  /** One of {@link NormalizeActivations}. */
  normalizeActivations: string;
  /** TopK: integer k per token; BatchTopK: average k (may be fractional). */
  k?: number;
  /** TopK family: scale pre-activations by decoder row norms (SAELens `rescale_acts_by_decoder_norm`). */
  rescaleActsByDecoderNorm?: boolean;
  /** Standard: p of the sparsity norm (default 1). */
  lpNorm?: number;
  /** JumpReLU: STE rectangle width ε (default 0.05). */
  jumpreluBandwidth?: number;
  /** JumpReLU: "step" (default) or "tanh". */
  jumpreluSparsityLossMode?: string;
  /** JumpReLU tanh mode scale c (default 4.0). */
  jumpreluTanhScale?: number;
  /** JumpReLU: initial θ (default 0.01). */
  jumpreluInitThreshold?: number;
  /** JumpReLU (newest, optional): straight-through gradient to the input as well. */
  jumpreluSteToInput?: boolean;
  /** JumpReLU: enables `pre_act_loss` when set (null/undefined: off). */
  preActLossCoefficient?: number | null;
  /** TopK family: aux-k loss coefficient (default 1.0). */
  auxLossCoefficient?: number;
  /** Matryoshka: level widths (d_sae appended if missing). */
  matryoshkaWidths?: number[];
  /** Matryoshka (newest): per-level aux-k loss instead of the full-width one. */
  useMatryoshkaAuxLoss?: boolean;
  /** BatchTopK: EMA rate of the threshold (default 0.01). */
  topkThresholdLr?: number;
  /** Standard, legacy v3–v5: ghost-grads loss. */
  useGhostGrads?: boolean;
  /** Training init: decoder row norm (default 0.1; null: keep Kaiming rows). */
  decoderInitNorm?: number | null;
}

/** Options of a training forward/backward pass. */
export interface TrainOptions {
  /** Current coefficients, e.g. `{ l1: 5 }` (standard, gated) or `{ l0: 1 }` (jumprelu). */
  coefficients: Record<string, number>;
  /** 1 = dead latent (length dSae); drives aux-k, pre-act and ghost-grad losses. */
  deadMask?: Uint8Array;
  /** Transcoders: the activations to reconstruct `[n, dOut]` (read at `hook_name_out`). */
  target?: ArrayLike<number>;
}

/** Everything one training pass needs, resolved once. */
export interface TrainCtx {
  cfg: RefSaeConfig;
  p: ParamsLike;
  /** The input rows `[n, dIn]`. */
  x: ArrayLike<number>;
  n: number;
  dIn: number;
  dSae: number;
  opts: TrainOptions;
  /** What the decoder reconstructs `[n, dOut]`: x itself, or a transcoder's target. */
  target: ArrayLike<number>;
  /** Width of the reconstruction (dIn, or a transcoder's dOut). */
  dOut: number;
  /** Added to the decoder output before the loss (skip transcoders: x·W_skipᵀ), `[n, dOut]`. */
  outputOffset?: Float64Array;
}

/** Architecture-level result of a training forward pass, with a backward closure. */
export interface ArchTrainResult {
  saeOut: Float64Array;
  featureActs: Float64Array;
  hiddenPre: Float64Array;
  losses: Record<string, number>;
  metrics: Record<string, number>;
  /** BatchTopK family: the threshold after this step's EMA update. */
  topkThreshold?: number;
  /** Computes ∂loss/∂param for every trainable parameter. */
  backward: () => Grads64;
}

/** Returns `params[name]` after checking it exists with `length` elements. */
export function param(
  p: ParamsLike,
  name: string,
  length: number,
  what: string,
): ArrayLike<number> {
  const t = p[name];
  if (t === undefined) throw new SaeReferenceError(`params.${name}: missing (needed by ${what})`);
  if (t.length !== length) {
    throw new SaeReferenceError(
      `params.${name}: expected ${length} elements for ${what}, got ${t.length}`,
    );
  }
  return t;
}

/** Checks that `x` holds `n` rows of `d` values. */
export function checkRows(x: ArrayLike<number>, n: number, d: number, name: string): void {
  if (!Number.isInteger(n) || n < 0 || x.length !== n * d) {
    throw new SaeReferenceError(
      `${name}: expected [${n}, ${d}] (${n * d} values), got ${x.length}`,
    );
  }
}

/** Reads a required coefficient from the training options. */
export function coefficient(opts: TrainOptions, name: string, arch: string): number {
  const v = opts.coefficients[name];
  if (typeof v !== "number") {
    throw new SaeReferenceError(`coefficients.${name}: missing (required by ${arch})`);
  }
  return v;
}

/** out[n, m] = a[n, k] · b[k, m] in float64. */
export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const av = a[i * k + t];
      if (av === 0) continue;
      for (let j = 0; j < m; j++) out[i * m + j] += av * b[t * m + j];
    }
  }
  return out;
}

/** out[n, m] = a[n, k] · b[m, k]ᵀ in float64. */
export function matmulTransB(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
      out[i * m + j] = s;
    }
  }
  return out;
}

/** out[k, m] += a[n, k]ᵀ · b[n, m] (gradient of a weight from inputs and upstream grads). */
export function addTransAMatmul(
  out: Float64Array,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): void {
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const av = a[i * k + t];
      if (av === 0) continue;
      for (let j = 0; j < m; j++) out[t * m + j] += av * b[i * m + j];
    }
  }
}

/** out[m] += Σ_rows g[n, m] (gradient of a broadcast bias). */
export function addRowSums(
  out: Float64Array,
  g: ArrayLike<number>,
  n: number,
  m: number,
  sign = 1,
): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j] += sign * g[i * m + j];
}

/** Adds `v[m]` to every row of `a[n, m]` in place. */
export function addRowVector(a: Float64Array, v: ArrayLike<number>, n: number, m: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) a[i * m + j] += v[j];
}

/** L2 norm of every row of `w[rows, cols]`. */
export function rowNorms(w: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += w[i * cols + j] ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/**
 * Chain rule through n_i = ‖W_dec[i]‖: gW_dec[i] += gN_i · W_dec[i] / n_i
 * (a zero row gets no gradient, like torch's masked norm backward).
 */
export function addDecoderNormGrad(
  gWdec: Float64Array,
  gN: ArrayLike<number>,
  wDec: ArrayLike<number>,
  norms: ArrayLike<number>,
  dSae: number,
  d: number,
): void {
  for (let i = 0; i < dSae; i++) {
    if (norms[i] === 0 || gN[i] === 0) continue;
    const s = gN[i] / norms[i];
    for (let j = 0; j < d; j++) gWdec[i * d + j] += s * wDec[i * d + j];
  }
}

/** `mean_b Σ_j (pred − target)²` and its gradient 2(pred − target)/n. */
export function sumSquaredMean(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  n: number,
  d: number,
): { loss: number; grad: Float64Array } {
  const grad = new Float64Array(n * d);
  let loss = 0;
  for (let i = 0; i < n * d; i++) {
    const diff = pred[i] - target[i];
    loss += diff * diff;
    grad[i] = (2 * diff) / n;
  }
  return { loss: n === 0 ? 0 : loss / n, grad };
}

/** Copies any numeric array into a new Float32Array. */
export function toF32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}

/** Copies any numeric array into a new Float64Array. */
export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** Zero gradients shaped like the named parameters. */
export function zeroGrads(p: ParamsLike, names: readonly string[]): Grads64 {
  const g: Grads64 = {};
  for (const name of names) g[name] = new Float64Array(p[name].length);
  return g;
}

/** Indices `0..count-1` of `values` (via `at`) sorted descending; ties keep the lower index first. */
export function sortedDescending(count: number, at: (i: number) => number): Int32Array {
  const idx = Int32Array.from({ length: count }, (_, i) => i);
  idx.sort((a, b) => {
    const d = at(b) - at(a);
    return d !== 0 ? d : a - b;
  });
  return idx;
}
