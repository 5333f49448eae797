/**
 * Hugging Face `datasets` on-disk datasets (`Dataset.save_to_disk` / `load_from_disk`): a folder
 * with `dataset_info.json` (the features), `state.json` (the data files in order, a fingerprint,
 * the format) and the data files `data-00000-of-0000N.arrow`, each an Arrow IPC **stream**.
 *
 * Features are read and written as `datasets` serialises them (`Features.to_dict`): `Value`
 * (`{"dtype": "int32", "_type": "Value"}`), `Array2D` (`{"shape": [T, d], "dtype": "float32",
 * "_type": "Array2D"}`, stored as `list<list<float32>>` with the extension type
 * `datasets.features.features.Array2DExtensionType` in the field metadata) and fixed-length
 * lists (`{"feature": …, "length": T, "_type": "Sequence"}`; `datasets` ≥ 4 writes `"List"` for
 * the same thing and reads both, 3.x reads `"Sequence"` only, so saeflow writes `"Sequence"`).
 * Every Arrow file also carries the features in its schema metadata (`huggingface` →
 * `{"info": {"features": …}}`), as `datasets`' `ArrowWriter` does.
 *
 * {@link openHfDataset} validates a folder before anything is read: both JSON files present and
 * well-formed, every data file confined to the folder and a complete Arrow stream with the
 * columns the features name; rows are then read by range across the files.
 * @module
 */

import { DatasetError, errorMessage } from "./dataset_error.ts";
import { type ArrowColumnSpec, ArrowStreamFile } from "./arrow_ipc.ts";

/** A `datasets` feature type, as far as saeflow reads them. */
export type HfFeature =
  | { type: "Value"; dtype: string }
  | { type: "Array2D"; shape: [number, number]; dtype: string }
  | { type: "List"; feature: HfFeature; length: number }
  | { type: "other"; json: unknown };

/** `datasets.features.features.Array2DExtensionType`, the Arrow extension name of `Array2D`. */
export const ARRAY2D_EXTENSION = "datasets.features.features.Array2DExtensionType";

/** Largest `state.json` / `dataset_info.json` read (they are a few KB). */
export const MAX_HF_JSON_BYTES = 16 << 20;

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses one serialised feature (`Features.to_dict()` entry); types saeflow does not use come
 * back as `{ type: "other" }`.
 *
 * @example
 * ```ts
 * import { hfFeatureFromJson } from "./hf_dataset.ts";
 * const f = hfFeatureFromJson({ feature: { dtype: "int32", _type: "Value" }, length: 8, _type: "List" }, "x");
 * if (f.type !== "List" || f.length !== 8 || f.feature.type !== "Value") throw new Error();
 * ```
 */
export function hfFeatureFromJson(json: unknown, where: string): HfFeature {
  if (!isObj(json)) return { type: "other", json };
  const t = json._type;
  if (t === "Value") {
    if (typeof json.dtype !== "string") {
      throw new DatasetError(`${where}: a Value feature without a string dtype`);
    }
    return { type: "Value", dtype: json.dtype };
  }
  if (t === "Array2D") {
    const s = json.shape;
    if (
      !Array.isArray(s) || s.length !== 2 ||
      !s.every((v) => Number.isSafeInteger(v) && (v as number) > 0) ||
      typeof json.dtype !== "string"
    ) {
      throw new DatasetError(
        `${where}: Array2D feature ${JSON.stringify(json).slice(0, 120)}; expected a shape of ` +
          "two positive integers and a string dtype",
      );
    }
    return { type: "Array2D", shape: [s[0] as number, s[1] as number], dtype: json.dtype };
  }
  if (t === "Sequence" || t === "List") {
    const length = json.length === undefined ? -1 : json.length;
    if (!Number.isSafeInteger(length) || (length as number) < -1) {
      throw new DatasetError(`${where}: list length ${JSON.stringify(json.length)}`);
    }
    return {
      type: "List",
      feature: hfFeatureFromJson(json.feature, where),
      length: length as number,
    };
  }
  return { type: "other", json };
}

/** Serialises a feature as `datasets` does (`_type` last; lists as `"Sequence"`). */
export function hfFeatureToJson(f: HfFeature): unknown {
  switch (f.type) {
    case "Value":
      return { dtype: f.dtype, _type: "Value" };
    case "Array2D":
      return { shape: [...f.shape], dtype: f.dtype, _type: "Array2D" };
    case "List":
      return f.length === -1
        ? { feature: hfFeatureToJson(f.feature), _type: "Sequence" }
        : { feature: hfFeatureToJson(f.feature), length: f.length, _type: "Sequence" };
    case "other":
      return f.json;
  }
}

