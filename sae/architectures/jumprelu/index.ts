/**
 * The JumpReLU SAE, spec §3.3 (newest SAELens: θ trained directly): its config fields, GPU
 * inference, GPU training step and plain-TS reference.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, POSITIVE, STEPS } from "../shared.ts";
import { jumpreluInference } from "./inference.ts";
import { jumpreluReference } from "./reference.ts";
import { jumpreluTraining } from "./training.ts";

/** The JumpReLU training fields (SAELens `JumpReLUTrainingSAEConfig`). */
export const JUMPRELU_TRAINING_FIELDS: readonly FieldSpec[] = [
  { name: "jumprelu_init_threshold", kind: POSITIVE, default: 0.01 },
  { name: "jumprelu_bandwidth", kind: POSITIVE, default: 0.05 },
  {
    name: "jumprelu_sparsity_loss_mode",
    kind: { type: "enum", values: ["step", "tanh"] },
    default: "step",
  },
  { name: "l0_coefficient", kind: NON_NEGATIVE, default: 1.0 },
  { name: "l0_warm_up_steps", kind: STEPS, default: 0 },
  { name: "pre_act_loss_coefficient", kind: { ...NON_NEGATIVE, nullable: true }, default: null },
  { name: "jumprelu_tanh_scale", kind: POSITIVE, default: 4.0 },
];

/** The JumpReLU SAE. */
export const jumprelu: SaeArchitectureUnit = {
  config: { inferenceFields: [], trainingFields: JUMPRELU_TRAINING_FIELDS },
  inference: jumpreluInference,
  training: jumpreluTraining,
  reference: jumpreluReference,
};
