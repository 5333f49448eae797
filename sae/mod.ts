/**
 * SAEs: configs (SAELens `cfg.json` in and out), the architecture registries, the pretrained
 * registry, the GPU `SAE` class with SAELens files and pretrained loading, and the conversion
 * loaders.
 * @module
 */

export {
  cloneConfig,
  createSAEConfig,
  createTrainingConfig,
  type Dtype,
  fieldNames,
  inferenceConfigOf,
  type NormalizeActivations,
  normalizeDtype,
  type ReshapeActivations,
  type SAEConfig,
  saeConfigFromDict,
  saeConfigToDict,
  trainingConfigFromDict,
  trainingConfigToDict,
  type TrainingSAEConfig,
} from "./config.ts";
export {
  compareVersions,
  declaredVersion,
  handlePre6Config,
  isPre6Config,
  LLM_METADATA_KEYS,
} from "./config_legacy.ts";
export {
  KNOWN_METADATA_KEYS,
  SAE_LENS_COMPAT_VERSION,
  SAEFLOW_VERSION_KEY,
  SAEMetadata,
  type SpecialToken,
} from "./metadata.ts";
export {
  type ArchitectureSpec,
  BASE_FIELDS,
  getArchitecture,
  inferenceArchitectureOf,
  listArchitectures,
  registerArchitecture,
  TRAINING_BASE_FIELDS,
  validateMatryoshkaWidths,
} from "./registry.ts";
export {
  applyConfigOverrides,
  getPretrainedDirectory,
  getPretrainedRelease,
  listPretrainedReleases,
  PretrainedLookupError,
  type PretrainedSAELookup,
  type ResolvedPretrained,
  resolvePretrained,
} from "./pretrained.ts";

export { SAE, type SaeOptions, type SaeRunOptions, type SaveModelOptions } from "./sae.ts";
export { SaeError, SaeLoadError } from "./errors.ts";
export {
  type EncodeContext,
  type EncodeHookName,
  findArchitectureUnit,
  getSaeArchitecture,
  listSaeArchitectures,
  outputWidth,
  type RefEncoded,
  type ReferenceArchitecture,
  registerSaeArchitecture,
  type SaeArchitectureImpl,
  type SaeArchitectureUnit,
  type TrainingArchitecture,
} from "./architectures/mod.ts";
export * from "./architectures/toolkit.ts";
export { SAE_HOOK_NAMES, type SaeHookName } from "./forward.ts";
export { foldScalingFactorInPlace, foldWDecNormInPlace, W_DEC_NORM_EPS } from "./fold.ts";
export { initSaeParams } from "./init.ts";
export {
  checkStateDict,
  type HostStateDict,
  type HostTensor,
  logSparsityOf,
  processLegacyStateDict,
  readJsonObject,
  readSparsity,
  readStateDict,
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  type SavedSaePaths,
  SPARSITY_FILENAME,
  writeSaeFolder,
} from "./sae_io.ts";
export {
  type LoadedSae,
  type LoadFromDiskOptions,
  loadSaeFromDisk,
  loadSaeFromPretrained,
  type PretrainedOptions,
  type PretrainedResult,
} from "./load.ts";
export * from "./loaders/mod.ts";
export {
  checkSaeFolder,
  defaultSaeReadme,
  RUNNER_CFG_FILENAME,
  SAE_UPLOAD_FILES,
  type SaveableSae,
  type UploadSaesOptions,
  uploadSaesToHuggingface,
} from "./upload.ts";
export {
  NEURONPEDIA_QUICK_LIST_URL,
  NEURONPEDIA_URL,
  neuronpediaFeatureUrl,
  type NeuronpediaId,
  neuronpediaQuickListUrl,
  type NeuronpediaSource,
  parseNeuronpediaId,
} from "./neuronpedia.ts";
