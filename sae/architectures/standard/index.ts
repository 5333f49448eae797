/**
 * The standard (ReLU) SAE, spec §3.1: its config fields, GPU inference, GPU training step and
 * plain-TS reference.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, POSITIVE, STEPS } from "../shared.ts";
import { standardInference } from "./inference.ts";
import { standardReference } from "./reference.ts";
import { standardTraining } from "./training.ts";

/** The standard SAE's training fields (SAELens `StandardTrainingSAEConfig`). */
export const STANDARD_TRAINING_FIELDS: readonly FieldSpec[] = [
  { name: "l1_coefficient", kind: NON_NEGATIVE, default: 1.0 },
  { name: "lp_norm", kind: POSITIVE, default: 1.0 },
  { name: "l1_warm_up_steps", kind: STEPS, default: 0 },
];

/** The standard SAE. */
export const standard: SaeArchitectureUnit = {
  config: { inferenceFields: [], trainingFields: STANDARD_TRAINING_FIELDS },
  inference: standardInference,
  training: standardTraining,
  reference: standardReference,
};
