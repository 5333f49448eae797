import {
  dtypeByteSize,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  readTensor,
  SafetensorsError,
  serializeSafetensors,
  type StTensor,
  toFloat32,
  writeSafetensors,
} from "../../io/mod.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { ascii, f32Bytes, sampleTensors } from "./_fixtures.ts";

const MODEL = "data/tiny-shakespeare-gpt2/model.safetensors";

function concat(...parts: (number[] | Uint8Array)[]): Uint8Array {
  return new Uint8Array(parts.flatMap((p) => [...p]));
}

Deno.test("serialize/parse round-trips every dtype, scalars and empty tensors", () => {
  const tensors = sampleTensors();
  const back = parseSafetensors(serializeSafetensors(tensors));
  assertEquals(back.metadata, undefined);
  assertEquals(back.tensors.size, tensors.size);
  for (const [name, t] of tensors) assertEquals(back.tensors.get(name), t, name);
});

Deno.test("metadata round-trips (including non-ASCII and escapes)", () => {
  const metadata = { format: "pt", "ключ": "значение 🚀", quote: 'a"b\\c\n', "0": "zero" };
  const bytes = serializeSafetensors({}, metadata);
  assertEquals(parseSafetensors(bytes).metadata, metadata);
  const withTensor = serializeSafetensors(sampleTensors(), { a: "1" });
  assertEquals(parseSafetensors(withTensor).metadata, { a: "1" });
});

Deno.test("byte-exact: hand-built file with Python's dtype-then-name order", () => {
  const bytes = serializeSafetensors({
    a: { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
    z: { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) },
  });
  // F32 sorts before U8 (wider dtype first), so "z" gets offset 0. JSON is 107 bytes + 5 spaces.
  const json = '{"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  const expected = concat(
    [112, 0, 0, 0, 0, 0, 0, 0],
    ascii(json),
    ascii("     "),
    [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0], // 1.0f, -2.0f little-endian
    [1, 2, 3],
  );
  assertEquals(bytes, expected);
});

Deno.test("byte-exact: metadata first, scalar BF16", () => {
  const bytes = serializeSafetensors(
    { s: { dtype: "BF16", shape: [], data: new Uint16Array([0x3f80]) } },
    { format: "pt" },
  );
  const json =
    '{"__metadata__":{"format":"pt"},"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}';
  const expected = concat([88, 0, 0, 0, 0, 0, 0, 0], ascii(json), ascii("   "), [0x80, 0x3f]);
  assertEquals(bytes, expected);
});

