/**
 * The **source** stage: documents from a local file, a local folder or a Hugging Face dataset
 * repo, streamed shard by shard and row by row as a `ReadableStream` of document batches (never a
 * whole dataset, nor a whole shard, in memory).
 *
 * Contract (what the other stages integrate against):
 *
 * ```ts ignore
 * export type SourceDocument = { text: string } | { tokens: Int32Array };
 * // Position of the next unread row: epoch (passes over the data so far), shard index in the
 * // dataset's sorted shard list, row index within that shard.
 * export interface SourceCursor { epoch: number; shard: number; row: number }
 * export interface DocumentBatch { docs: SourceDocument[]; start: SourceCursor; cursor: SourceCursor; } // start: docs[0]; cursor: after these docs
 * export interface SourceOptions {
 *   datasetPath: string;           // local file, local folder, or HF dataset repo id "org/name"
 *   split?: string;                // default "train"
 *   revision?: string;             // HF revision, default "main"
 *   hub?: HubOptions;              // endpoint, token, cache dir, offline (hub/env.ts)
 *   batchSize?: number;            // documents per chunk (default 64)
 *   start?: SourceCursor;          // resume position (default {epoch:0, shard:0, row:0})
 *   repeat?: boolean;              // restart at the end (new epoch), as SAELens's store does; default true
 *   textSampleBy?: "line" | "paragraph" | "document"; // .txt rows as HF's "text" builder (default "line")
 *   signal?: AbortSignal;
 * }
 * export function source(opts: SourceOptions): ReadableStream<DocumentBatch>;
 * export async function openDataset(opts): Promise<DatasetInfo>; // shards, detected kind "text" | "tokens", column name, columns found
 * ```
 *
 * Behaviour:
 * - **Formats**: `.txt` (rows as `datasets`' text builder, `textSampleBy`), `.json`/`.jsonl`
 *   (JSON Lines, or one top-level array of objects), the same compressed as `.gz` or `.zst`,
 *   and `.parquet` (read row group by row group; tokens as `list<int32|int64>`).
 * - **Which files**: a local file is the whole dataset (split `"train"`); a local folder and a hub
 *   repo follow the `datasets` library's split conventions (`hub/datasets.ts`): sharded
 *   `data/train-00000-of-00002.parquet`, `train/…` folders, `…-train.jsonl` names, else every
 *   data file is `"train"`; the shards are the split's files in sorted order. A `datasetPath`
 *   that exists on disk is local; otherwise an `org/name` (or `name`) is a hub dataset repo.
 * - **Hub**: files are listed at `revision`, which is pinned to its commit
 *   ({@link DatasetInfo.commit}); each shard is downloaded into the HF cache just before it is
 *   read (the next one is prefetched), so a resumed run reads cached shards again without
 *   downloading them. Offline mode lists only the shards already in the cache.
 * - **Column** (as SAELens's `ActivationsStore`): the dataset's first row decides; `tokens`, else
 *   `input_ids` → pretokenized (`{ tokens: Int32Array }`, every id a non-negative integer below
 *   2^31), else `text`, else `problem` → text (`{ text }`); otherwise a {@link DatasetError}
 *   listing the columns found. Every shard's first row must decide the same; every row must
 *   hold the column with the right type.
 * - **Batches**: at most `batchSize` documents each, from one shard (the last batch of a shard
 *   may be shorter); `start` is the position of the first document. `cursor` is the position after its last
 *   document; passing it as `start` yields exactly the documents an uninterrupted stream would
 *   have yielded next (whole Parquet row groups before it are skipped by their metadata row
 *   counts; text and JSON rows are skipped while streaming). After the last row of a shard the
 *   cursor may read `{shard, row: rowsInShard}` or `{shard: shard + 1, row: 0}`; both resume alike.
 * - **Epochs**: with `repeat` (default) the stream restarts at shard 0 with `epoch + 1` forever;
 *   without, it closes after the last row.
 * - **Errors**: every bad input is one {@link DatasetError} naming what was wrong and what was
 *   expected (missing file/folder/repo, missing split, no known column, malformed JSON line with
 *   its line number, corrupt/truncated Parquet/zstd/gzip, interrupted download, empty dataset,
 *   a cursor past the data); the stream errors with it after every document before the bad
 *   row was delivered (the last of them in a possibly short batch, with its cursor).
 * - **Cancellation**: `signal` aborts the stream (it errors with the signal's reason) at the next
 *   chunk; `cancel()` on the stream closes the open file.
 * - **Workers**: only `Deno.open`/`Deno.stat`/`Deno.readDir`, `fetch`, `DecompressionStream` and
 *   WebAssembly (Parquet snappy): it runs unchanged in a Web Worker. Permissions: `--allow-read`
 *   (dataset files; the HF cache), and for hub datasets `--allow-net` (the endpoint) and
 *   `--allow-write` (the HF cache); `--allow-env` is optional (HF_* variables, see `hub/env.ts`).
 * @module
 */

