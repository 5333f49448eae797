import {
  DatasetError,
  type DocumentBatch,
  openDataset,
  source,
  type SourceCursor,
  type SourceDocument,
  type SourceOptions,
  trustRemoteCodeWarning,
} from "../../stages/source.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { closedPort, type MockFileData, startMockHub } from "../hub/mock_hub.ts";
import {
  gzip,
  jsonl,
  parquetBytes,
  sampleTexts,
  sampleTokens,
  zstd,
} from "../io/dataset_fixtures.ts";

/** Source tests run with the op/resource sanitizers: no leaked files, fetches or timers. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

function key(d: SourceDocument): string {
  return "text" in d ? `T:${d.text}` : `K:${Array.from(d.tokens).join(",")}`;
}

async function readBatches(
  opts: SourceOptions,
  maxBatches = Infinity,
): Promise<DocumentBatch[]> {
  const out: DocumentBatch[] = [];
  const reader = source(opts).getReader();
  try {
    while (out.length < maxBatches) {
      const r = await reader.read();
      if (r.done) break;
      out.push(r.value);
    }
  } finally {
    await reader.cancel();
  }
  return out;
}

async function readDocs(opts: SourceOptions, maxBatches = Infinity): Promise<string[]> {
  return (await readBatches(opts, maxBatches)).flatMap((b) => b.docs.map(key));
}

/** The first `n` documents from `opts` (batches end at shard ends, so count documents). */
async function readNDocs(opts: SourceOptions, n: number): Promise<string[]> {
  const out: string[] = [];
  const reader = source(opts).getReader();
  try {
    while (out.length < n) {
      const r = await reader.read();
      if (r.done) break;
      out.push(...r.value.docs.map(key));
    }
  } finally {
    await reader.cancel();
  }
  return out.slice(0, n);
}

/** Reads until the stream errors; returns the docs read before and the error. */
async function readUntilError(opts: SourceOptions): Promise<{ docs: string[]; error: Error }> {
  const docs: string[] = [];
  try {
    for await (const b of source(opts)) docs.push(...b.docs.map(key));
  } catch (error) {
    return { docs, error: error as Error };
  }
  throw new Error("expected the stream to error");
}

async function writeFiles(dir: string, files: Record<string, MockFileData>): Promise<void> {
  for (const [name, data] of Object.entries(files)) {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof data === "string") await Deno.writeTextFile(path, data);
    else await Deno.writeFile(path, data);
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_source_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const T = (xs: string[]) => xs.map((t) => `T:${t}`);
const K = (xs: number[][]) => xs.map((t) => `K:${t.join(",")}`);

// --- formats --------------------------------------------------------------------------------

test("every format of a local file yields its documents in order", async () => {
  await withDir(async (dir) => {
    const texts = sampleTexts(150, 11);
    const toks = sampleTokens(150, 12, 12);
    await writeFiles(dir, {
      "a.txt": texts.join("\n") + "\n",
      "a.jsonl": jsonl("text", texts),
      "arr.json": JSON.stringify(texts.map((text) => ({ text }))),
      "a.jsonl.zst": zstd(jsonl("text", texts)),
      "a.jsonl.gz": gzip(jsonl("text", texts)),
      "a.txt.zst": zstd(texts.join("\n")),
      "t.parquet": parquetBytes([{ name: "text", kind: "string", data: texts }], {
        rowGroupSize: 40,
      }),
      "k.parquet": parquetBytes([
        { name: "id", kind: "int64", data: toks.map((_, i) => i) },
        { name: "input_ids", kind: "int64list", data: toks },
      ], { rowGroupSize: 33, codec: "ZSTD" }),
      "k.jsonl": jsonl("tokens", toks),
    });
    for (const f of ["a.txt", "a.jsonl", "arr.json", "a.jsonl.zst", "a.jsonl.gz", "a.txt.zst"]) {
      const got = await readDocs({ datasetPath: `${dir}/${f}`, batchSize: 16, repeat: false });
      assertEquals(got, T(texts), f);
    }
    assertEquals(
      await readDocs({ datasetPath: `${dir}/t.parquet`, batchSize: 7, repeat: false }),
      T(texts),
    );
    for (const f of ["k.parquet", "k.jsonl"]) {
      const batches = await readBatches({ datasetPath: `${dir}/${f}`, repeat: false });
      assertEquals(batches.map((b) => b.docs.length), [64, 64, 22], f);
      assert(batches[0].docs.every((d) => "tokens" in d && d.tokens instanceof Int32Array));
      assertEquals(batches.flatMap((b) => b.docs.map(key)), K(toks), f);
      assertEquals(batches[2].start, { epoch: 0, shard: 0, row: 128 });
      assertEquals(batches[2].cursor, { epoch: 0, shard: 0, row: 150 });
    }
  });
});

test("textSampleBy: paragraph and document rows of .txt files", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, { "a.txt": "p1 l1\np1 l2\n\np2\r\n\r\n\r\np3\n" });
    const p = `${dir}/a.txt`;
    assertEquals(
      await readDocs({ datasetPath: p, repeat: false }),
      T(["p1 l1", "p1 l2", "", "p2", "", "", "p3"]),
    );
    assertEquals(
      await readDocs({ datasetPath: p, repeat: false, textSampleBy: "paragraph" }),
      T(["p1 l1\np1 l2", "p2", "\np3\n"]),
    );
    assertEquals(
      await readDocs({ datasetPath: p, repeat: false, textSampleBy: "document" }),
      T(["p1 l1\np1 l2\n\np2\n\n\np3\n"]),
    );
  });
});

