import {
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  readTensor,
  SafetensorsError,
  serializeSafetensors,
  type StTensor,
} from "../../io/mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { rawFile, sampleTensors } from "./_fixtures.ts";
import { mulberry32 } from "../../util/rng.ts";

/** Asserts that parsing `bytes` throws one SafetensorsError naming `<bytes>` and `fragment`. */
function rejects(bytes: Uint8Array, fragment: string): void {
  const err = assertThrows(() => parseSafetensors(bytes), SafetensorsError, fragment);
  assert(err.message.startsWith("<bytes>: "), `message names the source: ${err.message}`);
}

const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

Deno.test("hostile: length prefix problems", () => {
  rejects(new Uint8Array(5), "shorter than the 8-byte");
  rejects(new Uint8Array(0), "file is 0 bytes");
  rejects(rawFile("{}", 0, 50), "header length 50 runs past the end of the file (10 bytes)");
  rejects(rawFile("{}", 0, 100_000_001), "exceeds the 100000000-byte limit");
  const huge = rawFile("{}");
  huge.fill(0xff, 0, 8); // 2^64 - 1
  rejects(huge, "18446744073709551615 exceeds");
});

Deno.test("hostile: header text is not UTF-8 / JSON / an object", () => {
  const bad = rawFile('{"a":1}');
  bad[10] = 0xff;
  rejects(bad, "not valid UTF-8");
  const bom = rawFile("\uFEFF{}");
  rejects(bom, "not valid JSON");
  rejects(rawFile('{"a": '), "not valid JSON");
  rejects(rawFile("[]"), "header must be a JSON object, got array");
  rejects(rawFile("null"), "got null");
  rejects(rawFile('"x"'), "got string");
  rejects(rawFile("[".repeat(100_000)), "not valid JSON");
});

Deno.test("hostile: malformed tensor entries", () => {
  const one = (body: string, data = 4) => rawFile(`{"t":${body}}`, data);
  rejects(one("5"), 'tensor "t": entry must be an object, got number');
  rejects(one('{"shape":[1],"data_offsets":[0,4]}'), 'tensor "t": missing "dtype"');
  rejects(one('{"dtype":"F32","data_offsets":[0,4]}'), 'missing "shape"');
  rejects(one('{"dtype":"F32","shape":[1]}'), 'missing "data_offsets"');
  rejects(one(entry("F8_E4M3", [4], [0, 4])), 'unknown dtype "F8_E4M3"');
  rejects(one(entry("f32", [1], [0, 4])), "unknown dtype");
  rejects(one('{"dtype":7,"shape":[1],"data_offsets":[0,4]}'), "unknown dtype 7");
  rejects(one(entry("F32", "1", [0, 4])), "shape must be an array of non-negative integers");
  rejects(one(entry("F32", [-1], [0, 4])), "shape must be");
  rejects(one(entry("F32", [1.5], [0, 4])), "shape must be");
  rejects(one(entry("F32", [null], [0, 4])), "shape must be");
  rejects(one(entry("F32", [1], [4])), "data_offsets must be [begin, end]");
  rejects(one(entry("F32", [1], ["0", 4])), "data_offsets must be");
  rejects(one(entry("F32", [1], [0, 4, 8])), "data_offsets must be");
  rejects(one(entry("F32", [1], [0, -4])), "data_offsets must be");
  rejects(one(entry("F32", [1], [4, 0])), "end 0 < begin 4");
  rejects(one(entry("F32", [2], [0, 4])), "does not match data_offsets [0, 4] (4 bytes)");
  rejects(one(entry("F16", [3], [0, 4])), "shape [3] × F16 (2 B)");
  rejects(one(entry("F32", [1e15, 1e15], [0, 4])), "does not match");
});

