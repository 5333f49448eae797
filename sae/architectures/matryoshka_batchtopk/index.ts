/**
 * The Matryoshka BatchTopK SAE (Bussmann et al. 2025), spec §3.6: training-only (exported as
 * JumpReLU); its config fields, GPU training step (the sparse driver) and plain-TS reference.
 * @module
 */

import { ConfigError, configWarn } from "../../../config/errors.ts";
import type { TrainingSAEConfig } from "../../config_types.ts";
import type { SaeArchitectureUnit } from "../unit.ts";
import { checkK } from "../topk/index.ts";
import { BATCHTOPK_TRAINING_FIELDS } from "../batchtopk/index.ts";
import { matryoshkaReference } from "./reference.ts";
import { matryoshkaTraining } from "./training.ts";

/**
 * Matryoshka level widths, as SAELens checks them when the SAE is built: `d_sae` is appended
 * (with a warning) unless it is already the last width; widths must then be strictly increasing,
 * positive, and the smallest must be at least k.
 */
export function validateMatryoshkaWidths(cfg: TrainingSAEConfig): void {
  const widths = cfg.matryoshkaWidths ?? [];
  if (widths.length === 0 || widths[widths.length - 1] !== cfg.dSae) {
    configWarn(
      `matryoshka_widths ${JSON.stringify(widths)} does not end at d_sae; a final level of ` +
        `width d_sae=${cfg.dSae} is added`,
    );
    widths.push(cfg.dSae);
  }
  for (let i = 0; i < widths.length; i++) {
    if (widths[i] <= 0 || (i > 0 && widths[i - 1] >= widths[i])) {
      throw new ConfigError(
        `training config (matryoshka_batchtopk): matryoshka_widths is ${JSON.stringify(widths)}` +
          `, expected strictly increasing positive widths ending at d_sae (${cfg.dSae})`,
      );
    }
  }
  if (widths.length === 1) {
    configWarn("matryoshka_widths has a single level; this is equivalent to BatchTopK");
  }
  if (cfg.k !== undefined && widths[0] < cfg.k) {
    throw new ConfigError(
      `training config (matryoshka_batchtopk): the smallest matryoshka width is ${widths[0]}, ` +
        `expected at least k (${cfg.k})`,
    );
  }
  cfg.matryoshkaWidths = widths;
}

/** The Matryoshka BatchTopK SAE. */
export const matryoshkaBatchtopk: SaeArchitectureUnit = {
  config: {
    inferenceFields: null,
    trainingFields: [
      ...BATCHTOPK_TRAINING_FIELDS,
      { name: "matryoshka_widths", kind: { type: "intList" }, default: [] },
    ],
    exportsAs: "jumprelu",
    validate: (cfg, training) => {
      checkK(cfg, training);
      validateMatryoshkaWidths(cfg as TrainingSAEConfig);
    },
  },
  training: matryoshkaTraining,
  reference: matryoshkaReference,
};
