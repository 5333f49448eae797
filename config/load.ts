/**
 * Reading config files (`.json`, `.yaml`, `.yml`) with errors that name the file, the line and
 * what was wrong.
 * @module
 */

import YAML from "yaml";
import { ConfigError, describeValue } from "./errors.ts";
import { isPlainObject } from "./naming.ts";
import { type RunnerConfig, runnerConfigFromDict, type RunnerConfigOptions } from "./runner.ts";

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
 * Parses config text as JSON or YAML (by `format`); throws a {@link ConfigError} naming `source`
 * and, when the parser reports one, the line and column.
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
  let value: unknown;
  if (format === "json") {
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = (err as Error).message;
      const offset = jsonErrorOffset(text);
      const where = offset === null ? "" : (() => {
        const { line, col } = lineColOf(text, offset);
        return ` at line ${line}, column ${col}`;
      })();
      throw new ConfigError(`${source}: invalid JSON${where}: ${message}`, { cause: err });
    }
  } else {
    try {
      value = YAML.parse(text, { prettyErrors: false });
    } catch (err) {
      // `pos` holds source offsets; line/column are computed here (prettyErrors is off).
      const offset = (err as { pos?: [number, number] }).pos?.[0];
      const where = offset === undefined ? "" : (() => {
        const { line, col } = lineColOf(text, offset);
        return ` at line ${line}, column ${col}`;
      })();
      const message = (err as Error).message.split("\n")[0];
      throw new ConfigError(`${source}: invalid YAML${where}: ${message}`, { cause: err });
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
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(`${path}: config file not found`, { cause: err });
    }
    throw new ConfigError(`${path}: cannot read config file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfigText(text, format, path);
}

/**
 * Reads a runner config file ({@link loadConfigFile} + {@link runnerConfigFromDict}); type and
 * range errors name the file and the field.
 */
export async function loadRunnerConfig(
  path: string,
  options: RunnerConfigOptions = {},
): Promise<RunnerConfig> {
  return runnerConfigFromDict(await loadConfigFile(path), { where: path, ...options });
}
