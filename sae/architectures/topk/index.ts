/**
 * The TopK SAE, spec §3.4: its config fields, GPU inference, GPU training step (the sparse
 * driver) and plain-TS reference. BatchTopK and Matryoshka reuse its fields and reference.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import { ConfigError } from "../../../config/errors.ts";
import type { SAEConfig } from "../../config_types.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, SIZE } from "../shared.ts";
import { topkInference } from "./inference.ts";
import { topkReference } from "./reference.ts";
import { topkTraining } from "./training.ts";

/** TopK inference fields (SAELens `TopKSAEConfig`). */
export const TOPK_INFERENCE_FIELDS: readonly FieldSpec[] = [
  { name: "k", kind: SIZE, default: 100 },
  { name: "rescale_acts_by_decoder_norm", kind: { type: "bool" }, default: false },
];

/** TopK training fields (SAELens `TopKTrainingSAEConfig`). */
export const TOPK_TRAINING_FIELDS: readonly FieldSpec[] = [
  { name: "k", kind: SIZE, default: 100 },
  { name: "use_sparse_activations", kind: { type: "bool" }, default: false },
  { name: "aux_loss_coefficient", kind: NON_NEGATIVE, default: 1.0 },
  { name: "rescale_acts_by_decoder_norm", kind: { type: "bool" }, default: true },
];

/** Refuses k > d_sae. */
export function checkK(cfg: SAEConfig, training: boolean): void {
  if (cfg.k !== undefined && cfg.k > cfg.dSae) {
    throw new ConfigError(
      `${training ? "training " : ""}config (${cfg.architecture}): k is ${cfg.k}, expected ` +
        `at most d_sae (${cfg.dSae})`,
    );
  }
}

/** The TopK SAE. */
export const topk: SaeArchitectureUnit = {
  config: {
    inferenceFields: TOPK_INFERENCE_FIELDS,
    trainingFields: TOPK_TRAINING_FIELDS,
    validate: checkK,
  },
  inference: topkInference,
  training: topkTraining,
  reference: topkReference,
};
