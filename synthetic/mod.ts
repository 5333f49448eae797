/**
 * Synthetic activations with known ground truth and the metrics that score SAEs against it
 * (SAELens's SynthSAEBench, spec sae_anchors §6): the generator ({@link SyntheticModel}), its
 * GPU decoding ({@link SyntheticDecoder}), the source stage ({@link syntheticSource}), training
 * through the stages ({@link trainOnSynthetic}), evaluation ({@link evalSaeOnSynthetic}) and the
 * plain-TS metrics (MCC over an optimal matching, uniqueness, per-latent precision / recall /
 * F1, explained variance, L0, dead latents, shrinkage).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { createTrainingConfig } from "../sae/config.ts";
 * import { TrainingSAE } from "../sae/training/train_sae.ts";
 * import { createTrainerConfig } from "../sae/training/trainer_config.ts";
 * import { evalSaeOnSynthetic, SyntheticModel, trainOnSynthetic } from "./mod.ts";
 * const gpu = await getGpu();
 * const model = new SyntheticModel({ dIn: 16, nFeatures: 32, firing: { maxProb: 0.1, minProb: 0.05 }, seed: 1 });
 * const sae = TrainingSAE.create(createTrainingConfig({ architecture: "topk", dIn: 16, dSae: 32, k: 3 }), { gpu });
 * await trainOnSynthetic({
 *   model, gpu, blockRows: 256,
 *   trainees: [{ id: "topk", sae, trainer: createTrainerConfig({ totalTrainingSamples: 150 * 64, trainBatchSizeSamples: 64, lr: 0.02 }) }],
 * });
 * const r = await evalSaeOnSynthetic(sae, model, { samples: 1024, blockRows: 512 });
 * if (!(r.mcc > 0.8)) throw new Error(`MCC ${r.mcc}`);
 * sae.dispose();
 * ```
 * @module
 */

export { SyntheticError } from "./errors.ts";
export {
  type CorrelationConfig,
  type FeatureHierarchy,
  type HierarchyConfig,
  type MagnitudeConfig,
  mix32,
  type SparseCodes,
  type SyntheticConfig,
  SyntheticModel,
  synthSaeBenchConfig,
  type ZipfConfig,
  zipfProbabilities,
} from "./model.ts";
export { buildHierarchy, compensatedProbabilities } from "./hierarchy.ts";
export { GaussianSource } from "../util/rng.ts";
export {
  fastUpperTail,
  normalUpperTail,
  normalUpperTailInverse,
  upperTailTable,
} from "./normal.ts";
export { decodeCodesRef, noiseValue, paddedCodes, SyntheticDecoder } from "./decode.ts";
export {
  SYNTHETIC_KEY,
  syntheticBlockOf,
  syntheticCursor,
  syntheticSource,
  type SyntheticSourceOptions,
} from "./source.ts";
export {
  absCosineMatrix,
  bestMatches,
  type ClassificationMetrics,
  featureUniqueness,
  linearSumAssignment,
  type MccResult,
  meanCorrelationCoefficient,
  meanMaxCosine,
  type SyntheticEvalResult,
  SyntheticMetrics,
} from "./metrics.ts";
export { evalSaeOnSynthetic, inferenceSaeOf, type SyntheticEvalOptions } from "./eval.ts";
export {
  type SyntheticTrainee,
  trainOnSynthetic,
  type TrainOnSyntheticOptions,
  type TrainOnSyntheticResult,
} from "./train.ts";