import { decodeUtf8, decompressChunks, readFileChunks } from "../io/byte_stream.ts";
import { compressionOf } from "../io/byte_stream.ts";
import { DatasetError, errorMessage } from "../io/dataset_error.ts";
import { type JsonRow, jsonRows } from "../io/jsonl.ts";
import { ParquetFile } from "../io/parquet.ts";
import { textRows, type TextSampleBy } from "../io/text_lines.ts";
import {
  dataFileFormat,
  type DataFormat,
  listHubDatasetFiles,
  selectSplitFiles,
} from "../hub/datasets.ts";
import { hubDownload } from "../hub/download.ts";
import type { HubOptions } from "../hub/env.ts";
import { HubError } from "../hub/errors.ts";

export { DatasetError } from "../io/dataset_error.ts";
export type { TextSampleBy } from "../io/text_lines.ts";
export type { DataFormat } from "../hub/datasets.ts";

// The chunk types are shared with the other stages (stages/types.ts).
import type { DocumentBatch, SourceCursor, SourceDocument } from "./types.ts";
export type { DocumentBatch, SourceCursor, SourceDocument };

/** What {@link openDataset} needs. */
export interface OpenDatasetOptions {
  /** Local file, local folder, or HF dataset repo id `"org/name"`. */
  datasetPath: string;
  /** Split (default `"train"`). */
  split?: string;
  /** HF revision (branch, tag or commit; default `"main"`). */
  revision?: string;
  /** Endpoint, token, cache dir, offline (`hub/env.ts`). */
  hub?: HubOptions;
  /** How `.txt` files are cut into rows, as HF's `"text"` builder (default `"line"`). */
  textSampleBy?: TextSampleBy;
  /** Aborts the listing / detection. */
  signal?: AbortSignal;
}

/** Options of {@link source}. */
export interface SourceOptions extends OpenDatasetOptions {
  /** Documents per chunk (default 64). */
  batchSize?: number;
  /** Resume position (default `{epoch: 0, shard: 0, row: 0}`). */
  start?: SourceCursor;
  /** Restart at the end (new epoch), as SAELens's store does; default true. */
  repeat?: boolean;
  /**
   * An already opened dataset (from {@link openDataset} with the same options): skips the
   * listing and detection. Optional; not part of the SAELens-facing contract.
   */
  dataset?: DatasetInfo;
}

/** `"text"`: documents are strings to tokenize; `"tokens"`: pretokenized rows. */
export type DatasetKind = "text" | "tokens";

/** One data file of the dataset. */
export interface DatasetShard {
  /** Its path in the hub repo, relative to the local folder, or the local file's path. */
  name: string;
  /** Where it is on disk (local datasets; hub shards are downloaded when first read). */
  localPath?: string;
  /** Its format. */
  format: DataFormat;
}

