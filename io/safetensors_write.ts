/**
 * Safetensors writer. The layout matches Python's `safetensors.save_file` byte for byte
 * (tensor order, offsets, compact JSON, space padding), except that `__metadata__` keys are
 * sorted here, where Python's order is that of a Rust hash map.
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";
import {
  dtypeByteSize,
  dtypeRank,
  elementCount,
  fail,
  isSafetensorsDtype,
  type SafetensorsDtype,
} from "./safetensors_header.ts";
import { describeValue, SaeflowError } from "../util/errors.ts";

/** One tensor in memory: F16 and BF16 hold bit patterns, BOOL holds 0/1 bytes. */
export interface StTensor {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Row-major shape; `[]` is a scalar (one element). */
  shape: number[];
  /** Elements, in the typed array that matches `dtype` (see {@link dtypeArrayName}). */
  data:
    | Float32Array
    | Float64Array
    | Uint16Array
    | BigInt64Array
    | Int32Array
    | Int16Array
    | Int8Array
    | Uint8Array;
}

const ARRAY_TYPES: Record<SafetensorsDtype, { name: string; ctor: unknown }> = {
  F32: { name: "Float32Array", ctor: Float32Array },
  F64: { name: "Float64Array", ctor: Float64Array },
  F16: { name: "Uint16Array", ctor: Uint16Array },
  BF16: { name: "Uint16Array", ctor: Uint16Array },
  I64: { name: "BigInt64Array", ctor: BigInt64Array },
  I32: { name: "Int32Array", ctor: Int32Array },
  I16: { name: "Int16Array", ctor: Int16Array },
  I8: { name: "Int8Array", ctor: Int8Array },
  U8: { name: "Uint8Array", ctor: Uint8Array },
  BOOL: { name: "Uint8Array", ctor: Uint8Array },
};

/**
 * Name of the typed array class that holds `dtype` data in a {@link StTensor}.
 *
 * @example
 * ```ts
 * import { dtypeArrayName } from "./safetensors_write.ts";
 * if (dtypeArrayName("BF16") !== "Uint16Array") throw new Error();
 * ```
 */
export function dtypeArrayName(dtype: SafetensorsDtype): string {
  return ARRAY_TYPES[dtype].name;
}

/** Orders strings by Unicode code point, which is Rust's (UTF-8 byte) string order. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!, y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++; // skip the low surrogate of a pair
  }
  return a.length - b.length;
}

function _checkTensor(source: string, name: string, t: StTensor): void {
  const where = `tensor "${name}"`;
  if (name === "__metadata__") fail(source, `"__metadata__" is reserved and cannot name a tensor`);
  if (!name.isWellFormed()) fail(source, `${where}: name has an unpaired UTF-16 surrogate`);
  if (typeof t !== "object" || t === null) fail(source, `${where}: not a tensor object`);
  if (!isSafetensorsDtype(t.dtype)) fail(source, `${where}: unknown dtype ${String(t.dtype)}`);
  const shape = t.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(source, `${where}: shape must be non-negative integers, got ${describeValue(shape)}`);
  }
  const want = ARRAY_TYPES[t.dtype];
  if (!(t.data instanceof (want.ctor as typeof Uint8Array))) {
    fail(source, `${where}: ${t.dtype} data must be a ${want.name}, got ${_className(t.data)}`);
  }
  const count = elementCount(shape);
  if (count !== t.data.length) {
    fail(source, `${where}: shape [${shape}] has ${count} elements but data has ${t.data.length}`);
  }
}

function _className(v: unknown): string {
  return (v as { constructor?: { name?: string } })?.constructor?.name ?? typeof v;
}

function _checkMetadata(source: string, metadata: unknown): [string, string][] {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    fail(source, `metadata must be an object of strings`);
  }
  const entries = Object.entries(metadata as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== "string") fail(source, `metadata "${k}" must be a string, got ${typeof v}`);
    if (!k.isWellFormed() || !v.isWellFormed()) {
      fail(source, `metadata "${k}" has an unpaired UTF-16 surrogate`);
    }
  }
  return entries.sort((a, b) => compareCodePoints(a[0], b[0])) as [string, string][];
}

/** Shared by {@link serializeSafetensors} and {@link writeSafetensors}; `source` names errors. */
export function serializeTo(
  source: string,
  tensors: Map<string, StTensor> | Record<string, StTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) _checkTensor(source, name, t);
  // Python's order: dtype rank descending (wider types first, keeping data aligned), then name.
  entries.sort((a, b) =>
    dtypeRank(b[1].dtype) - dtypeRank(a[1].dtype) || compareCodePoints(a[0], b[0])
  );
  // Built by hand: a JS object would move integer-like names ("0", "12") to the front.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const meta = _checkMetadata(source, metadata)
      .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${meta.join(",")}}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const nbytes = t.data.length * dtypeByteSize(t.dtype);
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += nbytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const headerLen = Math.ceil(json.length / 8) * 8; // padded with spaces to a multiple of 8
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const [, t] of entries) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (t.dtype === "BOOL") {
      for (let i = 0; i < bytes.length; i++) out[pos + i] = bytes[i] === 0 ? 0 : 1;
    } else {
      out.set(bytes, pos);
    }
    pos += bytes.length;
  }
  return out;
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes that Python's
 * `safetensors` loads. Throws {@link SafetensorsError} (naming `<bytes>` and the tensor) when a
 * tensor's data class, length or shape is wrong, or a metadata value is not a string.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors_write.ts";
 * const bytes = serializeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array(2) } });
 * if (bytes.length !== 8 + 56 + 8) throw new Error(`unexpected size ${bytes.length}`);
 * ```
 */
export function serializeSafetensors(
  tensors: Map<string, StTensor> | Record<string, StTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  return serializeTo("<bytes>", tensors, metadata);
}

/**
 * Writes a safetensors file atomically (temp file + rename, via `io/atomic.ts`).
 * Errors name `path`. The whole file is assembled in memory first.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors_write.ts";
 * import { readSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/t.safetensors`, { b: { dtype: "U8", shape: [], data: new Uint8Array([7]) } });
 * const back = (await readSafetensors(`${dir}/t.safetensors`)).tensors.get("b");
 * if (back?.dtype !== "U8" || back.shape.length !== 0 || back.data[0] !== 7) throw new Error("round trip");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, StTensor> | Record<string, StTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeTo(path, tensors, metadata);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    if (err instanceof SaeflowError) throw err;
    // A directory or a file in the way, a missing parent, no permission, a full disk.
    fail(path, `cannot write: ${(err as Error)?.message ?? err}`, err);
  }
}
