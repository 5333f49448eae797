/**
 * The gated SAE (Rajamanoharan et al. 2024), spec §3.2: its config fields, GPU inference, GPU
 * training step and plain-TS reference.
 * @module
 */

import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, STEPS } from "../shared.ts";
import { gatedInference } from "./inference.ts";
import { gatedReference } from "./reference.ts";
import { gatedTraining } from "./training.ts";

/** The gated SAE. */
export const gated: SaeArchitectureUnit = {
  config: {
    inferenceFields: [],
    trainingFields: [
      { name: "l1_coefficient", kind: NON_NEGATIVE, default: 1.0 },
      { name: "l1_warm_up_steps", kind: STEPS, default: 0 },
    ],
  },
  inference: gatedInference,
  training: gatedTraining,
  reference: gatedReference,
};