/** A resolved dataset: where its shards are and what its rows hold. */
export interface DatasetInfo {
  /** As given. */
  datasetPath: string;
  /** `"file"`, `"folder"` (local) or `"hub"`. */
  origin: "file" | "folder" | "hub";
  /** The split read. */
  split: string;
  /** Hub: the revision asked for. */
  revision?: string;
  /**
   * Hub: the commit the shards are read at (the revision resolved once). Pass it as
   * `revision` when resuming to read exactly the same files.
   */
  commit?: string;
  /** Names the dataset in messages, e.g. `dataset repo org/name@main`. */
  describe: string;
  /** The split's data files, sorted: cursor `shard` indexes this list. */
  shards: DatasetShard[];
  /** Format of every shard. */
  format: DataFormat;
  /** Detected kind. */
  kind: DatasetKind;
  /** Detected column (`tokens`, `input_ids`, `text` or `problem`). */
  column: string;
  /** Columns of the first row. */
  columns: string[];
  /** Pretokenized: the length of the first row (SAELens requires ≥ `context_size`). */
  firstRowLength?: number;
  /** `.txt` row cutting used. */
  textSampleBy: TextSampleBy;
  /** Files of the split that are not read (another format). */
  ignoredFiles: string[];
  /** Every split found, with its file count (folder and hub datasets). */
  splits: Record<string, number>;
}

/** SAELens's column precedence. */
const COLUMNS: readonly [string, DatasetKind][] = [
  ["tokens", "tokens"],
  ["input_ids", "tokens"],
  ["text", "text"],
  ["problem", "text"],
];

/**
 * The column SAELens would use for a row with these columns: `tokens`, `input_ids` (pretokenized),
 * `text`, `problem` (text), in that order.
 *
 * @throws {DatasetError} listing the columns when none is present.
 *
 * @example
 * ```ts
 * import { detectColumn } from "./source.ts";
 * const d = detectColumn(["text", "input_ids"], "x");
 * if (d.column !== "input_ids" || d.kind !== "tokens") throw new Error();
 * ```
 */
export function detectColumn(
  columns: readonly string[],
  describe: string,
): { kind: DatasetKind; column: string } {
  for (const [column, kind] of COLUMNS) if (columns.includes(column)) return { kind, column };
  throw new DatasetError(
    `${describe}: no known column in the first row (columns found: ${JSON.stringify(columns)}); ` +
      `expected "tokens" or "input_ids" (pretokenized) or "text" or "problem" (raw text), as ` +
      `SAELens does`,
  );
}

/**
 * The warning to print when `dataset_trust_remote_code` is set to true (`undefined` otherwise):
 * saeflow never runs a dataset's Python loading script, so the option has no meaning. Pass only
 * a value the user gave (SAELens's runner config defaults it to true).
 *
 * @example
 * ```ts
 * import { trustRemoteCodeWarning } from "./source.ts";
 * if (!trustRemoteCodeWarning(true)?.includes("no effect")) throw new Error();
 * if (trustRemoteCodeWarning(false) !== undefined) throw new Error();
 * ```
 */
export function trustRemoteCodeWarning(value: boolean | null | undefined): string | undefined {
  if (value !== true) return undefined;
  return "dataset_trust_remote_code=true has no effect in saeflow: it never runs a dataset's " +
    "Python loading script; it reads the dataset's data files (.txt, .json/.jsonl, optionally " +
    ".gz/.zst, .parquet) by the datasets library's file conventions.";
}

// ---------------------------------------------------------------------------------------------
// Resolving the dataset

const REPO_ID = /^[\w.-]+(\/[\w.-]+)?$/;

