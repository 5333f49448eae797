/**
 * saeflow's reference transformer: TransformerLens-compatible configs, HF → TL weight mapping,
 * TL weight processing, and a plain-TypeScript forward pass with every TL hook point.
 * @module
 */

export {
  type ActFn,
  type AttnType,
  attnTypeOf,
  defineModelConfig,
  kvHeadCount,
  kvPrefix,
  type ModelConfig,
  type ModelConfigInput,
  type NormalizationType,
  type NtkByPartsRope,
  type PositionalEmbeddingType,
  validateModelConfig,
} from "./config.ts";
export {
  type HfConfigOptions,
  type Json as HfConfigJson,
  modelConfigFromHf,
  SUPPORTED_MODEL_TYPES,
} from "./hf_config.ts";
export { convertHfWeights, type ConvertOptions } from "./weights.ts";
export { expectedParamShapes, getParam, validateParams } from "./params.ts";
export {
  type ProcessedModel,
  type ProcessingOptions,
  processWeights,
  TL_DEFAULT_PROCESSING,
} from "./processing.ts";
export { type ForwardOptions, type ForwardResult, referenceForward } from "./reference.ts";
export { type HookFn, type NamesFilter, namesPredicate } from "./hooks.ts";
export { hookNames } from "./hook_names.ts";
export { lmCrossEntropyLoss, logSoftmax, type LossOptions } from "./loss.ts";
export {
  type LoadedModel,
  loadModelFromDir,
  type LoadModelOptions,
  readHfTensors,
} from "./local.ts";
export { activation, erf, type RotaryTables, rotaryTables } from "./ops.ts";
export {
  cloneTensor,
  type HostTensor,
  hostTensor,
  ModelError,
  numel,
  type ParamMap,
  zeros,
} from "./tensor.ts";
export {
  type CacheRun,
  HookedTransformer,
  type HookedTransformerInit,
  type RunOptions,
  type RunWithCacheOptions,
  type SaeModelSource,
  type TokensInput,
} from "./hooked_transformer.ts";
export {
  type AddSaeOptions,
  HookedSAETransformer,
  type WithSaesOptions,
} from "./hooked_sae_transformer.ts";
export {
  gpuForward,
  type GpuForwardOptions,
  type GpuForwardResult,
  GpuModel,
  resolveStop,
  uploadTokens,
} from "./gpu_forward.ts";
export type { GpuLayer, GpuNorm, GpuParams } from "./gpu_params.ts";
export type { EmbedTable, LinearWeight } from "./kernels/mod.ts";
export {
  disposeCache,
  type FwdHook,
  GpuHookContext,
  type HookContextOptions,
  type HookNameMatcher,
  type HookSplice,
  type ModelHookFn,
} from "./gpu_hooks.ts";
export {
  loadPretrained,
  normalizeModelOptions,
  type PretrainedModel,
  type PretrainedModelOptions,
} from "./load.ts";
