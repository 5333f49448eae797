/**
 * Streaming byte and text input for dataset files: a file read in fixed-size chunks, then
 * decompressed by its extension (`.zst` through `fzstd`'s streaming decoder, `.gz` through the
 * built-in `DecompressionStream`), then decoded as strict UTF-8. Every stage holds one chunk at a
 * time, so a file of any size streams in bounded memory. Errors are {@link DatasetError}s naming
 * the file and what was expected. Works in a Web Worker (needs `--allow-read` for the file).
 * @module
 */

import { Decompress } from "fzstd";
import { DatasetError, errorMessage } from "./dataset_error.ts";

/** How a data file is compressed, from its extension. */
export type Compression = "none" | "zstd" | "gzip";

/** Default bytes per read. */
export const DEFAULT_CHUNK_BYTES: number = 1 << 20;

/**
 * The compression of `path` from its last extension (`.zst`/`.zstd` → zstd, `.gz` → gzip).
 *
 * @example
 * ```ts
 * import { compressionOf } from "./byte_stream.ts";
 * if (compressionOf("shard-0.jsonl.zst") !== "zstd") throw new Error("zst");
 * if (compressionOf("a.jsonl") !== "none") throw new Error("none");
 * ```
 */
export function compressionOf(path: string): Compression {
  const p = path.toLowerCase();
  if (p.endsWith(".zst") || p.endsWith(".zstd")) return "zstd";
  if (p.endsWith(".gz")) return "gzip";
  return "none";
}

/** Options of {@link readFileChunks} and {@link readTextChunks}. */
export interface ReadChunksOptions {
  /** Bytes per read (default 1 MiB). */
  chunkSize?: number;
  /** Stops the read (throws the signal's reason) between chunks. */
  signal?: AbortSignal;
  /** How to name the file in errors (default: the path). */
  describe?: string;
}

/**
 * Opens `path` for reading; a missing or unreadable file is a `DatasetError` naming `describe`.
 *
 * @example
 * ```ts
 * import { openDataFile } from "./byte_stream.ts";
 * import { DatasetError } from "./dataset_error.ts";
 * const file = await openDataFile("deno.json");
 * file.close();
 * const missing = await openDataFile("no/such/file.bin", "shard 3").catch((e) => e);
 * if (!(missing instanceof DatasetError) || !missing.message.startsWith("cannot open shard 3:")) {
 *   throw new Error(String(missing));
 * }
 * ```
 */
export async function openDataFile(path: string, describe: string = path): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    throw new DatasetError(`cannot open ${describe}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The bytes of a local file in chunks of at most `chunkSize` (each a fresh buffer the consumer
 * may keep). The file is closed when the iteration ends, fails or is abandoned.
 *
 * @throws {DatasetError} when the file is missing or unreadable.
 */
export async function* readFileChunks(
  path: string,
  opts: ReadChunksOptions = {},
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const describe = opts.describe ?? path;
  const size = Math.max(1, opts.chunkSize ?? DEFAULT_CHUNK_BYTES);
  const file = await openDataFile(path, describe);
  try {
    while (true) {
      opts.signal?.throwIfAborted();
      const buf = new Uint8Array(size);
      let n: number | null;
      try {
        n = await file.read(buf);
      } catch (err) {
        throw new DatasetError(`cannot read ${describe}: ${errorMessage(err)}`, { cause: err });
      }
      if (n === null) return;
      yield n === size ? buf : buf.slice(0, n);
    }
  } finally {
    file.close();
  }
}

/** Streams zstd-compressed chunks through `fzstd` (all frames of a multi-frame file). */
async function* zstdChunks(
  chunks: AsyncIterable<Uint8Array>,
  describe: string,
): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  const dec = new Decompress((data) => {
    if (data.length) out.push(data);
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      dec.push(chunk, final);
    } catch (err) {
      throw new DatasetError(
        `${describe} is not valid zstd data or is truncated (${errorMessage(err)}); expected a ` +
          `complete zstd stream`,
        { cause: err },
      );
    }
  };
  let any = false;
  for await (const chunk of chunks) {
    if (!chunk.length) continue;
    any = true;
    push(chunk, false);
    if (out.length) {
      const ready = out;
      out = [];
      yield* ready;
    }
  }
  if (!any) {
    throw new DatasetError(`${describe} is empty; expected a zstd stream`);
  }
  push(new Uint8Array(0), true);
  yield* out;
}

/** Streams gzip-compressed chunks through the built-in `DecompressionStream`. */
async function* gzipChunks(
  chunks: AsyncIterable<Uint8Array>,
  describe: string,
): AsyncGenerator<Uint8Array> {
  const stream = ReadableStream.from(chunks as AsyncIterable<Uint8Array<ArrayBuffer>>)
    .pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  try {
    while (true) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        if (err instanceof DatasetError) throw err;
        throw new DatasetError(
          `${describe} is not valid gzip data or is truncated (${errorMessage(err)}); expected ` +
            `a complete gzip stream`,
          { cause: err },
        );
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Decompresses a chunk stream (identity for `"none"`).
 *
 * @throws {DatasetError} on corrupt or truncated compressed data.
 */
export function decompressChunks(
  chunks: AsyncIterable<Uint8Array>,
  compression: Compression,
  describe: string,
): AsyncIterable<Uint8Array> {
  if (compression === "zstd") return zstdChunks(chunks, describe);
  if (compression === "gzip") return gzipChunks(chunks, describe);
  return chunks;
}

/**
 * Decodes UTF-8 chunks to strings (strict: invalid bytes are an error, as Python's `"utf-8"`
 * codec; a byte-order mark is kept as `\ufeff`, as Python's `"utf-8"` codec keeps it).
 *
 * @throws {DatasetError} on invalid UTF-8.
 */
export async function* decodeUtf8(
  chunks: AsyncIterable<Uint8Array>,
  describe: string,
): AsyncGenerator<string> {
  const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let offset = 0;
  const decode = (chunk?: Uint8Array) => {
    try {
      return chunk ? dec.decode(chunk, { stream: true }) : dec.decode();
    } catch (err) {
      throw new DatasetError(
        `${describe} is not valid UTF-8 text (within the bytes ${offset}..${
          offset + (chunk?.length ?? 0)
        } of its decompressed content); expected UTF-8`,
        { cause: err },
      );
    }
  };
  for await (const chunk of chunks) {
    const s = decode(chunk);
    offset += chunk.length;
    if (s) yield s;
  }
  const tail = decode();
  if (tail) yield tail;
}

/**
 * The decompressed, decoded text of a local file, chunk by chunk (compression from the
 * extension, see {@link compressionOf}).
 *
 * @example
 * ```ts
 * import { readTextChunks } from "./byte_stream.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "héllo\nworld\n");
 * let text = "";
 * for await (const s of readTextChunks(`${dir}/a.txt`, { chunkSize: 3 })) text += s;
 * if (text !== "héllo\nworld\n") throw new Error(text);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readTextChunks(path: string, opts: ReadChunksOptions = {}): AsyncIterable<string> {
  const describe = opts.describe ?? path;
  return decodeUtf8(
    decompressChunks(readFileChunks(path, opts), compressionOf(path), describe),
    describe,
  );
}