test("repeat: epochs restart at shard 0; a batch never spans shards or epochs", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, { "d/a.txt": "a0\na1\na2\n", "d/b.txt": "b0\nb1\n" });
    const batches = await readBatches({ datasetPath: `${dir}/d`, batchSize: 2 }, 5);
    assertEquals(batches.map((b) => b.docs.map(key).join(" ")), [
      "T:a0 T:a1",
      "T:a2",
      "T:b0 T:b1",
      "T:a0 T:a1",
      "T:a2",
    ]);
    assertEquals(batches.map((b) => b.start), [
      { epoch: 0, shard: 0, row: 0 },
      { epoch: 0, shard: 0, row: 2 },
      { epoch: 0, shard: 1, row: 0 },
      { epoch: 1, shard: 0, row: 0 },
      { epoch: 1, shard: 0, row: 2 },
    ]);
    assertEquals(batches.map((b) => b.cursor), [
      { epoch: 0, shard: 0, row: 2 },
      { epoch: 0, shard: 0, row: 3 },
      { epoch: 0, shard: 1, row: 2 },
      { epoch: 1, shard: 0, row: 2 },
      { epoch: 1, shard: 0, row: 3 },
    ]);
  });
});

// --- resume ---------------------------------------------------------------------------------

/**
 * Checks resume on a dataset: for every (shard, row) position of epochs 0 and 1 and for every
 * batch cursor of an uninterrupted read, reading from that cursor gives exactly the rest of the
 * uninterrupted stream.
 */
async function checkResume(datasetPath: string, shardRows: number[], batchSize: number) {
  const perEpoch = shardRows.reduce((a, b) => a + b, 0);
  const epochs = 3;
  const total = perEpoch * epochs;
  const perEpochBatches = shardRows.reduce((a, r) => a + Math.ceil(r / batchSize), 0);
  const batches = await readBatches({ datasetPath, batchSize }, epochs * perEpochBatches + 1);
  const all = batches.flatMap((b) => b.docs.map(key));
  assert(all.length >= total, `read ${all.length} < ${total}`);
  // Every batch cursor.
  let consumed = 0;
  for (const b of batches.slice(0, -2)) {
    consumed += b.docs.length;
    const want = all.slice(consumed, consumed + 3 * batchSize);
    const got = await readNDocs({ datasetPath, batchSize, start: b.cursor }, 3 * batchSize);
    assert(want.length >= batchSize);
    assertEquals(got.slice(0, want.length), want, `from batch cursor ${JSON.stringify(b.cursor)}`);
  }
  // Every row position of the first two epochs (a cursor not taken at a batch boundary).
  let index = 0;
  for (let epoch = 0; epoch < 2; epoch++) {
    for (let shard = 0; shard < shardRows.length; shard++) {
      for (let row = 0; row <= shardRows[shard]; row++) {
        const start: SourceCursor = { epoch, shard, row };
        const at = index + row;
        const got = await readNDocs({ datasetPath, batchSize, start }, 2 * batchSize);
        assertEquals(got, all.slice(at, at + 2 * batchSize), JSON.stringify(start));
      }
      index += shardRows[shard];
    }
  }
  // The end-of-epoch form of a cursor.
  const got = await readNDocs(
    { datasetPath, batchSize, start: { epoch: 0, shard: shardRows.length, row: 0 } },
    batchSize,
  );
  assertEquals(got, all.slice(perEpoch, perEpoch + batchSize));
}

