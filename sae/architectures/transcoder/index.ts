/**
 * Transcoders, spec §3.7: `transcoder`, `skip_transcoder`, `jumprelu_transcoder` and
 * `jumprelu_skip_transcoder` — their config fields, GPU inference, GPU training step and
 * plain-TS reference. A transcoder reads its input at `hook_name` and predicts the activation
 * at `hook_name_out`. SAELens only loads them; saeflow also trains them (training config: the
 * standard or JumpReLU SAE's training fields plus `d_out`).
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import { ConfigError } from "../../../config/errors.ts";
import type { SAEConfig } from "../../config_types.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { SIZE } from "../shared.ts";
import { STANDARD_TRAINING_FIELDS } from "../standard/index.ts";
import { JUMPRELU_TRAINING_FIELDS } from "../jumprelu/index.ts";
import {
  jumpreluSkipTranscoderTraining,
  jumpreluTranscoderTraining,
  skipTranscoderTraining,
  transcoderTraining,
} from "./training.ts";
import {
  jumpreluSkipTranscoderInference,
  jumpreluTranscoderInference,
  skipTranscoderInference,
  transcoderInference,
} from "./inference.ts";
import {
  jumpreluSkipTranscoderReference,
  jumpreluTranscoderReference,
  skipTranscoderReference,
  transcoderReference,
} from "./reference.ts";

/** The field every transcoder adds: its output width. */
export const TRANSCODER_FIELDS: readonly FieldSpec[] = [{
  name: "d_out",
  kind: SIZE,
  default: 768,
}];

/** Refuses `apply_b_dec_to_input: true` (b_dec has d_out entries). */
export function checkTranscoder(cfg: SAEConfig): void {
  if (cfg.applyBDecToInput) {
    throw new ConfigError(
      `config (${cfg.architecture}): apply_b_dec_to_input is true, expected false (a ` +
        `transcoder's b_dec has d_out entries and cannot be subtracted from its input)`,
    );
  }
}

/** ReLU transcoders: d_out, and the standard SAE's training fields. */
const reluConfig = {
  inferenceFields: TRANSCODER_FIELDS,
  trainingFields: [...TRANSCODER_FIELDS, ...STANDARD_TRAINING_FIELDS],
  validate: checkTranscoder,
};
/** JumpReLU transcoders: d_out, and the JumpReLU SAE's training fields. */
const jumpConfig = {
  inferenceFields: TRANSCODER_FIELDS,
  trainingFields: [...TRANSCODER_FIELDS, ...JUMPRELU_TRAINING_FIELDS],
  validate: checkTranscoder,
};

/** ReLU transcoder. */
export const transcoder: SaeArchitectureUnit = {
  config: reluConfig,
  inference: transcoderInference,
  training: transcoderTraining,
  reference: transcoderReference,
};
/** ReLU transcoder with a skip connection. */
export const skipTranscoder: SaeArchitectureUnit = {
  config: reluConfig,
  inference: skipTranscoderInference,
  training: skipTranscoderTraining,
  reference: skipTranscoderReference,
};
/** JumpReLU transcoder. */
export const jumpreluTranscoder: SaeArchitectureUnit = {
  config: jumpConfig,
  inference: jumpreluTranscoderInference,
  training: jumpreluTranscoderTraining,
  reference: jumpreluTranscoderReference,
};
/** JumpReLU transcoder with a skip connection (Gemma Scope 2; newest SAELens). */
export const jumpreluSkipTranscoder: SaeArchitectureUnit = {
  config: jumpConfig,
  inference: jumpreluSkipTranscoderInference,
  training: jumpreluSkipTranscoderTraining,
  reference: jumpreluSkipTranscoderReference,
};
