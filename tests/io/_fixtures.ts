/** Shared helpers for the safetensors tests: raw file builders and sample tensors. */

import type { StTensor } from "../../io/safetensors.ts";

/** Builds raw file bytes: u64 LE `headerLen` (default: the JSON's length), JSON, data. */
export function rawFile(json: string, data: Uint8Array | number = 0, headerLen?: number) {
  const j = new TextEncoder().encode(json);
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + j.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? j.length), true);
  out.set(j, 8);
  out.set(d, 8 + j.length);
  return out;
}

/** Little-endian bytes of float32 values. */
export function f32Bytes(...xs: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(xs).buffer);
}

/** ASCII bytes of `s` (for hand-built expected files). */
export function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

/** One small tensor of every dtype, plus a scalar and empty tensors. */
export function sampleTensors(): Map<string, StTensor> {
  const m = new Map<string, StTensor>();
  m.set("f32", { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, 1e30]) });
  m.set("f64", { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -1e300]) });
  m.set("f16", { dtype: "F16", shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) });
  m.set("bf16", { dtype: "BF16", shape: [1, 2], data: new Uint16Array([0x3f80, 0xff80]) });
  m.set("i64", {
    dtype: "I64",
    shape: [3],
    data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 42n]),
  });
  m.set("i32", { dtype: "I32", shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) });
  m.set("i16", { dtype: "I16", shape: [2], data: new Int16Array([-32768, 32767]) });
  m.set("i8", { dtype: "I8", shape: [3], data: new Int8Array([-128, 0, 127]) });
  m.set("u8", { dtype: "U8", shape: [2, 2], data: new Uint8Array([0, 1, 254, 255]) });
  m.set("bool", { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) });
  m.set("scalar", { dtype: "F32", shape: [], data: new Float32Array([7.25]) });
  m.set("scalar_i64", { dtype: "I64", shape: [], data: new BigInt64Array([-5n]) });
  m.set("empty", { dtype: "F32", shape: [0], data: new Float32Array(0) });
  m.set("empty2d", { dtype: "I16", shape: [3, 0], data: new Int16Array(0) });
  m.set("empty_bool", { dtype: "BOOL", shape: [0, 4], data: new Uint8Array(0) });
  return m;
}
