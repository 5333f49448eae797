/**
 * saeflow's safetensors reader and writer (no dependencies). Readers validate everything the
 * header claims against the real file size before allocating, so hostile files fail with one
 * {@link SafetensorsError} naming the file and the problem. Data is little-endian, row-major.
 * @module
 */

import { bf16ToF32, f16ToF32 } from "./dtypes.ts";
import {
  checkHeaderLength,
  dtypeByteSize,
  fail,
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsDtype,
  SafetensorsError,
  type SafetensorsHeader,
  type TensorInfo,
} from "./safetensors_header.ts";
import type { StTensor } from "./safetensors_write.ts";
import { regularFileSize } from "../util/files.ts";
import { describeValue } from "../util/errors.ts";

export {
  dtypeByteSize,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  type SafetensorsDtype,
  SafetensorsError,
  type SafetensorsHeader,
  type TensorInfo,
} from "./safetensors_header.ts";
export {
  dtypeArrayName,
  serializeSafetensors,
  type StTensor,
  writeSafetensors,
} from "./safetensors_write.ts";

/** A whole file in memory. */
export interface SafetensorsContents {
  /** Tensors by name, in data-offset order. */
  tensors: Map<string, StTensor>;
  /** The `__metadata__` map, when present. */
  metadata?: Record<string, string>;
}

/** Constructor of a tensor's typed array (both the fresh and the view forms). */
type ArrayCtor = {
  new (length: number): StTensor["data"];
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): StTensor["data"];
};

const CTORS: Record<SafetensorsDtype, ArrayCtor> = {
  F32: Float32Array,
  F64: Float64Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/**
 * Builds the typed array for `info` over `bytes` (exactly its byte range). With `share`, the
 * result views `bytes`' buffer when the alignment allows; otherwise the bytes are copied.
 */
function _makeTensor(info: TensorInfo, bytes: Uint8Array, share: boolean): StTensor {
  const size = dtypeByteSize(info.dtype);
  const count = bytes.length / size;
  const Ctor = CTORS[info.dtype];
  let data: StTensor["data"];
  if (share && bytes.byteOffset % size === 0) {
    data = new Ctor(bytes.buffer, bytes.byteOffset, count);
  } else {
    data = new Ctor(count);
    new Uint8Array(data.buffer).set(bytes);
  }
  if (info.dtype === "BOOL") {
    const b = data as Uint8Array;
    for (let i = 0; i < b.length; i++) if (b[i] > 1) b[i] = 1;
  }
  return { dtype: info.dtype, shape: [...info.shape], data };
}

function _parseWhole(bytes: Uint8Array, source: string, share: boolean): SafetensorsContents {
  const header = parseSafetensorsHeader(bytes, source);
  if (bytes.length !== header.byteLength) {
    fail(
      source,
      `file is ${bytes.length} bytes but its header describes ${header.byteLength} ` +
        `(${bytes.length < header.byteLength ? "truncated" : "trailing bytes"})`,
    );
  }
  const tensors = new Map<string, StTensor>();
  for (const [name, info] of header.tensors) {
    const [begin, end] = info.dataOffsets;
    const range = bytes.subarray(header.dataStart + begin, header.dataStart + end);
    // BOOL is normalized in place, so never share the caller's buffer for it.
    tensors.set(name, _makeTensor(info, range, share && info.dtype !== "BOOL"));
  }
  return header.metadata === undefined ? { tensors } : { tensors, metadata: header.metadata };
}

/**
 * Parses a whole safetensors file from memory. Tensor data is copied out of `bytes`.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ x: { dtype: "I32", shape: [1], data: new Int32Array([7]) } });
 * if (parseSafetensors(bytes).tensors.get("x")?.data[0] !== 7) throw new Error();
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsContents {
  if (!(bytes instanceof Uint8Array)) {
    fail(source, `got ${typeName(bytes)}, expected a Uint8Array`);
  }
  return _parseWhole(bytes, source, false);
}

/** The type of `v` in words, for errors about arguments of the wrong type. */
function typeName(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

async function _open(path: string): Promise<Deno.FsFile> {
  if (typeof path !== "string" || path === "") {
    fail("safetensors", `the path is ${describeValue(path)}, expected a file path`);
  }
  // A FIFO (or a device) would block the read forever: only regular files are opened.
  await regularFileSize(path, (m, cause) =>
    new SafetensorsError(
      cause instanceof Deno.errors.NotFound ? `${path}: cannot open: file not found` : m,
      { cause },
    ));
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    fail(path, `cannot open: ${(err as Error)?.message ?? err}`, err);
  }
}

/** Fills `buf` from the file's current position; fails if the file ends first. */
async function _readExact(file: Deno.FsFile, buf: Uint8Array, path: string): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    let n: number | null;
    try {
      n = await file.read(buf.subarray(got));
    } catch (err) {
      fail(path, `read failed: ${(err as Error)?.message ?? err}`, err);
    }
    if (n === null) fail(path, `unexpected end of file after ${got} of ${buf.length} bytes`);
    got += n;
  }
}

async function _fileSize(file: Deno.FsFile, path: string): Promise<number> {
  try {
    return (await file.stat()).size;
  } catch (err) {
    fail(path, `cannot stat: ${(err as Error)?.message ?? err}`, err);
  }
}

