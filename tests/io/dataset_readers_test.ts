import { readFileChunks, readTextChunks } from "../../io/byte_stream.ts";
import { DatasetError } from "../../io/dataset_error.ts";
import { jsonRows } from "../../io/jsonl.ts";
import { ParquetFile } from "../../io/parquet.ts";
import { textRows, type TextSampleBy } from "../../io/text_lines.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { gzip, parquetBytes, sampleTexts, sampleTokens, zstd } from "./dataset_fixtures.ts";
import { mulberry32 as rng } from "../../util/rng.ts";

const enc = new TextEncoder();

function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

async function collect<T>(it: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const b of it) out.push(...b);
  return out;
}

async function jsonAll(it: AsyncIterable<{ rows: unknown[] }>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const b of it) out.push(...b.rows);
  return out;
}

async function* chunked(s: string, sizes: () => number): AsyncGenerator<string> {
  for (let i = 0; i < s.length;) {
    const n = Math.max(1, sizes());
    yield s.slice(i, i + n);
    i += n;
  }
}

/**
 * Hugging Face's text builder on a whole string at once (the streaming reader must agree for
 * every chunking): universal newlines, then `readlines()` + `rstrip("\n")`, or
 * `split("\n\n")` without empty pieces, or the whole text.
 */
function hfTextRows(raw: string, by: TextSampleBy): string[] {
  const s = raw.replace(/\r\n|\r/g, "\n");
  if (by === "document") return [s];
  if (by === "paragraph") return s.split("\n\n").filter((p) => p !== "");
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\n") {
      lines.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (start < s.length) lines.push(s.slice(start));
  return lines;
}

async function tempFile(data: Uint8Array | string, suffix: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix });
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
}

// --- text rows ------------------------------------------------------------------------------

test("textRows: HF text builder vectors (universal newlines, empty lines, paragraphs)", async () => {
  const one = async (s: string, by: TextSampleBy) =>
    await collect(textRows(chunked(s, () => 3), by));
  assertEquals(await one("a\r\n\r\nb\rc\n", "line"), ["a", "", "b", "c"]);
  assertEquals(await one("a\r\n\r\nb\rc\n", "paragraph"), ["a", "b\nc\n"]);
  assertEquals(await one("a\r\n\r\nb\rc\n", "document"), ["a\n\nb\nc\n"]);
  assertEquals(await one("", "line"), []);
  assertEquals(await one("", "paragraph"), []);
  assertEquals(await one("", "document"), [""]);
  assertEquals(await one("\n", "line"), [""]);
  assertEquals(await one("x", "line"), ["x"]);
  assertEquals(await one("a\n\n\nb\n\n\n\nc", "paragraph"), ["a", "\nb", "c"]);
  // A byte-order mark stays part of the first row (Python's "utf-8" codec keeps it).
  assertEquals(await one("\ufeffhi\nthere", "line"), ["\ufeffhi", "there"]);
});

test("textRows: every chunking gives the whole-string rows (random texts, 3 modes)", async () => {
  const r = rng(7);
  const alphabet = ["a", "b", " ", "\n", "\n", "\r", "\r\n", "é"];
  for (let trial = 0; trial < 300; trial++) {
    const len = Math.floor(r() * 60);
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(r() * alphabet.length)];
    for (const by of ["line", "paragraph", "document"] as const) {
      const maxChunk = 1 + Math.floor(r() * 8);
      const got = await collect(textRows(chunked(s, () => 1 + Math.floor(r() * maxChunk)), by));
      assertEquals(got, hfTextRows(s, by), `${by} of ${JSON.stringify(s)}`);
    }
  }
});

test("textRows: a long line without newlines across many chunks stays one row", async () => {
  const long = "x".repeat(100_000);
  const rows = await collect(textRows(chunked(`${long}\nend`, () => 997), "line"));
  assertEquals(rows.length, 2);
  assert(rows[0] === long && rows[1] === "end");
});

test("textRows / jsonRows: a row longer than maxRowChars is a DatasetError", async () => {
  const long = "x".repeat(500);
  for (const by of ["line", "paragraph", "document"] as const) {
    const err = await assertRejects(
      () => collect(textRows(chunked(`ok\n${long}\n`, () => 64), by, { maxRowChars: 300 })),
      DatasetError,
    );
    assert(err.message.includes("longer than 300 characters"), err.message);
  }
  assertEquals(
    await collect(textRows(chunked(`ok\n${long}`, () => 64), "line", { maxRowChars: 500 })),
    ["ok", long],
  );
  for (const text of [`{"text": "${long}"}\n`, `[{"text": "${long}"}]`]) {
    const err = await assertRejects(
      () => jsonAll(jsonRows(chunked(text, () => 64), "f.jsonl", { maxRowChars: 300 })),
      DatasetError,
    );
    assert(err.message.includes("f.jsonl: a JSON"), err.message);
  }
});

// --- JSON rows ------------------------------------------------------------------------------

