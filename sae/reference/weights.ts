/**
 * Weight helpers the architectures' references share: SAELens's tied training initialisation
 * and the decoder-norm folding. A leaf module (it knows no architecture), so each
 * architecture's `reference.ts` may import it.
 * @module
 */
import { param, type ParamsLike, type RefSaeConfig, rowNorms, type SaeParams } from "./common.ts";
import type { RefRng } from "../../util/rng.ts";

/** torch `kaiming_uniform_` (a = 0) on a [rows, cols] tensor: U(−√(6/cols), √(6/cols)). */
export function kaimingUniform(rng: RefRng, rows: number, cols: number): Float64Array {
  const bound = Math.sqrt(6 / cols);
  return Float64Array.from({ length: rows * cols }, () => rng.uniform(-bound, bound));
}

/**
 * SAELens's tied training init: W_dec Kaiming-uniform on [dSae, dIn] (fan_in dIn), rows rescaled
 * to `decoderInitNorm` (default 0.1; null keeps them), W_enc = W_decᵀ, b_dec = 0.
 */
export function initTiedParams(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  const { dIn, dSae } = cfg;
  const wDec64 = kaimingUniform(rng, dSae, dIn);
  const target = cfg.decoderInitNorm === undefined ? 0.1 : cfg.decoderInitNorm;
  if (target !== null) {
    for (let i = 0; i < dSae; i++) {
      const row = wDec64.subarray(i * dIn, (i + 1) * dIn);
      const norm = Math.sqrt(row.reduce((acc, v) => acc + v * v, 0));
      for (let j = 0; j < dIn; j++) row[j] = (row[j] / norm) * target;
    }
  }
  const W_dec = Float32Array.from(wDec64);
  const W_enc = new Float32Array(dIn * dSae);
  for (let i = 0; i < dSae; i++) {
    for (let j = 0; j < dIn; j++) W_enc[j * dSae + i] = W_dec[i * dIn + j];
  }
  return { W_enc, W_dec, b_dec: new Float32Array(dIn) };
}

/** Copies of every tensor of `p` (float32). */
export function copyParams(p: ParamsLike): SaeParams {
  const out: SaeParams = {};
  for (const [name, v] of Object.entries(p)) out[name] = Float32Array.from(v);
  return out;
}

/**
 * W_dec ← W_dec/n (rows), W_enc ← W_enc·n (columns), and `perLatent` vectors ← ·n, with
 * n = max(‖W_dec rows‖, 1e-8); W_dec is `[dSae, dOut]`.
 */
export function foldNorms(
  cfg: RefSaeConfig,
  p: ParamsLike,
  perLatent: readonly string[],
  dOut = cfg.dIn,
): SaeParams {
  const { dIn, dSae, architecture: arch } = cfg;
  const wDec = param(p, "W_dec", dSae * dOut, arch);
  const wEnc = param(p, "W_enc", dIn * dSae, arch);
  const norms = rowNorms(wDec, dSae, dOut).map((v) => Math.max(v, 1e-8));
  const out = copyParams(p);
  for (let i = 0; i < dSae; i++) {
    for (let j = 0; j < dOut; j++) out.W_dec[i * dOut + j] = wDec[i * dOut + j] / norms[i];
  }
  for (let j = 0; j < dIn; j++) {
    for (let i = 0; i < dSae; i++) out.W_enc[j * dSae + i] = wEnc[j * dSae + i] * norms[i];
  }
  for (const name of perLatent) {
    if (p[name] === undefined) continue;
    const v = param(p, name, dSae, arch);
    for (let i = 0; i < dSae; i++) out[name][i] = v[i] * norms[i];
  }
  return out;
}
