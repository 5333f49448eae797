/**
 * Hugging Face `save_to_disk` folders and Arrow IPC stream files: fixtures built the way
 * `datasets` writes them (from its source: `Array2D` stored as `list<list<float32>>` with the
 * `Array2DExtensionType` field metadata, `Sequence(int32, length=T)` as `fixed_size_list`, the
 * `huggingface` schema metadata, `dataset_info.json` / `state.json` as Python's `json.dump`
 * writes them), built here with apache-arrow's generic builders — not with saeflow's writer —
 * and the writer's files read back by apache-arrow's own reader. Plus hostile files.
 */

import {
  Field,
  FixedSizeList,
  Float16,
  Float32,
  Int32,
  Int64,
  List,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from "apache-arrow";
import { ArrowStreamFile, ArrowStreamWriter } from "../../io/arrow_ipc.ts";
import { DatasetError } from "../../io/dataset_error.ts";
import {
  ARRAY2D_EXTENSION,
  arrowColumnFor,
  datasetInfoJson,
  datasetStateJson,
  type HfFeature,
  hfSchemaMetadata,
  openHfDataset,
} from "../../io/hf_dataset.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const HOOK = "blocks.0.hook_resid_pre";

/** Value of row r, position t, dim k (distinct, exactly representable). */
const val = (r: number, t: number, k: number) => r * 100 + t * 10 + k + 0.25;

/** Nested JS rows for `rows` rows of [T, d] starting at row `r0`. */
function nestedRows(r0: number, rows: number, T: number, d: number): number[][][] {
  return Array.from(
    { length: rows },
    (_, r) =>
      Array.from({ length: T }, (_, t) => Array.from({ length: d }, (_, k) => val(r0 + r, t, k))),
  );
}

/** A record batch as `datasets` stores an activation cache: Array2D + Sequence(int32, T). */
function pyarrowLikeBatch(schema: Schema, r0: number, rows: number, T: number, d: number) {
  const acts = vectorFromArray(nestedRows(r0, rows, T, d), schema.fields[0].type);
  const big = !(schema.fields[1].type instanceof FixedSizeList);
  const tok = (r: number, t: number) => 1000 + (r0 + r) * T + t;
  const toks = vectorFromArray(
    Array.from(
      { length: rows },
      (_, r) => Array.from({ length: T }, (_, t) => big ? BigInt(tok(r, t)) : tok(r, t)),
    ),
    schema.fields[1].type,
  );
  return new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length: rows,
      nullCount: 0,
      children: [acts.data[0], toks.data[0]],
    }),
  );
}

function pyarrowLikeSchema(T: number, d: number, tokenType: "fixed" | "list64" = "fixed") {
  const features = `{"info": {"features": {"${HOOK}": {"shape": [${T}, ${d}], "dtype": ` +
    `"float32", "_type": "Array2D"}, "token_ids": {"feature": {"dtype": "int32", "_type": ` +
    `"Value"}, "length": ${T}, "_type": "List"}}}}`;
  return new Schema(
    [
      new Field(
        HOOK,
        new List(new Field("item", new List(new Field("item", new Float32(), true)), true)),
        true,
        new Map([
          ["ARROW:extension:name", ARRAY2D_EXTENSION],
          ["ARROW:extension:metadata", `[[${T}, ${d}], "float32"]`],
        ]),
      ),
      new Field(
        "token_ids",
        tokenType === "fixed"
          ? new FixedSizeList(T, new Field("item", new Int32(), true))
          : new List(new Field("item", new Int64(), true)),
        true,
      ),
    ],
    new Map([["huggingface", features]]),
  );
}

/** Python's json.dump(…, indent=2) output for a cache's dataset_info.json (datasets 4 "List"). */
function pythonDatasetInfo(T: number, d: number): string {
  return `{
  "citation": "",
  "description": "",
  "features": {
    "${HOOK}": {
      "shape": [
        ${T},
        ${d}
      ],
      "dtype": "float32",
      "_type": "Array2D"
    },
    "token_ids": {
      "feature": {
        "dtype": "int32",
        "_type": "Value"
      },
      "length": ${T},
      "_type": "List"
    }
  },
  "homepage": "",
  "license": ""
}`;
}

