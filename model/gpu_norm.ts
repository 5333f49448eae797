/**
 * A norm module of the GPU forward with TL's hook points `<prefix>.hook_scale` and
 * `<prefix>.hook_normalized` (spec transformer_lens.md §1.3). Unrequested hooks cost nothing: one
 * fused kernel computes the module output; requested ones are materialised, and a hook that
 * replaces the scale feeds the normalisation, as in the reference.
 * @module
 */

import { binary } from "../gpu/kernels/binary.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { NormalizationType } from "./config.ts";
import type { GpuHookContext } from "./gpu_hooks.ts";
import type { GpuNorm } from "./gpu_params.ts";
import { norm } from "./kernels/norm.ts";

/**
 * Runs norm `prefix` of `kind` on `x` (not consumed) and returns the module output (owned by
 * the caller). For RMS the output is hook_normalized · w.
 */
export async function normWithHooks(
  ctx: GpuHookContext,
  prefix: string,
  kind: NormalizationType,
  eps: number,
  weights: GpuNorm,
  x: Tensor,
): Promise<Tensor> {
  const scaleName = `${prefix}.hook_scale`, normName = `${prefix}.hook_normalized`;
  const wantScale = ctx.wants(scaleName), wantNorm = ctx.wants(normName);
  // RMS's hook_normalized is taken before the weight: split the weight off when it is wanted.
  const splitWeight = kind === "RMS" && wantNorm;
  const opts = { w: weights.w, b: weights.b, skipWeight: splitWeight };
  let out: Tensor;
  if (ctx.hooked(scaleName)) {
    // The (possibly replaced) scale feeds the normalisation: compute it, fire, then normalise.
    const first = norm(x, kind, eps, { ...opts, wantScale: true });
    ctx.release(first.out);
    const scale = await ctx.fire(scaleName, first.scale!);
    out = norm(x, kind, eps, { ...opts, scaleIn: scale }).out;
    ctx.release(scale);
  } else {
    const r = norm(x, kind, eps, { ...opts, wantScale });
    out = r.out;
    if (r.scale) ctx.release(await ctx.fire(scaleName, r.scale));
  }
  if (!wantNorm) return out;
  out = await ctx.fire(normName, out);
  if (!splitWeight) return out;
  const weighted = binary("mul", out, weights.w!);
  ctx.release(out);
  return weighted;
}
