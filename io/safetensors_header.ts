/**
 * Safetensors header types and the validating header parser.
 *
 * File layout: a u64 little-endian header length `N`, then `N` bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`,
 * then the raw little-endian row-major byte buffer that the offsets index into.
 * The checks follow Python's `safetensors` loader: the offsets, sorted, must tile the byte
 * buffer exactly (no holes, no overlaps) and each range must hold exactly shape × dtype bytes.
 * @module
 */

import { describeValue, SaeflowError } from "../util/errors.ts";

/** Element types saeflow reads and writes (a subset of what the format defines). */
export type SafetensorsDtype =
  | "F32"
  | "F16"
  | "BF16"
  | "F64"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

/**
 * A malformed or unreadable safetensors file, or a tensor that cannot be written.
 * The message always starts with the file path (or `<bytes>` for in-memory data).
 */
export class SafetensorsError extends SaeflowError {}

/** Where one tensor lives in the byte buffer (offsets are relative to its start). */
export interface TensorInfo {
  /** Tensor name, the header key. */
  name: string;
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Row-major shape; `[]` is a scalar (one element). */
  shape: number[];
  /** `[begin, end)` byte range within the data buffer. */
  dataOffsets: [number, number];
}

/** A parsed and validated header. */
export interface SafetensorsHeader {
  /** Tensors by name, in data-offset order. */
  tensors: Map<string, TensorInfo>;
  /** The `__metadata__` string map, when the file has one. */
  metadata: Record<string, string> | undefined;
  /** Byte offset of the data buffer in the file: 8 + header length. */
  dataStart: number;
  /** Total file size the header implies: `dataStart` + data buffer length. */
  byteLength: number;
  /** The file path, or `<bytes>`, used in error messages. */
  source: string;
}

/** Bytes per element, and Python's dtype order (its writer puts higher ranks first). */
const DTYPES: Record<SafetensorsDtype, { size: number; rank: number }> = {
  BOOL: { size: 1, rank: 0 },
  U8: { size: 1, rank: 1 },
  I8: { size: 1, rank: 2 },
  I16: { size: 2, rank: 3 },
  F16: { size: 2, rank: 4 },
  BF16: { size: 2, rank: 5 },
  I32: { size: 4, rank: 6 },
  F32: { size: 4, rank: 7 },
  F64: { size: 8, rank: 8 },
  I64: { size: 8, rank: 9 },
};

/** Largest header Python's loader accepts (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Whether `d` is a dtype saeflow supports. */
export function isSafetensorsDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === "string" && Object.hasOwn(DTYPES, d);
}

/**
 * Bytes per element of `d`.
 *
 * @example
 * ```ts
 * import { dtypeByteSize } from "./safetensors_header.ts";
 * if (dtypeByteSize("BF16") !== 2) throw new Error("bf16 is 2 bytes");
 * ```
 */
export function dtypeByteSize(d: SafetensorsDtype): number {
  const entry = isSafetensorsDtype(d) ? DTYPES[d] : undefined;
  if (entry === undefined) throw new SafetensorsError(`unknown safetensors dtype ${String(d)}`);
  return entry.size;
}

/** Python's writer order rank of `d` (higher goes first). */
export function dtypeRank(d: SafetensorsDtype): number {
  return DTYPES[d].rank;
}

/** Throws a {@link SafetensorsError} prefixed with the source. */
export function fail(source: string, problem: string, cause?: unknown): never {
  throw new SafetensorsError(`${source}: ${problem}`, cause === undefined ? undefined : { cause });
}

/**
 * Number of elements of `shape`, or -1 when the product is not a safe integer
 * (a zero dimension anywhere makes it 0, whatever the others are).
 */
export function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  return n;
}