test("resume: JSONL shards (one empty) across shard boundaries and epochs", async () => {
  await withDir(async (dir) => {
    const texts = sampleTexts(23, 21);
    await writeFiles(dir, {
      "train-0.jsonl": jsonl("text", texts.slice(0, 9)),
      "train-1.jsonl": "",
      "train-2.jsonl.zst": zstd(jsonl("text", texts.slice(9, 10))),
      "train-3.jsonl": jsonl("text", texts.slice(10)),
      "test.jsonl": jsonl("text", ["not train"]),
    });
    await checkResume(dir, [9, 0, 1, 13], 5);
  });
});

test("resume: Parquet shards with several row groups, pretokenized", async () => {
  await withDir(async (dir) => {
    const toks = sampleTokens(31, 4, 22);
    const files: Record<string, Uint8Array> = {};
    const cuts = [0, 12, 13, 31];
    for (let s = 0; s < 3; s++) {
      files[`data/train-0000${s}-of-00003.parquet`] = parquetBytes(
        [{ name: "tokens", kind: "int32list", data: toks.slice(cuts[s], cuts[s + 1]) }],
        { rowGroupSize: 5 },
      );
    }
    await writeFiles(dir, files);
    await checkResume(dir, [12, 1, 18], 4);
  });
});

test("resume: text lines", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, { "a.txt": "1\n2\n\n3\n", "b.txt": "4\r\n5" });
    await checkResume(dir, [4, 2], 3);
  });
});

// --- columns --------------------------------------------------------------------------------

test("column detection follows SAELens: tokens > input_ids > text > problem", async () => {
  await withDir(async (dir) => {
    const row = (o: Record<string, unknown>) => JSON.stringify(o) + "\n";
    await writeFiles(dir, {
      "1.jsonl": row({ text: "t", input_ids: [1], tokens: [2] }),
      "2.jsonl": row({ text: "t", input_ids: [1] }),
      "3.jsonl": row({ problem: "p", text: "t" }),
      "4.jsonl": row({ problem: "p", answer: "a" }),
    });
    const want = [["tokens", "tokens"], ["input_ids", "tokens"], ["text", "text"], [
      "problem",
      "text",
    ]];
    for (let i = 0; i < 4; i++) {
      const info = await openDataset({ datasetPath: `${dir}/${i + 1}.jsonl` });
      assertEquals([info.column, info.kind], want[i]);
    }
    assertEquals(await readDocs({ datasetPath: `${dir}/1.jsonl`, repeat: false }), ["K:2"]);
    assertEquals(await readDocs({ datasetPath: `${dir}/4.jsonl`, repeat: false }), ["T:p"]);
  });
});

test("bad columns: unknown, disagreeing shards, missing in a row, wrong types, bad ids", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, {
      "unknown.jsonl": '{"content": "x", "meta": 1}\n',
      "mix/a.jsonl": jsonl("text", ["a", "b"]),
      "mix/b.jsonl": jsonl("tokens", [[1, 2]]),
      "missing.jsonl": '{"text": "a"}\n\n{"text": "b"}\n{"body": "c"}\n',
      "nontext.jsonl": '{"text": "a"}\n{"text": 5}\n',
      "neg.jsonl": '{"tokens": [1, 2]}\n{"tokens": [3, -1]}\n',
      "float.jsonl": '{"tokens": [1.5]}\n',
      "big.jsonl": '{"tokens": [2147483648]}\n',
      "str.jsonl": '{"tokens": "1 2 3"}\n',
      "pq.parquet": parquetBytes([{ name: "content", kind: "string", data: ["a"] }]),
    });
    const unknown = await assertRejects(
      () => openDataset({ datasetPath: `${dir}/unknown.jsonl` }),
      DatasetError,
    );
    assert(unknown.message.includes('["content","meta"]'), unknown.message);
    assert(unknown.message.includes('"tokens" or "input_ids"'), unknown.message);
    const pq = await assertRejects(
      () => openDataset({ datasetPath: `${dir}/pq.parquet` }),
      DatasetError,
    );
    assert(pq.message.includes('["content"]'), pq.message);

    const cases: [string, string[], string][] = [
      ["mix", T(["a", "b"]), "b.jsonl of local folder"],
      ["missing.jsonl", T(["a", "b"]), 'missing.jsonl:4 has no "text" field'],
      ["nontext.jsonl", T(["a"]), 'nontext.jsonl:2: the "text" value is a number'],
      ["neg.jsonl", K([[1, 2]]), "neg.jsonl:2: token 1 is -1"],
      ["float.jsonl", [], "token 0 is 1.5"],
      ["big.jsonl", [], "token 0 is 2147483648"],
      ["str.jsonl", [], "the tokens value is string"],
    ];
    for (const [f, before, want] of cases) {
      const { docs, error } = await readUntilError({
        datasetPath: `${dir}/${f}`,
        batchSize: 1,
        repeat: false,
      });
      assert(error instanceof DatasetError, `${f}: ${error}`);
      assert(error.message.includes(want), `${f}: ${error.message}`);
      assertEquals(docs, before, f);
    }
  });
});

