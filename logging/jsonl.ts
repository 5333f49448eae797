/**
 * The JSONL metrics file: one JSON object per `log`, `eval`, `checkpoint` and `end` event, so a
 * run's metrics can be read back without W&B (`pandas.read_json(path, lines=True)`).
 *
 * Each line holds `event` (`log`|`eval`|`checkpoint`|`end`), `sae` (when the event names one),
 * `step` (log/eval), `tokens` (n_training_samples), `time` (Unix seconds, millisecond precision),
 * then the event's values under SAELens's log-dict keys as they are (`losses/mse_loss`,
 * `metrics/l0`, `plots/feature_density_line_chart` as a list, …); checkpoint lines carry `name`
 * and `path`; an `end` event writes one line per SAE with its final values. A value whose key is
 * one of those field names is left out.
 *
 * JSON has no NaN or infinities: non-finite numbers are written as the strings `"NaN"`,
 * `"Infinity"` and `"-Infinity"` (pandas and Python's `float()` read them back).
 *
 * The file is opened when the sink is created (an unwritable path is a {@link LoggingError}
 * then, before any training), appended to through one file handle (a resumed run continues the
 * same file), written in batches (at least every `flushIntervalMs`, and at every checkpoint and
 * at `end`), and flushed on close.
 * @module
 */

import { dirname } from "../util/path.ts";
import { type CloseInfo, LoggingError, type LogSink, type MetricsEvent } from "./types.ts";

/** Options of {@link JsonlSink}. */
export interface JsonlOptions {
  /** The metrics file (created with its parent folders if missing). */
  path: string;
  /** Append to an existing file (default true); false truncates it. */
  append?: boolean;
  /** Wall clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  /** Write once this many bytes are pending (default 64 KiB). */
  flushBytes?: number;
  /** Write pending lines at the next event after this long (default 1000 ms). */
  flushIntervalMs?: number;
}

const RESERVED = new Set(["event", "sae", "step", "tokens", "time", "name", "path"]);

function nonFinite(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}

/**
 * One JSONL line (with its newline) for a record; non-finite numbers become strings.
 *
 * @example
 * ```ts
 * import { jsonlLine } from "./jsonl.ts";
 * const line = jsonlLine({ "losses/mse_loss": NaN, "metrics/l0": [1, Infinity] });
 * if (line !== '{"losses/mse_loss":"NaN","metrics/l0":[1,"Infinity"]}\n') throw new Error(line);
 * ```
 */
export function jsonlLine(record: Record<string, unknown>): string {
  return JSON.stringify(record, nonFinite) + "\n";
}

/**
 * The JSONL metrics sink (see the module doc).
 *
 * @example
 * ```ts
 * import { JsonlSink } from "./jsonl.ts";
 * const path = `${await Deno.makeTempDir()}/metrics.jsonl`;
 * const sink = new JsonlSink({ path, now: () => 1_700_000_000_000 });
 * sink.write({ type: "log", sae: "a", step: 9, tokens: 40960, values: { "metrics/l0": 31.5 } });
 * await sink.close({ exitCode: 0 });
 * const text = await Deno.readTextFile(path);
 * if (text !== '{"event":"log","sae":"a","step":9,"tokens":40960,"time":1700000000,"metrics/l0":31.5}\n') {
 *   throw new Error(text);
 * }
 * ```
 */
export class JsonlSink implements LogSink {
  readonly name = "jsonl";
  /** The file's path. */
  readonly path: string;
  #file: Deno.FsFile | null;
  #pending: string[] = [];
  #pendingBytes = 0;
  #lastFlush: number;
  readonly #now: () => number;
  readonly #flushBytes: number;
  readonly #flushMs: number;
  readonly #encoder = new TextEncoder();

  /** Opens (creates) the file now; throws a {@link LoggingError} if it cannot. */
  constructor(options: JsonlOptions) {
    this.path = options.path;
    this.#now = options.now ?? Date.now;
    this.#flushBytes = options.flushBytes ?? 64 * 1024;
    this.#flushMs = options.flushIntervalMs ?? 1000;
    try {
      const dir = dirname(options.path);
      if (dir !== "" && dir !== ".") Deno.mkdirSync(dir, { recursive: true });
      const append = options.append ?? true;
      this.#file = Deno.openSync(options.path, {
        write: true,
        create: true,
        append,
        truncate: !append,
      });
    } catch (e) {
      throw new LoggingError(
        `metrics file ${options.path} cannot be created (${
          e instanceof Error ? e.message : String(e)
        }); expected a writable file path`,
        { cause: e },
      );
    }
    this.#lastFlush = this.#now();
  }

  /** Queues the event's line(s); writes when enough is pending, at checkpoints and at `end`. */
  write(event: MetricsEvent): void {
    if (this.#file === null) return;
    const time = this.#now() / 1000;
    switch (event.type) {
      case "log":
      case "eval":
        this.#queue(
          { event: event.type, sae: event.sae, step: event.step, tokens: event.tokens, time },
          event.values,
        );
        break;
      case "checkpoint":
        this.#queue({
          event: "checkpoint",
          ...(event.sae === undefined ? {} : { sae: event.sae }),
          name: event.name,
          path: event.path,
          tokens: event.tokens,
          time,
        });
        break;
      case "end": {
        const entries = Object.entries(event.values ?? {});
        if (entries.length === 0) this.#queue({ event: "end", tokens: event.tokens, time });
        for (const [sae, values] of entries) {
          this.#queue({ event: "end", sae, tokens: event.tokens, time }, values);
        }
        break;
      }
      default:
        return;
    }
    if (
      event.type === "checkpoint" || event.type === "end" ||
      this.#pendingBytes >= this.#flushBytes || this.#now() - this.#lastFlush >= this.#flushMs
    ) this.flush();
  }

  /** Writes every pending line to the file now. */
  flush(): void {
    if (this.#file === null || this.#pending.length === 0) return;
    let bytes = this.#encoder.encode(this.#pending.join(""));
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lastFlush = this.#now();
    while (bytes.length > 0) bytes = bytes.subarray(this.#file.writeSync(bytes));
  }

  /** Flushes and closes the file. */
  close(_info?: CloseInfo): Promise<void> {
    if (this.#file !== null) {
      try {
        this.flush();
      } finally {
        this.#file.close();
        this.#file = null;
      }
    }
    return Promise.resolve();
  }

  #queue(fields: Record<string, unknown>, values: Record<string, unknown> = {}): void {
    const record: Record<string, unknown> = { ...fields };
    for (const [k, v] of Object.entries(values)) if (!RESERVED.has(k)) record[k] = v;
    const line = jsonlLine(record);
    this.#pending.push(line);
    this.#pendingBytes += line.length;
  }
}