test("jsonRows: JSON Lines with blank lines, CRLF and a BOM keep their line numbers", async () => {
  const text = '\ufeff{"text": "a"}\r\n\n  \n{"text": "b", "n": 2}\n{"text": "c"}';
  for (const size of [1, 2, 5, 100]) {
    const got: [unknown, number][] = [];
    for await (const b of jsonRows(chunked(text, () => size), "f.jsonl")) {
      assertEquals(b.whereKind, "line");
      b.rows.forEach((row, k) => got.push([row.text, b.where[k]]));
    }
    assertEquals(got, [["a", 1], ["b", 4], ["c", 5]], `chunk ${size}`);
  }
});

test("jsonRows: a malformed line names the file and line number", async () => {
  const text = '{"text": "a"}\n{"text": "b"}\n{"text": "c"\n{"text": "d"}\n';
  const err = await assertRejects(
    () => jsonAll(jsonRows(chunked(text, () => 4), "data/x.jsonl")),
    DatasetError,
  );
  assert(err.message.includes("data/x.jsonl:3"), err.message);
  assert(err.message.includes("expected one JSON object per line"), err.message);
});

test("jsonRows: rows must be objects", async () => {
  for (const [line, kind] of [["[1, 2]", "array"], ["null", "null"], ['"s"', "string"]]) {
    const err = await assertRejects(
      () => jsonAll(jsonRows(chunked(`{"text": "a"}\n${line}\n`, () => 64), "f.jsonl")),
      DatasetError,
    );
    assert(err.message.includes(`f.jsonl:2 is a JSON ${kind}`), err.message);
  }
});

test("jsonRows: a top-level array splits into its objects at every chunk boundary", async () => {
  const objs = [
    { text: "a, ] } [ {" },
    { text: 'quote \\" and \\\\', nested: { list: [1, [2, { x: "]" }]] } },
    { text: "é数据\n" },
    { input_ids: [1, 2, 3] },
  ];
  const text = "  \n" + JSON.stringify(objs, null, 1) + "\n\n";
  for (let size = 1; size <= 9; size++) {
    const got: unknown[] = [];
    const where: number[] = [];
    for await (const b of jsonRows(chunked(text, () => size), "f.json")) {
      assertEquals(b.whereKind, "element");
      got.push(...b.rows);
      where.push(...b.where);
    }
    assertEquals(got, objs, `chunk ${size}`);
    assertEquals(where, [0, 1, 2, 3]);
  }
  assertEquals(await jsonAll(jsonRows(chunked("[]", () => 1), "e.json")), []);
});

test("jsonRows: truncated, trailing-garbage and malformed arrays are refused", async () => {
  const cases: [string, string][] = [
    ['[{"text": "a"}, {"text": "b"}', "not closed"],
    ['[{"text": "a"}] x', "unexpected data after"],
    ['[{"text": "a"},]', "empty element"],
    ['[{"text": "a"}, {"text": }]', "f.json element 1: malformed JSON"],
    ['[{"text": "a"}, 5]', "f.json element 1 is a JSON number"],
  ];
  for (const [text, want] of cases) {
    const err = await assertRejects(
      () => jsonAll(jsonRows(chunked(text, () => 3), "f.json")),
      DatasetError,
    );
    assert(err.message.includes(want), `${text}: ${err.message}`);
  }
});

// --- bytes: files, zstd, gzip, UTF-8 --------------------------------------------------------

test("readTextChunks: zstd (multi-frame) and gzip files decode to the original text", async () => {
  const text = sampleTexts(3000, 3).join("\n") + "\n";
  const half = Math.floor(text.length / 2);
  const frames = [zstd(text.slice(0, half)), zstd(text.slice(half), 19)];
  const multi = new Uint8Array(frames[0].length + frames[1].length);
  multi.set(frames[0]);
  multi.set(frames[1], frames[0].length);
  for (const [data, suffix] of [[zstd(text), ".jsonl.zst"], [multi, ".zst"], [gzip(text), ".gz"]]) {
    const path = await tempFile(data as Uint8Array, suffix as string);
    for (const chunkSize of [113, 4096, 1 << 20]) {
      let got = "";
      for await (const s of readTextChunks(path, { chunkSize })) got += s;
      assert(got === text, `${suffix} chunk ${chunkSize}: ${got.length} vs ${text.length} chars`);
    }
    await Deno.remove(path);
  }
});

test("readTextChunks: truncated or corrupt zstd/gzip and invalid UTF-8 are DatasetErrors", async () => {
  const text = sampleTexts(2000, 4).join("\n");
  const z = zstd(text), g = gzip(text);
  const corrupt = z.slice();
  corrupt.fill(0xab, 20, 60);
  const cases: [Uint8Array, string, string][] = [
    [z.slice(0, Math.floor(z.length / 2)), ".zst", "zstd"],
    [corrupt, ".zst", "zstd"],
    [
      new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
      ".zst",
      "zstd",
    ],
    [new Uint8Array(0), ".zst", "empty"],
    [g.slice(0, Math.floor(g.length / 2)), ".gz", "gzip"],
    [enc.encode("not gzip at all, just text"), ".gz", "gzip"],
    [new Uint8Array([0x61, 0xff, 0xfe, 0x62]), ".txt", "UTF-8"],
  ];
  for (const [data, suffix, want] of cases) {
    const path = await tempFile(data, suffix);
    const err = await assertRejects(async () => {
      for await (const _ of readTextChunks(path, { chunkSize: 1000, describe: "shard.x" })) {
        // drain
      }
    }, DatasetError);
    assert(err.message.includes("shard.x") && err.message.includes(want), err.message);
    await Deno.remove(path);
  }
});