// --- bad input ------------------------------------------------------------------------------

test("missing local files and folders, bad options and cursors are DatasetErrors", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, { "a.jsonl": jsonl("text", ["x", "y"]), "notes.md": "hi" });
    const cases: [SourceOptions, string][] = [
      [{ datasetPath: `${dir}/nope.jsonl` }, "no such file or folder"],
      [{ datasetPath: "./missing_folder" }, "no such file or folder"],
      [{ datasetPath: "data/missing.parquet" }, "no such file or folder"],
      [{ datasetPath: "" }, "dataset_path is empty"],
      [{ datasetPath: `${dir}/notes.md` }, "not a data file"],
      [{ datasetPath: `${dir}/a.jsonl`, split: "test" }, 'split "test"'],
      [{ datasetPath: dir, split: "validation" }, 'no split "validation"'],
      [{ datasetPath: `${dir}/a.jsonl`, batchSize: 0 }, "batchSize"],
      // deno-lint-ignore no-explicit-any
      [{ datasetPath: `${dir}/a.jsonl`, textSampleBy: "word" as any }, "textSampleBy"],
      [{ datasetPath: `${dir}/a.jsonl`, start: { epoch: 0, shard: 0, row: -1 } }, "cursor"],
      [{ datasetPath: `${dir}/a.jsonl`, start: { epoch: 0, shard: 2, row: 0 } }, "past the 1"],
      [{ datasetPath: `${dir}/a.jsonl`, start: { epoch: 0, shard: 0, row: 3 } }, "row 3 is past"],
    ];
    for (const [opts, want] of cases) {
      const { docs, error } = await readUntilError(opts);
      assert(error instanceof DatasetError, `${JSON.stringify(opts)}: ${error}`);
      assert(error.message.includes(want), `${want}: ${error.message}`);
      assertEquals(docs, []);
    }
  });
});

test("malformed JSONL, corrupt zst and truncated parquet mid-dataset: earlier docs, then the error", async () => {
  await withDir(async (dir) => {
    const z = zstd(jsonl("text", sampleTexts(400, 31)));
    const pq = parquetBytes([{ name: "text", kind: "string", data: ["p", "q"] }]);
    await writeFiles(dir, {
      "j/0.jsonl": jsonl("text", ["a", "b"]),
      "j/1.jsonl": '{"text": "c"}\n{"text": "d",}\n',
      "z/0.jsonl": jsonl("text", ["a"]),
      "z/1.jsonl.zst": z.slice(0, Math.floor(z.length * 0.6)),
      "p/0.parquet": parquetBytes([{ name: "text", kind: "string", data: ["a"] }]),
      "p/1.parquet": pq.slice(0, pq.length - 3),
    });
    const j = await readUntilError({ datasetPath: `${dir}/j`, batchSize: 1 });
    assertEquals(j.docs, T(["a", "b", "c"]));
    assert(j.error instanceof DatasetError && j.error.message.includes("1.jsonl of local folder"));
    assert(j.error.message.includes(":2: malformed JSON"), j.error.message);

    const zz = await readUntilError({ datasetPath: `${dir}/z`, batchSize: 1 });
    assertEquals(zz.docs[0], "T:a");
    assert(zz.error instanceof DatasetError && zz.error.message.includes("zstd"), zz.error.message);

    const p = await readUntilError({ datasetPath: `${dir}/p`, batchSize: 1 });
    assertEquals(p.docs, T(["a"]));
    assert(p.error instanceof DatasetError && p.error.message.includes("1.parquet"));
    assert(p.error.message.includes("corrupt or truncated"), p.error.message);
  });
});