/** Features as a `datasets` features dict (column order kept). */
export function hfFeaturesToJson(
  features: ReadonlyMap<string, HfFeature>,
): Record<string, unknown> {
  return Object.fromEntries([...features].map(([k, f]) => [k, hfFeatureToJson(f)]));
}

/**
 * The `dataset_info.json` text `save_to_disk` writes for a dataset built from features only
 * (`asdict(DatasetInfo)`: the empty strings kept, `None` fields dropped, top-level keys sorted).
 */
export function datasetInfoJson(features: ReadonlyMap<string, HfFeature>): string {
  return JSON.stringify(
    {
      citation: "",
      description: "",
      features: hfFeaturesToJson(features),
      homepage: "",
      license: "",
    },
    null,
    2,
  );
}

/** The `state.json` text `save_to_disk` writes (keys sorted, no format set, no split). */
export function datasetStateJson(files: readonly string[], fingerprint: string): string {
  return JSON.stringify(
    {
      _data_files: files.map((filename) => ({ filename })),
      _fingerprint: fingerprint,
      _format_columns: null,
      _format_kwargs: {},
      _format_type: null,
      _output_all_columns: false,
      _split: null,
    },
    null,
    2,
  );
}

/** The Arrow schema metadata `datasets`' `ArrowWriter` puts on every file. */
export function hfSchemaMetadata(features: ReadonlyMap<string, HfFeature>): Map<string, string> {
  return new Map([[
    "huggingface",
    JSON.stringify({ info: { features: hfFeaturesToJson(features) } }),
  ]]);
}

/**
 * The Arrow column spec that stores a feature (float32 `Array2D`, or a fixed-length int32
 * list); anything else is an error (the cache writes nothing else).
 */
export function arrowColumnFor(name: string, f: HfFeature): ArrowColumnSpec {
  if (f.type === "Array2D" && f.dtype === "float32") {
    return {
      name,
      type: "array2d",
      shape: f.shape,
      metadata: new Map([
        ["ARROW:extension:name", ARRAY2D_EXTENSION],
        // Python's json.dumps((shape, dtype)).
        ["ARROW:extension:metadata", `[[${f.shape[0]}, ${f.shape[1]}], "${f.dtype}"]`],
      ]),
    };
  }
  if (
    f.type === "List" && f.length > 0 && f.feature.type === "Value" && f.feature.dtype === "int32"
  ) {
    return { name, type: "fixedList", length: f.length };
  }
  throw new DatasetError(
    `column ${name}: saeflow writes float32 Array2D and fixed-length int32 lists only, got ` +
      JSON.stringify(hfFeatureToJson(f)),
  );
}

/** `save_to_disk`'s data file name: `data-00003-of-00010.arrow`. */
export function hfDataFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `data-${pad(index)}-of-${pad(count)}.arrow`;
}

async function readJsonFile(path: string, what: string, dir: string): Promise<unknown> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new DatasetError(
        `${dir} has no ${what}: not a dataset saved by datasets' save_to_disk (expected ` +
          "dataset_info.json, state.json and the data-*.arrow files it lists)",
      );
    }
    throw new DatasetError(`cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
  if (!st.isFile || st.size > MAX_HF_JSON_BYTES) {
    throw new DatasetError(
      `${path} is ${st.isFile ? `${st.size} bytes` : "not a file"}; expected a JSON file of at ` +
        `most ${MAX_HF_JSON_BYTES} bytes`,
    );
  }
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new DatasetError(`${path} is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
}

/** An open `save_to_disk` dataset (see {@link openHfDataset}). */
export class HfDataset implements Disposable {
  /** Rows over all files. */
  readonly numRows: number;
  /** Row index of each file's first row (and the total at the end). */
  readonly fileStarts: number[];

  private constructor(
    /** The folder. */
    readonly dir: string,
    /** Features by column, in `dataset_info.json` order. */
    readonly features: Map<string, HfFeature>,
    /** The data files, in `state.json` order. */
    readonly files: ArrowStreamFile[],
    /** `state.json` `_fingerprint`. */
    readonly fingerprint: string | null,
  ) {
    this.fileStarts = [0];
    for (const f of files) this.fileStarts.push(this.fileStarts.at(-1)! + f.numRows);
    this.numRows = this.fileStarts.at(-1)!;
  }

  /** @internal */
  static _make(
    dir: string,
    features: Map<string, HfFeature>,
    files: ArrowStreamFile[],
    fingerprint: string | null,
  ): HfDataset {
    return new HfDataset(dir, features, files, fingerprint);
  }

