/**
 * Configuration: SAELens ↔ saeflow naming, the training runner config, the cache and
 * pretokenize runner configs, config files, and the values SAELens derives from them.
 * @module
 */

export { ConfigError, configWarn, type ConfigWarnHandler, setConfigWarnHandler } from "./errors.ts";
export {
  camelizeKeys,
  type ConvertKeysOptions,
  FREEFORM_KEYS,
  KEEP_VALUES_KEYS,
  NAME_EXCEPTIONS,
  snakeizeKeys,
  toCamel,
  toSnake,
} from "./naming.ts";
export {
  checkValue,
  describeKind,
  type FieldKind,
  type FieldSpec,
  MAX_SIZE_FIELD,
  readField,
} from "./fields.ts";
export { formatPythonExp, pythonFloatRepr } from "./pyformat.ts";
export {
  seqposIndices,
  type SeqposSlice,
  seqposSliceLength,
  validateSeqposSlice,
} from "./seqpos.ts";
export {
  checkpointThresholds,
  defaultCachedActivationsPath,
  defaultRunName,
  tokensPerBuffer,
  totalTrainingSteps,
} from "./derived.ts";
export {
  type LoggingConfig,
  type RunnerConfig,
  runnerConfigFromDict,
  type RunnerConfigOptions,
  runnerConfigToDict,
} from "./runner.ts";
export {
  LOGGER_FIELDS,
  LR_SCHEDULERS,
  RUNNER_FIELDS,
  RUNNER_SAE_LENS_VERSION,
} from "./runner_fields.ts";
export { DROPPED_LEGACY_KEYS, type FlatConversion, flatToNested } from "./runner_legacy.ts";
export {
  loadConfigFile,
  loadRunnerConfig,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_DEPTH,
  parseConfigText,
} from "./load.ts";
export {
  CACHE_RUNNER_EXTRA_FIELDS,
  CACHE_RUNNER_FIELDS,
  type CacheRunnerConfig,
  cacheRunnerConfigFromDict,
  cacheRunnerConfigToDict,
  cacheRunnerSettings,
  type CacheSizes,
  cacheSizes,
  loadCacheRunnerConfig,
  resolveCacheContextSize,
} from "./cache_runner.ts";
export {
  PRETOKENIZE_FIELDS,
  pretokenizeConfigFromDict,
  pretokenizeConfigToDict,
  type PretokenizeRunnerConfig,
} from "./pretokenize_runner.ts";
