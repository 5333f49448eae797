/**
 * Arrow IPC **stream** files (what `pyarrow.RecordBatchStreamWriter` and Hugging Face `datasets`
 * write as `data-00000-of-00001.arrow`), for the two column layouts an activation cache uses:
 *
 * - a 2-d array column, `list<list<float32>>` (HF `Array2D` storage: every row `[rows, cols]`);
 * - a fixed-length integer column, `fixed_size_list<int32>[n]` (HF `Sequence(int32, length=n)`),
 *   also read as `list<int32|int64>` when every row has `n` items.
 *
 * **Reading** ({@link ArrowStreamFile}) never loads a file: opening scans the message headers
 * only (each record batch's row count, field nodes and buffer regions; bodies are skipped), and
 * {@link ArrowStreamFile.readArray2D} / {@link ArrowStreamFile.readIntList} read exactly the bytes
 * of the rows asked for. A batch's offsets are checked once, on first use: every row must hold
 * exactly `rows × cols` values laid out contiguously, and no value may be null. Hostile input —
 * a truncated file, a region outside the body or the file, a missing end-of-stream marker,
 * compressed bodies, an unexpected type — is one {@link DatasetError} naming the file.
 *
 * **Writing** ({@link ArrowStreamWriter}) goes through `apache-arrow`'s stream writer, one record
 * batch per {@link ArrowStreamWriter.write} call straight to the file (memory: one batch), and
 * ends with the end-of-stream marker, as pyarrow does.
 * @module
 */

import {
  AsyncByteQueue,
  DataType,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  List,
  makeData,
  Message,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
} from "apache-arrow";
import { DatasetError, errorMessage } from "./dataset_error.ts";
import { openDataFile } from "./byte_stream.ts";
import { f16ToF32 } from "./dtypes.ts";

/** Largest message header (flatbuffer metadata) accepted: headers are a few KB at most. */
export const MAX_ARROW_HEADER_BYTES = 16 << 20;

/** One field of the stream's schema, as read. */
export interface ArrowFieldInfo {
  /** Column name. */
  name: string;
  /** Its Arrow type (apache-arrow's `DataType`; extension types appear as their storage type). */
  type: DataType;
  /** Field metadata (e.g. `ARROW:extension:name`). */
  metadata: Map<string, string>;
}

interface BufferRegion {
  offset: number;
  length: number;
}
interface FieldNode {
  length: number;
  nullCount: number;
}

/** One record batch: where its body is and what its header says. */
export interface ArrowBatchInfo {
  /** Rows in the batch. */
  rows: number;
  /** Row index (within the file) of its first row. */
  startRow: number;
  /** Byte offset of the body in the file. */
  bodyOffset: number;
  /** Body length in bytes. */
  bodyLength: number;
  /** Field nodes, depth first. */
  nodes: FieldNode[];
  /** Buffer regions relative to the body, depth first. */
  buffers: BufferRegion[];
}

/** Where a column's nodes and buffers start in every batch's flattened lists. */
interface ColumnSlot {
  field: ArrowFieldInfo;
  node: number;
  buffer: number;
}

/** How many field nodes and buffers a type takes (undefined: a type this reader cannot skip). */
function layoutCounts(t: DataType): { nodes: number; buffers: number } | undefined {
  if (DataType.isNull(t)) return { nodes: 1, buffers: 0 };
  if (
    DataType.isInt(t) || DataType.isFloat(t) || DataType.isBool(t) || DataType.isDecimal(t) ||
    DataType.isDate(t) || DataType.isTime(t) || DataType.isTimestamp(t) ||
    DataType.isInterval(t) || DataType.isDuration(t) || DataType.isFixedSizeBinary(t)
  ) return { nodes: 1, buffers: 2 };
  if (
    DataType.isUtf8(t) || DataType.isBinary(t) || DataType.isLargeUtf8(t) ||
    DataType.isLargeBinary(t)
  ) return { nodes: 1, buffers: 3 };
  const children = (t.children ?? []) as Field[];
  let own: number;
  if (DataType.isList(t) || DataType.isLargeList(t) || DataType.isMap(t)) own = 2;
  else if (DataType.isFixedSizeList(t) || DataType.isStruct(t)) own = 1;
  else return undefined;
  let nodes = 1, buffers = own;
  for (const c of children) {
    const sub = layoutCounts(c.type);
    if (!sub) return undefined;
    nodes += sub.nodes;
    buffers += sub.buffers;
  }
  return { nodes, buffers };
}

