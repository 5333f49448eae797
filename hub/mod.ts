/**
 * Hugging Face interop: downloads into the cache layout shared with Python, uploads (one atomic
 * commit through `@huggingface/hub`), remote safetensors headers, tokenizers, TransformerLens
 * model-name aliases, and dataset split files.
 * @module
 */

export { HubError, type HubErrorKind } from "./errors.ts";
export {
  dataFileFormat,
  type DataFormat,
  datasetSplits,
  FILES_TO_IGNORE,
  type HubDatasetOptions,
  isIgnoredDatasetPath,
  listHubDatasetFiles,
  selectSplitFiles,
  type SplitFiles,
} from "./datasets.ts";
export {
  DEFAULT_HF_ENDPOINT,
  DEFAULT_HUB_TIMEOUT_S,
  type HubOptions,
  type HubSettings,
  resolveCacheDir,
  resolveEndpoint,
  resolveHfHome,
  resolveHubSettings,
  resolveOffline,
  resolveTimeout,
  resolveToken,
} from "./env.ts";
export {
  cachedFilePath,
  cachedSnapshotFiles,
  COMMIT_HASH_RE,
  repoCacheDir,
  repoFolderName,
  type RepoType,
} from "./cache.ts";
export {
  hubDownload,
  hubDownloadMany,
  type HubDownloadManyOptions,
  type HubDownloadOptions,
  hubFileExists,
  hubListFiles,
} from "./download.ts";
export { hubDownloadSafetensors, hubDownloadSharded, type ShardedDownload } from "./sharded.ts";
export {
  getRemoteSafetensorsHeader,
  getRemoteSafetensorsShapes,
  type RemoteHeaderOptions,
  type SafetensorsHeaderInfo,
  type SafetensorsTensorInfo,
} from "./safetensors_remote.ts";
export { TokenizerError } from "./errors.ts";
export {
  loadTokenizer,
  loadTokenizerFromHub,
  type Tokenizer,
  type TokenizerFiles,
  tokenizerFromJson,
} from "./tokenizer.ts";
export {
  type TokenBatch,
  toSingleToken,
  toStrTokens,
  toTokens,
  type ToTokensOptions,
} from "./to_tokens.ts";
export {
  MODEL_ALIASES,
  OFFICIAL_MODEL_NAMES,
  type ResolvedModelName,
  resolveModelName,
} from "./aliases.ts";
export {
  checkUploadRepoId,
  checkUploadTarget,
  type HubUploadFile,
  type HubUploadOptions,
  type HubUploadPhase,
  type HubUploadProgress,
  type HubUploadResult,
  hubUploadTargetHas,
  MAX_UPLOAD_FILES,
  UPLOAD_MIN_BYTES_PER_S,
  uploadFolder,
  type UploadFolderOptions,
  uploadHubFiles,
} from "./upload.ts";
