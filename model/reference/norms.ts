/**
 * LayerNorm / RMSNorm (and their parameter-free "Pre" forms) with TL's hook semantics
 * (spec transformer_lens.md §1.3): `hook_scale` = sqrt(mean(x_c²) + eps) with shape
 * `[...lead, 1]`; LN's `hook_normalized` includes the affine, RMS's is taken before the weight.
 * @module
 */

import type { NormalizationType } from "../config.ts";
import type { HookRunner } from "../hooks/reference.ts";
import { ModelError } from "../errors.ts";

/** Weights of one norm module (`w` absent for LNPre/RMSPre, `b` only for LN). */
export interface NormWeights {
  w?: Float32Array;
  b?: Float32Array;
}

/**
 * Runs one norm module over `rows` rows of width `n` (`lead` = the shape before the last axis),
 * firing `<prefix>.hook_scale` and `<prefix>.hook_normalized`. Returns the module output
 * (for RMS: hook_normalized · w).
 */
export function applyNorm(
  run: HookRunner,
  prefix: string,
  kind: NormalizationType,
  x: Float32Array,
  lead: number[],
  n: number,
  eps: number,
  weights: NormWeights,
): Float32Array {
  const rows = x.length / n;
  const centered = kind === "LN" || kind === "LNPre";
  if ((kind === "LN" || kind === "RMS") && !weights.w) {
    throw new ModelError(`${prefix}: ${kind} norm needs a weight (was fold_ln applied?)`);
  }
  if (kind === "LN" && !weights.b) throw new ModelError(`${prefix}: LN norm needs a bias`);
  const xc = new Float64Array(x.length);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let mean = 0;
    if (centered) {
      for (let j = 0; j < n; j++) mean += x[o + j];
      mean /= n;
    }
    let ss = 0;
    for (let j = 0; j < n; j++) {
      const v = x[o + j] - mean;
      xc[o + j] = v;
      ss += v * v;
    }
    scale[r] = Math.sqrt(ss / n + eps);
  }
  const s = run.fireData(`${prefix}.hook_scale`, scale, [...lead, 1]);
  let normalized: Float32Array = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * n, sr = s[r];
    if (kind === "LN") {
      const { w, b } = weights as Required<NormWeights>;
      for (let j = 0; j < n; j++) normalized[o + j] = (xc[o + j] / sr) * w[j] + b[j];
    } else {
      for (let j = 0; j < n; j++) normalized[o + j] = xc[o + j] / sr;
    }
  }
  normalized = run.fireData(`${prefix}.hook_normalized`, normalized, [...lead, n]);
  if (kind !== "RMS") return normalized;
  const w = weights.w!;
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) out[o + j] = normalized[o + j] * w[j];
  }
  return out;
}