const CONTINUATION = 0xffffffff;

/**
 * An Arrow IPC stream file opened for reading by row ranges (see the module doc). Close it
 * (`close()` or `using`) when done.
 *
 * @example
 * ```ts
 * import { ArrowStreamFile, ArrowStreamWriter } from "./arrow_ipc.ts";
 * const path = await Deno.makeTempFile({ suffix: ".arrow" });
 * const w = await ArrowStreamWriter.create(path, [
 *   { name: "x", type: "array2d", shape: [2, 3] },
 *   { name: "token_ids", type: "fixedList", length: 2 },
 * ]);
 * await w.write(1, { x: Float32Array.of(1, 2, 3, 4, 5, 6), token_ids: Int32Array.of(7, 8) });
 * await w.write(1, { x: Float32Array.of(9, 9, 9, 9, 9, 9), token_ids: Int32Array.of(1, 2) });
 * await w.close();
 * using f = await ArrowStreamFile.open(path);
 * const x = await f.readArray2D("x", 0, 2, [2, 3]);
 * if (f.numRows !== 2 || x[5] !== 6 || x[6] !== 9) throw new Error(`${f.numRows} ${x}`);
 * if ((await f.readIntList("token_ids", 1, 1, 2)).join() !== "1,2") throw new Error();
 * f.close();
 * await Deno.remove(path);
 * ```
 */
