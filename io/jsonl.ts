/**
 * Rows of a JSON data file, streamed chunk by chunk, as Hugging Face `datasets`' `"json"`
 * builder reads them: JSON Lines (one object per line; blank lines skipped; `\r\n` accepted), or
 * — when the first non-blank character is `[` — one top-level array of objects, split element by
 * element without holding the whole array in memory. A leading byte-order mark is ignored.
 * Every row must be a JSON object; anything else is a {@link DatasetError} naming the file and
 * the line (or array element), thrown after the rows before it were yielded.
 * @module
 */

import { DatasetError, errorMessage } from "./dataset_error.ts";
import { MAX_ROW_CHARS, rowTooLong } from "./text_lines.ts";

/** Options of {@link jsonRows}. */
export interface JsonRowsOptions {
  /** Longest line / array element allowed (default 2^28 characters, `MAX_ROW_CHARS`). */
  maxRowChars?: number;
}

/** One JSON row object. */
export type JsonRow = Record<string, unknown>;

/** A batch of rows and where each came from (1-based line, or array element index). */
export interface JsonRowBatch {
  /** Parsed rows. */
  rows: JsonRow[];
  /** For each row: its 1-based line number (JSON Lines) or its 0-based array element index. */
  where: number[];
  /** `"line"` for JSON Lines, `"element"` for a top-level array. */
  whereKind: "line" | "element";
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function asRow(v: unknown, describe: string, where: string): JsonRow {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new DatasetError(
      `${describe}${where} is a JSON ${kindOf(v)}; expected a JSON object (one row with named ` +
        `columns, e.g. {"text": "..."})`,
    );
  }
  return v as JsonRow;
}

function parseRow(text: string, describe: string, where: string): JsonRow {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const shown = text.length > 80 ? text.slice(0, 77) + "..." : text;
    throw new DatasetError(
      `${describe}${where}: malformed JSON (${errorMessage(err)}) in ${JSON.stringify(shown)}; ` +
        `expected one JSON object per line`,
      { cause: err },
    );
  }
  return asRow(v, describe, where);
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Splits a top-level JSON array into its element texts as chunks arrive (tracks strings,
 * escapes and nesting; the elements themselves are parsed by `JSON.parse`).
 */
class JsonArraySplitter {
  #buf = "";
  #pos = 0; // next char of #buf to scan
  #start = -1; // start of the current element in #buf (-1 before '[')
  #depth = 0;
  #inStr = false;
  #esc = false;
  #done = false;
  #count = 0;
  constructor(readonly describe: string, readonly maxRowChars: number) {}