Deno.test("hostile: offsets must tile the data buffer exactly", () => {
  const two = (a: unknown, b: unknown, data: number) =>
    rawFile(`{"a":${entry("U8", [4], a)},"b":${entry("U8", [4], b)}}`, data);
  rejects(two([0, 4], [2, 6], 6), 'tensor "b" data_offsets [2, 6] overlap "a"');
  rejects(two([0, 4], [0, 4], 4), "overlap");
  rejects(two([0, 4], [6, 10], 10), "hole in the data buffer: bytes [4, 6)");
  rejects(two([2, 6], [6, 10], 10), "bytes [0, 2)");
  rejects(two([0, 4], [4, 8], 9), "trailing bytes");
  rejects(two([0, 4], [4, 8], 7), "truncated");
  rejects(two([0, 4], [4, 100_000_000_000], 8), "does not match");
  const zero = rawFile(`{"a":${entry("U8", [4], [0, 4])},"z":${entry("U8", [0], [2, 2])}}`, 4);
  rejects(zero, 'tensor "z" data_offsets [2, 2] overlap "a"');
  // A zero-length tensor at the very end is legal, as in Python.
  const ok = rawFile(`{"a":${entry("U8", [4], [0, 4])},"z":${entry("U8", [0], [4, 4])}}`, 4);
  assertEquals(parseSafetensors(ok).tensors.get("z")?.data, new Uint8Array(0));
});

Deno.test("hostile: __metadata__ must map strings to strings", () => {
  rejects(rawFile('{"__metadata__":[]}'), "__metadata__ must be an object of strings, got array");
  rejects(rawFile('{"__metadata__":"x"}'), "got string");
  rejects(rawFile('{"__metadata__":{"a":"b","n":1}}'), '"n" is number');
  rejects(rawFile('{"__metadata__":{"o":{}}}'), '"o" is object');
  // `null` is how Python reads "no metadata".
  assertEquals(parseSafetensors(rawFile('{"__metadata__":null}')).metadata, undefined);
  const proto = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"x"}}')).metadata;
  assertEquals(Object.entries(proto!), [["__proto__", "x"]]);
});