export class ArrowStreamFile implements Disposable {
  /** Fields of the schema, in order. */
  readonly fields: ArrowFieldInfo[];
  /** Schema metadata (e.g. Hugging Face's `huggingface` features). */
  readonly schemaMetadata: Map<string, string>;
  /** The record batches, in order. */
  readonly batches: ArrowBatchInfo[];
  /** Rows over all batches. */
  readonly numRows: number;
  /** File size in bytes. */
  readonly byteLength: number;
  readonly #file: Deno.FsFile;
  readonly #slots = new Map<string, ColumnSlot>();
  readonly #checked = new Map<string, number>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    readonly path: string,
    readonly describe: string,
    file: Deno.FsFile,
    byteLength: number,
    fields: ArrowFieldInfo[],
    schemaMetadata: Map<string, string>,
    batches: ArrowBatchInfo[],
  ) {
    this.#file = file;
    this.byteLength = byteLength;
    this.fields = fields;
    this.schemaMetadata = schemaMetadata;
    this.batches = batches;
    this.numRows = batches.reduce((a, b) => a + b.rows, 0);
    let node = 0, buffer = 0;
    for (const f of fields) {
      this.#slots.set(f.name, { field: f, node, buffer });
      const c = layoutCounts(f.type);
      if (!c) break; // later columns cannot be located
      node += c.nodes;
      buffer += c.buffers;
    }
  }

  /**
   * Opens `path` and indexes its messages (headers only).
   *
   * @throws {DatasetError} when the file is missing, not an Arrow IPC stream, truncated, or
   * uses what this reader does not support (dictionaries, compressed bodies).
   */
  static async open(path: string, describe = path): Promise<ArrowStreamFile> {
    const file = await openDataFile(path, describe);
    try {
      const size = (await file.stat()).size;
      const { fields, metadata, batches } = await scan(file, size, describe);
      return new ArrowStreamFile(path, describe, file, size, fields, metadata, batches);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** The field named `name` (undefined when the schema has none). */
  field(name: string): ArrowFieldInfo | undefined {
    return this.fields.find((f) => f.name === name);
  }

  #slot(name: string): ColumnSlot {
    const s = this.#slots.get(name);
    if (!s) {
      const f = this.field(name);
      throw new DatasetError(
        f
          ? `${this.describe}: column ${JSON.stringify(name)} comes after a column of a type ` +
            `this reader cannot skip; expected plain, list or struct columns`
          : `${this.describe}: no column ${JSON.stringify(name)} (columns: ` +
            `${JSON.stringify(this.fields.map((x) => x.name))})`,
      );
    }
    return s;
  }

  /** Reads `length` bytes at `offset` (into `into` when given: it must be that long). */
  async #read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const run = async () => {
      if (this.#closed) throw new DatasetError(`${this.describe}: read after close`);
      if (offset < 0 || offset + length > this.byteLength) {
        throw new DatasetError(
          `${this.describe}: bytes ${offset}..${offset + length} lie outside the file ` +
            `(${this.byteLength} bytes); the file is truncated or corrupt`,
        );
      }
      const out = into ?? new Uint8Array(length);
      await this.#file.seek(offset, Deno.SeekMode.Start);
      let at = 0;
      while (at < length) {
        const n = await this.#file.read(out.subarray(at, length));
        if (n === null) {
          throw new DatasetError(
            `${this.describe}: the file ended at byte ${offset + at}, expected ` +
              `${this.byteLength} bytes (it changed while being read)`,
          );
        }
        at += n;
      }
      return out;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return await p;
  }

  #region(b: ArrowBatchInfo, i: number, what: string, minBytes: number): BufferRegion {
    const r = b.buffers[i];
    if (!r) {
      throw new DatasetError(
        `${this.describe}: record batch at row ${b.startRow} has no buffer ${i} (${what})`,
      );
    }
    if (r.offset < 0 || r.length < 0 || r.offset + r.length > b.bodyLength) {
      throw new DatasetError(
        `${this.describe}: record batch at row ${b.startRow}: ${what} buffer ` +
          `${r.offset}+${r.length} lies outside its ${b.bodyLength}-byte body; the file is corrupt`,
      );
    }
    if (r.length < minBytes) {
      throw new DatasetError(
        `${this.describe}: record batch at row ${b.startRow}: ${what} buffer holds ${r.length} ` +
          `bytes, expected at least ${minBytes}; the file is corrupt`,
      );
    }
    return r;
  }

  #nodes(b: ArrowBatchInfo, slot: ColumnSlot, lengths: number[]): void {
    lengths.forEach((len, k) => {
      const n = b.nodes[slot.node + k];
      const name = slot.field.name;
      if (!n || n.length !== len) {
        throw new DatasetError(
          `${this.describe}: record batch at row ${b.startRow}: column ${JSON.stringify(name)} ` +
            `level ${k} has ${n?.length ?? "no"} values, expected ${len}; the file is corrupt`,
        );
      }
      if (n.nullCount !== 0) {
        throw new DatasetError(
          `${this.describe}: column ${JSON.stringify(name)} has ${n.nullCount} null values in ` +
            `the record batch at row ${b.startRow}; expected none`,
        );
      }
    });
  }

  async #int32s(b: ArrowBatchInfo, r: BufferRegion, first: number, count: number) {
    const bytes = await this.#read(b.bodyOffset + r.offset + first * 4, count * 4);
    return new Int32Array(bytes.buffer, 0, count);
  }

  /**
   * Checks a `list<list<float>>` column in one batch: returns the element index of row 0's
   * first value and the leaf data region, reading the offsets once per batch.
   */
  async #array2dLayout(
    b: ArrowBatchInfo,
    slot: ColumnSlot,
    shape: readonly [number, number],
  ): Promise<{ base: number; data: BufferRegion; bytesPer: number }> {
    const [rows, cols] = shape;
    const t = slot.field.type;
    const mid = DataType.isList(t) ? (t.children[0] as Field).type : undefined;
    const leaf = mid && DataType.isList(mid) ? (mid.children[0] as Field).type : undefined;
    if (!leaf || !DataType.isFloat(leaf) || leaf.precision === 2) {
      throw new DatasetError(
        `${this.describe}: column ${JSON.stringify(slot.field.name)} is ${t}, expected ` +
          `List<List<Float32>> (a datasets Array2D of float32) or List<List<Float16>>`,
      );
    }
    const bytesPer = leaf.precision === 1 ? 4 : 2;
    const n = b.rows;
    const key = `${slot.field.name}@${b.startRow}`;
    const cached = this.#checked.get(key);
    const data = this.#region(b, slot.buffer + 5, "values", 0);
    if (cached !== undefined) return { base: cached, data, bytesPer };
    const name = JSON.stringify(slot.field.name);
    const [outerNode, midNode, leafNode] = [0, 1, 2].map((k) => b.nodes[slot.node + k]);
    for (const [k, node] of [outerNode, midNode, leafNode].entries()) {
      if (node && node.nullCount !== 0) {
        throw new DatasetError(
          `${this.describe}: column ${name} has ${node.nullCount} null values (level ${k}) in ` +
            `the record batch at row ${b.startRow}; expected none`,
        );
      }
    }
    if (!outerNode || outerNode.length !== n) {
      throw new DatasetError(
        `${this.describe}: column ${name}: the record batch at row ${b.startRow} has ` +
          `${outerNode?.length ?? "no"} rows in this column, expected ${n}; the file is corrupt`,
      );
    }
    const outerOff = this.#region(b, slot.buffer + 1, "row offsets", (n + 1) * 4);
    const outer = await this.#int32s(b, outerOff, 0, n + 1);
    const o0 = outer[0];
    for (let i = 1; i <= n; i++) {
      const got = outer[i] - outer[i - 1];
      if (got !== rows) {
        throw new DatasetError(
          `${this.describe}: column ${name}, row ${b.startRow + i - 1} has ${got} entries, ` +
            `expected ${rows} (every row [${rows}, ${cols}])`,
        );
      }
    }
    if (!midNode || midNode.length < o0 + n * rows || o0 < 0) {
      throw new DatasetError(
        `${this.describe}: column ${name}: the inner lists of the record batch at row ` +
          `${b.startRow} are fewer than its offsets say; the file is corrupt`,
      );
    }
    const midOff = this.#region(b, slot.buffer + 3, "inner offsets", (o0 + n * rows + 1) * 4);
    const inner = await this.#int32s(b, midOff, o0, n * rows + 1);
    const base = inner[0];
    for (let j = 1; j <= n * rows; j++) {
      const got = inner[j] - inner[j - 1];
      if (got !== cols) {
        throw new DatasetError(
          `${this.describe}: column ${name}, row ${b.startRow + Math.floor((j - 1) / rows)}, ` +
            `position ${(j - 1) % rows} has ${got} values, expected ${cols} (every row ` +
            `[${rows}, ${cols}])`,
        );
      }
    }
    if (!leafNode || base < 0 || leafNode.length < base + n * rows * cols) {
      throw new DatasetError(
        `${this.describe}: column ${name}: the record batch at row ${b.startRow} holds fewer ` +
          "values than its offsets say; the file is corrupt",
      );
    }
    this.#region(b, slot.buffer + 5, "values", (base + n * rows * cols) * bytesPer);
    this.#checked.set(key, base);
    return { base, data, bytesPer };
  }

  /**
   * Rows `[start, start + count)` of a `list<list<float>>` column whose rows are all
   * `shape = [rows, cols]`, as one row-major `Float32Array` of `count × rows × cols` (float16
   * values are widened).
   */
  async readArray2D(
    name: string,
    start: number,
    count: number,
    shape: readonly [number, number],
  ): Promise<Float32Array> {
    const slot = this.#slot(name);
    const per = shape[0] * shape[1];
    const out = new Float32Array(count * per);
    await this.#eachBatch(start, count, async (b, first, n, at) => {
      const { base, data, bytesPer } = await this.#array2dLayout(b, slot, shape);
      const offset = b.bodyOffset + data.offset + (base + first * per) * bytesPer;
      if (bytesPer === 4) {
        // Straight into the result: no intermediate copy.
        await this.#read(
          offset,
          n * per * 4,
          new Uint8Array(out.buffer, at * per * 4, n * per * 4),
        );
      } else {
        const bytes = await this.#read(offset, n * per * 2);
        out.set(f16ToF32(new Uint16Array(bytes.buffer, 0, n * per)), at * per);
      }
    });
    return out;
  }

  /**
   * Rows `[start, start + count)` of an integer list column whose rows all hold `length`
   * items (`fixed_size_list<int32|int64>[length]`, or `list<…>` with every row that long), as
   * one `Int32Array` (int64 values must fit in int32).
   */
  async readIntList(
    name: string,
    start: number,
    count: number,
    length: number,
  ): Promise<Int32Array> {
    const slot = this.#slot(name);
    const t = slot.field.type;
    const fixed = DataType.isFixedSizeList(t);
    const child = (fixed || DataType.isList(t)) ? (t.children[0] as Field).type : undefined;
    if (
      !child || !DataType.isInt(child) || !(child.bitWidth === 32 || child.bitWidth === 64) ||
      (fixed && t.listSize !== length)
    ) {
      throw new DatasetError(
        `${this.describe}: column ${JSON.stringify(name)} is ${t}, expected ` +
          `FixedSizeList[${length}]<Int32> (a datasets Sequence(int32, length=${length}))`,
      );
    }
    const width = child.bitWidth / 8;
    const out = new Int32Array(count * length);
    await this.#eachBatch(start, count, async (b, first, n, at) => {
      let base = 0;
      const dataIdx = fixed ? slot.buffer + 2 : slot.buffer + 3;
      const key = `${name}@${b.startRow}`;
      if (!this.#checked.has(key)) {
        this.#nodes(b, slot, [b.rows]);
        if (fixed) {
          this.#nodes(b, slot, [b.rows, b.rows * length]);
        } else {
          const offs = await this.#int32s(
            b,
            this.#region(b, slot.buffer + 1, "row offsets", (b.rows + 1) * 4),
            0,
            b.rows + 1,
          );
          base = offs[0];
          for (let i = 1; i <= b.rows; i++) {
            if (offs[i] - offs[i - 1] !== length) {
              throw new DatasetError(
                `${this.describe}: column ${JSON.stringify(name)}, row ${b.startRow + i - 1}: ` +
                  `has ${offs[i] - offs[i - 1]} items, expected ${length}`,
              );
            }
          }
          const leaf = b.nodes[slot.node + 1];
          if (!leaf || leaf.nullCount !== 0 || base < 0 || leaf.length < base + b.rows * length) {
            throw new DatasetError(
              `${this.describe}: column ${JSON.stringify(name)}: the record batch at row ` +
                `${b.startRow} has null or missing items; the file is corrupt`,
            );
          }
        }
        this.#region(b, dataIdx, "items", (base + b.rows * length) * width);
        this.#checked.set(key, base);
      }
      base = this.#checked.get(key)!;
      const r = b.buffers[dataIdx];
      const bytes = await this.#read(
        b.bodyOffset + r.offset + (base + first * length) * width,
        n * length * width,
      );
      if (width === 4) {
        out.set(new Int32Array(bytes.buffer, 0, n * length), at * length);
      } else {
        const big = new BigInt64Array(bytes.buffer, 0, n * length);
        for (let i = 0; i < big.length; i++) {
          const v = big[i];
          if (v < -2147483648n || v > 2147483647n) {
            throw new DatasetError(
              `${this.describe}: column ${JSON.stringify(name)}, row ${
                b.startRow + first + Math.floor(i / length)
              }: value ${v} does not fit in int32`,
            );
          }
          out[at * length + i] = Number(v);
        }
      }
    });
    return out;
  }

  async #eachBatch(
    start: number,
    count: number,
    fn: (b: ArrowBatchInfo, first: number, n: number, at: number) => Promise<void>,
  ): Promise<void> {
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 ||
      start + count > this.numRows
    ) {
      throw new DatasetError(
        `${this.describe}: rows ${start}..${start + count} asked for, but the file has ` +
          `${this.numRows} rows`,
      );
    }
    let at = 0;
    for (const b of this.batches) {
      if (at === count) break;
      const end = b.startRow + b.rows;
      const row = start + at;
      if (row >= end) continue;
      const first = row - b.startRow;
      const n = Math.min(end - row, count - at);
      await fn(b, first, n, at);
      at += n;
    }
  }

  /** Closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
  size: number,
  describe: string,
  what: string,
): Promise<Uint8Array> {
  if (offset + length > size) {
    throw new DatasetError(
      `${describe} is truncated: ${what} at byte ${offset} needs ${length} bytes, but the file ` +
        `ends at byte ${size}; expected a complete Arrow IPC stream (rerun what wrote it)`,
    );
  }
  const out = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let at = 0;
  while (at < length) {
    const n = await file.read(out.subarray(at));
    if (n === null) {
      throw new DatasetError(`${describe}: the file ended at byte ${offset + at} while reading`);
    }
    at += n;
  }
  return out;
}

/** Indexes the messages of a stream: schema first, then record batches, then end of stream. */
async function scan(file: Deno.FsFile, size: number, describe: string) {
  let offset = 0;
  let fields: ArrowFieldInfo[] | null = null;
  let metadata = new Map<string, string>();
  const batches: ArrowBatchInfo[] = [];
  let rows = 0;
  const notArrow = (why: string) =>
    new DatasetError(
      `${describe} is not an Arrow IPC stream (${why}); expected a file as pyarrow's ` +
        "RecordBatchStreamWriter / datasets' save_to_disk write it",
    );
  while (true) {
    if (offset === size) {
      throw new DatasetError(
        `${describe} is truncated: it ends at byte ${size} without the end-of-stream marker ` +
          `(after ${batches.length} record batches, ${rows} rows); expected a complete Arrow IPC ` +
          "stream (rerun what wrote it)",
      );
    }
    const prefix = await readAt(
      file,
      offset,
      Math.min(8, size - offset),
      size,
      describe,
      "a message prefix",
    );
    const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
    let len: number, headerAt: number;
    if (prefix.length >= 4 && dv.getUint32(0, true) === CONTINUATION) {
      if (prefix.length < 8) {
        throw new DatasetError(
          `${describe} is truncated: a message prefix at byte ${offset} is cut off`,
        );
      }
      len = dv.getInt32(4, true);
      headerAt = offset + 8;
    } else if (prefix.length >= 4) {
      len = dv.getInt32(0, true); // legacy (pre-0.15) framing
      headerAt = offset + 4;
    } else {
      throw new DatasetError(`${describe} is truncated: ${prefix.length} stray bytes at its end`);
    }
    if (len === 0) break; // end of stream
    if (len < 0 || len > MAX_ARROW_HEADER_BYTES) {
      throw notArrow(`a message header of ${len} bytes at byte ${offset}`);
    }
    const header = await readAt(file, headerAt, len, size, describe, "a message header");
    let msg: Message;
    try {
      msg = Message.decode(header);
    } catch (err) {
      throw notArrow(`undecodable message header at byte ${offset}: ${errorMessage(err)}`);
    }
    const bodyOffset = headerAt + len;
    let bodyLength: number;
    try {
      bodyLength = msg.bodyLength;
    } catch (err) {
      throw notArrow(`message at byte ${offset}: ${errorMessage(err)}`);
    }
    if (!Number.isSafeInteger(bodyLength) || bodyLength < 0) {
      throw notArrow(`message at byte ${offset} claims a body of ${bodyLength} bytes`);
    }
    if (bodyOffset + bodyLength > size) {
      throw new DatasetError(
        `${describe} is truncated: the message at byte ${offset} needs bytes up to ` +
          `${bodyOffset + bodyLength}, but the file ends at byte ${size}; expected a complete ` +
          "Arrow IPC stream (rerun what wrote it)",
      );
    }
    try {
      if (msg.isSchema()) {
        if (fields) throw notArrow(`a second schema at byte ${offset}`);
        const s = msg.header();
        fields = s.fields.map((f) => ({
          name: f.name,
          type: f.type,
          metadata: new Map(f.metadata),
        }));
        metadata = new Map(s.metadata);
      } else if (msg.isRecordBatch()) {
        if (!fields) throw notArrow(`a record batch before the schema at byte ${offset}`);
        const h = msg.header();
        if (h.compression) {
          throw new DatasetError(
            `${describe}: record batch at byte ${offset} has a compressed body; expected ` +
              "uncompressed Arrow IPC (as datasets' save_to_disk writes)",
          );
        }
        const n = h.length;
        if (!Number.isSafeInteger(n) || n < 0) throw notArrow(`a batch of ${n} rows`);
        batches.push({
          rows: n,
          startRow: rows,
          bodyOffset,
          bodyLength,
          nodes: h.nodes.map((x) => ({ length: x.length, nullCount: x.nullCount })),
          buffers: h.buffers.map((x) => ({ offset: x.offset, length: x.length })),
        });
        rows += n;
      } else if (msg.isDictionaryBatch()) {
        throw new DatasetError(
          `${describe}: dictionary-encoded columns are not supported; expected plain columns`,
        );
      } else {
        throw notArrow(`message type ${msg.headerType} at byte ${offset}`);
      }
    } catch (err) {
      if (err instanceof DatasetError) throw err;
      throw notArrow(`message at byte ${offset}: ${errorMessage(err)}`);
    }
    offset = bodyOffset + bodyLength;
  }
  if (!fields) throw notArrow("no schema before the end of stream");
  return { fields, metadata, batches };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** One column an {@link ArrowStreamWriter} writes. */
export type ArrowColumnSpec =
  | {
    /** Column name. */
    name: string;
    /** `list<list<float32>>`, every row `shape = [rows, cols]`. */
    type: "array2d";
    /** Shape of every row. */
    shape: readonly [number, number];
    /** Field metadata (e.g. the HF `Array2D` extension type). */
    metadata?: Map<string, string>;
  }
  | {
    /** Column name. */
    name: string;
    /** `fixed_size_list<int32>[length]`. */
    type: "fixedList";
    /** Items per row. */
    length: number;
    /** Field metadata. */
    metadata?: Map<string, string>;
  };

/** The apache-arrow field of a column spec (nullable, as pyarrow writes them). */
export function arrowField(spec: ArrowColumnSpec): Field {
  if (spec.type === "array2d") {
    const mid = new List(new Field("item", new Float32(), true));
    return new Field(spec.name, new List(new Field("item", mid, true)), true, spec.metadata);
  }
  return new Field(
    spec.name,
    new FixedSizeList(spec.length, new Field("item", new Int32(), true)),
    true,
    spec.metadata,
  );
}

/** Collects what the arrow writer emits, so each batch goes to the file as it is encoded. */
class ChunkSink extends AsyncByteQueue {
  chunks: Uint8Array[] = [];
  override write(value: unknown): void {
    const v = value as ArrayBufferView;
    this.chunks.push(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
}

/**
 * Writes an Arrow IPC stream file batch by batch (see the module doc).
 */
export class ArrowStreamWriter {
  /** Rows written so far. */
  rows = 0;
  /** Bytes written so far. */
  bytes = 0;
  readonly #file: Deno.FsFile;
  readonly #writer: RecordBatchStreamWriter;
  readonly #sink: ChunkSink;
  readonly #schema: Schema;
  #done = false;

  private constructor(
    readonly path: string,
    readonly columns: readonly ArrowColumnSpec[],
    file: Deno.FsFile,
    schemaMetadata: Map<string, string>,
  ) {
    this.#file = file;
    this.#schema = new Schema(columns.map(arrowField), schemaMetadata);
    this.#sink = new ChunkSink();
    this.#writer = new RecordBatchStreamWriter();
    this.#writer.reset(this.#sink, this.#schema);
  }

  /** Creates (truncates) `path` and writes the schema. */
  static async create(
    path: string,
    columns: readonly ArrowColumnSpec[],
    schemaMetadata: Map<string, string> = new Map(),
  ): Promise<ArrowStreamWriter> {
    const names = new Set(columns.map((c) => c.name));
    if (names.size !== columns.length || columns.length === 0) {
      throw new DatasetError(`arrow writer: column names must be distinct and non-empty`);
    }
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    const w = new ArrowStreamWriter(path, columns, file, schemaMetadata);
    await w.#flush();
    return w;
  }

  async #flush(): Promise<void> {
    const chunks = this.#sink.chunks;
    this.#sink.chunks = [];
    for (const c of chunks) {
      let at = 0;
      while (at < c.length) at += await this.#file.write(c.subarray(at));
      this.bytes += c.length;
    }
  }

  /**
   * Appends one record batch of `rows` rows: for each column a row-major `Float32Array`
   * (`array2d`, rows × shape) or `Int32Array` (`fixedList`, rows × length).
   */
  async write(rows: number, data: Record<string, Float32Array | Int32Array>): Promise<void> {
    if (this.#done) throw new DatasetError(`${this.path}: write after close`);
    if (!Number.isSafeInteger(rows) || rows <= 0) {
      throw new DatasetError(`arrow writer: a batch of ${rows} rows`);
    }
    const children = this.columns.map((c) => {
      const values = data[c.name];
      if (c.type === "array2d") {
        const [r, k] = c.shape;
        if (!(values instanceof Float32Array) || values.length !== rows * r * k) {
          throw new DatasetError(
            `arrow writer: column ${c.name} needs a Float32Array of ${rows * r * k} values, got ` +
              `${values?.constructor?.name} of ${values?.length}`,
          );
        }
        const f = arrowField(c).type as List;
        const midType = f.children[0].type as List;
        const leaf = makeData({
          type: new Float32(),
          length: values.length,
          nullCount: 0,
          data: values,
        });
        const mid = makeData({
          type: midType,
          length: rows * r,
          nullCount: 0,
          valueOffsets: Int32Array.from({ length: rows * r + 1 }, (_, i) => i * k),
          child: leaf,
        });
        return makeData({
          type: f,
          length: rows,
          nullCount: 0,
          valueOffsets: Int32Array.from({ length: rows + 1 }, (_, i) => i * r),
          child: mid,
        });
      }
      if (!(values instanceof Int32Array) || values.length !== rows * c.length) {
        throw new DatasetError(
          `arrow writer: column ${c.name} needs an Int32Array of ${rows * c.length} values`,
        );
      }
      const type = arrowField(c).type as FixedSizeList;
      const leaf = makeData({
        type: new Int32(),
        length: values.length,
        nullCount: 0,
        data: values,
      });
      return makeData({ type, length: rows, nullCount: 0, child: leaf });
    });
    const struct = makeData({
      type: new Struct(this.#schema.fields),
      length: rows,
      nullCount: 0,
      children,
    });
    this.#writer.write(new RecordBatch(this.#schema, struct));
    await this.#flush();
    this.rows += rows;
  }

  /** Writes the end-of-stream marker, fsyncs and closes; returns the file size. */
  async close(): Promise<number> {
    if (this.#done) return this.bytes;
    this.#writer.finish();
    await this.#flush();
    await this.#file.sync();
    this.#file.close();
    this.#done = true;
    return this.bytes;
  }

  /** Closes without finishing and removes the file. */
  async abort(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      try {
        this.#file.close();
      } catch { /* already closed */ }
    }
    await Deno.remove(this.path).catch(() => {});
  }
}
