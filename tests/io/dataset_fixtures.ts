/**
 * Small dataset files for tests and benchmarks: Parquet (hyparquet-writer, any codec), zstd and
 * gzip (node:zlib), JSON Lines. Everything is generated; nothing is downloaded.
 * @module
 */

import zlib from "node:zlib";
import { ByteWriter, parquetWrite } from "hyparquet-writer";
import { mulberry32 as rng } from "../../util/rng.ts";

const enc = new TextEncoder();

/** zstd-compresses bytes or text (a real zstd encoder: node:zlib). */
export function zstd(data: Uint8Array | string, level = 3): Uint8Array<ArrayBuffer> {
  const input = typeof data === "string" ? enc.encode(data) : data;
  const out = zlib.zstdCompressSync(input, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
}

/** gzip-compresses bytes or text. */
export function gzip(data: Uint8Array | string): Uint8Array<ArrayBuffer> {
  const input = typeof data === "string" ? enc.encode(data) : data;
  const out = zlib.gzipSync(input);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
}

/** A column of a Parquet fixture. */
export type ParquetColumn =
  | { name: string; kind: "string"; data: (string | null)[] }
  | { name: string; kind: "int32list" | "int64list"; data: number[][] }
  | { name: string; kind: "int64"; data: number[] };

/** Options of {@link parquetBytes}. */
export interface ParquetFixtureOptions {
  /** Rows per row group (default: all rows in one group). */
  rowGroupSize?: number;
  /** Codec (default SNAPPY). */
  codec?: "UNCOMPRESSED" | "SNAPPY" | "GZIP" | "ZSTD";
}

/**
 * A Parquet file with the given columns (strings as UTF8 `BYTE_ARRAY`, token lists as
 * `LIST<INT32|INT64>` in the three-level layout pyarrow writes).
 */
export function parquetBytes(
  columns: ParquetColumn[],
  opts: ParquetFixtureOptions = {},
): Uint8Array<ArrayBuffer> {
  const schema: Record<string, unknown>[] = [{ name: "root", num_children: columns.length }];
  const columnData: { name: string; data: unknown[] }[] = [];
  for (const c of columns) {
    if (c.kind === "string") {
      schema.push({
        name: c.name,
        type: "BYTE_ARRAY",
        converted_type: "UTF8",
        repetition_type: "OPTIONAL",
      });
      columnData.push({ name: c.name, data: c.data });
    } else if (c.kind === "int64") {
      schema.push({ name: c.name, type: "INT64", repetition_type: "OPTIONAL" });
      columnData.push({ name: c.name, data: c.data.map((x) => BigInt(x)) });
    } else {
      const is64 = c.kind === "int64list";
      schema.push(
        { name: c.name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: is64 ? "INT64" : "INT32", repetition_type: "OPTIONAL" },
      );
      columnData.push({
        name: c.name,
        data: c.data.map((row) => (is64 ? row.map((x) => BigInt(x)) : row)),
      });
    }
  }
  const codec = opts.codec ?? "SNAPPY";
  const compressors = {
    GZIP: (b: Uint8Array) => gzip(b),
    ZSTD: (b: Uint8Array) => zstd(b),
  };
  const writer = new ByteWriter();
  const rows = columns[0]?.data.length ?? 0;
  parquetWrite({
    writer,
    // deno-lint-ignore no-explicit-any
    columnData: columnData as any,
    // deno-lint-ignore no-explicit-any
    schema: schema as any,
    codec,
    // deno-lint-ignore no-explicit-any
    compressors: compressors as any,
    rowGroupSize: opts.rowGroupSize ?? Math.max(1, rows),
  });
  return new Uint8Array(writer.getBuffer());
}

const WORDS = [
  "the",
  "sparse",
  "autoencoder",
  "learns",
  "features",
  "from",
  "residual",
  "stream",
  "activations",
  "of",
  "a",
  "language",
  "model",
  "é",
  "数据",
  '"quoted"',
  "back\\slash",
];

/** `n` deterministic documents of 1..`maxWords` words (some non-ASCII, quotes, backslashes). */
export function sampleTexts(n: number, seed = 1, maxWords = 40): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(r() * maxWords);
    const w: string[] = [`doc${i}`];
    for (let j = 1; j < len; j++) w.push(WORDS[Math.floor(r() * WORDS.length)]);
    out.push(w.join(" "));
  }
  return out;
}

/** `n` deterministic token rows of `len` ids below `vocab`. */
export function sampleTokens(n: number, len: number, seed = 1, vocab = 50257): number[][] {
  const r = rng(seed);
  return Array.from(
    { length: n },
    () => Array.from({ length: len }, () => Math.floor(r() * vocab)),
  );
}

/** JSON Lines text of `{ [column]: value }` rows. */
export function jsonl(column: string, values: unknown[]): string {
  return values.map((v) => JSON.stringify({ [column]: v, meta: 1 })).join("\n") + "\n";
}