test("streaming: the first batch arrives before a bad tail of a big shard is read", async () => {
  await withDir(async (dir) => {
    const texts = sampleTexts(20_000, 81);
    const z = zstd(jsonl("text", texts));
    const pq = parquetBytes([{ name: "text", kind: "string", data: texts }], {
      rowGroupSize: 1000,
      codec: "UNCOMPRESSED",
    });
    await writeFiles(dir, {
      // ~2.5 MB of good lines (several 1 MiB reads), then garbage.
      "bad-tail.jsonl": jsonl("text", texts) + "{ not json\n",
      "cut.jsonl.zst": z.slice(0, z.length - 100),
      "cut.parquet": pq, // its last row group is destroyed below
    });
    const opened = await openDataset({ datasetPath: `${dir}/cut.parquet` });
    assertEquals(opened.shards.length, 1);
    // Zero the bytes of the last row group's column chunk (the footer stays intact).
    const f = await Deno.open(`${dir}/cut.parquet`, { read: true, write: true });
    try {
      const { ParquetFile } = await import("../../io/parquet.ts");
      using p = await ParquetFile.open(`${dir}/cut.parquet`);
      const meta = p.metadata.row_groups.at(-1)!.columns[0].meta_data!;
      const at = Number(meta.dictionary_page_offset ?? meta.data_page_offset);
      await f.seek(at, Deno.SeekMode.Start);
      await f.write(new Uint8Array(Number(meta.total_compressed_size)).fill(0xff));
    } finally {
      f.close();
    }
    for (const name of ["bad-tail.jsonl", "cut.jsonl.zst", "cut.parquet"]) {
      const first = await readDocs({ datasetPath: `${dir}/${name}`, batchSize: 100 }, 1);
      assertEquals(first, T(texts.slice(0, 100)), name);
      const { docs, error } = await readUntilError({
        datasetPath: `${dir}/${name}`,
        batchSize: 1000,
      });
      assert(error instanceof DatasetError, `${name}: ${error}`);
      assert(docs.length >= 1000 && docs.length <= texts.length, `${name}: ${docs.length}`);
      assertEquals(docs, T(texts.slice(0, docs.length)), name);
    }
  });
});

test("an empty dataset is refused", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, {
      "e/a.jsonl": "\n\n",
      "e/b.txt": "",
      "e/c.jsonl": "",
      "pq/a.parquet": parquetBytes([{ name: "text", kind: "string", data: [] }]),
    });
    for (const p of ["e", "e/b.txt", "pq"]) {
      const err = await assertRejects(
        () => openDataset({ datasetPath: `${dir}/${p}` }),
        DatasetError,
      );
      assert(err.message.includes("is empty"), err.message);
    }
    // Empty shards before the first row are fine: the first row decides.
    await writeFiles(dir, { "e/d.jsonl": jsonl("input_ids", [[7, 8]]) });
    const info = await openDataset({ datasetPath: `${dir}/e` });
    assertEquals([info.column, info.firstRowLength, info.ignoredFiles], ["input_ids", 2, [
      "b.txt",
    ]]);
  });
});

// --- signals, cancel, workers ---------------------------------------------------------------

test("abort signal errors the stream with its reason; cancel closes the open file", async () => {
  await withDir(async (dir) => {
    await writeFiles(dir, { "a.txt": sampleTexts(5000, 41).join("\n") });
    const ctl = new AbortController();
    const reader = source({ datasetPath: `${dir}/a.txt`, batchSize: 10, signal: ctl.signal })
      .getReader();
    assertEquals((await reader.read()).value?.docs.length, 10);
    ctl.abort(new Error("stop now"));
    const err = await assertRejects(async () => {
      while (!(await reader.read()).done) { /* until the abort is seen */ }
    });
    assertEquals(err.message, "stop now");
    // Cancel mid-file (the sanitizer fails the test if the file stays open).
    const r2 = source({ datasetPath: `${dir}/a.txt`, batchSize: 10 }).getReader();
    await r2.read();
    await r2.cancel();
  });
});

