/**
 * Progress output for a training run. On a terminal: one line redrawn in place (carriage return
 * + clear line, at most every `redrawIntervalMs`, cut to the terminal width so it never wraps)
 * showing tokens done / total, the smoothed rate, the ETA and the latest mse, L0, explained
 * variance and dead features of the first SAE; events worth keeping (evals, checkpoints,
 * warnings) print as lines above it. Elsewhere (a log file, CI): plain lines, never a carriage
 * return: one per `log`/`eval`/`checkpoint` event plus a progress line at most every
 * `plainIntervalMs`. A summary closes the run at `end`. `NO_COLOR` turns colour off.
 * @module
 */

import { readEnv } from "../util/env.ts";
import { formatBytes, formatCount, formatDuration, formatMetric } from "./format.ts";
import type { CloseInfo, LogSink, MetricsEvent, MetricValues } from "./types.ts";

/** Options of {@link ProgressSink}. */
export interface ProgressOptions {
  /** Receives the output text (default: written to stdout synchronously). */
  write?: (text: string) => void;
  /** Redraw one line in place (default: `Deno.stdout.isTerminal()`). */
  isTTY?: boolean;
  /** Colour the bar (default: on a TTY unless `NO_COLOR` is set). */
  color?: boolean;
  /** Terminal width the redrawn line is cut to (default: `Deno.consoleSize()`, else 80). */
  columns?: number;
  /** Least time between redraws on a TTY (default 100 ms). */
  redrawIntervalMs?: number;
  /** Least time between progress lines when not a TTY (default 10 000 ms). */
  plainIntervalMs?: number;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
  /** Reads an environment variable (default `readEnv`); only `NO_COLOR` is read. */
  env?: (name: string) => string | undefined;
}

const CLEAR = "\r\x1b[2K";
const BAR_WIDTH = 20;
/** Weight of the newest rate sample in the smoothed rate (as tqdm's default smoothing). */
const SMOOTHING = 0.3;
/** Least time between two rate samples. */
const RATE_SAMPLE_MS = 500;

interface LatestMetrics {
  mse?: number;
  l0?: number;
  ev?: number;
  dead?: number;
}

const METRIC_KEYS: [keyof LatestMetrics, string, string][] = [
  ["mse", "losses/mse_loss", "mse"],
  ["l0", "metrics/l0", "L0"],
  ["ev", "metrics/explained_variance", "EV"],
  ["dead", "sparsity/dead_features", "dead"],
];

