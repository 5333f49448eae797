/**
 * Transcoders, spec §3.7: `transcoder`, `skip_transcoder`, `jumprelu_transcoder` and
 * `jumprelu_skip_transcoder` — their config fields, GPU inference, GPU training step and
 * plain-TS reference. A transcoder reads its input at `hook_name` and predicts the activation
 * at `hook_name_out`.
 * @module
 */

import type { FieldSpec } from "../../../config/fields.ts";
import { ConfigError } from "../../../config/errors.ts";
import type { SAEConfig } from "../../config.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { SIZE } from "../shared.ts";
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

const config = {
  inferenceFields: TRANSCODER_FIELDS,
  trainingFields: null,
  validate: checkTranscoder,
};

/** ReLU transcoder. */
export const transcoder: SaeArchitectureUnit = {
  config,
  inference: transcoderInference,
  reference: transcoderReference,
};
/** ReLU transcoder with a skip connection. */
export const skipTranscoder: SaeArchitectureUnit = {
  config,
  inference: skipTranscoderInference,
  reference: skipTranscoderReference,
};
/** JumpReLU transcoder. */
export const jumpreluTranscoder: SaeArchitectureUnit = {
  config,
  inference: jumpreluTranscoderInference,
  reference: jumpreluTranscoderReference,
};
/** JumpReLU transcoder with a skip connection (Gemma Scope 2; newest SAELens). */
export const jumpreluSkipTranscoder: SaeArchitectureUnit = {
  config,
  inference: jumpreluSkipTranscoderInference,
  reference: jumpreluSkipTranscoderReference,
};