test("the stage runs inside a Web Worker", async () => {
  await withDir(async (dir) => {
    const toks = sampleTokens(40, 6, 51);
    await writeFiles(dir, {
      "k.parquet": parquetBytes([{ name: "tokens", kind: "int64list", data: toks }], {
        rowGroupSize: 16,
      }),
    });
    const worker = new Worker(new URL("./source_worker.ts", import.meta.url).href, {
      type: "module",
    });
    try {
      const got: string[] = [];
      await new Promise<void>((resolve, reject) => {
        worker.onmessage = (e) => {
          if (e.data === "done") resolve();
          else if (e.data.error) reject(new Error(e.data.error));
          else got.push(...(e.data as DocumentBatch).docs.map(key));
        };
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
        worker.postMessage({ datasetPath: `${dir}/k.parquet`, batchSize: 9, repeat: false });
      });
      assertEquals(got, K(toks));
    } finally {
      worker.terminate();
    }
  });
});

Deno.test("trustRemoteCodeWarning: only when set to true", () => {
  const w = trustRemoteCodeWarning(true);
  assert(w !== undefined && w.includes("dataset_trust_remote_code") && w.includes("no effect"));
  assertEquals(trustRemoteCodeWarning(false), undefined);
  assertEquals(trustRemoteCodeWarning(null), undefined);
  assertEquals(trustRemoteCodeWarning(undefined), undefined);
});

// --- Hugging Face dataset repos (mock hub) --------------------------------------------------

function shardedRepo(texts: string[], nShards: number): Record<string, MockFileData> {
  const files: Record<string, MockFileData> = {
    "README.md": "---\nlicense: mit\n---\n# test dataset\n",
    ".gitattributes": "*.parquet filter=lfs\n",
    "data/test-00000-of-00001.parquet": parquetBytes([
      { name: "text", kind: "string", data: ["held out"] },
    ]),
  };
  const per = Math.ceil(texts.length / nShards);
  for (let s = 0; s < nShards; s++) {
    const name = `data/train-${String(s).padStart(5, "0")}-of-${String(nShards).padStart(5, "0")}`;
    files[`${name}.parquet`] = parquetBytes(
      [{ name: "text", kind: "string", data: texts.slice(s * per, (s + 1) * per) }],
      { rowGroupSize: 8 },
    );
  }
  return files;
}

/** Full downloads of a file (the Range probes of its size/ETag are not counted). */
const resolveGets = (hub: { count: (f: object) => number }, path: string) =>
  hub.count({ route: "resolve", method: "GET", path, range: false });

