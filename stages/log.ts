/**
 * The log stage: a `TransformStream` on the metrics stream that hands every event to the log
 * sinks (progress bar or plain lines, the JSONL metrics file, W&B, a user's own sinks) and passes
 * it on unchanged, so a checkpoint stage or a user's logger can follow it.
 *
 * Contract (the types live in `logging/types.ts`):
 * - input and output: {@link MetricsEvent}s (`start`, `step`, `log`, `eval`, `checkpoint`,
 *   `end`), emitted by the step/eval/checkpoint stages on their own small stream (never on the
 *   activation stream). `logging/events.ts` has `metricsChannel()` to feed such a stream and
 *   `trainerLogger()` to turn `SAETrainer`'s logger callback into `log`/`eval` events.
 * - `transform` is synchronous: sinks only queue (W&B posts in the background), so the training
 *   loop never waits for the network.
 * - the sinks are opened when the stage is created: an unwritable metrics file, or W&B requested
 *   (`log_to_wandb`) without an API key, throws a `LoggingError` from `logStage()`, before any
 *   training. W&B trouble during the run is a warning, never an error.
 * - when the stream closes (after `end`: exit code 0; after an interrupt, see
 *   {@link LogStageOptions.signal}: 130; else 1) or is cancelled/aborted (exit code 1), every
 *   sink is closed: the JSONL file flushed, W&B's queue sent and the run completed
 *   within the W&B sink's `closeTimeoutMs`.
 * - `wandb_log_frequency` / `eval_every_n_wandb_logs` are honoured by the trainer, which emits
 *   `log` events every `wandb_log_frequency` steps; this stage forwards every event it gets.
 * - a sink that throws is warned about once and switched off; the stage keeps running.
 *
 * @example
 * ```ts
 * import { logStage } from "./log.ts";
 * import type { MetricsEvent } from "../logging/types.ts";
 * let out = "";
 * const stage = logStage({ progress: { write: (s) => (out += s), isTTY: false } });
 * const events: MetricsEvent[] = [
 *   { type: "start", runName: "demo", totalTokens: 100, config: {}, saes: [] },
 *   { type: "end", tokens: 100 },
 * ];
 * const passed = await Array.fromAsync(ReadableStream.from(events).pipeThrough(stage));
 * if (passed.length !== 2 || !out.includes("done: 100 tokens")) throw new Error(out);
 * ```
 * @module
 */

import { type JsonlOptions, JsonlSink } from "../logging/jsonl.ts";
import { type ProgressOptions, ProgressSink } from "../logging/progress.ts";
import type { LoggingSettings, LogSink, MetricsEvent } from "../logging/types.ts";
import { type WandbOptions, WandbSink } from "../logging/wandb.ts";

export type { MetricsEvent };

/** Options of {@link logStage}. */
export interface LogStageOptions {
  /** Progress output (default: on, to stdout, redrawn on a TTY); false turns it off. */
  progress?: ProgressOptions | false;
  /** The JSONL metrics file: a path or options; omitted or null writes none. */
  metricsFile?: string | JsonlOptions | null;
  /** The runner config's `logger` (`LoggingConfig`); W&B is used when `logToWandb` is true. */
  logger?: LoggingSettings;
  /** W&B transport and environment options (API key, server, timeouts, fetch). */
  wandb?: WandbOptions;
  /** More sinks, e.g. a user's own logger; they get every event after the built-in ones. */
  sinks?: LogSink[];
  /** Receives warnings (default: a line of the progress output, else `console.warn`). */
  warn?: (message: string) => void;
  /** Sinks opened beforehand by {@link openLogSinks}: used instead of the options above. */
  opened?: OpenedSinks;
  /**
   * The run's interrupt signal: when the stream closes without an `end` event after it was
   * aborted (Ctrl-C), the sinks close with exit code 130 (the CLI's) instead of 1.
   */
  signal?: AbortSignal;
}

