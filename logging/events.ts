/**
 * Feeding the metrics stream: {@link metricsChannel} is a `ReadableStream` of events with a plain
 * `emit` function (the stages call it; the log stage reads the stream), and
 * {@link trainerLogger} turns `SAETrainer`'s logger callback (`options.logger`, called with
 * SAELens's log dicts) into `log`/`eval` events.
 * @module
 */

import type { MetricsEvent, MetricValues } from "./types.ts";

/** A stream of metrics events and the function that feeds it. */
export interface MetricsChannel {
  /** The events, in the order emitted. */
  readable: ReadableStream<MetricsEvent>;
  /** Queues one event (ignored once the channel is closed). */
  emit(event: MetricsEvent): void;
  /** Ends the stream after the queued events. */
  close(): void;
  /** Errors the stream (the log stage then closes its sinks with a non-zero exit code). */
  error(reason: unknown): void;
}

/**
 * A metrics channel. Events are small and the log stage consumes them synchronously, so the
 * queue is not bounded.
 *
 * @example
 * ```ts
 * import { metricsChannel } from "./events.ts";
 * const ch = metricsChannel();
 * ch.emit({ type: "end", tokens: 10 });
 * ch.close();
 * const seen = await Array.fromAsync(ch.readable);
 * if (seen.length !== 1 || seen[0].type !== "end") throw new Error("lost the event");
 * ```
 */
export function metricsChannel(): MetricsChannel {
  let controller!: ReadableStreamDefaultController<MetricsEvent>;
  let open = true;
  const readable = new ReadableStream<MetricsEvent>(
    { start: (c) => void (controller = c) },
    { highWaterMark: Infinity },
  );
  return {
    readable,
    emit(event) {
      if (open) controller.enqueue(event);
    },
    close() {
      if (open) controller.close();
      open = false;
    },
    error(reason) {
      if (open) controller.error(reason);
      open = false;
    },
  };
}

const TRAIN_PREFIXES = ["losses/", "metrics/", "sparsity/", "details/", "plots/"];

/**
 * SAELens's train-step and sparsity-window dicts have only `losses/`, `metrics/`, `sparsity/`,
 * `details/` and `plots/` keys; anything else (the evaluator's nested groups) is an eval.
 */
export function isTrainLogDict(dict: Record<string, unknown>): boolean {
  const keys = Object.keys(dict);
  return keys.length > 0 && keys.every((k) => TRAIN_PREFIXES.some((p) => k.startsWith(p)));
}

/**
 * Metric values from a log dict: numbers kept, numeric arrays and typed arrays as `number[]`,
 * nested objects flattened with `/` (`{shrinkage: {l2_ratio: 1}}` → `shrinkage/l2_ratio`),
 * anything else left out.
 *
 * @example
 * ```ts
 * import { flattenMetrics } from "./events.ts";
 * const v = flattenMetrics({ a: { b: 1 }, h: Float32Array.of(1, 2), s: "x" });
 * if (JSON.stringify(v) !== '{"a/b":1,"h":[1,2]}') throw new Error(JSON.stringify(v));
 * ```
 */
export function flattenMetrics(dict: Record<string, unknown>, prefix = ""): MetricValues {
  const out: MetricValues = {};
  for (const [k, v] of Object.entries(dict)) {
    const key = prefix + k;
    if (typeof v === "number") out[key] = v;
    else if (typeof v === "bigint") out[key] = Number(v);
    else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      out[key] = Array.from(v as unknown as ArrayLike<number | bigint>, Number);
    } else if (Array.isArray(v)) {
      if (v.every((x) => typeof x === "number")) out[key] = v.slice();
    } else if (typeof v === "object" && v !== null && prefix.split("/").length < 8) {
      Object.assign(out, flattenMetrics(v as Record<string, unknown>, `${key}/`));
    }
  }
  return out;
}

/** Options of {@link trainerLogger}. */
export interface TrainerLoggerOptions {
  /** The id of the SAE the trainer trains (the `sae` of its events). */
  sae: string;
  /** Receives the events (e.g. a {@link MetricsChannel}'s `emit`). */
  emit: (event: MetricsEvent) => void;
  /**
   * Tokens seen so far, for dicts without `details/n_training_samples` (sparsity windows,
   * evals); default: the last count a train dict carried.
   */
  tokens?: () => number;
  /** Which dicts are evals (default: not {@link isTrainLogDict}). */
  isEval?: (dict: Record<string, unknown>) => boolean;
}

/**
 * A `SAETrainer` logger (`(step, logDict) => void`) that emits `log` events for SAELens's
 * train/sparsity dicts and `eval` events for evaluator results.
 *
 * @example
 * ```ts
 * import { trainerLogger } from "./events.ts";
 * import type { MetricsEvent } from "./types.ts";
 * const events: MetricsEvent[] = [];
 * const logger = trainerLogger({ sae: "sae0", emit: (e) => events.push(e) });
 * logger(9, { "losses/mse_loss": 0.25, "details/n_training_samples": 40960 });
 * logger(9, { shrinkage: { l2_ratio: 0.9 } });
 * const [log, ev] = events;
 * if (log.type !== "log" || log.tokens !== 40960 || ev.type !== "eval") throw new Error();
 * if (ev.values["shrinkage/l2_ratio"] !== 0.9 || ev.tokens !== 40960) throw new Error();
 * ```
 */
export function trainerLogger(
  options: TrainerLoggerOptions,
): (step: number, logDict: Record<string, unknown>) => void {
  let lastTokens = 0;
  const isEval = options.isEval ?? ((d: Record<string, unknown>) => !isTrainLogDict(d));
  return (step, logDict) => {
    const samples = logDict["details/n_training_samples"];
    const tokens = typeof samples === "number"
      ? samples
      : options.tokens
      ? options.tokens()
      : lastTokens;
    lastTokens = tokens;
    const values = flattenMetrics(logDict);
    options.emit({
      type: isEval(logDict) ? "eval" : "log",
      sae: options.sae,
      step,
      tokens,
      values,
    });
  };
}