test("hub dataset repo: split files, lazy shard downloads, pinned commit, cached resume", async () => {
  const texts = sampleTexts(90, 61);
  await using hub = await startMockHub({
    "org/corpus": { type: "dataset", files: shardedRepo(texts, 3) },
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const opts = { datasetPath: "org/corpus", hub: hub.options(cacheDir), batchSize: 10 };
    const info = await openDataset(opts);
    assertEquals(info.origin, "hub");
    assertEquals(info.commit, hub.commitOf("org/corpus", "main", "dataset"));
    assertEquals(info.shards.map((s) => s.name), [
      "data/train-00000-of-00003.parquet",
      "data/train-00001-of-00003.parquet",
      "data/train-00002-of-00003.parquet",
    ]);
    assertEquals(info.splits, { train: 3, test: 1 });
    assertEquals([info.kind, info.column], ["text", "text"]);
    // Opening downloads the first shard only.
    assertEquals(resolveGets(hub, info.shards[0].name), 1);
    assertEquals(resolveGets(hub, info.shards[2].name), 0);

    // One batch: shard 0 read, shard 1 at most prefetched, shard 2 untouched.
    const first = await readBatches({ ...opts, dataset: info }, 1);
    assertEquals(first[0].docs.map(key), T(texts.slice(0, 10)));
    assertEquals(resolveGets(hub, info.shards[0].name), 1); // cached: not downloaded again
    assertEquals(resolveGets(hub, info.shards[2].name), 0);

    // A full epoch in order, each shard downloaded once.
    const epoch = await readDocs({ ...opts, repeat: false });
    assertEquals(epoch, T(texts));
    for (const s of info.shards) assertEquals(resolveGets(hub, s.name), 1, s.name);
    assertEquals(resolveGets(hub, "data/test-00000-of-00001.parquet"), 0);

    // The test split.
    assertEquals(await readDocs({ ...opts, split: "test", repeat: false }), T(["held out"]));

    // A resumed run (new stream, same cache) in shard 2 downloads nothing; offline too.
    const before = hub.count({ route: "resolve" });
    const start = { epoch: 0, shard: 2, row: 5 };
    assertEquals(await readDocs({ ...opts, start }, 1), T(texts.slice(65, 75)));
    assertEquals(
      await readDocs({ ...opts, start, hub: { ...hub.options(cacheDir), offline: true } }, 1),
      T(texts.slice(65, 75)),
    );
    assertEquals(hub.count({ route: "resolve" }), before, "no download, no probe");
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

test("hub: missing repo, split with no data files, unreachable hub", async () => {
  await using hub = await startMockHub({
    "org/docs-only": {
      type: "dataset",
      files: { "README.md": "# nothing here\n", "LICENSE": "MIT" },
    },
    "org/no-val": { type: "dataset", files: { "train.jsonl": jsonl("text", ["a"]) } },
    "org/model": { files: { "config.json": "{}" } },
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const o = hub.options(cacheDir);
    const missing = await assertRejects(
      () => openDataset({ datasetPath: "org/missing", hub: o }),
      DatasetError,
    );
    assert(missing.message.includes("not a local file or folder"), missing.message);
    assert(missing.message.includes("no dataset repo org/missing"), missing.message);
    // A model repo of that name is not a dataset repo.
    await assertRejects(() => openDataset({ datasetPath: "org/model", hub: o }), DatasetError);

    const docs = await assertRejects(
      () => openDataset({ datasetPath: "org/docs-only", hub: o }),
      DatasetError,
    );
    assert(docs.message.includes("no data file saeflow can read"), docs.message);
    assert(docs.message.includes("LICENSE"), docs.message);

    const split = await assertRejects(
      () => openDataset({ datasetPath: "org/no-val", hub: o, split: "validation" }),
      DatasetError,
    );
    assert(split.message.includes('no split "validation"'), split.message);
    assert(split.message.includes('["train"]'), split.message);

    const down = await assertRejects(
      () =>
        openDataset({
          datasetPath: "org/no-val",
          hub: { ...o, endpoint: `http://127.0.0.1:${closedPort()}` },
        }),
      DatasetError,
    );
    assert(down.message.includes("org/no-val"), down.message);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

test("hub: an interrupted download mid-dataset errors after the earlier shards; resume works", async () => {
  const texts = sampleTexts(60, 71);
  const files: Record<string, MockFileData> = {};
  for (let s = 0; s < 3; s++) {
    files[`shard-${s}.jsonl.zst`] = zstd(jsonl("text", texts.slice(20 * s, 20 * s + 20)));
  }
  const cacheDir = await Deno.makeTempDir();
  try {
    let cursor: SourceCursor | undefined;
    const got: string[] = [];
    {
      await using hub = await startMockHub({ "org/c": { type: "dataset", files } });
      hub.breakFile("org/c", "shard-2.jsonl.zst", "dataset");
      const opts = { datasetPath: "org/c", hub: hub.options(cacheDir), batchSize: 10 };
      const err = await assertRejects(async () => {
        for await (const b of source(opts)) {
          got.push(...b.docs.map(key));
          cursor = b.cursor;
        }
      }, DatasetError);
      assert(err.message.includes("shard 3 of 3 (shard-2.jsonl.zst)"), err.message);
      assert(err.message.includes("interrupted"), err.message);
      assertEquals(got, T(texts.slice(0, 40)));
    }
    // The hub is back: resume from the last cursor; shards 0-1 come from the cache.
    await using hub2 = await startMockHub({ "org/c": { type: "dataset", files } });
    const rest = await readDocs({
      datasetPath: "org/c",
      hub: hub2.options(cacheDir),
      batchSize: 10,
      start: cursor,
      repeat: false,
    });
    assertEquals(rest, T(texts.slice(40)));
    assertEquals(resolveGets(hub2, "shard-0.jsonl.zst"), 0);
    assertEquals(resolveGets(hub2, "shard-1.jsonl.zst"), 0);
    // Only the broken shard is fetched again (the hub may resume its partial blob by Range).
    assert(hub2.count({ route: "resolve", method: "GET", path: "shard-2.jsonl.zst" }) >= 1);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});
