/**
 * GPU training of the transcoders (saeflow; SAELens only loads them): the dense driver with a
 * separate target — input x `[rows, d_in]` from `hook_name`, target y `[rows, d_out]` from
 * `hook_name_out` — on the standard (ReLU, `l1_loss`) or JumpReLU (`l0_loss`, `pre_act_loss`)
 * plug-in; skip variants also train W_skip `[d_out, d_in]` (the driver adds x·W_skipᵀ to ŷ).
 * @module
 */

import type { TrainingSAEConfig } from "../../config_types.ts";
import { TrainSaeError } from "../../training/errors.ts";
import { DenseStep } from "../../training/train_sae_dense.ts";
import type { TrainingArchitecture } from "../unit.ts";
import { affineParams, l1Coefficients, standardDense } from "../standard/training.ts";
import {
  checkJumpreluMode,
  jumpreluDense,
  jumpreluLossKeys,
  l0Coefficients,
} from "../jumprelu/training.ts";

/** Refuses what a transcoder cannot train with (b_dec on the input, run-time normalisation). */
function checkTranscoderTraining(cfg: TrainingSAEConfig): void {
  const arch = cfg.architecture;
  if (!Number.isSafeInteger(cfg.dOut) || (cfg.dOut ?? 0) < 1) {
    throw new TrainSaeError(`d_out: ${arch} needs a positive integer, got ${cfg.dOut}`);
  }
  if (cfg.applyBDecToInput) {
    throw new TrainSaeError(
      `apply_b_dec_to_input: must be false for ${arch} (b_dec has d_out entries)`,
    );
  }
  if (cfg.normalizeActivations !== "none") {
    throw new TrainSaeError(
      `normalize_activations: "${cfg.normalizeActivations}" cannot train a ${arch} (the target ` +
        `at hook_name_out would need a normalisation of its own); use "none"`,
    );
  }
}

const transcoderParams = (cfg: TrainingSAEConfig) => affineParams(cfg, cfg.dOut!);
const skipParam = (cfg: TrainingSAEConfig) => ({ W_skip: [cfg.dOut!, cfg.dIn] });

/** ReLU transcoder training. */
export const transcoderTraining: TrainingArchitecture = {
  params: transcoderParams,
  coefficients: l1Coefficients,
  lossKeys: () => ["mse_loss", "l1_loss"],
  transcoder: true,
  validate: checkTranscoderTraining,
  createStep: (ctx) => new DenseStep(ctx, standardDense),
};

/** Skip transcoder training. */
export const skipTranscoderTraining: TrainingArchitecture = {
  ...transcoderTraining,
  params: (cfg) => ({ ...transcoderParams(cfg), ...skipParam(cfg) }),
  skip: true,
};

/** JumpReLU transcoder training. */
export const jumpreluTranscoderTraining: TrainingArchitecture = {
  params: (cfg) => ({ ...transcoderParams(cfg), threshold: [cfg.dSae] }),
  coefficients: l0Coefficients,
  lossKeys: jumpreluLossKeys,
  extras: ["jumpreluSteToInput"],
  transcoder: true,
  validate(cfg) {
    checkTranscoderTraining(cfg);
    checkJumpreluMode(cfg);
  },
  createStep: (ctx) => new DenseStep(ctx, jumpreluDense),
};

/** JumpReLU skip transcoder training. */
export const jumpreluSkipTranscoderTraining: TrainingArchitecture = {
  ...jumpreluTranscoderTraining,
  params: (cfg) => ({ ...jumpreluTranscoderTraining.params(cfg), ...skipParam(cfg) }),
  skip: true,
};
