/**
 * Weight folds on the GPU, in place (spec §3.0): decoder row norms into the encoder, and an
 * activation norm scaling factor into the weights.
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { scale } from "../gpu/kernels/elementwise.ts";
import type { SAEConfig } from "./config_types.ts";
import type { SaeArchitectureImpl } from "./architectures/mod.ts";
import { ewInPlace, rowNorms } from "./_ops.ts";
import { SaeError } from "./errors.ts";

/** Decoder row norms are clamped at this value before dividing (newest SAELens). */
export const W_DEC_NORM_EPS = 1e-8;

/**
 * `fold_W_dec_norm()`: n = max(‖W_dec rows‖, 1e-8); W_dec ← W_dec/n, W_enc ← W_enc·n (columns)
 * and the architecture's per-latent tensors (b_enc; gated b_gate, b_mag; JumpReLU threshold)
 * ← ·n. Throws a {@link SaeError} where the architecture forbids it (TopK without rescaling).
 */
export function foldWDecNormInPlace(
  cfg: SAEConfig,
  impl: SaeArchitectureImpl,
  params: Readonly<Record<string, Tensor>>,
): void {
  if (!impl.foldWDecNorm) {
    throw new SaeError(`foldWDecNorm: not supported for architecture ${cfg.architecture}`);
  }
  const names = impl.foldWDecNorm(cfg);
  const { W_dec: wDec, W_enc: wEnc } = params;
  const n = rowNorms(wDec);
  using eps = Tensor.from([W_DEC_NORM_EPS], [1], { gpu: wDec.gpu });
  ewInPlace("max", n, eps);
  ewInPlace("div", wDec, n.reshape([cfg.dSae, 1]));
  ewInPlace("mul", wEnc, n);
  for (const name of names) {
    const t = params[name];
    if (t) ewInPlace("mul", t, n);
  }
  n.dispose();
}

/**
 * `fold_activation_norm_scaling_factor(s)`: W_enc ← s·W_enc, W_dec ← W_dec/s, b_dec ← b_dec/s
 * (the caller sets normalize_activations to "none"). Encoding x/s afterwards equals encoding x
 * before; the output is divided by s.
 */
export function foldScalingFactorInPlace(
  params: Readonly<Record<string, Tensor>>,
  s: number,
): void {
  if (!Number.isFinite(s) || s === 0) {
    throw new SaeError(
      `foldActivationNormScalingFactor: factor is ${s}, expected a finite non-zero number`,
    );
  }
  scale(params.W_enc, s, params.W_enc);
  scale(params.W_dec, 1 / s, params.W_dec);
  scale(params.b_dec, 1 / s, params.b_dec);
}
