/**
 * Rows of a plain-text file exactly as Hugging Face `datasets`' `"text"` builder makes them
 * (`keep_linebreaks=False`), streamed chunk by chunk:
 * - universal newlines first: `\r\n` and a lone `\r` both become `\n` (Python's text mode);
 * - `"line"`: one row per line, without its `\n`; empty lines are rows (`""`); no row after a
 *   final `\n`;
 * - `"paragraph"`: the text split on `"\n\n"`, empty pieces dropped (a paragraph keeps a leading
 *   `\n` when three newlines separate it, and the last one keeps its trailing `\n`);
 * - `"document"`: the whole file is one row (also when empty) — the only mode that holds a whole
 *   file in memory, by definition.
 * @module
 */

import { DatasetError } from "./dataset_error.ts";

/** How a `.txt` file is cut into rows (Hugging Face's `sample_by`). */
export type TextSampleBy = "line" | "paragraph" | "document";

/**
 * Longest row (in UTF-16 code units) the readers build: 2^28, half of V8's string limit. A
 * longer line, paragraph or document is a {@link DatasetError}, not an engine crash.
 */
export const MAX_ROW_CHARS: number = 2 ** 28;

/** Options of {@link textRows}. */
export interface TextRowsOptions {
  /** Longest row allowed (default {@link MAX_ROW_CHARS}). */
  maxRowChars?: number;
  /** Names the file in errors. */
  describe?: string;
}

/** The error for a row longer than `max` characters. */
export function rowTooLong(describe: string, what: string, max: number): DatasetError {
  return new DatasetError(
    `${describe}: a ${what} longer than ${max} characters; saeflow holds one row in one string ` +
      `(split such data into smaller rows)`,
  );
}

/** Converts `\r\n` and lone `\r` to `\n` across chunk boundaries. */
function newlineNormalizer(): (chunk: string) => string {
  let pendingCr = false;
  return (chunk) => {
    let s = chunk;
    if (pendingCr && s.charCodeAt(0) === 10) s = s.slice(1);
    pendingCr = s.charCodeAt(s.length - 1) === 13;
    return s.indexOf("\r") < 0 ? s : s.replace(/\r\n?/g, "\n");
  };
}

/**
 * Cuts decoded text chunks into rows; yields them in batches (one batch per input chunk that
 * completes at least one row).
 *
 * @example
 * ```ts
 * import { textRows } from "./text_lines.ts";
 * async function* chunks() { yield "a\r\nb\n\nc\n\n"; yield "\nd"; }
 * const rows: string[] = [];
 * for await (const b of textRows(chunks(), "line")) rows.push(...b);
 * if (JSON.stringify(rows) !== '["a","b","","c","","","d"]') throw new Error(String(rows));
 * const paras: string[] = [];
 * for await (const b of textRows(chunks(), "paragraph")) paras.push(...b);
 * if (JSON.stringify(paras) !== '["a\\nb","c","\\nd"]') throw new Error(String(paras));
 * ```
 */
export async function* textRows(
  chunks: AsyncIterable<string>,
  sampleBy: TextSampleBy = "line",
  opts: TextRowsOptions = {},
): AsyncGenerator<string[]> {
  const max = opts.maxRowChars ?? MAX_ROW_CHARS;
  const describe = opts.describe ?? "text file";
  const normalize = newlineNormalizer();
  if (sampleBy === "document") {
    const parts: string[] = [];
    let total = 0;
    for await (const c of chunks) {
      const s = normalize(c);
      total += s.length;
      if (total > max) throw rowTooLong(describe, "document", max);
      parts.push(s);
    }
    yield [parts.join("")];
    return;
  }
  const sep = sampleBy === "line" ? "\n" : "\n\n";
  let carry = "";
  for await (const c of chunks) {
    const s = normalize(c);
    // A chunk that completes no row only grows the carry (no rescan of a long line).
    if (s.indexOf(sep) < 0 && !(sep === "\n\n" && s[0] === "\n" && carry.endsWith("\n"))) {
      if (carry.length + s.length > max) throw rowTooLong(describe, sampleBy, max);
      carry += s;
      continue;
    }
    const text = carry + s;
    const pieces = text.split(sep);
    carry = pieces.pop()!;
    if (carry.length > max || pieces.some((p) => p.length > max)) {
      throw rowTooLong(describe, sampleBy, max);
    }
    if (sampleBy === "paragraph") {
      const kept = pieces.filter((p) => p.length > 0);
      if (kept.length) yield kept;
    } else if (pieces.length) {
      yield pieces;
    }
  }
  if (carry.length) yield [carry];
}