  /** Element texts completed by `chunk`. */
  feed(chunk: string): string[] {
    const out: string[] = [];
    this.#buf += chunk;
    const b = this.#buf;
    let i = this.#pos;
    if (this.#start < 0) {
      while (i < b.length && WS.has(b.charCodeAt(i))) i++;
      if (i === b.length) {
        this.#buf = "";
        this.#pos = 0;
        return out;
      }
      if (b[i] !== "[") throw new DatasetError(`${this.describe}: expected a JSON array`);
      this.#start = ++i;
    }
    for (; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (this.#done) {
        if (!WS.has(c)) {
          throw new DatasetError(
            `${this.describe}: unexpected data after the closing "]" of the top-level JSON ` +
              `array (after element ${this.#count - 1}); expected one JSON array of objects`,
          );
        }
        continue;
      }
      if (this.#inStr) {
        if (this.#esc) this.#esc = false;
        else if (c === 0x5c) this.#esc = true;
        else if (c === 0x22) this.#inStr = false;
        continue;
      }
      if (c === 0x22) this.#inStr = true;
      else if (c === 0x7b || c === 0x5b) this.#depth++;
      else if (c === 0x7d || (c === 0x5d && this.#depth > 0)) this.#depth--;
      else if (this.#depth === 0 && (c === 0x2c || c === 0x5d)) {
        const text = b.slice(this.#start, i).trim();
        if (text.length === 0 && (c === 0x2c || this.#count > 0)) {
          throw new DatasetError(
            `${this.describe}: malformed JSON array (empty element ${this.#count}); expected ` +
              `objects separated by commas`,
          );
        }
        if (text.length) {
          out.push(text);
          this.#count++;
        }
        this.#start = i + 1;
        if (c === 0x5d) this.#done = true;
      }
    }
    // Keep only the unfinished element.
    this.#buf = this.#done ? "" : b.slice(this.#start);
    if (this.#buf.length > this.maxRowChars) {
      throw rowTooLong(this.describe, "JSON array element", this.maxRowChars);
    }
    this.#pos = this.#buf.length;
    this.#start = this.#done ? this.#start : 0;
    return out;
  }

  /** Checks the array was closed. */
  end(): void {
    if (this.#start < 0) throw new DatasetError(`${this.describe}: expected a JSON array`);
    if (!this.#done) {
      throw new DatasetError(
        `${this.describe}: the top-level JSON array is not closed (truncated file?) after ` +
          `${this.#count} complete elements; expected a final "]"`,
      );
    }
  }
}

/**
 * Parses decoded text chunks of a `.json`/`.jsonl` file into row batches (one batch per chunk
 * that completes rows).
 *
 * @throws {DatasetError} on a malformed line (with its line number), a row that is not an
 * object, or a truncated top-level array.
 *
 * @example
 * ```ts
 * import { jsonRows } from "./jsonl.ts";
 * async function* chunks() { yield '{"text": "a"}\n\n{"te'; yield 'xt": "b"}\n'; }
 * const rows = [];
 * for await (const b of jsonRows(chunks(), "x.jsonl")) rows.push(...b.rows.map((r) => r.text));
 * if (rows.join() !== "a,b") throw new Error(rows.join());
 * async function* arr() { yield '[{"text": "a, ]"},'; yield ' {"text": "b"}]'; }
 * const items = [];
 * for await (const b of jsonRows(arr(), "x.json")) items.push(...b.rows.map((r) => r.text));
 * if (items.join("|") !== "a, ]|b") throw new Error(items.join("|"));
 * ```
 */
export async function* jsonRows(
  chunks: AsyncIterable<string>,
  describe: string,
  opts: JsonRowsOptions = {},
): AsyncGenerator<JsonRowBatch> {
  const max = opts.maxRowChars ?? MAX_ROW_CHARS;
  let mode: "unknown" | "lines" | "array" = "unknown";
  let carry = "";
  let line = 0; // lines completed so far
  let splitter: JsonArraySplitter | undefined;
  let element = 0;
  let first = true;
  for await (let chunk of chunks) {
    if (first && chunk.length) {
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      first = false;
    }
    if (mode === "unknown") {
      const t = (carry + chunk).trimStart();
      if (!t.length) {
        if (carry.length + chunk.length > max) throw rowTooLong(describe, "blank prefix", max);
        carry += chunk; // only blanks so far (kept: they count as lines)
        continue;
      }
      mode = t[0] === "[" ? "array" : "lines";
      if (mode === "array") {
        splitter = new JsonArraySplitter(describe, max);
        chunk = carry + chunk;
        carry = "";
      }
    }
    if (mode === "array") {
      const texts = splitter!.feed(chunk);
      const rows: JsonRow[] = [];
      const where: number[] = [];
      let failure: unknown;
      for (const t of texts) {
        try {
          rows.push(parseRow(t, describe, ` element ${element}`));
        } catch (err) {
          failure = err;
          break;
        }
        where.push(element++);
      }
      // The rows before a bad one are delivered first, then the error.
      if (rows.length) yield { rows, where, whereKind: "element" };
      if (failure) throw failure;
      continue;
    }
    if (chunk.indexOf("\n") < 0) {
      if (carry.length + chunk.length > max) throw rowTooLong(describe, "JSON line", max);
      carry += chunk; // no line completed: no rescan of a long line
      continue;
    }
    const text = carry + chunk;
    const lines = text.split("\n");
    carry = lines.pop()!;
    if (carry.length > max) throw rowTooLong(describe, "JSON line", max);
    const rows: JsonRow[] = [];
    const where: number[] = [];
    let failure: unknown;
    for (const l of lines) {
      line++;
      if (l.trim().length === 0) continue;
      try {
        rows.push(parseRow(l, describe, `:${line}`));
      } catch (err) {
        failure = err;
        break;
      }
      where.push(line);
    }
    // The rows before a bad line are delivered first, then the error.
    if (rows.length) yield { rows, where, whereKind: "line" };
    if (failure) throw failure;
  }
  if (mode === "array") {
    splitter!.end();
    return;
  }
  if (carry.trim().length) {
    line++;
    yield { rows: [parseRow(carry, describe, `:${line}`)], where: [line], whereKind: "line" };
  }
}
