/**
 * Training-side building blocks that need no GPU: LR and coefficient schedules, sequence packing,
 * the activation mixing buffer, the activation norm scaler, firing statistics and the W&B metric
 * dictionaries of SAELens' trainer.
 * @module
 */

export {
  ActivationScaler,
  type ActivationScalerJson,
  type BatchSource,
  estimateNormScalingFactor,
  meanNormOverBatches,
  meanRowNorm,
} from "./activation_scaler.ts";
export { TrainingError } from "./errors.ts";
export { FiringStats, type FiringStatsState, logFeatureSparsity } from "./firing_stats.ts";
export {
  isPeriodicStep,
  type LoggedValue,
  type ReconstructionStats,
  reconstructionStats,
  type SparsityWindowLog,
  sparsityWindowLogDict,
  trainStepLogDict,
  type TrainStepLogInput,
} from "./metrics.ts";
export { mixingBuffer, type MixingBufferOptions } from "./mixing_buffer.ts";
export {
  concatAndBatchSequences,
  concatAndBatchSequencesAsync,
  type PackingOptions,
  SequencePacker,
} from "./packing.ts";
export { Mulberry32, randomPermutation, type Rng, shuffleInPlace } from "./rng.ts";
export { CoefficientScheduler } from "./coefficient_scheduler.ts";
export {
  createLrScheduler,
  type LrScheduler,
  type LrSchedulerOptions,
  type LrSchedulerState,
} from "./schedulers.ts";
export type { ActivationBatch } from "./types.ts";