/**
 * Reads and validates only the header of a safetensors file (8 + N bytes; the header
 * length is checked against the file size before it is allocated). The data buffer is not
 * read, so a file with a truncated data region still yields its header; compare
 * `byteLength` with the file size to detect that ({@link readTensor} does).
 *
 * @example
 * ```ts
 * import { readSafetensorsHeader } from "./safetensors.ts";
 * const h = await readSafetensorsHeader("data/tiny-shakespeare-gpt2/model.safetensors");
 * if (!h.tensors.has("transformer.wte.weight")) throw new Error("missing wte");
 * ```
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await _open(path);
  try {
    const size = await _fileSize(file, path);
    if (size < 8) fail(path, `file is ${size} bytes, shorter than the 8-byte header length prefix`);
    const prefix = new Uint8Array(8);
    await _readExact(file, prefix, path);
    const n = checkHeaderLength(path, readHeaderLength(prefix), size);
    const bytes = new Uint8Array(8 + n);
    bytes.set(prefix);
    await _readExact(file, bytes.subarray(8), path);
    return parseSafetensorsHeader(bytes, path);
  } finally {
    file.close();
  }
}

/** Error for a missing tensor name, listing a few that exist. */
function _unknownTensor(path: string, name: string, header: SafetensorsHeader): never {
  const names = [...header.tensors.keys()];
  const shown = names.slice(0, 5).map((n) => JSON.stringify(n)).join(", ");
  const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
  fail(
    path,
    `no tensor named ${JSON.stringify(name)}; ` +
      (names.length === 0 ? "the file has no tensors" : `available: ${shown}${more}`),
  );
}

/**
 * Reads one tensor, seeking to its byte range (nothing else is read). Pass a header from
 * {@link readSafetensorsHeader} to skip re-reading it. The file size must match the header.
 *
 * @example
 * ```ts
 * import { readTensor } from "./safetensors.ts";
 * const t = await readTensor("data/tiny-shakespeare-gpt2/model.safetensors", "transformer.ln_f.bias");
 * if (t.dtype !== "F32" || t.shape[0] !== 128) throw new Error("unexpected ln_f.bias");
 * ```
 */
export async function readTensor(
  path: string,
  name: string,
  opts: { header?: SafetensorsHeader } = {},
): Promise<StTensor> {
  const header = opts.header ?? await readSafetensorsHeader(path);
  const info = header.tensors.get(name);
  if (info === undefined) _unknownTensor(path, name, header);
  const file = await _open(path);
  try {
    const size = await _fileSize(file, path);
    if (size !== header.byteLength) {
      fail(path, `file is ${size} bytes but its header describes ${header.byteLength}`);
    }
    const [begin, end] = info.dataOffsets;
    try {
      await file.seek(header.dataStart + begin, Deno.SeekMode.Start);
    } catch (err) {
      fail(path, `seek failed: ${(err as Error)?.message ?? err}`, err);
    }
    const bytes = new Uint8Array(end - begin);
    await _readExact(file, bytes, path);
    return _makeTensor(info, bytes, true);
  } finally {
    file.close();
  }
}

/**
 * Reads a whole safetensors file. Tensors view one buffer holding the file where alignment
 * allows (no second copy of the weights).
 *
 * @example
 * ```ts
 * import { readSafetensors } from "./safetensors.ts";
 * const { tensors } = await readSafetensors("data/tiny-shakespeare-gpt2/model.safetensors");
 * if (tensors.get("transformer.wpe.weight")?.shape[0] !== 256) throw new Error();
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  // Validate the header first, so a hostile file fails before its bulk is read.
  const header = await readSafetensorsHeader(path);
  // The size check stays outside the try below, so its message names the file once.
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (err) {
    fail(path, `cannot stat: ${(err as Error)?.message ?? err}`, err);
  }
  if (size !== header.byteLength) {
    fail(path, `file is ${size} bytes but its header describes ${header.byteLength}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    fail(path, `cannot read: ${(err as Error)?.message ?? err}`, err);
  }
  if (bytes.length !== header.byteLength) {
    // The file changed between the stat and the read.
    fail(path, `file is ${bytes.length} bytes but its header describes ${header.byteLength}`);
  }
  return _parseWhole(bytes, path, true);
}

/**
 * Converts any numeric tensor to a new Float32Array (F16/BF16 decoded, BOOL as 0/1,
 * integers and F64 rounded to the nearest f32; I64 beyond 2^53 converts lossily).
 *
 * @example
 * ```ts
 * import { toFloat32 } from "./safetensors.ts";
 * const x = toFloat32({ dtype: "I64", shape: [2], data: new BigInt64Array([3n, -1n]) });
 * if (x[0] !== 3 || x[1] !== -1) throw new Error();
 * ```
 */
export function toFloat32(t: StTensor): Float32Array {
  switch (t.dtype) {
    case "F16":
      return f16ToF32(t.data as Uint16Array);
    case "BF16":
      return bf16ToF32(t.data as Uint16Array);
    case "BOOL": {
      const src = t.data as Uint8Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] === 0 ? 0 : 1;
      return out;
    }
    case "I64": {
      // Two 32-bit halves: hi * 2^32 is exact in a double, so one rounding on the add.
      const src = t.data as BigInt64Array;
      const words = new Uint32Array(src.buffer, src.byteOffset, src.length * 2);
      const hiSigned = new Int32Array(src.buffer, src.byteOffset, src.length * 2);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        out[i] = hiSigned[2 * i + 1] * 4294967296 + words[2 * i];
      }
      return out;
    }
    default:
      // The typed-array constructor converts element-wise natively (and copies F32).
      return new Float32Array(t.data as Exclude<StTensor["data"], BigInt64Array>);
  }
}