Deno.test("hostile: header claims are checked before anything is allocated or read", async () => {
  // Claims 10^12 bytes of data in a tiny file: the header alone is fine, reading is not.
  const json = `{"big":${entry("F32", [250_000_000_000], [0, 1_000_000_000_000])}}`;
  const bytes = rawFile(json, 16);
  const header = parseSafetensorsHeader(bytes);
  assertEquals(header.byteLength, 8 + json.length + 1_000_000_000_000);
  rejects(bytes, "header describes");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.safetensors`;
    await Deno.writeFile(path, bytes);
    const whole = await assertRejects(() => readSafetensors(path), SafetensorsError);
    // The message names the file once (it used to be wrapped in a second "<path>: cannot read").
    assertEquals(
      whole.message,
      `${path}: file is ${bytes.length} bytes but its header describes ${header.byteLength}`,
    );
    await assertRejects(() => readTensor(path, "big"), SafetensorsError, "header describes");
    // Header length prefix beyond the file: rejected before allocating it.
    await Deno.writeFile(path, rawFile("{}", 0, 90_000_000));
    await assertRejects(() => readSafetensorsHeader(path), SafetensorsError, "runs past the end");
    await Deno.writeFile(path, new Uint8Array(3));
    await assertRejects(() => readSafetensorsHeader(path), SafetensorsError, "3 bytes, shorter");
    await assertRejects(() => readSafetensors(`${dir}/missing`), SafetensorsError, "cannot open");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writer rejects bad tensors and metadata with a SafetensorsError", () => {
  const f32 = (shape: number[], n: number): StTensor => ({
    dtype: "F32",
    shape,
    data: new Float32Array(n),
  });
  const bad = (tensors: Record<string, StTensor>, fragment: string, meta?: unknown) =>
    assertThrows(
      () => serializeSafetensors(tensors, meta as Record<string, string>),
      SafetensorsError,
      fragment,
    );
  bad({ w: f32([2, 2], 3) }, '<bytes>: tensor "w": shape [2,2] has 4 elements but data has 3');
  bad({ w: f32([-1], 0) }, "shape must be non-negative integers");
  bad({ w: f32([1.5], 1) }, "shape must be");
  bad(
    { w: { dtype: "F16", shape: [1], data: new Float32Array(1) } },
    "F16 data must be a Uint16Array",
  );
  bad({ w: { dtype: "I64", shape: [1], data: new Int32Array(1) } }, "must be a BigInt64Array");
  bad({ w: { dtype: "F8" as "F32", shape: [1], data: new Float32Array(1) } }, "unknown dtype F8");
  bad({ __metadata__: f32([1], 1) }, "reserved");
  bad({ ["a\uD800"]: f32([1], 1) }, "unpaired");
  bad({}, 'metadata "n" must be a string, got number', { n: 1 });
  bad({}, "metadata must be an object", ["a"]);
});

/** Random corruptions of valid files: parse must succeed or throw SafetensorsError only. */
Deno.test("fuzz: corrupted, truncated and extended files never throw anything else", () => {
  const rand = mulberry32(20240601);
  const int = (n: number) => Math.floor(rand() * n);
  const seeds = [
    serializeSafetensors(sampleTensors(), { format: "pt", note: "fuzz" }),
    serializeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array(2) } }),
    serializeSafetensors({}, { k: "v" }),
  ];
  let ok = 0, failed = 0;
  for (let iter = 0; iter < 2000; iter++) {
    const base = seeds[iter % seeds.length];
    let bytes = base.slice();
    const headerEnd = 8 + Number(new DataView(base.buffer).getBigUint64(0, true));
    switch (int(5)) {
      case 0: // flip bytes anywhere
        for (let k = 1 + int(4); k > 0; k--) bytes[int(bytes.length)] = int(256);
        break;
      case 1: // flip bytes inside the header, where they matter most
        for (let k = 1 + int(3); k > 0; k--) bytes[int(headerEnd)] = int(256);
        break;
      case 2: // replace a header byte with a JSON-significant character
        bytes[8 + int(headerEnd - 8)] = '0123456789-,:[]{}" .e'.charCodeAt(int(21));
        break;
      case 3: // truncate
        bytes = bytes.slice(0, int(bytes.length));
        break;
      default: { // extend with random bytes
        const ext = new Uint8Array(bytes.length + 1 + int(16));
        ext.set(bytes);
        for (let i = bytes.length; i < ext.length; i++) ext[i] = int(256);
        bytes = ext;
      }
    }
    try {
      parseSafetensors(bytes);
      ok++;
    } catch (err) {
      if (!(err instanceof SafetensorsError)) {
        throw new Error(`iteration ${iter}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
      failed++;
    }
  }
  assert(ok > 50 && failed > 500, `both outcomes exercised (ok ${ok}, failed ${failed})`);
});

/** Huge sizes a hostile header may claim (all past any file this test writes). */
const HUGE = [2 ** 31, 2 ** 32 + 4, 2 ** 40, 2 ** 50, 2 ** 53 - 8, 2 ** 53, 2 ** 64, 1e308];