/** True when `p` can only be meant as a local path (not an `org/name` repo id). */
function explicitlyLocal(p: string): boolean {
  return /^(\.{1,2}\/|\/|~|[A-Za-z]:[\\/])/.test(p) || p.includes("\\") ||
    dataFileFormat(p) !== undefined || !REPO_ID.test(p);
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new DatasetError(`cannot access ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Files under `dir` (relative, `/`-separated), skipping hidden and `__` folders. */
async function walkFolder(dir: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const abs = rel ? `${dir}/${rel}` : dir;
    for await (const e of Deno.readDir(abs)) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) {
        if (!e.name.startsWith("__")) await walk(child);
      } else if (e.isFile) {
        out.push(child);
      } else if (e.isSymlink) {
        // A link to a file counts (as in `datasets`); linked folders are not followed (no loops).
        const st = await statOrUndefined(`${dir}/${child}`);
        if (st?.isFile) out.push(child);
      }
    }
  };
  try {
    await walk("");
  } catch (err) {
    if (err instanceof DatasetError || signal?.aborted) throw err;
    throw new DatasetError(`cannot list the folder ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  return out.sort();
}

function checkSampleBy(v: unknown): TextSampleBy {
  if (v === undefined) return "line";
  if (v === "line" || v === "paragraph" || v === "document") return v;
  throw new DatasetError(
    `textSampleBy is ${JSON.stringify(v)}; expected "line", "paragraph" or "document"`,
  );
}

type Located = Omit<
  DatasetInfo,
  "kind" | "column" | "columns" | "firstRowLength" | "commit"
>;

async function locate(opts: OpenDatasetOptions): Promise<Located> {
  const datasetPath = opts.datasetPath;
  const split = opts.split ?? "train";
  const textSampleBy = checkSampleBy(opts.textSampleBy);
  if (typeof datasetPath !== "string" || datasetPath.trim() === "") {
    throw new DatasetError(
      `dataset_path is empty; expected a local file or folder, or a Hugging Face dataset repo ` +
        `id such as "NeelNanda/pile-10k"`,
    );
  }
  const st = await statOrUndefined(datasetPath);
  if (st?.isFile) {
    const format = dataFileFormat(datasetPath);
    const describe = `local file ${datasetPath}`;
    if (!format) {
      throw new DatasetError(
        `${describe} is not a data file saeflow reads; expected .txt, .json, .jsonl ` +
          `(optionally .gz/.zst) or .parquet`,
      );
    }
    if (split !== "train") {
      throw new DatasetError(
        `${describe} is a single file, which forms the split "train" only; split ` +
          `${JSON.stringify(split)} was asked for`,
      );
    }
    return {
      datasetPath,
      origin: "file",
      split,
      describe,
      shards: [{ name: datasetPath, localPath: datasetPath, format }],
      format,
      textSampleBy,
      ignoredFiles: [],
      splits: { train: 1 },
    };
  }
  if (st?.isDirectory) {
    const describe = `local folder ${datasetPath}`;
    const files = await walkFolder(datasetPath, opts.signal);
    const sel = selectSplitFiles(files, split, describe);
    const root = datasetPath.replace(/[/\\]+$/, "");
    return {
      datasetPath,
      origin: "folder",
      split,
      describe,
      shards: sel.files.map((f) => ({ name: f, localPath: `${root}/${f}`, format: sel.format })),
      format: sel.format,
      textSampleBy,
      ignoredFiles: sel.ignored,
      splits: sel.splits,
    };
  }
  if (st) {
    throw new DatasetError(`${datasetPath} is neither a file nor a folder`);
  }
  if (explicitlyLocal(datasetPath)) {
    throw new DatasetError(
      `no such file or folder: ${datasetPath}; expected a local data file (.txt, .json, ` +
        `.jsonl, optionally .gz/.zst, .parquet), a folder of them, or a Hugging Face dataset ` +
        `repo id "org/name"`,
    );
  }
  const revision = opts.revision ?? "main";
  const describe = `dataset repo ${datasetPath}@${revision}`;
  let files: string[];
  try {
    files = await listHubDatasetFiles(datasetPath, { revision, hub: opts.hub });
  } catch (err) {
    if (
      err instanceof DatasetError && err.cause instanceof HubError &&
      err.cause.kind === "not_found"
    ) {
      throw new DatasetError(
        `${datasetPath} is not a local file or folder, and ${err.message}`,
        { cause: err.cause },
      );
    }
    throw err;
  }
  const sel = selectSplitFiles(files, split, describe);
  return {
    datasetPath,
    origin: "hub",
    split,
    revision,
    describe,
    shards: sel.files.map((f) => ({ name: f, format: sel.format })),
    format: sel.format,
    textSampleBy,
    ignoredFiles: sel.ignored,
    splits: sel.splits,
  };
}

// ---------------------------------------------------------------------------------------------
// Shards on disk (hub shards downloaded on demand, the next one prefetched)

const SNAPSHOT_COMMIT = /\/snapshots\/([0-9a-f]{40})\//;

class ShardFiles {
  #pending = new Map<number, Promise<string>>();
  constructor(
    private readonly info: Located & { commit?: string },
    private readonly hub: HubOptions | undefined,
  ) {}

  #download(i: number): Promise<string> {
    const shard = this.info.shards[i];
    if (shard.localPath !== undefined) return Promise.resolve(shard.localPath);
    const revision = this.info.commit ?? this.info.revision ?? "main";
    return hubDownload(this.info.datasetPath, shard.name, {
      ...this.hub,
      repoType: "dataset",
      revision,
    }).catch((err) => {
      throw new DatasetError(
        `downloading shard ${i + 1} of ${this.info.shards.length} (${shard.name}) of ` +
          `${this.info.describe} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    });
  }

  /** Local path of shard `i` (downloads it unless prefetched or cached). */
  take(i: number): Promise<string> {
    const p = this.#pending.get(i) ?? this.#download(i);
    this.#pending.delete(i);
    return p;
  }

  /** Starts downloading shard `i` in the background (hub datasets only). */
  prefetch(i: number): void {
    if (i >= this.info.shards.length || this.#pending.has(i)) return;
    if (this.info.shards[i].localPath !== undefined) return;
    const p = this.#download(i);
    p.catch(() => {}); // reported when the shard is taken
    this.#pending.set(i, p);
  }

  /** Waits for background downloads (so none outlives the stream). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#pending.values());
    this.#pending.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Rows of one shard

interface ShardReadOptions {
  info: Located;
  index: number;
  path: string;
  signal?: AbortSignal;
}

/** Raw rows of one shard as column→value records or the text rows (for detection). */
interface RawBatch {
  /** Text rows (text format) or JSON rows, or Parquet values of one column. */
  values: unknown[];
  /** JSON: each row's line (or element) number. */
  where?: number[];
  whereKind?: "line" | "element";
}

function shardName(o: ShardReadOptions): string {
  const n = o.info.shards[o.index].name;
  return o.info.origin === "file" ? n : `${n} of ${o.info.describe}`;
}

function textChunks(o: ShardReadOptions): AsyncIterable<string> {
  const describe = shardName(o);
  return decodeUtf8(
    decompressChunks(
      readFileChunks(o.path, { signal: o.signal, describe }),
      compressionOf(o.info.shards[o.index].name),
      describe,
    ),
    describe,
  );
}

/** Rows of a text or JSON shard from the start (raw: text strings or JSON objects). */
async function* streamRows(o: ShardReadOptions): AsyncGenerator<RawBatch> {
  const format = o.info.shards[o.index].format;
  if (format === "text") {
    const rows = textRows(textChunks(o), o.info.textSampleBy, { describe: shardName(o) });
    for await (const values of rows) yield { values };
  } else {
    for await (const b of jsonRows(textChunks(o), shardName(o))) {
      yield { values: b.rows, where: b.where, whereKind: b.whereKind };
    }
  }
}

/** The first row's columns (and the row), or `undefined` for a shard without rows. */
async function firstRow(
  o: ShardReadOptions,
): Promise<{ columns: string[]; value?: (column: string) => Promise<unknown> } | undefined> {
  const format = o.info.shards[o.index].format;
  if (format === "parquet") {
    const pq = await ParquetFile.open(o.path, shardName(o));
    try {
      if (pq.numRows === 0) return undefined;
      const columns = pq.columns;
      // A pretokenized column's first value (its length is reported) is read before closing.
      const det = detectColumnSafe(columns);
      const tokens = COLUMNS.find(([c]) => c === det)?.[1] === "tokens";
      const first = det && tokens ? (await pq.readRange(det, 0, 1))[0] : undefined;
      return { columns, value: (c) => Promise.resolve(c === det ? first : undefined) };
    } finally {
      pq.close();
    }
  }
  for await (const b of streamRows(o)) {
    if (!b.values.length) continue;
    const row = b.values[0];
    if (format === "text") return { columns: ["text"], value: () => Promise.resolve(row) };
    const obj = row as JsonRow;
    return { columns: Object.keys(obj), value: (c) => Promise.resolve(obj[c]) };
  }
  return undefined;
}

function detectColumnSafe(columns: readonly string[]): string | undefined {
  return COLUMNS.find(([c]) => columns.includes(c))?.[0];
}

/**
 * The detected column's values of one shard from `startRow` on, checked against the dataset's
 * column (each shard's first row must decide the same column; every JSON row must hold it).
 */
async function* shardValues(
  o: ShardReadOptions,
  info: DatasetInfo,
  startRow: number,
): AsyncGenerator<RawBatch> {
  const name = shardName(o);
  const mismatch = (columns: string[]) => {
    const mine = detectColumnSafe(columns);
    if (mine === info.column) return;
    throw new DatasetError(
      `${name}: its first row has the columns ${JSON.stringify(columns)}` +
        (mine ? ` (→ column "${mine}")` : "") + `, but the dataset's first row decided the ` +
        `column "${info.column}"; every file of a dataset must have the same column`,
    );
  };
  if (o.info.shards[o.index].format === "parquet") {
    const pq = await ParquetFile.open(o.path, name);
    try {
      mismatch(pq.columns);
      if (startRow > pq.numRows) throw pastEnd(name, startRow, pq.numRows);
      for await (const values of pq.rows(info.column, startRow)) {
        o.signal?.throwIfAborted();
        yield { values };
      }
    } finally {
      pq.close();
    }
    return;
  }
  let row = 0;
  for await (const b of streamRows(o)) {
    let values = b.values;
    let failure: DatasetError | undefined;
    if (info.format === "json") {
      const rows = values as JsonRow[];
      values = [];
      for (let k = 0; k < rows.length; k++) {
        const r = rows[k];
        if (row + k === 0) mismatch(Object.keys(r));
        if (!(info.column in r)) {
          const at = b.whereKind === "line" ? `:${b.where![k]}` : ` element ${b.where![k]}`;
          // Delivered after the rows before it.
          failure = new DatasetError(
            `${name}${at} has no "${info.column}" field (fields: ` +
              `${JSON.stringify(Object.keys(r))}); every row needs the column the dataset's ` +
              `first row decided`,
          );
          break;
        }
        values.push(r[info.column]);
      }
    }
    const n = values.length;
    if (row + n <= startRow) {
      row += n;
      if (failure) throw failure;
      continue;
    }
    const skip = Math.max(0, startRow - row);
    row += n;
    const where = b.where?.slice(skip);
    yield { values: skip ? values.slice(skip) : values, where, whereKind: b.whereKind };
    if (failure) throw failure;
  }
  if (startRow > row) throw pastEnd(name, startRow, row);
}

function pastEnd(name: string, startRow: number, rows: number): DatasetError {
  return new DatasetError(
    `resume cursor row ${startRow} is past the end of ${name} (${rows} rows): the dataset ` +
      `changed since the cursor was taken; expected a row in 0..${rows}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Documents

const INT32_MAX = 2147483647;

function toTokens(v: unknown, where: (k: number) => string, k = 0): Int32Array {
  const isArray = Array.isArray(v) ||
    (ArrayBuffer.isView(v) && !(v instanceof DataView));
  if (!isArray) {
    throw new DatasetError(
      `${where(k)}: the tokens value is ${v === null ? "null" : typeof v}; expected a list of ` +
        `token ids (non-negative integers)`,
    );
  }
  const a = v as ArrayLike<unknown>;
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    let id: number;
    if (typeof x === "number") id = x;
    else if (typeof x === "bigint") id = x >= 0n && x <= BigInt(INT32_MAX) ? Number(x) : -1;
    else id = -1;
    if (!(Number.isInteger(id) && id >= 0 && id <= INT32_MAX)) {
      throw new DatasetError(
        `${where(k)}: token ${i} is ${typeof x === "bigint" ? `${x}n` : JSON.stringify(x)}; ` +
          `expected a non-negative integer token id below 2^31`,
      );
    }
    out[i] = id;
  }
  return out;
}

function toDocument(
  info: DatasetInfo,
  v: unknown,
  where: (k: number) => string,
  k: number,
): SourceDocument {
  if (info.kind === "tokens") return { tokens: toTokens(v, where, k) };
  if (typeof v !== "string") {
    throw new DatasetError(
      `${where(k)}: the "${info.column}" value is ${
        v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`
      }; expected a string`,
    );
  }
  return { text: v };
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/**
 * Resolves a dataset: finds its shards (listing a hub repo, or a local folder), reads its first
 * row and detects the column as SAELens does. Hub datasets: downloads the first shard (into the
 * HF cache) and pins the revision to its commit.
 *
 * @throws {DatasetError} for a missing file/folder/repo, a missing split, no data files, no known
 * column (the columns found are listed), or an empty dataset.
 *
 * @example
 * ```ts
 * import { openDataset } from "./source.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.jsonl`, '{"input_ids": [5, 6, 7]}\n');
 * await Deno.writeTextFile(`${dir}/test.jsonl`, '{"input_ids": [1]}\n');
 * const info = await openDataset({ datasetPath: dir });
 * if (info.kind !== "tokens" || info.column !== "input_ids" || info.firstRowLength !== 3) {
 *   throw new Error(JSON.stringify(info));
 * }
 * if (info.shards.map((s) => s.name).join() !== "train.jsonl") throw new Error("split");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openDataset(opts: OpenDatasetOptions): Promise<DatasetInfo> {
  const located: Located & { commit?: string } = await locate(opts);
  const files = new ShardFiles(located, opts.hub);
  try {
    for (let i = 0; i < located.shards.length; i++) {
      opts.signal?.throwIfAborted();
      const path = await files.take(i);
      if (located.origin === "hub" && located.commit === undefined) {
        // Pin the revision to the commit the first download resolved.
        located.commit = SNAPSHOT_COMMIT.exec(path)?.[1] ??
          (/^[0-9a-f]{40}$/.test(located.revision ?? "") ? located.revision : undefined);
      }
      const first = await firstRow({ info: located, index: i, path, signal: opts.signal });
      if (!first) continue;
      const { kind, column } = detectColumn(first.columns, located.describe);
      const info: DatasetInfo = { ...located, kind, column, columns: first.columns };
      if (kind === "tokens") {
        const where = () => `the first row of ${located.shards[i].name} (${located.describe})`;
        info.firstRowLength = toTokens(await first.value!(column), where).length;
      }
      return info;
    }
  } finally {
    await files.settle();
  }
  throw new DatasetError(
    `${located.describe} is empty: its ${located.shards.length} data file(s) ` +
      `${JSON.stringify(located.shards.slice(0, 10).map((s) => s.name))} hold no rows; ` +
      `expected at least one document`,
  );
}

function checkCursor(c: SourceCursor, nShards: number, describe: string): SourceCursor {
  const ok = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (typeof c !== "object" || c === null || !ok(c.epoch) || !ok(c.shard) || !ok(c.row)) {
    throw new DatasetError(
      `invalid start cursor ${JSON.stringify(c)}; expected {epoch, shard, row} with ` +
        `non-negative integers`,
    );
  }
  if (c.shard > nShards || (c.shard === nShards && c.row !== 0)) {
    throw new DatasetError(
      `start cursor shard ${c.shard} (row ${c.row}) is past the ${nShards} shard(s) of ` +
        `${describe}: the dataset changed since the cursor was taken`,
    );
  }
  return { epoch: c.epoch, shard: c.shard, row: c.row };
}

function checkBatchSize(v: unknown): number {
  if (v === undefined) return 64;
  if (Number.isSafeInteger(v) && (v as number) > 0) return v as number;
  throw new DatasetError(`batchSize is ${JSON.stringify(v)}; expected a positive integer`);
}

async function* documentBatches(opts: SourceOptions): AsyncGenerator<DocumentBatch> {
  const batchSize = checkBatchSize(opts.batchSize);
  const repeat = opts.repeat ?? true;
  opts.signal?.throwIfAborted();
  const info = opts.dataset ?? await openDataset(opts);
  const n = info.shards.length;
  let { epoch, shard, row } = checkCursor(
    opts.start ?? { epoch: 0, shard: 0, row: 0 },
    n,
    info.describe,
  );
  if (shard === n) [epoch, shard, row] = [epoch + 1, 0, 0];
  let fullPass = shard === 0 && row === 0;
  let rowsThisPass = 0;
  let docs: SourceDocument[] = [];
  let start: SourceCursor = { epoch, shard, row };
  const files = new ShardFiles(info, opts.hub);
  try {
    while (true) {
      if (shard === n) {
        if (fullPass && rowsThisPass === 0) {
          throw new DatasetError(
            `${info.describe} yielded no rows in a whole pass over its ${n} file(s); expected ` +
              `at least one document`,
          );
        }
        [epoch, shard, row] = [epoch + 1, 0, 0];
        fullPass = true;
        rowsThisPass = 0;
        if (!repeat) break;
      }
      opts.signal?.throwIfAborted();
      const path = await files.take(shard);
      if (shard + 1 < n) files.prefetch(shard + 1);
      else if (repeat && n > 1) files.prefetch(0);
      const o: ShardReadOptions = { info, index: shard, path, signal: opts.signal };
      const name = shardName(o);
      try {
        for await (const b of shardValues(o, info, row)) {
          const values = b.values;
          const first = row;
          const where = (k: number) =>
            b.where
              ? `${name}${b.whereKind === "line" ? `:${b.where[k]}` : ` element ${b.where[k]}`}`
              : `row ${first + k} of ${name}`;
          for (let k = 0; k < values.length; k++) {
            if (docs.length === 0) start = { epoch, shard, row };
            docs.push(toDocument(info, values[k], where, k));
            row++;
            rowsThisPass++;
            if (docs.length === batchSize) {
              yield { docs, start, cursor: { epoch, shard, row } };
              docs = [];
              opts.signal?.throwIfAborted();
            }
          }
        }
      } catch (err) {
        // Bad data: the documents before it still arrive (a short batch), then the error.
        if (err instanceof DatasetError && docs.length) {
          const partial = docs;
          docs = [];
          yield { docs: partial, start, cursor: { epoch, shard, row } };
        }
        throw err;
      }
      // A batch never spans two shards (nor epochs): the shard's last documents go now.
      if (docs.length) {
        yield { docs, start, cursor: { epoch, shard, row } };
        docs = [];
      }
      shard++;
      row = 0;
    }
  } finally {
    await files.settle();
  }
}

/**
 * The source stage: a stream of {@link DocumentBatch}es (see the module doc for the contract).
 * Nothing is read before the first `read()`; the stream reads one batch ahead.
 *
 * @example
 * ```ts
 * import { source } from "./source.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "one\ntwo\nthree\n");
 * const batches = [];
 * for await (const b of source({ datasetPath: `${dir}/a.txt`, batchSize: 2, repeat: false })) {
 *   batches.push(b.docs.map((d) => "text" in d ? d.text : "").join("+"));
 * }
 * if (batches.join(" | ") !== "one+two | three") throw new Error(batches.join(" | "));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function source(opts: SourceOptions): ReadableStream<DocumentBatch> {
  let it: AsyncGenerator<DocumentBatch> | undefined;
  return new ReadableStream<DocumentBatch>({
    async pull(controller) {
      it ??= documentBatches(opts);
      const r = await it.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    async cancel() {
      await it?.return(undefined);
    },
  }, { highWaterMark: 1 });
}