function pythonState(files: string[]): string {
  return `{
  "_data_files": [
${files.map((f) => `    {\n      "filename": "${f}"\n    }`).join(",\n")}
  ],
  "_fingerprint": "a3c1b2d4e5f60718",
  "_format_columns": null,
  "_format_kwargs": {},
  "_format_type": null,
  "_output_all_columns": false,
  "_split": null
}`;
}

/** A folder laid out as datasets' save_to_disk writes a cache: 2 files, uneven record batches. */
async function pyarrowLikeFolder(T: number, d: number, tokenType: "fixed" | "list64" = "fixed") {
  const dir = await Deno.makeTempDir();
  const schema = pyarrowLikeSchema(T, d, tokenType);
  const files = ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"];
  // File 0: rows 0..4 in batches of 3 and 2; file 1: rows 5..11 in one batch.
  const t0 = new Table(schema, [
    pyarrowLikeBatch(schema, 0, 3, T, d),
    pyarrowLikeBatch(schema, 3, 2, T, d),
  ]);
  const t1 = new Table(schema, [pyarrowLikeBatch(schema, 5, 7, T, d)]);
  await Deno.writeFile(`${dir}/${files[0]}`, tableToIPC(t0, "stream"));
  await Deno.writeFile(`${dir}/${files[1]}`, tableToIPC(t1, "stream"));
  await Deno.writeTextFile(`${dir}/dataset_info.json`, pythonDatasetInfo(T, d));
  await Deno.writeTextFile(`${dir}/state.json`, pythonState(files));
  return { dir, files, rows: 12 };
}