/** Reads the u64 header length prefix; callers have checked `bytes.length >= 8`. */
export function readHeaderLength(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

/** Checks the header length prefix against the limit and the available bytes. */
export function checkHeaderLength(source: string, n: bigint, available: number): number {
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const len = Number(n);
  if (8 + len > available) {
    fail(source, `header length ${len} runs past the end of the file (${available} bytes)`);
  }
  return len;
}

const isNonNegInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function _typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function _parseMetadata(source: string, raw: unknown): Record<string, string> | undefined {
  if (raw === null) return undefined; // Python reads `null` as "no metadata"
  if (typeof raw !== "object" || Array.isArray(raw)) {
    fail(source, `__metadata__ must be an object of strings, got ${_typeName(raw)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "string") {
      fail(source, `__metadata__ must map strings to strings; "${k}" is ${_typeName(v)}`);
    }
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true });
  }
  return out;
}

function _parseEntry(source: string, name: string, raw: unknown): TensorInfo {
  const where = `tensor "${name}"`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    fail(source, `${where}: entry must be an object, got ${_typeName(raw)}`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (dtype === undefined) fail(source, `${where}: missing "dtype"`);
  if (shape === undefined) fail(source, `${where}: missing "shape"`);
  if (offsets === undefined) fail(source, `${where}: missing "data_offsets"`);
  if (!isSafetensorsDtype(dtype)) {
    fail(
      source,
      `${where}: unknown dtype ${JSON.stringify(dtype)}, expected one of ${
        Object.keys(DTYPES).join(", ")
      }`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    fail(source, `${where}: shape must be an array of non-negative integers, got ${_short(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
    fail(
      source,
      `${where}: data_offsets must be [begin, end] non-negative integers, got ${_short(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(source, `${where}: data_offsets end ${end} < begin ${begin}`);
  const count = elementCount(shape);
  const size = DTYPES[dtype].size;
  if (count < 0 || count * size !== end - begin) {
    fail(
      source,
      `${where}: shape [${shape}] × ${dtype} (${size} B) does not match data_offsets ` +
        `[${begin}, ${end}] (${end - begin} bytes)`,
    );
  }
  return { name, dtype, shape: [...shape], dataOffsets: [begin, end] };
}

function _short(v: unknown): string {
  return describeValue(v);
}

/** Checks that the ranges, sorted, tile [0, total); returns them sorted and the total. */
function _checkTiling(source: string, infos: TensorInfo[]): [TensorInfo[], number] {
  const sorted = infos.sort((a, b) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let expected = 0;
  let prev = "";
  for (const t of sorted) {
    const [begin, end] = t.dataOffsets;
    if (begin < expected) {
      fail(source, `tensor "${t.name}" data_offsets [${begin}, ${end}] overlap "${prev}"`);
    }
    if (begin > expected) {
      fail(
        source,
        `hole in the data buffer: bytes [${expected}, ${begin}) before tensor "${t.name}" ` +
          `belong to no tensor`,
      );
    }
    expected = end;
    prev = t.name;
  }
  return [sorted, expected];
}

/**
 * Parses and validates the header of a safetensors file. `bytes` must hold at least the
 * 8-byte length prefix and the JSON header; the data buffer may be missing (the returned
 * `byteLength` says how long the whole file must be).
 *
 * @example
 * ```ts
 * import { parseSafetensorsHeader } from "./safetensors_header.ts";
 * const json = new TextEncoder().encode('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}  ');
 * const bytes = new Uint8Array(8 + json.length);
 * bytes[0] = json.length;
 * bytes.set(json, 8);
 * const h = parseSafetensorsHeader(bytes);
 * if (h.tensors.get("a")?.shape[0] !== 2 || h.byteLength !== bytes.length + 2) throw new Error();
 * ```
 */
export function parseSafetensorsHeader(bytes: Uint8Array, source = "<bytes>"): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array)) fail(source, "the bytes are not a Uint8Array");
  if (bytes.length < 8) {
    fail(source, `file is ${bytes.length} bytes, shorter than the 8-byte header length prefix`);
  }
  const n = checkHeaderLength(source, readHeaderLength(bytes), bytes.length);
  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text, so JSON.parse rejects it as Python does.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + n),
    );
  } catch (err) {
    fail(source, "header is not valid UTF-8", err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = String((err as Error)?.message ?? err);
    fail(
      source,
      `header is not valid JSON: ${why.length > 120 ? why.slice(0, 117) + "..." : why}`,
      err,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(source, `header must be a JSON object, got ${_typeName(json)}`);
  }
  let metadata: Record<string, string> | undefined;
  const infos: TensorInfo[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") metadata = _parseMetadata(source, raw);
    else infos.push(_parseEntry(source, name, raw));
  }
  // Data order, not JSON key order (JS objects move integer-like keys such as "0" first).
  const [sorted, dataLength] = _checkTiling(source, infos);
  const tensors = new Map(sorted.map((t) => [t.name, t]));
  const dataStart = 8 + n;
  return { tensors, metadata, dataStart, byteLength: dataStart + dataLength, source };
}
