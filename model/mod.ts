/**
 * Language models with TransformerLens hook points, on WebGPU, checked against a plain-TS
 * reference.
 *
 * | where | what |
 * | --- | --- |
 * | `hooked_transformer.ts`, `hooked_sae_transformer.ts` | the API: `HookedTransformer` (TL's `from_pretrained`, `run_with_cache`, `run_with_hooks`, the loss, tokens) and `HookedSAETransformer` (SAEs spliced at hook points) |
 * | `config.ts`, `params.ts`, `errors.ts` | `ModelConfig` (TL's config in camelCase; its flags choose every mechanism), the TL parameter set a config implies, `ModelError` |
 * | `families/` | one file per family (`gpt2`, `neo`, `neox`, `llama` with Mistral/Qwen2/Qwen3, `gemma` 1/2): HF `config.json` → `ModelConfig` and HF state dict → TL parameters, registered in `families/mod.ts` |
 * | `load/` | a local HF folder (`local.ts`), a repo id or TL alias through the hub (`pretrained.ts`), TL weight processing (`processing.ts`) |
 * | `reference/` | the CPU reference forward with every hook point (`forward.ts`, `attention.ts`, `mlp.ts`, `norms.ts`, `ops.ts`, `loss.ts`): float64 accumulation, the ground truth of the GPU forward |
 * | `gpu/` | the GPU forward in one file (`transformer.ts`: embed → blocks → unembed), parameter upload (`params.ts`), WGSL kernels with plain-TS references (`kernels/`) |
 * | `hooks/` | hook names in TL's firing order (`names.ts`), the reference's host hooks (`reference.ts`), the GPU forward's hook context and cache (`gpu.ts`) |
 *
 * Adding a model family: write `families/<name>.ts` (a `ModelFamily`: its HF model types, key
 * prefix, config mapping and weight conversion), add it to the `MODEL_FAMILIES` table of
 * `families/mod.ts` (one line), and add its fixture and test in `tests/model/families/`; the
 * module doc of `families/mod.ts` has the details, and what else a new mechanism touches.
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
export { ModelError } from "./errors.ts";
export { expectedParamShapes, getParam, type ParamMap, validateParams } from "./params.ts";
export { type HostTensor, numel } from "../util/host_tensor.ts";

// Families: HF config.json and state dict → TL config and parameters.
export {
  convertHfWeights,
  type ConvertOptions,
  type HfConfigOptions,
  type Json as HfConfigJson,
  modelConfigFromHf,
  SUPPORTED_MODEL_TYPES,
} from "./families/mod.ts";

// Loading: local folders, the hub and TL aliases; TL weight processing.
export {
  type ProcessedModel,
  type ProcessingOptions,
  processWeights,
  TL_DEFAULT_PROCESSING,
} from "./load/processing.ts";
export {
  type LoadedModel,
  loadModelFromDir,
  type LoadModelOptions,
  readHfTensors,
} from "./load/local.ts";
export {
  loadPretrained,
  normalizeModelOptions,
  type PretrainedModel,
  type PretrainedModelOptions,
} from "./load/pretrained.ts";

// The CPU reference forward.
export {
  activation,
  cloneTensor,
  erf,
  type ForwardOptions,
  type ForwardResult,
  hostTensor,
  lmCrossEntropyLoss,
  logSoftmax,
  type LossOptions,
  referenceForward,
  type RotaryTables,
  rotaryTables,
  zeros,
} from "./reference/mod.ts";

// Hook points: names, the reference's host hooks, the GPU forward's hook context.
export { hookNames } from "./hooks/names.ts";
export { type HookFn, type NamesFilter, namesPredicate } from "./hooks/reference.ts";
export {
  disposeCache,
  type FwdHook,
  GpuHookContext,
  type HookContextOptions,
  type HookNameMatcher,
  type HookSplice,
  type ModelHookFn,
} from "./hooks/gpu.ts";

// The GPU forward.
export {
  gpuForward,
  type GpuForwardOptions,
  type GpuForwardResult,
  GpuModel,
  resolveStop,
  uploadTokens,
} from "./gpu/transformer.ts";
export type { GpuLayer, GpuNorm, GpuParams } from "./gpu/params.ts";
export type { EmbedTable, LinearWeight } from "./gpu/kernels/mod.ts";

// The API.
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
