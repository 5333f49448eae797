/**
 * SAE training on WebGPU: `TrainingSAE` (per-architecture fused forward/backward) and
 * `SAETrainer` (SAELens' training loop: schedulers, firing statistics, clipped Adam, logging,
 * checkpoints and resume), plus synthetic superposition data for end-to-end checks.
 * @module
 */

export {
  listTrainableArchitectures,
  refConfigOf,
  TrainingSAE,
  type TrainingSAEOptions,
  TrainSaeError,
} from "./train_sae.ts";
export type { StepDebug, TrainingExtras } from "./train_sae_common.ts";
export type { CoefficientSpec, StepOutputs, TrainableSAE } from "./trainer_types.ts";
export { type Evaluator, SAETrainer, type SAETrainerOptions } from "./trainer.ts";
export {
  createTrainerConfig,
  type SAETrainerConfig,
  totalSteps,
  TRAINER_CONFIG_DEFAULTS,
  trainerConfigToDict,
} from "./trainer_config.ts";
export { NonFiniteStepError, type SnapshotLayout, type TrainerLogger } from "./trainer_log.ts";
export { type DataProvider } from "./trainer_data.ts";
export {
  CHECKPOINT_FILES,
  type CheckpointContents,
  type CheckpointWrite,
  readCheckpointFolder,
  writeCheckpointFolder,
} from "./checkpoint.ts";
export { type AdamOptions as TrainerAdamOptions, TrainerOptimizer } from "./trainer_optim.ts";
export { TrainerGpuState } from "./trainer_gpu.ts";
export type { StepWord } from "./trainer_kernels.ts";
export {
  checkpointWriteOf,
  type LoadableState,
  type TrainerSnapshot,
} from "./trainer_checkpoint.ts";
export type { RefSaeConfig } from "../reference/common.ts";
export { saveInferenceModel } from "./checkpoint_export.ts";
export {
  type AdamState,
  TRAINER_STATE_FORMAT,
  TRAINER_STATE_VERSION,
  type TrainerState,
  type TrainerStateFiles,
  trainerStateFromFiles,
  trainerStateToFiles,
} from "./state.ts";
export {
  meanMaxCosineSimilarity,
  SyntheticActivations,
  type SyntheticOptions,
} from "./synthetic.ts";
export {
  type ActivationBatch,
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
export { CoefficientScheduler } from "./coefficient_scheduler.ts";
export {
  createLrScheduler,
  type LrScheduler,
  type LrSchedulerOptions,
  type LrSchedulerState,
} from "./schedulers.ts";
export { NormEstimator } from "./trainer_data.ts";
