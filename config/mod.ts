/**
 * Configuration: SAELens ↔ saeflow naming, the training runner config, config files, and the
 * values SAELens derives from them.
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
export { loadConfigFile, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, parseConfigText } from "./load.ts";
