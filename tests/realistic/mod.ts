/**
 * Every realistic-shape GPU-vs-reference check, in run order: the `gpu/kernels` families, SAE
 * inference, the training steps of every trainable architecture, the LM forward. The test files
 * beside this module run them under `deno test`; `deno task gpu-check` runs them without it.
 * @module
 */

import { GPU_KERNEL_CHECKS } from "./gpu_kernel_cases.ts";
import { MODEL_CHECKS } from "./model_cases.ts";
import { SAE_INFERENCE_CHECKS, TRAIN_STEP_CHECKS } from "./sae_cases.ts";
import type { RealisticCheck } from "./_check.ts";

export type { RealisticCheck };

/** All checks. */
export const REALISTIC_CHECKS: RealisticCheck[] = [
  ...GPU_KERNEL_CHECKS,
  ...SAE_INFERENCE_CHECKS,
  ...TRAIN_STEP_CHECKS,
  ...MODEL_CHECKS,
];