Deno.test("hf dataset: a datasets-style cache folder reads by row ranges across batches and files", async () => {
  const T = 4, d = 3;
  const { dir, rows } = await pyarrowLikeFolder(T, d);
  try {
    using ds = await openHfDataset(dir);
    assertEquals(ds.numRows, rows);
    assertEquals(ds.fileStarts, [0, 5, 12]);
    assertEquals(ds.fingerprint, "a3c1b2d4e5f60718");
    const f = ds.features.get(HOOK)!;
    assertEquals(f, { type: "Array2D", shape: [4, 3], dtype: "float32" });
    assertEquals(ds.features.get("token_ids"), {
      type: "List",
      feature: { type: "Value", dtype: "int32" },
      length: 4,
    });
    // Rows 2..9: spans both batches of file 0 and file 1.
    const acts = await ds.readArray2D(HOOK, 2, 8);
    const want = Float32Array.from(nestedRows(2, 8, T, d).flat(2));
    assertEquals(acts, want);
    const toks = await ds.readIntList("token_ids", 4, 3);
    assertEquals(toks, Int32Array.from({ length: 12 }, (_, i) => 1000 + 16 + i));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hf dataset: variable list<int64> token ids and float16 Array2D values are read", async () => {
  const T = 3, d = 2;
  const { dir } = await pyarrowLikeFolder(T, d, "list64");
  try {
    using ds = await openHfDataset(dir);
    assertEquals(
      await ds.readIntList("token_ids", 5, 2),
      Int32Array.of(1015, 1016, 1017, 1018, 1019, 1020),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const path = await Deno.makeTempFile({ suffix: ".arrow" });
  try {
    const type = new List(
      new Field("item", new List(new Field("item", new Float16(), true)), true),
    );
    const schema = new Schema([new Field("a", type, true)]);
    const rows = [[[0.5, -2], [1.5, 3]], [[4, 0.25], [-1, 8]]];
    const v = vectorFromArray(rows, type);
    const b = new RecordBatch(
      schema,
      makeData({ type: new Struct(schema.fields), length: 2, nullCount: 0, children: [v.data[0]] }),
    );
    await Deno.writeFile(path, tableToIPC(new Table(schema, [b]), "stream"));
    using f = await ArrowStreamFile.open(path);
    assertEquals(await f.readArray2D("a", 0, 2, [2, 2]), Float32Array.from(rows.flat(2)));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("hf dataset: legacy (pre-0.15) stream framing is read", async () => {
  const T = 2, d = 2;
  const schema = pyarrowLikeSchema(T, d);
  const w = new RecordBatchStreamWriter({ writeLegacyIpcFormat: true });
  w.reset(undefined, schema);
  w.write(pyarrowLikeBatch(schema, 0, 3, T, d));
  w.finish();
  const bytes = w.toUint8Array(true);
  assert(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) !== 0xffffffff);
  const path = await Deno.makeTempFile({ suffix: ".arrow" });
  try {
    await Deno.writeFile(path, bytes);
    using f = await ArrowStreamFile.open(path);
    assertEquals(f.numRows, 3);
    assertEquals(
      await f.readArray2D(HOOK, 1, 2, [T, d]),
      Float32Array.from(nestedRows(1, 2, T, d).flat(2)),
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("hf dataset: saeflow's writer output reads back through apache-arrow's own reader", async () => {
  const T = 5, d = 3;
  const features = new Map<string, HfFeature>([
    [HOOK, { type: "Array2D", shape: [T, d], dtype: "float32" }],
    ["token_ids", { type: "List", feature: { type: "Value", dtype: "int32" }, length: T }],
  ]);
  const path = await Deno.makeTempFile({ suffix: ".arrow" });
  try {
    const w = await ArrowStreamWriter.create(
      path,
      [...features].map(([k, f]) => arrowColumnFor(k, f)),
      hfSchemaMetadata(features),
    );
    await w.write(2, {
      [HOOK]: Float32Array.from(nestedRows(0, 2, T, d).flat(2)),
      token_ids: Int32Array.from({ length: 2 * T }, (_, i) => i),
    });
    await w.write(1, {
      [HOOK]: Float32Array.from(nestedRows(2, 1, T, d).flat(2)),
      token_ids: Int32Array.from({ length: T }, (_, i) => 2 * T + i),
    });
    const size = await w.close();
    const bytes = await Deno.readFile(path);
    assertEquals(size, bytes.length);
    // End-of-stream marker, as pyarrow writes it.
    assertEquals([...bytes.subarray(-8)], [255, 255, 255, 255, 0, 0, 0, 0]);
    const table = tableFromIPC(bytes);
    assertEquals(table.numRows, 3);
    assertEquals(table.batches.length, 2);
    const [a, t] = table.schema.fields;
    assertEquals(a.name, HOOK);
    assertEquals(String(a.type), "List<List<Float32>>");
    assertEquals(a.metadata.get("ARROW:extension:name"), ARRAY2D_EXTENSION);
    assertEquals(a.metadata.get("ARROW:extension:metadata"), `[[${T}, ${d}], "float32"]`);
    assertEquals(String(t.type), `FixedSizeList[${T}]<Int32>`);
    const hf = JSON.parse(table.schema.metadata.get("huggingface")!);
    assertEquals(hf.info.features.token_ids, {
      feature: { dtype: "int32", _type: "Value" },
      length: T,
      _type: "Sequence",
    });
    assertEquals(hf.info.features[HOOK], { shape: [T, d], dtype: "float32", _type: "Array2D" });
    const row2 = table.get(2)!.toJSON();
    assertEquals(
      [...row2[HOOK]].map((r: Iterable<number>) => [...r]),
      nestedRows(2, 1, T, d)[0],
    );
    assertEquals([...row2.token_ids], [10, 11, 12, 13, 14]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("hf dataset: dataset_info.json and state.json text is what Python's json.dump writes", () => {
  const features = new Map<string, HfFeature>([
    [HOOK, { type: "Array2D", shape: [4, 3], dtype: "float32" }],
    ["token_ids", { type: "List", feature: { type: "Value", dtype: "int32" }, length: 4 }],
  ]);
  assertEquals(
    datasetInfoJson(features),
    pythonDatasetInfo(4, 3).replace('"_type": "List"', '"_type": "Sequence"'),
  );
  const files = ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"];
  assertEquals(datasetStateJson(files, "a3c1b2d4e5f60718"), pythonState(files));
});

async function expectBad(
  mutate: (dir: string, files: string[]) => Promise<void>,
  includes: RegExp,
  read = false,
): Promise<void> {
  const { dir, files } = await pyarrowLikeFolder(4, 3);
  try {
    await mutate(dir, files);
    await assertRejects(
      async () => {
        using ds = await openHfDataset(dir);
        if (read) await ds.readArray2D(HOOK, 0, ds.numRows);
      },
      DatasetError,
      includes,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("hf dataset: truncated data files are refused, naming the file", async () => {
  const full = await pyarrowLikeFolder(4, 3);
  const bytes = await Deno.readFile(`${full.dir}/${full.files[1]}`);
  await Deno.remove(full.dir, { recursive: true });
  // Cut: inside the schema, inside a record batch body, just before the end-of-stream marker.
  for (const cut of [20, Math.floor(bytes.length / 2), bytes.length - 8, bytes.length - 3]) {
    await expectBad(
      (dir, files) => Deno.writeFile(`${dir}/${files[1]}`, bytes.subarray(0, cut)),
      new RegExp(`data-00001-of-00002\\.arrow.*truncated|truncated.*data-00001`),
    );
  }
});

Deno.test("hf dataset: missing files, bad names, bad JSON, garbage and wrong shapes are refused", async () => {
  await expectBad((dir) => Deno.remove(`${dir}/state.json`), /has no state\.json/);
  await expectBad((dir) => Deno.remove(`${dir}/dataset_info.json`), /has no dataset_info\.json/);
  await expectBad((dir, f) => Deno.remove(`${dir}/${f[0]}`), /cannot open .*data-00000-of-00002/);
  await expectBad(
    (dir) => Deno.writeTextFile(`${dir}/state.json`, pythonState(["../evil.arrow"])),
    /no paths/,
  );
  await expectBad((dir) => Deno.writeTextFile(`${dir}/state.json`, "{"), /not valid JSON/);
  await expectBad(
    (dir, f) => Deno.writeFile(`${dir}/${f[0]}`, new TextEncoder().encode("PAR1 not arrow at all")),
    /not an Arrow IPC stream/,
  );
  await expectBad(
    (dir) =>
      Deno.writeTextFile(
        `${dir}/dataset_info.json`,
        pythonDatasetInfo(4, 3).replace('"token_ids"', '"input_ids"'),
      ),
    /no column\(s\) \["input_ids"\]/,
  );
  // The features say [4, 2] per row; the file holds [4, 3]: refused when read.
  await expectBad(
    (dir) =>
      Deno.writeTextFile(
        `${dir}/dataset_info.json`,
        pythonDatasetInfo(4, 3).replace("        3\n", "        2\n"),
      ),
    /position 0 has 3 values, expected 2/,
    true,
  );
});

Deno.test("hf dataset: a row of the wrong length or with nulls is refused", async () => {
  const T = 2, d = 2;
  const type = new List(new Field("item", new List(new Field("item", new Float32(), true)), true));
  const schema = new Schema([new Field("a", type, true)]);
  for (
    const [rows, includes] of [
      [[[[1, 2], [3, 4]], [[5, 6]]], /row 1 has 1 entries, expected 2/],
      [[[[1, 2], [3, 4]], null], /null values/],
      [[[[1, 2], [3, null]]], /null values/],
    ] as const
  ) {
    const v = vectorFromArray(rows as unknown as number[][][], type);
    const b = new RecordBatch(
      schema,
      makeData({
        type: new Struct(schema.fields),
        length: rows.length,
        nullCount: 0,
        children: [v.data[0]],
      }),
    );
    const path = await Deno.makeTempFile({ suffix: ".arrow" });
    try {
      await Deno.writeFile(path, tableToIPC(new Table(schema, [b]), "stream"));
      using f = await ArrowStreamFile.open(path);
      await assertRejects(() => f.readArray2D("a", 0, rows.length, [T, d]), DatasetError, includes);
    } finally {
      await Deno.remove(path);
    }
  }
});
