/**
 * Parquet data files through `hyparquet`, read row group by row group with byte-range reads of a
 * local file: the footer first, then only the chosen column's chunk of one row group at a time,
 * so a shard of any size is never in memory as a whole. Every codec (`hyparquet-compressors`:
 * snappy, gzip, zstd, brotli, lz4). Strings come back as JS strings, `list<int32>` as number
 * arrays and `list<int64>` as bigint arrays. Failures (not Parquet, truncated, corrupt pages)
 * are {@link DatasetError}s naming the file. Works in a Web Worker (`--allow-read`).
 * @module
 */

import { parquetMetadataAsync, parquetRead, parquetSchema } from "hyparquet";
import type { AsyncBuffer, FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { DatasetError, errorMessage } from "./dataset_error.ts";
import { openDataFile } from "./byte_stream.ts";

/** An `AsyncBuffer` over an open local file: serialized seek + read per byte range. */
class FileRanges implements AsyncBuffer {
  #queue: Promise<unknown> = Promise.resolve();
  constructor(
    readonly file: Deno.FsFile,
    readonly byteLength: number,
    readonly describe: string,
  ) {}

  slice(start: number, end: number = this.byteLength): Promise<ArrayBuffer> {
    const run = async () => {
      if (!(start >= 0 && end <= this.byteLength && start <= end)) {
        throw new DatasetError(
          `${this.describe}: Parquet metadata points at bytes ${start}..${end} outside the ` +
            `file (${this.byteLength} bytes); the file is corrupt or truncated`,
        );
      }
      const out = new Uint8Array(end - start);
      await this.file.seek(start, Deno.SeekMode.Start);
      let off = 0;
      while (off < out.length) {
        const n = await this.file.read(out.subarray(off));
        if (n === null) {
          throw new DatasetError(
            `${this.describe}: the file ended at byte ${start + off} while ${this.byteLength} ` +
              `were expected (it changed while being read)`,
          );
        }
        off += n;
      }
      return out.buffer;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }
}

function wrap(err: unknown, describe: string, what: string): DatasetError {
  if (err instanceof DatasetError) return err;
  return new DatasetError(
    `${describe} is not a readable Parquet file (${what}: ${errorMessage(err)}); the file is ` +
      `corrupt or truncated, expected a complete Parquet file`,
    { cause: err },
  );
}

/**
 * One open Parquet file. Close it (`close()` or `using`) when done.
 *
 * @example
 * ```ts
 * import { ByteWriter, parquetWrite } from "hyparquet-writer";
 * import { ParquetFile } from "./parquet.ts";
 * const w = new ByteWriter();
 * parquetWrite({ writer: w, columnData: [{ name: "text", data: ["a", "b", "c"] }], rowGroupSize: 2 });
 * const path = await Deno.makeTempFile({ suffix: ".parquet" });
 * await Deno.writeFile(path, new Uint8Array(w.getBuffer()));
 * using pq = await ParquetFile.open(path);
 * const texts = [];
 * for await (const batch of pq.rows("text", 1)) texts.push(...batch);
 * if (pq.rowGroupRows.join() !== "2,1" || texts.join() !== "b,c") throw new Error(texts.join());
 * pq.close();
 * await Deno.remove(path);
 * ```
 */
export class ParquetFile implements Disposable {
  /** Rows in each row group, in file order. */
  readonly rowGroupRows: number[];
  /** Total rows. */
  readonly numRows: number;
  /** Top-level column names, in schema order. */
  readonly columns: string[];
  #closed = false;

  private constructor(
    readonly path: string,
    readonly describe: string,
    private readonly ranges: FileRanges,
    readonly metadata: FileMetaData,
  ) {
    this.rowGroupRows = metadata.row_groups.map((g, i) => {
      const n = Number(g.num_rows);
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new DatasetError(`${describe}: row group ${i} claims ${g.num_rows} rows`);
      }
      return n;
    });
    this.numRows = this.rowGroupRows.reduce((a, b) => a + b, 0);
    this.columns = parquetSchema(metadata).children.map((c) => c.element.name);
  }

  /**
   * Opens `path` and reads its footer (metadata) only.
   *
   * @throws {DatasetError} when the file is missing, not Parquet, or its footer is corrupt.
   */
  static async open(path: string, describe = path): Promise<ParquetFile> {
    const file = await openDataFile(path, describe);
    try {
      const size = (await file.stat()).size;
      if (size < 12) {
        throw new DatasetError(
          `${describe} is ${size} bytes long, too short for a Parquet file (at least 12 bytes: ` +
            `"PAR1", footer, "PAR1"); the file is truncated or not Parquet`,
        );
      }
      const ranges = new FileRanges(file, size, describe);
      let metadata: FileMetaData;
      try {
        metadata = await parquetMetadataAsync(ranges);
      } catch (err) {
        throw wrap(err, describe, "footer");
      }
      try {
        return new ParquetFile(path, describe, ranges, metadata);
      } catch (err) {
        throw wrap(err, describe, "schema");
      }
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * The values of `column` for rows `[rowStart, rowEnd)` of the file (only the row groups that
   * overlap the range are read).
   *
   * @throws {DatasetError} on a bad range or a corrupt or truncated column chunk.
   */
  async readRange(column: string, rowStart: number, rowEnd: number): Promise<unknown[]> {
    if (this.#closed) throw new DatasetError(`${this.describe} was closed`);
    if (!this.columns.includes(column)) {
      throw new DatasetError(
        `${this.describe} has no column ${JSON.stringify(column)} (columns: ` +
          `${JSON.stringify(this.columns)})`,
      );
    }
    if (!(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= this.numRows)) {
      throw new DatasetError(
        `${this.describe}: rows ${rowStart}..${rowEnd} are outside its ${this.numRows} rows`,
      );
    }
    if (rowStart === rowEnd) return [];
    let out: unknown[] = [];
    try {
      await parquetRead({
        file: this.ranges,
        metadata: this.metadata,
        columns: [column],
        rowStart,
        rowEnd,
        compressors,
        onComplete: (rows: unknown[][]) => {
          out = rows.map((r) => r[0]);
        },
      });
    } catch (err) {
      throw wrap(err, this.describe, `rows ${rowStart}..${rowEnd} of column ${column}`);
    }
    if (out.length !== rowEnd - rowStart) {
      throw new DatasetError(
        `${this.describe}: rows ${rowStart}..${rowEnd} gave ${out.length} values of column ` +
          `${JSON.stringify(column)} where its metadata promises ${rowEnd - rowStart}; the file ` +
          `is corrupt`,
      );
    }
    return out;
  }

  /**
   * The values of `column` from row `startRow` on, one row group per batch; whole row groups
   * before `startRow` are skipped by their metadata row counts (never read).
   *
   * @throws {DatasetError} when `startRow` is past the end of the file.
   */
  async *rows(column: string, startRow = 0): AsyncGenerator<unknown[]> {
    if (startRow > this.numRows) {
      throw new DatasetError(
        `${this.describe} has ${this.numRows} rows; cannot start at row ${startRow}`,
      );
    }
    let groupStart = 0;
    for (const n of this.rowGroupRows) {
      const groupEnd = groupStart + n;
      if (groupEnd > startRow) {
        const values = await this.readRange(column, Math.max(startRow, groupStart), groupEnd);
        if (values.length) yield values;
      }
      groupStart = groupEnd;
    }
  }

  /** Closes the file (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ranges.file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