Deno.test("byte-exact: the Rust safetensors crate's own serialization test vectors", () => {
  // From huggingface/safetensors tensor.rs tests: test_serialization and test_empty.
  const attn = serializeSafetensors({
    "attn.0": { dtype: "F32", shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
  });
  const attnJson = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assertEquals(
    attn,
    concat([64, 0, 0, 0, 0, 0, 0, 0], ascii(attnJson), f32Bytes(0, 1, 2, 3, 4, 5)),
  );
  assertEquals(serializeSafetensors({}), concat([8, 0, 0, 0, 0, 0, 0, 0], ascii("{}      ")));
  assertEquals(
    serializeSafetensors({}, { framework: "pt" }),
    concat([40, 0, 0, 0, 0, 0, 0, 0], ascii('{"__metadata__":{"framework":"pt"}}     ')),
  );
});

Deno.test("writer order: dtype rank descending, then code-point name order, contiguous", () => {
  const mk = (dtype: StTensor["dtype"]): StTensor => {
    const n = 1;
    const data = dtype === "I64" ? new BigInt64Array(n) : new ({
      F32: Float32Array,
      F64: Float64Array,
      F16: Uint16Array,
      BF16: Uint16Array,
      I32: Int32Array,
      I16: Int16Array,
      I8: Int8Array,
      U8: Uint8Array,
      BOOL: Uint8Array,
    } as const)[dtype](n);
    return { dtype, shape: [1], data };
  };
  const input: Record<string, StTensor> = {
    bool: mk("BOOL"),
    u8: mk("U8"),
    i8: mk("I8"),
    i16: mk("I16"),
    f16: mk("F16"),
    bf16: mk("BF16"),
    i32: mk("I32"),
    f32b: mk("F32"),
    "10": mk("F32"),
    "9": mk("F32"),
    "é": mk("F32"),
    "\u{1F600}": mk("F32"), // astral: after U+FFFD in code-point order, before it in UTF-16
    "\uFFFD": mk("F32"),
    f64: mk("F64"),
    i64: mk("I64"),
  };
  const header = parseSafetensorsHeader(serializeSafetensors(input));
  const order = [...header.tensors.keys()];
  assertEquals(order, [
    "i64",
    "f64",
    "10",
    "9",
    "f32b",
    "é",
    "\uFFFD",
    "\u{1F600}",
    "i32",
    "bf16",
    "f16",
    "i16",
    "i8",
    "u8",
    "bool",
  ]);
  let offset = 0;
  for (const info of header.tensors.values()) {
    assertEquals(info.dataOffsets, [offset, offset + dtypeByteSize(info.dtype)], info.name);
    offset = info.dataOffsets[1];
  }
  assertEquals(header.byteLength, header.dataStart + offset);
  assertEquals(header.dataStart % 8, 0, "header padded to 8 bytes");
});

Deno.test("BOOL data is written and read as 0/1", () => {
  const bytes = serializeSafetensors({
    b: { dtype: "BOOL", shape: [3], data: new Uint8Array([0, 7, 1]) },
  });
  assertEquals(bytes.subarray(bytes.length - 3), new Uint8Array([0, 1, 1]));
  bytes[bytes.length - 1] = 9; // a foreign writer's non-canonical true
  assertEquals(parseSafetensors(bytes).tensors.get("b")?.data, new Uint8Array([0, 1, 1]));
});

Deno.test("toFloat32 converts every dtype", () => {
  const t = sampleTensors();
  const f = (name: string) => [...toFloat32(t.get(name)!)];
  assertEquals(f("f32"), [1, -2, 3.5, 0, -0, Math.fround(1e30)]);
  assertEquals(f("f64"), [Math.fround(Math.PI), -Infinity]);
  assertEquals(f("f16"), [1, -2, Infinity]);
  assertEquals(f("bf16"), [1, -Infinity]);
  assertEquals(f("i64"), [-(2 ** 63), 2 ** 63, 42]);
  assertEquals(f("i32"), [-(2 ** 31), 2 ** 31]);
  assertEquals(f("i16"), [-32768, 32767]);
  assertEquals(f("i8"), [-128, 0, 127]);
  assertEquals(f("u8"), [0, 1, 254, 255]);
  assertEquals(f("bool"), [1, 0, 1]);
  assertEquals(f("scalar_i64"), [-5]);
  assertEquals(f("empty"), []);
  const big = { dtype: "I64" as const, shape: [2], data: new BigInt64Array([2n ** 53n + 1n, -3n]) };
  assertEquals([...toFloat32(big)], [2 ** 53, -3]);
  const src = t.get("f32")!;
  assert(toFloat32(src) !== src.data, "F32 is copied, not aliased");
});

Deno.test("files: write, read whole, read header, read each tensor by offset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/t.safetensors`;
    const tensors = sampleTensors();
    await writeSafetensors(path, tensors, { step: "3" });
    const whole = await readSafetensors(path);
    assertEquals(whole.metadata, { step: "3" });
    for (const [name, t] of tensors) assertEquals(whole.tensors.get(name), t, name);
    const header = await readSafetensorsHeader(path);
    assertEquals(header.source, path);
    assertEquals(header.byteLength, (await Deno.stat(path)).size);
    for (const [name, t] of tensors) {
      assertEquals(await readTensor(path, name, { header }), t, name);
    }
    assertEquals(await readTensor(path, "i64"), tensors.get("i64"));
    assertEquals([...Deno.readDirSync(`${dir}/sub`)].length, 1, "no temp file left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("header read does not need the data region; tensor reads check the size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/t.safetensors`;
    await writeSafetensors(path, sampleTensors());
    const full = await readSafetensorsHeader(path);
    // Cut the file just after the header: no tensor byte is left to read.
    await Deno.truncate(path, full.dataStart);
    const header = await readSafetensorsHeader(path);
    assertEquals(header, full, "same header from the truncated file");
    await assertRejects(() => readTensor(path, "f32"), SafetensorsError, "header describes");
    await assertRejects(() => readSafetensors(path), SafetensorsError, path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTensor with an unknown name lists a few available names", async () => {
  const err = await assertRejects(
    () => readTensor(MODEL, "transformer.h.9.attn.c_attn.weight"),
    SafetensorsError,
    '"transformer.h.9.attn.c_attn.weight"',
  );
  assert(err.message.includes(MODEL), err.message);
  assert(err.message.includes('available: "transformer.wte.weight"'), err.message);
  assert(/and \d+ more/.test(err.message), err.message);
});

Deno.test("the shipped model file: header, one tensor, whole file agree", async () => {
  const header = await readSafetensorsHeader(MODEL);
  assertEquals(header.tensors.get("transformer.wte.weight")?.shape, [257, 128]);
  assertEquals(header.metadata, { format: "pt" });
  assertEquals(header.byteLength, (await Deno.stat(MODEL)).size);
  const whole = await readSafetensors(MODEL);
  const lnf = await readTensor(MODEL, "transformer.ln_f.weight", { header });
  assertEquals(lnf, whole.tensors.get("transformer.ln_f.weight"));
  const back = parseSafetensors(serializeSafetensors(whole.tensors, whole.metadata));
  assertEquals(back.tensors, whole.tensors);
});

Deno.test("writeSafetensors errors name the path and leave no file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bad.safetensors`;
    const bad = { w: { dtype: "F32" as const, shape: [3], data: new Float32Array(2) } };
    await assertRejects(() => writeSafetensors(path, bad), SafetensorsError, `${path}: tensor "w"`);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
