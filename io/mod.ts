/**
 * File input/output: the safetensors reader and writer, 16-bit float conversions, atomic file
 * and folder writes (with the recovery their readers run first), and the streaming dataset
 * readers (text lines, JSON Lines, Parquet; zstd/gzip), Arrow IPC stream files and Hugging Face
 * `save_to_disk` dataset folders.
 * @module
 */

export {
  dtypeArrayName,
  dtypeByteSize,
  MAX_HEADER_BYTES,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  readTensor,
  type SafetensorsContents,
  type SafetensorsDtype,
  SafetensorsError,
  type SafetensorsHeader,
  serializeSafetensors,
  type StTensor,
  type TensorInfo,
  toFloat32,
  writeSafetensors,
} from "./safetensors.ts";
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./dtypes.ts";
export {
  FileWriteError,
  type FolderWriteOptions,
  type FolderWriter,
  recoverFolder,
  writeAndSync,
  writeFileAtomic,
  writeFolderAtomic,
  writeJsonAtomic,
  writeTextFileAtomic,
} from "./atomic.ts";
export { DatasetError } from "./dataset_error.ts";
export {
  type Compression,
  compressionOf,
  decodeUtf8,
  decompressChunks,
  DEFAULT_CHUNK_BYTES,
  type ReadChunksOptions,
  readFileChunks,
  readTextChunks,
} from "./byte_stream.ts";
export { MAX_ROW_CHARS, textRows, type TextRowsOptions, type TextSampleBy } from "./text_lines.ts";
export { type JsonRow, type JsonRowBatch, jsonRows, type JsonRowsOptions } from "./jsonl.ts";
export { ParquetFile } from "./parquet.ts";
export {
  type ArrowBatchInfo,
  type ArrowColumnSpec,
  arrowField,
  type ArrowFieldInfo,
  ArrowStreamFile,
  ArrowStreamWriter,
  MAX_ARROW_HEADER_BYTES,
} from "./arrow_ipc.ts";
export {
  ARRAY2D_EXTENSION,
  arrowColumnFor,
  datasetInfoJson,
  datasetStateJson,
  hfDataFileName,
  HfDataset,
  type HfFeature,
  hfFeatureFromJson,
  hfFeaturesToJson,
  hfFeatureToJson,
  hfSchemaMetadata,
  MAX_HF_JSON_BYTES,
  openHfDataset,
} from "./hf_dataset.ts";
