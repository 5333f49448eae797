/**
 * The BatchTopK SAE (Bussmann et al. 2024), spec §3.5: training-only (exported as JumpReLU);
 * its config fields, GPU training step (the sparse driver) and plain-TS reference.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, POSITIVE } from "../shared.ts";
import { checkK, TOPK_TRAINING_FIELDS } from "../topk/index.ts";
import { batchtopkReference } from "./reference.ts";
import { batchtopkTraining } from "./training.ts";

/** BatchTopK training fields: k becomes a float (an average per token), plus the EMA rate. */
export const BATCHTOPK_TRAINING_FIELDS: readonly FieldSpec[] = [
  { name: "k", kind: POSITIVE, default: 100 },
  ...TOPK_TRAINING_FIELDS.slice(1),
  { name: "topk_threshold_lr", kind: NON_NEGATIVE, default: 0.01 },
];

/** The BatchTopK SAE. */
export const batchtopk: SaeArchitectureUnit = {
  config: {
    inferenceFields: null,
    trainingFields: BATCHTOPK_TRAINING_FIELDS,
    exportsAs: "jumprelu",
    validate: checkK,
  },
  training: batchtopkTraining,
  reference: batchtopkReference,
};
