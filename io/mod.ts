/**
 * File input/output: the safetensors reader and writer, 16-bit float conversions, and
 * atomic file and folder writes (with the recovery their readers run first).
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
