/**
 * SAELens' base weight initialisation of inference SAEs (spec §3.0 "Weight init"), reproducible
 * through a seeded generator.
 * @module
 */

import { createRng } from "../util/rng.ts";
import type { SAEConfig } from "./config_types.ts";
import type { SaeArchitectureImpl } from "./architectures/mod.ts";

function kaimingUniform(next: () => number, rows: number, cols: number): Float32Array {
  // torch kaiming_uniform_ with a = 0 on a [rows, cols] tensor: fan_in = cols.
  const bound = Math.sqrt(6 / cols);
  return Float32Array.from({ length: rows * cols }, () => (2 * next() - 1) * bound);
}

/**
 * Initial tensors of an untrained SAE (SAELens `SAE.from_dict`): W_dec Kaiming-uniform on
 * `[dSae, dIn]` and W_enc = W_decᵀ; transcoders draw W_dec `[dSae, dOut]` and an independent W_enc
 * `[dIn, dSae]`; every other tensor is zero.
 *
 * @example
 * ```ts
 * import { initSaeParams } from "./init.ts";
 * import { getSaeArchitecture } from "./architectures/mod.ts";
 * import { createSAEConfig } from "./config.ts";
 * const cfg = createSAEConfig({ architecture: "standard", dIn: 2, dSae: 3 });
 * const p = initSaeParams(cfg, getSaeArchitecture("standard"), 1);
 * if (p.W_enc[1] !== p.W_dec[2] || p.b_enc.some((v) => v !== 0)) throw new Error();
 * ```
 */
export function initSaeParams(
  cfg: SAEConfig,
  impl: SaeArchitectureImpl,
  seed: number,
): Record<string, Float32Array> {
  const rng = createRng(seed);
  const shapes = impl.paramShapes(cfg);
  const out: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    out[name] = new Float32Array(shape.reduce((a, b) => a * b, 1));
  }
  const [dSae, dOut] = shapes.W_dec ?? [0, 0];
  if (!shapes.W_dec) return out;
  out.W_dec = kaimingUniform(rng.next, dSae, dOut);
  if (!shapes.W_enc) return out;
  if (impl.transcoder) {
    out.W_enc = kaimingUniform(rng.next, cfg.dIn, dSae);
  } else {
    for (let i = 0; i < dSae; i++) {
      for (let j = 0; j < cfg.dIn; j++) out.W_enc[j * dSae + i] = out.W_dec[i * dOut + j];
    }
  }
  return out;
}