test("readTextChunks: a multi-byte character split between reads decodes whole", async () => {
  const path = await tempFile("é数据😀\n", ".txt");
  let got = "";
  for await (const s of readTextChunks(path, { chunkSize: 1 })) got += s;
  assertEquals(got, "é数据😀\n");
  await Deno.remove(path);
});

test("readFileChunks: a missing file is a DatasetError naming it", async () => {
  const err = await assertRejects(async () => {
    for await (const _ of readFileChunks("/nonexistent/dir/x.jsonl")) { /* drain */ }
  }, DatasetError);
  assert(err.message.includes("/nonexistent/dir/x.jsonl"), err.message);
});

// --- Parquet --------------------------------------------------------------------------------

test("ParquetFile: strings and int32/int64 token lists, every codec, every start row", async () => {
  const texts = sampleTexts(250, 5);
  const toks = sampleTokens(250, 9, 6);
  for (const codec of ["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] as const) {
    const bytes = parquetBytes([
      { name: "text", kind: "string", data: texts },
      { name: "tokens", kind: "int32list", data: toks },
      { name: "input_ids", kind: "int64list", data: toks },
    ], { rowGroupSize: 64, codec });
    const path = await tempFile(bytes, ".parquet");
    using pq = await ParquetFile.open(path);
    assertEquals(pq.rowGroupRows, [64, 64, 64, 58]);
    assertEquals(pq.numRows, 250);
    assertEquals(pq.columns, ["text", "tokens", "input_ids"]);
    for (const start of [0, 1, 63, 64, 65, 200, 249, 250]) {
      const got = await collect(pq.rows("text", start));
      assertEquals(got, texts.slice(start), `${codec} text from ${start}`);
    }
    const t32 = await collect(pq.rows("tokens", 100));
    assertEquals(t32, toks.slice(100), `${codec} int32 lists`);
    const t64 = await collect(pq.rows("input_ids", 190));
    assertEquals(t64, toks.slice(190).map((r) => r.map((x) => BigInt(x))), `${codec} int64`);
    pq.close();
    await Deno.remove(path);
  }
});

test("ParquetFile: row groups before the start row are skipped unread", async () => {
  const texts = sampleTexts(300, 8);
  const bytes = parquetBytes([{ name: "text", kind: "string", data: texts }], {
    rowGroupSize: 100,
    codec: "UNCOMPRESSED",
  });
  const path = await tempFile(bytes, ".parquet");
  let meta;
  {
    using pq = await ParquetFile.open(path);
    meta = pq.metadata.row_groups[0].columns[0].meta_data!;
  }
  // Destroy row group 0's column chunk (pages and all).
  const start = Number(meta.dictionary_page_offset ?? meta.data_page_offset);
  bytes.fill(0xff, start, start + Number(meta.total_compressed_size));
  await Deno.writeFile(path, bytes);
  using pq = await ParquetFile.open(path);
  assertEquals(await collect(pq.rows("text", 100)), texts.slice(100));
  assertEquals(await collect(pq.rows("text", 250)), texts.slice(250));
  const err = await assertRejects(() => collect(pq.rows("text", 0)), DatasetError);
  assert(err.message.includes("corrupt"), err.message);
  pq.close();
  await Deno.remove(path);
});

test("ParquetFile: truncated, garbage and tiny files; bad ranges and columns", async () => {
  const bytes = parquetBytes([{ name: "text", kind: "string", data: sampleTexts(50, 9) }]);
  const cases: [Uint8Array, string][] = [
    [bytes.slice(0, bytes.length - 10), "corrupt or truncated"],
    [bytes.slice(0, Math.floor(bytes.length / 2)), "corrupt or truncated"],
    [enc.encode("PAR1 this is not a parquet file at all PAR1"), "corrupt or truncated"],
    [enc.encode("PAR1"), "too short"],
  ];
  for (const [data, want] of cases) {
    const path = await tempFile(data, ".parquet");
    const err = await assertRejects(() => ParquetFile.open(path, "shard.parquet"), DatasetError);
    assert(err.message.includes("shard.parquet") && err.message.includes(want), err.message);
    await Deno.remove(path);
  }
  const path = await tempFile(bytes, ".parquet");
  using pq = await ParquetFile.open(path);
  await assertRejects(() => pq.readRange("text", 10, 51), DatasetError);
  await assertRejects(() => pq.readRange("nope", 0, 1), DatasetError);
  await assertRejects(() => collect(pq.rows("text", 51)), DatasetError);
  pq.close();
  await Deno.remove(path);
});