/** The sinks of a log stage, opened (see {@link openLogSinks}). */
export interface OpenedSinks {
  /** Every sink, in the order they get events. */
  sinks: LogSink[];
  /** Receives the stage's own warnings. */
  warn: (message: string) => void;
  /** The W&B sink when W&B is on (its `settings.runId`, `runUrl`). */
  wandb: WandbSink | null;
  /** The JSONL sink when a metrics file is written. */
  jsonl: JsonlSink | null;
}

/**
 * Opens the sinks a {@link LogStageOptions} asks for, for a caller that needs them (the W&B run
 * id, say) before it builds the stage; throws a `LoggingError` for an unwritable metrics file
 * or W&B without an API key (checked before the file is created).
 *
 * @example
 * ```ts
 * import { logStage, openLogSinks } from "./log.ts";
 * const opened = openLogSinks({ progress: false });
 * if (opened.sinks.length !== 0 || opened.wandb !== null) throw new Error("no sinks asked for");
 * const stage = logStage({ opened });
 * await ReadableStream.from([{ type: "end" as const, tokens: 0 }]).pipeThrough(stage).pipeTo(new WritableStream());
 * ```
 */
export function openLogSinks(options: LogStageOptions = {}): OpenedSinks {
  const progress = options.progress === false ? null : new ProgressSink(options.progress ?? {});
  const warn = options.warn ??
    (progress ? (m: string) => progress.message(`warning: ${m}`) : (m: string) => console.warn(m));
  const info = progress ? (m: string) => progress.message(m) : (m: string) => console.log(m);
  const wandb = options.logger?.logToWandb
    ? new WandbSink(options.logger, { warn, info, ...options.wandb })
    : null;
  const file = options.metricsFile;
  const jsonl = file === undefined || file === null
    ? null
    : new JsonlSink(typeof file === "string" ? { path: file } : file);
  const sinks = [progress, jsonl, wandb, ...(options.sinks ?? [])].filter((s) => s !== null);
  return { sinks, warn, wandb, jsonl };
}

/**
 * The log stage (see the module doc): every event goes to each sink, then downstream unchanged.
 * Throws a `LoggingError` when a sink cannot be opened (see {@link openLogSinks}).
 */
export function logStage(
  options: LogStageOptions = {},
): TransformStream<MetricsEvent, MetricsEvent> {
  const opened = options.opened ?? openLogSinks(options);
  const warn = opened.warn;
  let live = [...opened.sinks];
  let ended = false;
  let closed = false;

  const drop = (sink: LogSink, error: unknown) => {
    live = live.filter((s) => s !== sink);
    const message = `log sink ${sink.name} failed (${
      error instanceof Error ? error.message : String(error)
    }); it is off for the rest of the run`;
    try {
      warn(message);
    } catch { /* a warning must not stop training */ }
    sink.close({ exitCode: 1 }).catch(() => {});
  };

  const closeAll = async (exitCode: number) => {
    if (closed) return;
    closed = true;
    // Progress last, so that warnings from closing the others still print before its end.
    const order = [
      ...live.filter((s) => !(s instanceof ProgressSink)),
      ...live.filter((s) => s instanceof ProgressSink),
    ];
    for (const sink of order) {
      try {
        await sink.close({ exitCode });
      } catch (e) {
        try {
          warn(`log sink ${sink.name} failed to close (${e instanceof Error ? e.message : e})`);
        } catch { /* ignore */ }
      }
    }
  };

  return new TransformStream<MetricsEvent, MetricsEvent>({
    transform(event, controller) {
      if (event.type === "end") ended = true;
      for (const sink of live) {
        try {
          sink.write(event);
        } catch (e) {
          drop(sink, e);
        }
      }
      controller.enqueue(event);
    },
    flush: () => closeAll(ended ? 0 : options.signal?.aborted ? 130 : 1),
    cancel: () => closeAll(1),
  });
}
