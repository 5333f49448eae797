/**
 * The affine encoder/decoder pieces every architecture shares (spec §3.0), with their
 * hand-derived backward passes.
 */
import {
  addRowSums,
  addRowVector,
  addTransAMatmul,
  type Grads64,
  matmul,
  matmulTransB,
  param,
  type ParamsLike,
  type RefSaeConfig,
} from "./common.ts";
import { normIn64, type NormStateRef } from "./normalization.ts";

/** SAELens `process_sae_in`: run-time normalisation, then x̃ = x − b_dec·[applyBDecToInput]. */
export function processInput64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): { xTilde: Float64Array; norm: NormStateRef } {
  const { x: xn, state } = normIn64(cfg.normalizeActivations, x, n, cfg.dIn);
  if (cfg.applyBDecToInput) {
    const bDec = param(p, "b_dec", cfg.dIn, cfg.architecture);
    for (let i = 0; i < n; i++) for (let j = 0; j < cfg.dIn; j++) xn[i * cfg.dIn + j] -= bDec[j];
  }
  return { xTilde: xn, norm: state };
}

/** h = x̃·W_enc + b (b omitted when undefined). */
export function encodeAffine64(
  xTilde: ArrayLike<number>,
  wEnc: ArrayLike<number>,
  b: ArrayLike<number> | undefined,
  n: number,
  dIn: number,
  dSae: number,
): Float64Array {
  const h = matmul(xTilde, wEnc, n, dIn, dSae);
  if (b) addRowVector(h, b, n, dSae);
  return h;
}

/** x̂_pre = acts·W_dec + b_dec. */
export function decodeAffine64(
  acts: ArrayLike<number>,
  wDec: ArrayLike<number>,
  bDec: ArrayLike<number>,
  n: number,
  dSae: number,
  d: number,
): Float64Array {
  const y = matmul(acts, wDec, n, dSae, d);
  addRowVector(y, bDec, n, d);
  return y;
}

/**
 * Backward of x̂_pre = acts·W_dec + b_dec given gPre = ∂L/∂x̂_pre: accumulates into
 * grads.W_dec and grads.b_dec and returns ∂L/∂acts. `rowOffset` decodes only rows
 * `[rowOffset, rowOffset + width)` of W_dec (matryoshka prefixes); acts then has `width` columns.
 */
export function decoderBackward(
  grads: Grads64,
  acts: ArrayLike<number>,
  gPre: Float64Array,
  wDec: ArrayLike<number>,
  n: number,
  width: number,
  d: number,
  rowOffset = 0,
  withBias = true,
): Float64Array {
  addTransAMatmul(
    grads.W_dec.subarray(rowOffset * d, (rowOffset + width) * d),
    acts,
    gPre,
    n,
    width,
    d,
  );
  if (withBias) addRowSums(grads.b_dec, gPre, n, d);
  const gActs = new Float64Array(n * width);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < width; i++) {
      let s = 0;
      const row = (rowOffset + i) * d;
      for (let j = 0; j < d; j++) s += gPre[b * d + j] * wDec[row + j];
      gActs[b * width + i] = s;
    }
  }
  return gActs;
}

/**
 * Backward of h = x̃·W + b with x̃ = norm(x) − b_dec·[apply]: accumulates grads[wName],
 * grads[bName] (if given) and, when b_dec enters the input, grads.b_dec −= Σ ∂L/∂x̃.
 */
export function encoderBackward(
  cfg: RefSaeConfig,
  grads: Grads64,
  gH: Float64Array,
  xTilde: ArrayLike<number>,
  wEnc: ArrayLike<number>,
  n: number,
  bName: string | undefined,
  wName = "W_enc",
): void {
  const { dIn, dSae } = cfg;
  addTransAMatmul(grads[wName], xTilde, gH, n, dIn, dSae);
  if (bName) addRowSums(grads[bName], gH, n, dSae);
  if (cfg.applyBDecToInput) {
    const gX = matmulTransB(gH, wEnc, n, dSae, dIn);
    addRowSums(grads.b_dec, gX, n, dIn, -1);
  }
}

/** Input processing then h = x̃·W_enc + b_enc (the affine encoders' pre-activation). */
export function affineHidden64(
  cfg: RefSaeConfig,
  p: ParamsLike,
  x: ArrayLike<number>,
  n: number,
): { h: Float64Array; xTilde: Float64Array; norm: NormStateRef } {
  const { dIn, dSae, architecture: arch } = cfg;
  const { xTilde, norm } = processInput64(cfg, p, x, n);
  const h = encodeAffine64(
    xTilde,
    param(p, "W_enc", dIn * dSae, arch),
    param(p, "b_enc", dSae, arch),
    n,
    dIn,
    dSae,
  );
  return { h, xTilde, norm };
}