/** A copy of `seed` whose JSON header was rewritten by `edit` (the data region is kept). */
function rewriteHeader(seed: Uint8Array, edit: (json: Record<string, unknown>) => void) {
  const n = Number(new DataView(seed.buffer, seed.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(seed.subarray(8, 8 + n)));
  edit(json);
  return rawFile(JSON.stringify(json), seed.slice(8 + n));
}

/**
 * Counts typed arrays of more than `limit` elements created while `fn` runs, by wrapping the
 * global Uint8Array constructor (the readers' buffers are all Uint8Arrays).
 */
async function countOversizeAllocations<T>(limit: number, fn: () => Promise<T>) {
  const original = globalThis.Uint8Array;
  let oversize = 0;
  globalThis.Uint8Array = new Proxy(original, {
    construct(target, args, newTarget) {
      if (typeof args[0] === "number" && args[0] > limit) oversize++;
      return Reflect.construct(target, args, newTarget);
    },
  });
  try {
    return { result: await fn(), oversize };
  } finally {
    globalThis.Uint8Array = original;
  }
}

/** Runs `fn`; returns its result, or the SafetensorsError it threw (anything else fails). */
async function settle<T>(what: string, fn: () => Promise<T>): Promise<T | SafetensorsError> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SafetensorsError) return err;
    throw new Error(`${what}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
}

Deno.test("fuzz: the file readers on corrupted files throw only SafetensorsErrors, agree with the in-memory parse and never allocate past the file size", async () => {
  const rand = mulberry32(20260102);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const seeds = [
    serializeSafetensors(sampleTensors(), { format: "pt", note: "fuzz" }),
    serializeSafetensors({
      a: { dtype: "F32", shape: [2], data: new Float32Array(2) },
      b: { dtype: "I64", shape: [1, 2], data: new BigInt64Array(2) },
    }),
    serializeSafetensors({}, { k: "v" }),
  ];
  const mutate = (base: Uint8Array): Uint8Array => {
    const bytes = base.slice();
    const headerEnd = 8 + Number(new DataView(base.buffer).getBigUint64(0, true));
    switch (int(7)) {
      case 0: // flip bytes inside the header
        for (let k = 1 + int(3); k > 0; k--) bytes[int(headerEnd)] = int(256);
        return bytes;
      case 1: // truncate
        return bytes.slice(0, int(bytes.length));
      case 2: { // extend with random bytes
        const ext = new Uint8Array(bytes.length + 1 + int(16));
        ext.set(bytes);
        return ext;
      }
      case 3: // a huge header length prefix
        new DataView(bytes.buffer).setBigUint64(0, BigInt(pick(HUGE.slice(0, 7))), true);
        return bytes;
      case 4: // one huge dimension or offset (the header becomes inconsistent)
        return rewriteHeader(base, (json) => {
          const names = Object.keys(json).filter((k) => k !== "__metadata__");
          if (!names.length) return;
          const t = json[pick(names)] as { shape: number[]; data_offsets: number[] };
          const huge = pick(HUGE);
          if (rand() < 0.5 && t.shape.length) t.shape[int(t.shape.length)] = huge;
          else t.data_offsets[int(2)] = huge;
        });
      case 5: // the last tensor claims a huge, self-consistent range: a valid header
        return rewriteHeader(base, (json) => {
          let last: { dtype: string; shape: number[]; data_offsets: number[] } | undefined;
          for (const [k, v] of Object.entries(json)) {
            const t = v as { dtype: string; shape: number[]; data_offsets: number[] };
            if (k !== "__metadata__" && (!last || t.data_offsets[1] >= last.data_offsets[1])) {
              last = t;
            }
          }
          if (!last) return;
          const elems = pick([2 ** 28, 2 ** 31, 2 ** 38, 2 ** 45]);
          const size = { BOOL: 1, U8: 1, I8: 1, I16: 2, F16: 2, BF16: 2, I32: 4, F32: 4 }[
            last.dtype
          ] ?? 8;
          last.shape = [elems];
          last.data_offsets = [last.data_offsets[0], last.data_offsets[0] + elems * size];
        });
      default: // bytes anywhere
        for (let k = 1 + int(4); k > 0; k--) bytes[int(bytes.length)] = int(256);
        return bytes;
    }
  };

  const dir = await Deno.makeTempDir();
  const path = `${dir}/fuzz.safetensors`;
  const counts = { headerOk: 0, headerFailed: 0, wholeOk: 0, hugeClaims: 0 };
  const once = (err: SafetensorsError, iter: number) => {
    // Every message starts with the path and names it exactly once.
    assert(err.message.startsWith(`${path}: `), `iteration ${iter}: ${err.message}`);
    assertEquals(err.message.split(path).length, 2, `iteration ${iter}: ${err.message}`);
  };
  const run = async (iter: number, bytes: Uint8Array) => {
    await Deno.writeFile(path, bytes);
    const { result: header, oversize: o1 } = await countOversizeAllocations(
      bytes.length,
      () => settle(`iteration ${iter}: readSafetensorsHeader`, () => readSafetensorsHeader(path)),
    );
    // The header read agrees with the in-memory header parse, message and all.
    let expected: ReturnType<typeof parseSafetensorsHeader> | Error;
    try {
      expected = parseSafetensorsHeader(bytes, path);
    } catch (err) {
      expected = err as Error;
    }
    if (header instanceof SafetensorsError) {
      once(header, iter);
      assert(expected instanceof SafetensorsError, `iteration ${iter}: header parse disagrees`);
      assertEquals(header.message, expected.message, `iteration ${iter}`);
      counts.headerFailed++;
    } else {
      assertEquals(header, expected, `iteration ${iter}: header read vs parse`);
      counts.headerOk++;
      if (header.byteLength > 2 ** 31) counts.hugeClaims++;
    }
    let whole: ReturnType<typeof parseSafetensors> | Error;
    try {
      whole = parseSafetensors(bytes);
    } catch (err) {
      whole = err as Error;
    }
    const { result: read, oversize: o2 } = await countOversizeAllocations(
      bytes.length,
      async () => {
        const full = await settle(
          `iteration ${iter}: readSafetensors`,
          () => readSafetensors(path),
        );
        if (header instanceof SafetensorsError) return { full, tensors: [] };
        const names = [...header.tensors.keys(), "no such tensor"];
        const tensors = [];
        for (const name of names) {
          tensors.push(
            await settle(
              `iteration ${iter}: readTensor ${name}`,
              () => readTensor(path, name, { header }),
            ),
          );
        }
        return { full, tensors };
      },
    );
    assertEquals(o1 + o2, 0, `iteration ${iter}: an allocation larger than the file`);
    if (read.full instanceof SafetensorsError) {
      once(read.full, iter);
      assert(whole instanceof SafetensorsError, `iteration ${iter}: readSafetensors rejects`);
    } else {
      assert(!(whole instanceof Error), `iteration ${iter}: readSafetensors accepts`);
      assertEquals(read.full, whole, `iteration ${iter}: read vs parse`);
      counts.wholeOk++;
    }
    read.tensors.forEach((t, i) => {
      const name = header instanceof SafetensorsError ? "" : [...header.tensors.keys()][i];
      if (t instanceof SafetensorsError) {
        once(t, iter);
        assert(
          whole instanceof Error || name === undefined,
          `iteration ${iter}: readTensor ${name} rejects a file the parse accepts`,
        );
      } else {
        assert(!(whole instanceof Error), `iteration ${iter}: readTensor accepts a bad file`);
        assertEquals(t, whole.tensors.get(name!), `iteration ${iter}: tensor ${name}`);
      }
    });
  };
  try {
    for (let iter = 0; iter < 50; iter++) await run(iter, mutate(seeds[iter % seeds.length]));
    // This isolate's ArrayBuffer memory, not the process rss: under `deno test --parallel` other
    // test files share the process and move its rss by far more than this bound.
    const external = Deno.memoryUsage().external;
    for (let iter = 50; iter < 800; iter++) await run(iter, mutate(seeds[iter % seeds.length]));
    const grown = Deno.memoryUsage().external - external;
    assert(grown < 32 * 2 ** 20, `external memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert(
    counts.headerOk > 50 && counts.headerFailed > 200 && counts.wholeOk > 20 &&
      counts.hugeClaims > 20,
    `every outcome exercised: ${JSON.stringify(counts)}`,
  );
});
