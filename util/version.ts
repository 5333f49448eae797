/**
 * Versions saeflow records in the files it writes: its own release (`deno.json`'s `version`,
 * checked by a test) and the SAELens release whose behaviour and file formats it follows.
 * @module
 */

/**
 * saeflow's own version (the `version` of `deno.json`), recorded as `saeflow_version` in the
 * metadata of SAEs it creates.
 *
 * @example
 * ```ts
 * import { SAEFLOW_VERSION } from "./version.ts";
 * if (!/^\d+\.\d+\.\d+/.test(SAEFLOW_VERSION)) throw new Error("not a semantic version");
 * ```
 */
export const SAEFLOW_VERSION = "0.1.0";

/**
 * The SAELens release saeflow follows (math, training behaviour, file formats): 6.49.2, the
 * newest (2026-08-30). Written as `sae_lens_version` / `sae_lens_training_version` in new SAE
 * metadata and in `runner_cfg.json`.
 *
 * @example
 * ```ts
 * import { SAE_LENS_VERSION } from "./version.ts";
 * if (SAE_LENS_VERSION !== "6.49.2") throw new Error("unexpected SAELens target");
 * ```
 */
export const SAE_LENS_VERSION = "6.49.2";