function stdoutWriter(): (text: string) => void {
  const encoder = new TextEncoder();
  return (text) => {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  };
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * The progress sink (see the module doc). Writes happen synchronously inside `write`.
 *
 * @example
 * ```ts
 * import { ProgressSink } from "./progress.ts";
 * let out = "", t = 0;
 * const p = new ProgressSink({ write: (s) => (out += s), isTTY: false, now: () => t });
 * p.write({ type: "start", runName: "r", totalTokens: 1000, config: {}, saes: [] });
 * t = 1000;
 * p.write({ type: "log", sae: "a", step: 0, tokens: 500, values: { "metrics/l0": 3 } });
 * if (!out.includes("50.0% 500/1.00k tok | step 0") || out.includes("\r")) throw new Error(out);
 * ```
 */
export class ProgressSink implements LogSink {
  readonly name = "progress";
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #color: boolean;
  readonly #columns: number;
  readonly #redrawMs: number;
  readonly #plainMs: number;
  readonly #now: () => number;
  #total: number | null = null;
  #saes: string[] = [];
  #tokens = new Map<string, number>();
  #steps = new Map<string, number>();
  #metrics = new Map<string, LatestMetrics>();
  #startT: number;
  #lastDraw = -Infinity;
  #lastPlain: number;
  #rate: number | undefined;
  #rateT: number;
  #rateTokens = 0;
  #barShown = false;
  #ended = false;

  /** Creates the sink; nothing is written before the first event. */
  constructor(options: ProgressOptions = {}) {
    this.#tty = options.isTTY ?? safeIsTerminal();
    this.#write = options.write ?? stdoutWriter();
    this.#color = options.color ??
      (this.#tty && (options.env ?? readEnv)("NO_COLOR") === undefined);
    this.#columns = options.columns ?? (this.#tty ? terminalColumns() : Infinity);
    this.#redrawMs = options.redrawIntervalMs ?? 100;
    this.#plainMs = options.plainIntervalMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#startT = this.#now();
    this.#lastPlain = this.#startT;
    this.#rateT = this.#startT;
  }

  /** Consumes one event (see the module doc for what each prints). */
  write(event: MetricsEvent): void {
    const now = this.#now();
    switch (event.type) {
      case "start":
        return this.#start(event, now);
      case "step":
        this.#advance(event.sae, event.step, event.tokens, now);
        if (this.#tty) this.#redraw(now);
        else if (now - this.#lastPlain >= this.#plainMs) this.#plain(this.#status(now, false));
        return;
      case "log":
        this.#advance(event.sae, event.step, event.tokens, now);
        this.#remember(event.sae, event.values);
        if (this.#tty) this.#redraw(now);
        // A plain line per log dict that brings a shown metric (the sparsity-window dicts of the
        // same step bring none, and would repeat the line).
        else if (METRIC_KEYS.some(([, key]) => key in event.values)) {
          this.#plain(this.#status(now, false, event.sae));
        }
        return;
      case "eval":
        this.#advance(event.sae, event.step, event.tokens, now);
        return this.message(
          `eval step ${event.step}${this.#tag(event.sae)}: ${listValues(event.values)}`,
        );
      case "checkpoint":
        return this.message(
          `checkpoint ${event.name}${event.sae === undefined ? "" : ` [${event.sae}]`} at ${
            formatCount(event.tokens)
          } tokens: ${event.path}`,
        );
      case "end":
        return this.#end(event, now);
    }
  }

  /** Prints a line that stays (above the redrawn bar on a TTY). */
  message(text: string): void {
    if (this.#tty && this.#barShown) {
      this.#write(`${CLEAR}${text}\n${this.#barLine(this.#now())}`);
      this.#lastDraw = this.#now();
    } else this.#plain(text);
  }

  /** Leaves the last state on screen; says the run stopped when no `end` event came. */
  close(info: CloseInfo): Promise<void> {
    if (!this.#ended) {
      if (this.#barShown) this.#write(`${CLEAR}${this.#barLine(this.#now())}\n`);
      this.#barShown = false;
      this.#plain(`stopped after ${formatCount(this.#done())} tokens (exit code ${info.exitCode})`);
      this.#ended = true;
    }
    return Promise.resolve();
  }

  #start(event: Extract<MetricsEvent, { type: "start" }>, now: number): void {
    this.#total = event.totalTokens;
    this.#saes = event.saes.map((s) => s.id);
    this.#startT = this.#lastPlain = this.#rateT = now;
    const n = event.saes.length;
    const lines = [
      `run ${event.runName}: ${formatCount(event.totalTokens)} tokens, ${n} SAE${
        n === 1 ? "" : "s"
      }`,
    ];
    for (const s of event.saes) {
      lines.push(`  ${s.id}: ${s.architecture} ${s.dIn}->${s.dSae} at ${s.hookName}`);
    }
    const memory = Object.entries(event.memory ?? {});
    if (memory.length > 0) {
      lines.push(`  memory: ${memory.map(([k, v]) => `${k} ${formatBytes(v)}`).join(", ")}`);
    }
    for (const line of lines) this.message(line);
  }

  #advance(sae: string, step: number, tokens: number, now: number): void {
    this.#tokens.set(sae, tokens);
    this.#steps.set(sae, step);
    const dt = now - this.#rateT;
    if (dt >= RATE_SAMPLE_MS) {
      const done = this.#done();
      const sample = ((done - this.#rateTokens) * 1000) / dt;
      this.#rate = this.#rate === undefined ? sample : SMOOTHING * sample +
        (1 - SMOOTHING) * this.#rate;
      this.#rateT = now;
      this.#rateTokens = done;
    }
  }

  #remember(sae: string, values: MetricValues): void {
    const m = this.#metrics.get(sae) ?? {};
    for (const [field, key] of METRIC_KEYS) {
      const v = values[key];
      if (typeof v === "number") m[field] = v;
    }
    this.#metrics.set(sae, m);
  }

  /** Tokens done: the slowest announced SAE (all SAEs train on the same batches). */
  #done(): number {
    if (this.#saes.length > 0) return Math.min(...this.#saes.map((s) => this.#tokens.get(s) ?? 0));
    let most = 0;
    for (const t of this.#tokens.values()) most = Math.max(most, t);
    return most;
  }

  #tag(sae: string): string {
    return this.#saes.length > 1 ? ` [${sae}]` : "";
  }

  #metricText(sae: string | undefined, summary: boolean): string {
    const id = sae ?? this.#saes[0] ?? this.#metrics.keys().next().value;
    const m = id === undefined ? undefined : this.#metrics.get(id);
    if (!m) return "";
    const parts = METRIC_KEYS.filter(([f]) => m[f] !== undefined).map(([f, , label]) =>
      `${label} ${formatMetric(m[f]!)}`
    );
    if (parts.length === 0) return "";
    const many = this.#saes.length > 1;
    return ` | ${many ? `${id}: ` : ""}${parts.join(" ")}${
      many && summary ? ` (${this.#saes.length} SAEs)` : ""
    }`;
  }

  /** `45.0% 900/2.00k tok | step 3 | 1.20k tok/s | ETA 1m05s | mse … L0 … EV … dead …`. */
  #status(now: number, bar: boolean, sae?: string): string {
    const done = this.#done(), total = this.#total;
    const rate = this.#rate ?? (now > this.#startT ? (done * 1000) / (now - this.#startT) : NaN);
    const eta = total !== null && rate > 0 ? Math.max(0, total - done) / rate : NaN;
    const frac = total ? Math.min(1, done / total) : null;
    const head = frac === null
      ? `${formatCount(done)} tok`
      : `${(frac * 100).toFixed(1)}% ${formatCount(done)}/${formatCount(total!)} tok`;
    const step = this.#steps.get(sae ?? this.#saes[0] ?? "") ??
      Math.max(-1, ...this.#steps.values());
    return `${head}${step >= 0 ? ` | step ${step}` : ""} | ${
      Number.isFinite(rate) ? formatCount(rate) : "?"
    } tok/s | ETA ${formatDuration(eta)}${this.#metricText(sae, bar)}`;
  }

  #barLine(now: number): string {
    const status = this.#status(now, true);
    const total = this.#total;
    let filled = -1;
    let line = status;
    if (total) {
      filled = Math.floor(Math.min(1, this.#done() / total) * BAR_WIDTH);
      line = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${status}`;
    }
    const width = Math.max(1, this.#columns - 1);
    if (line.length > width) line = line.slice(0, width);
    if (this.#color && filled > 0 && line.length >= BAR_WIDTH + 2) {
      line = `[\x1b[32m${"#".repeat(filled)}\x1b[39m${line.slice(1 + filled)}`;
    }
    return line;
  }

  #redraw(now: number): void {
    if (now - this.#lastDraw < this.#redrawMs) return;
    this.#write(CLEAR + this.#barLine(now));
    this.#barShown = true;
    this.#lastDraw = now;
  }

  #plain(text: string): void {
    this.#write(`${text}\n`);
    this.#lastPlain = this.#now();
  }

  #end(event: Extract<MetricsEvent, { type: "end" }>, now: number): void {
    for (const [sae, values] of Object.entries(event.values ?? {})) this.#remember(sae, values);
    const seconds = (now - this.#startT) / 1000;
    const rate = seconds > 0 ? event.tokens / seconds : NaN;
    const head = `done: ${formatCount(event.tokens)} tokens in ${formatDuration(seconds)} (${
      Number.isFinite(rate) ? formatCount(rate) : "?"
    } tok/s)`;
    const ids = this.#saes.length > 0 ? this.#saes : [...this.#metrics.keys()];
    let text: string;
    if (ids.length <= 1) text = head + this.#metricText(ids[0], false);
    else {
      text = [head, ...ids.map((id) => `  ${this.#metricText(id, false).slice(3) || `${id}: -`}`)]
        .join("\n");
    }
    this.#write(`${this.#tty && this.#barShown ? CLEAR : ""}${text}\n`);
    this.#lastPlain = now;
    this.#barShown = false;
    this.#ended = true;
  }
}

function safeIsTerminal(): boolean {
  try {
    return Deno.stdout.isTerminal();
  } catch {
    return false;
  }
}

/** `key value, key value` for the numeric values (lists show their length). */
function listValues(values: MetricValues): string {
  return Object.entries(values)
    .map(([k, v]) => `${k} ${typeof v === "number" ? formatMetric(v) : `[${v.length} values]`}`)
    .join(", ");
}
