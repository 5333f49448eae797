/**
 * Training weight initialisation (spec §3.0 "Weight init"), reproducible through {@link RefRng}:
 * each architecture's reference `init` (the shared tied initialisation is in `weights.ts`).
 */
import { type RefSaeConfig, type SaeParams, SaeReferenceError } from "./common.ts";
import type { RefRng } from "../../util/rng.ts";
import { findArchitectureUnit } from "../architectures/mod.ts";

export { initTiedParams, kaimingUniform } from "./weights.ts";

/**
 * Initial parameters of a training SAE: the architecture's reference `init` (standard and TopK
 * add b_enc = 0; gated b_gate/r_mag/b_mag = 0; jumprelu threshold = jumpreluInitThreshold
 * (default 0.01); the BatchTopK family topk_threshold = [0]; transcoders draw W_dec [dSae, dOut]
 * and an independent W_enc [dIn, dSae] (fan_in dSae)).
 *
 * @example
 * ```ts
 * import { initTrainingParamsRef } from "./init.ts";
 * import { createRng } from "../../util/rng.ts";
 * const p = initTrainingParamsRef({ architecture: "standard", dIn: 4, dSae: 8,
 *   applyBDecToInput: true, normalizeActivations: "none" }, createRng(0));
 * const row0 = Math.hypot(...p.W_dec.subarray(0, 4));
 * if (Math.abs(row0 - 0.1) > 1e-6) throw new Error(String(row0));
 * ```
 */
export function initTrainingParamsRef(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  const init = findArchitectureUnit(cfg.architecture)?.reference?.init;
  if (!init) throw new SaeReferenceError(`architecture: unknown "${cfg.architecture}"`);
  return init(cfg, rng);
}