  /** The file index and row within it of global row `row` (`row < numRows`). */
  locate(row: number): { file: number; row: number } {
    let lo = 0, hi = this.files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.fileStarts[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return { file: lo, row: row - this.fileStarts[lo] };
  }

  async #span<T extends Float32Array | Int32Array>(
    start: number,
    count: number,
    per: number,
    make: (n: number) => T,
    read: (f: ArrowStreamFile, first: number, n: number) => Promise<T>,
  ): Promise<T> {
    if (start < 0 || count < 0 || start + count > this.numRows) {
      throw new DatasetError(
        `${this.dir}: rows ${start}..${start + count} asked for, the dataset has ${this.numRows}`,
      );
    }
    const out = make(count * per);
    let at = 0;
    while (at < count) {
      const { file, row } = this.locate(start + at);
      const f = this.files[file];
      const n = Math.min(f.numRows - row, count - at);
      if (n === 0) throw new DatasetError(`${this.dir}: empty data file ${f.describe}`);
      out.set(await read(f, row, n), at * per);
      at += n;
    }
    return out;
  }

  /** Rows `[start, start + count)` of an `Array2D` column as `[count, T, d]` floats. */
  readArray2D(column: string, start: number, count: number): Promise<Float32Array> {
    const f = this.features.get(column);
    if (f?.type !== "Array2D") {
      throw new DatasetError(`${this.dir}: column ${JSON.stringify(column)} is not an Array2D`);
    }
    const per = f.shape[0] * f.shape[1];
    return this.#span(
      start,
      count,
      per,
      (n) => new Float32Array(n),
      (file, first, n) => file.readArray2D(column, first, n, f.shape),
    );
  }

  /** Rows `[start, start + count)` of a fixed-length integer list column as `[count, length]`. */
  readIntList(column: string, start: number, count: number): Promise<Int32Array> {
    const f = this.features.get(column);
    if (f?.type !== "List" || f.length <= 0) {
      throw new DatasetError(
        `${this.dir}: column ${JSON.stringify(column)} is not a fixed-length list`,
      );
    }
    return this.#span(
      start,
      count,
      f.length,
      (n) => new Int32Array(n),
      (file, first, n) => file.readIntList(column, first, n, f.length),
    );
  }

  /** Closes every data file. */
  close(): void {
    for (const f of this.files) f.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a dataset folder written by `Dataset.save_to_disk` (or by saeflow's cache runner) and
 * checks it: `state.json` lists data files that are plain names inside the folder, each a
 * complete Arrow IPC stream whose schema has every column of `dataset_info.json`.
 *
 * @throws {DatasetError} naming the missing or bad file.
 */
export async function openHfDataset(dir: string): Promise<HfDataset> {
  const root = dir.replace(/[/\\]+$/, "");
  try {
    if (!(await Deno.stat(root)).isDirectory) {
      throw new DatasetError(`${root} is not a folder; expected a saved dataset folder`);
    }
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(
      err instanceof Deno.errors.NotFound
        ? `no such folder: ${root}; expected a saved dataset (cached activations) folder`
        : `cannot access ${root}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  const statePath = `${root}/state.json`, infoPath = `${root}/dataset_info.json`;
  const state = await readJsonFile(statePath, "state.json", root);
  const info = await readJsonFile(infoPath, "dataset_info.json", root);
  if (!isObj(state) || !Array.isArray(state._data_files)) {
    throw new DatasetError(`${statePath}: expected an object with a _data_files list`);
  }
  const names: string[] = [];
  for (const e of state._data_files) {
    const name = isObj(e) ? e.filename : undefined;
    if (
      typeof name !== "string" || name === "" || name === "." || name === ".." ||
      /[/\\\0]/.test(name)
    ) {
      throw new DatasetError(
        `${statePath}: data file ${JSON.stringify(e)}; expected {"filename": <a file name in ` +
          "the folder>} (no paths)",
      );
    }
    names.push(name);
  }
  if (names.length === 0) throw new DatasetError(`${statePath}: lists no data files`);
  if (!isObj(info) || !isObj(info.features)) {
    throw new DatasetError(`${infoPath}: expected an object with a features object`);
  }
  const features = new Map<string, HfFeature>();
  for (const [k, v] of Object.entries(info.features)) {
    features.set(k, hfFeatureFromJson(v, `${infoPath}: feature ${k}`));
  }
  const files: ArrowStreamFile[] = [];
  try {
    for (const name of names) {
      const f = await ArrowStreamFile.open(`${root}/${name}`, `${root}/${name}`);
      files.push(f);
      const missing = [...features.keys()].filter((c) => !f.field(c));
      if (missing.length > 0) {
        throw new DatasetError(
          `${root}/${name} has no column(s) ${JSON.stringify(missing)} that dataset_info.json ` +
            `lists (its columns: ${JSON.stringify(f.fields.map((x) => x.name))})`,
        );
      }
    }
  } catch (err) {
    for (const f of files) f.close();
    throw err;
  }
  const fp = typeof state._fingerprint === "string" ? state._fingerprint : null;
  return HfDataset._make(root, features, files, fp);
}
