/**
 * The Matching Pursuit SAE (SAELens ≥ 6.26 `matching_pursuit`, arXiv 2506.03093), spec §3.8:
 * its config fields, GPU inference, GPU training step and plain-TS reference. Tied: only W_dec
 * and b_dec; the encoder is a greedy pursuit over the decoder rows.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import { configWarn } from "../../../config/errors.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { NON_NEGATIVE, SIZE } from "../shared.ts";
import { matchingPursuitInference } from "./inference.ts";
import { matchingPursuitTraining } from "./training.ts";
import { matchingPursuitReference } from "./reference.ts";

/** SAELens `MatchingPursuitSAEConfig` / `…TrainingSAEConfig` fields (newest). */
const FIELDS: readonly FieldSpec[] = [
  { name: "residual_threshold", kind: NON_NEGATIVE, default: 1e-2 },
  { name: "max_iterations", kind: { ...SIZE, nullable: true }, default: null },
  { name: "stop_on_duplicate_support", kind: { type: "bool" }, default: true },
];

/** The Matching Pursuit SAE. */
export const matchingPursuit: SaeArchitectureUnit = {
  config: {
    inferenceFields: FIELDS,
    trainingFields: FIELDS,
    validate(cfg, training) {
      // SAELens's training config forces unit-norm decoder rows at init.
      const t = cfg as TrainingSAEConfig;
      if (training && t.decoderInitNorm !== 1) {
        configWarn("decoder_init_norm must be 1.0 for a matching_pursuit SAE; setting it to 1.0");
        t.decoderInitNorm = 1;
      }
    },
  },
  inference: matchingPursuitInference,
  training: matchingPursuitTraining,
  reference: matchingPursuitReference,
};
