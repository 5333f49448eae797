/**
 * Reading config files (`.json`, `.yaml`, `.yml`) with errors that name the file, the line and
 * what was wrong.
 * @module
 */

import YAML, { isMap, isScalar, isSeq, type Node as YamlNode } from "yaml";
import { ConfigError, describeValue } from "./errors.ts";
import { isPlainObject } from "./naming.ts";
import { regularFileSize } from "../util/files.ts";

function lineColOf(text: string, position: number): { line: number; col: number } {
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  return { line, col: position - before.lastIndexOf("\n") };
}

/**
 * Offset of the first syntax error in JSON `text` (V8's messages don't always carry one), found
 * by a small recursive-descent scan; null if the scan finds none.
 */
function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/;
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === "{") {
          ws();
          if (text[i] !== '"') fail();
          value();
          ws();
          if (text[i] !== ":") fail();
          i++;
        }
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\") i++;
        else if (text[i] < " ") fail();
      }
      if (i >= text.length) fail();
      return void i++;
    }
    const m = literal.exec(text.slice(i));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    return i < text.length ? i : null;
  } catch (pos) {
    return typeof pos === "number" ? Math.min(pos, text.length) : null;
  }
}

/**
 * Largest config text accepted, in bytes (1 MiB; SAELens configs are a few KB). Bigger input is
 * refused before parsing, so a hostile file cannot hold the event loop for long.
 */
export const MAX_CONFIG_BYTES = 1 << 20;

/** Deepest nesting of mappings and lists accepted in a config. */
export const MAX_CONFIG_DEPTH = 64;

function whereOf(text: string, offset: number | undefined): string {
  if (offset === undefined) return "";
  const { line, col } = lineColOf(text, offset);
  return ` at line ${line}, column ${col}`;
}

/**
 * Duplicate keys of every mapping of a YAML document, found in linear time (the yaml package's
 * own `uniqueKeys` check compares every pair of keys: a 1 MB file took minutes), and nesting
 * deeper than {@link MAX_CONFIG_DEPTH}.
 */
function checkYamlStructure(root: unknown, text: string, source: string): void {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth >= MAX_CONFIG_DEPTH) {
      const at = whereOf(text, (node as YamlNode).range?.[0]);
      throw new ConfigError(
        `${source}: nested deeper than ${MAX_CONFIG_DEPTH} levels${at}, expected a flat config`,
      );
    }
    if (isSeq(node)) {
      for (const item of node.items) stack.push([item, depth + 1]);
      continue;
    }
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = pair.key;
      const name = isScalar(key) ? `${typeof key.value}:${String(key.value)}` : String(key);
      if (seen.has(name)) {
        const at = whereOf(text, (key as YamlNode | null)?.range?.[0]);
        throw new ConfigError(
          `${source}: invalid YAML${at}: duplicate key ${
            JSON.stringify(isScalar(key) ? String(key.value) : String(key))
          } (map keys must be unique)`,
        );
      }
      seen.add(name);
      stack.push([pair.value, depth + 1]);
    }
  }
}

/** Throws when a parsed JSON value nests deeper than {@link MAX_CONFIG_DEPTH}. */
function checkJsonDepth(root: unknown, source: string): void {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= MAX_CONFIG_DEPTH) {
      throw new ConfigError(
        `${source}: nested deeper than ${MAX_CONFIG_DEPTH} levels, expected a flat config`,
      );
    }
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
}

/**
 * Parses config text as JSON or YAML (by `format`); throws a {@link ConfigError} naming `source`
 * and, when the parser reports one, the line and column. Text over {@link MAX_CONFIG_BYTES},
 * duplicate YAML keys and nesting deeper than {@link MAX_CONFIG_DEPTH} are refused; parsing is
 * linear in the size.
 *
 * @example
 * ```ts
 * import { parseConfigText } from "./load.ts";
 * const cfg = parseConfigText("d_in: 768\nlr: 3e-4\n", "yaml", "inline");
 * if (cfg.d_in !== 768 || cfg.lr !== 3e-4) throw new Error();
 * ```
 */
export function parseConfigText(
  text: string,
  format: "json" | "yaml",
  source: string,
): Record<string, unknown> {
  if (typeof text !== "string") {
    throw new ConfigError(`${source}: the config text is ${typeof text}, expected a string`);
  }
  if (format !== "json" && format !== "yaml") {
    throw new ConfigError(`${source}: format ${describeValue(format)}, expected "json" or "yaml"`);
  }
  // UTF-16 length ≤ UTF-8 bytes ≤ 3 × length: check the cheap bound first.
  const bytes = text.length > MAX_CONFIG_BYTES / 3 ? new TextEncoder().encode(text).length : 0;
  if (bytes > MAX_CONFIG_BYTES) {
    throw new ConfigError(
      `${source}: the config is ${bytes} bytes, more than the ${MAX_CONFIG_BYTES} bytes ` +
        "(1 MiB) a config may have",
    );
  }
  let value: unknown;
  if (format === "json") {
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = (err as Error).message;
      let offset: number | null = null;
      try {
        offset = jsonErrorOffset(text);
      } catch {
        // Nesting too deep for the scan's recursion: report without a position.
      }
      throw new ConfigError(
        `${source}: invalid JSON${whereOf(text, offset ?? undefined)}: ${message}`,
        { cause: err },
      );
    }
    checkJsonDepth(value, source);
  } else {
    const fail = (err: unknown, offset: number | undefined): never => {
      let message = (err as Error).message.split("\n")[0];
      if (err instanceof RangeError || /call stack/i.test(message)) {
        message = `nested too deeply to parse (${message}); expected a flat config`;
      }
      throw new ConfigError(`${source}: invalid YAML${whereOf(text, offset)}: ${message}`, {
        cause: err,
      });
    };
    let doc: ReturnType<typeof YAML.parseDocument>;
    try {
      doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: false });
    } catch (err) {
      // `pos` holds source offsets; line/column are computed here (prettyErrors is off).
      return fail(err, (err as { pos?: [number, number] }).pos?.[0]);
    }
    if (doc.errors.length) fail(doc.errors[0], doc.errors[0].pos?.[0]);
    checkYamlStructure(doc.contents, text, source);
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      fail(err, (err as { pos?: [number, number] }).pos?.[0]);
    }
  }
  if (!isPlainObject(value)) {
    throw new ConfigError(
      `${source}: the top level is ${describeValue(value)}, expected a mapping of settings`,
    );
  }
  return value;
}

/**
 * Reads a `.json`, `.yaml` or `.yml` config file into a plain dict (keys as written). Missing
 * files, unreadable files, unknown extensions and parse errors throw a {@link ConfigError} naming
 * the path (and the line for parse errors).
 *
 * @example
 * ```ts
 * import { loadConfigFile } from "./load.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/cfg.json`, '{"d_in": 4}');
 * const cfg = await loadConfigFile(`${dir}/cfg.json`);
 * if (cfg.d_in !== 4) throw new Error();
 * ```
 */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const ext = /\.([A-Za-z]+)$/.exec(path)?.[1]?.toLowerCase();
  const format = ext === "json" ? "json" : ext === "yaml" || ext === "yml" ? "yaml" : null;
  if (format === null) {
    throw new ConfigError(`${path}: unknown config file type, expected .json, .yaml or .yml`);
  }
  // A FIFO would block the read forever; a huge file is refused before it is read.
  await regularFileSize(path, (m, cause) => new ConfigError(m, { cause }), MAX_CONFIG_BYTES);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfigText(text, format, path);
}
