/**
 * Weights & Biases logging over W&B's own HTTP API (the one the Python SDK speaks), so that a
 * SAELens user's dashboards keep working:
 *
 * 1. `POST {base}/graphql` `upsertBucket` (HTTP basic auth `api:<key>`) creates the run: project
 *    `wandb_project`, entity `wandb_entity`, name = the run id, display name = `run_name`,
 *    config = the runner config (snake_case) as `{key: {desc, value}}`. An existing run id is
 *    continued (history appended after its `historyLineCount`).
 * 2. `POST {base}/files/{entity}/{project}/{run}/file_stream` with
 *    `{"files": {"wandb-history.jsonl": {"offset": n, "content": [lines]},
 *    "wandb-summary.json": {"offset": 0, "content": [summary]}}}`: history rows carry the metrics
 *    plus `_step`, `_runtime` (seconds since start) and `_timestamp` (Unix seconds); the summary
 *    holds the latest value of every key. `{"complete": false, "failed": false}` is a heartbeat.
 * 3. At the end `{"complete": true, "exitcode": 0}` (non-zero when the run failed).
 *
 * History follows `wandb.log(…, step=n_training_steps)`: events with the same step merge into
 * one row, a step lower than one already written is dropped (with one warning). Lists become
 * W&B histograms (`plots/feature_density_line_chart`). With several SAEs in one run every key is
 * prefixed with the SAE id (`<id>/losses/mse_loss`).
 *
 * The training loop never waits for the network: `write` only queues; a timer posts queued rows
 * at most every `flushIntervalMs` (default 5 s), one request at a time, each with a timeout;
 * failures are retried with exponential backoff (`maxRetries`), then warned about once, and
 * training goes on. The queue is bounded (`maxQueuedRows`; the oldest rows go first). `close`
 * sends the rest and the completion within `closeTimeoutMs`, then gives up. W&B trouble never
 * throws; only a missing API key (or a bad setting) does, when the sink is created.
 *
 * Not done: model/sparsity artifacts (SAELens's `log_weights_to_wandb` uploads), console
 * output and system metrics streams, offline run files for `wandb sync`.
 * @module
 */

import {
  resolveWandbSettings,
  type WandbEnvOptions,
  type WandbRunSettings,
} from "./wandb_settings.ts";
import { pyJson, wandbConfig, wandbValue } from "./wandb_format.ts";
import { WandbApi } from "./wandb_api.ts";
import type { CloseInfo, LoggingSettings, LogSink, MetricsEvent, MetricValues } from "./types.ts";

/** Options of {@link WandbSink}: where settings come from, and the transport's limits. */
export interface WandbOptions extends WandbEnvOptions {
  /** The fetch to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Least time between two history posts (default 5000 ms). */
  flushIntervalMs?: number;
  /** A heartbeat is posted after this long without any post (default 30 000 ms). */
  heartbeatMs?: number;
  /** Time limit of one request, body included (default 15 000 ms). */
  requestTimeoutMs?: number;
  /** Retries of a failed request before it is given up (default 3). */
  maxRetries?: number;
  /** First retry delay, doubled each retry (default 1000 ms). */
  retryBaseMs?: number;
  /** History rows kept while the server is unreachable (default 10 000). */
  maxQueuedRows?: number;
  /** Time `close` may take to send the rest and complete the run (default 30 000 ms). */
  closeTimeoutMs?: number;
  /** Receives warnings (default `console.warn`). */
  warn?: (message: string) => void;
  /** Receives the run's address once it exists (default `console.log`). */
  info?: (message: string) => void;
  /** Wall clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

const MAX_BATCH_CHARS = 4 << 20;

type State = "idle" | "creating" | "ready" | "failed" | "disabled";

/**
 * The W&B sink (see the module doc).
 *
 * @example
 * ```ts ignore
 * import { WandbSink } from "./wandb.ts";
 * const sink = new WandbSink({ logToWandb: true, wandbProject: "my-saes" }); // needs WANDB_API_KEY
 * sink.write({ type: "start", runName: "r", totalTokens: 1e6, saes: [], config: { lr: 3e-4 } });
 * sink.write({ type: "log", sae: "a", step: 9, tokens: 40960, values: { "metrics/l0": 31 } });
 * sink.write({ type: "end", tokens: 1e6 });
 * await sink.close({ exitCode: 0 });
 * ```
 */
export class WandbSink implements LogSink {
  readonly name = "wandb";
  /** The resolved settings (run id, project, entity, server, mode). */
  readonly settings: WandbRunSettings;
  #state: State;
  readonly #api: WandbApi | null;
  readonly #flushMs: number;
  readonly #heartbeatMs: number;
  readonly #maxRetries: number;
  readonly #maxRows: number;
  readonly #closeMs: number;
  readonly #warnFn: (message: string) => void;
  readonly #now: () => number;
  readonly #abort = new AbortController();
  readonly #warned = new Set<string>();
  #streamUrl = "";
  #runUrl: string | null = null;
  readonly #infoFn: (message: string) => void;
  #init: Promise<void> | null = null;
  #inFlight: Promise<void> | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #startMs = 0;
  #lastPost = 0;
  #multi = false;
  #row: { step: number; time: number; values: Record<string, unknown> } | null = null;
  #lastWrittenStep = -1;
  #rows: string[] = [];
  #offset = 0;
  #summary: Record<string, unknown> = {};
  #summaryDirty = false;
  #broken = false;
  #closed = false;

  /**
   * Resolves the settings (throws a `LoggingError` when W&B is requested without an API key or
   * with an invalid setting); nothing is sent before the first event.
   */
  constructor(settings: LoggingSettings, options: WandbOptions = {}) {
    this.settings = resolveWandbSettings(settings, options);
    this.#state = this.settings.mode === "online" ? "idle" : "disabled";
    this.#flushMs = options.flushIntervalMs ?? 5000;
    this.#heartbeatMs = options.heartbeatMs ?? 30_000;
    this.#maxRetries = options.maxRetries ?? 3;
    this.#maxRows = options.maxQueuedRows ?? 10_000;
    this.#closeMs = options.closeTimeoutMs ?? 30_000;
    this.#warnFn = options.warn ?? ((m) => console.warn(m));
    this.#infoFn = options.info ?? ((m) => console.log(m));
    this.#now = options.now ?? Date.now;
    this.#api = this.settings.apiKey === null ? null : new WandbApi({
      apiKey: this.settings.apiKey,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.requestTimeoutMs ?? 15_000,
      retryBaseMs: options.retryBaseMs ?? 1000,
      signal: this.#abort.signal,
    });
    if (this.settings.mode === "offline") {
      this.#warnOnce(
        "offline",
        "W&B: WANDB_MODE=offline; saeflow sends nothing and writes no offline run files " +
          "(the JSONL metrics file is the local record)",
      );
    }
  }

  /** The run's web page once the run exists (`https://wandb.ai/{entity}/{project}/runs/{id}`). */
  get runUrl(): string | null {
    return this.#runUrl;
  }

  /** Queues the event; never waits for the network. */
  write(event: MetricsEvent): void {
    if (this.#state === "disabled" || this.#state === "failed" || this.#closed) return;
    if (this.#state === "idle") {
      this.#begin(event.type === "start" ? event : undefined);
    }
    switch (event.type) {
      case "log":
      case "eval":
        this.#add(event.sae, event.step, event.values);
        break;
      case "end":
        this.#finishRow();
        for (const [sae, values] of Object.entries(event.values ?? {})) {
          for (const [k, v] of Object.entries(values)) {
            const w = wandbValue(v);
            if (w !== null) this.#summary[this.#key(sae, k)] = w;
          }
          this.#summaryDirty = true;
        }
        break;
    }
  }

  /** Sends what is queued and completes the run, within `closeTimeoutMs`; never throws. */
  async close(info: CloseInfo): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#state === "disabled" || this.#state === "idle") return;
    this.#finishRow();
    const deadline = setTimeout(() => this.#abort.abort(), this.#closeMs);
    try {
      await this.#init;
      await this.#inFlight;
      while (this.#state === "ready" && this.#pending() && !this.#abort.signal.aborted) {
        if (!(await this.#sendBatch())) break;
      }
      if (this.#state === "ready" && !this.#abort.signal.aborted) {
        const r = await this.#api!.postRetrying(
          this.#streamUrl,
          JSON.stringify({ complete: true, exitcode: info.exitCode }),
          this.#broken ? 0 : this.#maxRetries,
        );
        if (!r.ok) this.#warnOnce("complete", `W&B: could not mark the run finished (${r.error})`);
      }
    } finally {
      clearTimeout(deadline);
      this.#abort.abort(); // ends any request still running
    }
    if (this.#state === "ready" && this.#pending()) {
      this.#warnOnce(
        "close",
        `W&B: gave up after ${this.#closeMs} ms with ${this.#rows.length} history rows unsent ` +
          "(they are in the JSONL metrics file if one is written)",
      );
    }
  }

  #begin(start?: Extract<MetricsEvent, { type: "start" }>): void {
    this.#state = "creating";
    this.#startMs = this.#lastPost = this.#now();
    this.#multi = (start?.saes.length ?? 0) > 1;
    const displayName = start?.runName || this.settings.displayName;
    this.#init = this.#createRun(start?.config ?? {}, displayName ?? null);
    const timer = setInterval(() => this.#tick(), Math.max(10, this.#flushMs));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #key(sae: string, key: string): string {
    return this.#multi ? `${sae}/${key}` : key;
  }

  #add(sae: string, step: number, values: MetricValues): void {
    if (this.#row !== null && step === this.#row.step) {
      // same step: one row, as wandb.log(…, step=n) merges
    } else if (step <= this.#lastWrittenStep || (this.#row !== null && step < this.#row.step)) {
      this.#warnOnce(
        "step",
        `W&B: step ${step} arrived after step ${
          Math.max(this.#lastWrittenStep, this.#row?.step ?? -1)
        }` +
          "; W&B needs increasing steps, so it was dropped (warned once)",
      );
      return;
    } else {
      this.#finishRow();
      this.#row = { step, time: this.#now(), values: {} };
    }
    for (const [k, v] of Object.entries(values)) {
      const w = wandbValue(v);
      if (w === null) continue;
      const key = this.#key(sae, k);
      this.#row!.values[key] = w;
      this.#summary[key] = w;
    }
    this.#summaryDirty = true;
  }

  #finishRow(): void {
    const row = this.#row;
    if (row === null) return;
    this.#row = null;
    this.#lastWrittenStep = row.step;
    this.#rows.push(pyJson({ ...row.values, ...this.#stamp(row.step, row.time) }));
    if (this.#rows.length > this.#maxRows) {
      this.#rows.splice(0, this.#rows.length - this.#maxRows);
      this.#warnOnce(
        "queue",
        `W&B: more than ${this.#maxRows} history rows waiting to be sent; the oldest are dropped`,
      );
    }
  }

  #stamp(step: number, time: number) {
    return { _step: step, _runtime: (time - this.#startMs) / 1000, _timestamp: time / 1000 };
  }

  #pending(): boolean {
    return this.#rows.length > 0 || this.#summaryDirty;
  }

  #tick(): void {
    if (this.#state !== "ready" || this.#inFlight !== null || this.#closed) return;
    if (this.#pending()) {
      this.#inFlight = this.#sendBatch().then(() => {
        this.#inFlight = null;
      });
    } else if (this.#now() - this.#lastPost >= this.#heartbeatMs) {
      this.#lastPost = this.#now();
      this.#inFlight = this.#api!.post(this.#streamUrl, '{"complete":false,"failed":false}').then(
        () => {
          this.#inFlight = null;
        },
      );
    }
  }

  /** Posts the next batch of rows (and the summary); true when it was accepted. */
  async #sendBatch(): Promise<boolean> {
    let count = 0, chars = 0;
    while (
      count < this.#rows.length &&
      (count === 0 || chars + this.#rows[count].length < MAX_BATCH_CHARS)
    ) {
      chars += this.#rows[count++].length;
    }
    const batch = this.#rows.slice(0, count);
    const files: Record<string, { offset: number; content: string[] }> = {};
    if (count > 0) files["wandb-history.jsonl"] = { offset: this.#offset, content: batch };
    const step = Math.max(this.#row?.step ?? this.#lastWrittenStep, 0);
    files["wandb-summary.json"] = {
      offset: 0,
      content: [pyJson({ ...this.#summary, ...this.#stamp(step, this.#now()) })],
    };
    this.#summaryDirty = false;
    this.#lastPost = this.#now();
    const r = await this.#api!.postRetrying(
      this.#streamUrl,
      JSON.stringify({ files }),
      this.#broken ? 0 : this.#maxRetries,
    );
    if (r.ok) {
      this.#rows.splice(0, count);
      this.#offset += count;
      this.#broken = false;
      return true;
    }
    this.#summaryDirty = true;
    if (r.status === 401 || r.status === 403) {
      this.#fail(`W&B refused the API key (HTTP ${r.status})`);
      return false;
    }
    if (!r.retry && r.status >= 400) {
      // The server refused these rows for good: drop them rather than resend them forever.
      this.#rows.splice(0, count);
      this.#summaryDirty = false;
    }
    this.#broken = true;
    this.#warnOnce(
      "send",
      `W&B: could not send metrics to ${this.#streamUrl} (${r.error}); training goes on, ` +
        "later rows are retried (warned once)",
    );
    return false;
  }

  async #createRun(config: Record<string, unknown>, displayName: string | null): Promise<void> {
    const s = this.settings;
    let host: string | null = null;
    try {
      host = Deno.hostname();
    } catch { /* no --allow-sys: leave it out */ }
    const bucket = await this.#api!.upsertRun(s.baseUrl, {
      name: s.runId,
      project: s.project,
      entity: s.entity,
      displayName,
      config: pyJson(wandbConfig(config)),
      host,
    }, this.#maxRetries);
    if ("error" in bucket) {
      this.#fail(`W&B: could not create the run ${s.project}/${s.runId} (${bucket.error})`);
      return;
    }
    const entity = bucket.entity ?? s.entity;
    if (entity === null) {
      this.#fail("W&B: the server did not say which entity the run belongs to");
      return;
    }
    const enc = encodeURIComponent;
    this.#streamUrl = `${s.baseUrl}/files/${enc(entity)}/${enc(bucket.project ?? s.project)}/${
      enc(bucket.name ?? s.runId)
    }/file_stream`;
    this.#offset = bucket.inserted === false ? bucket.historyLineCount ?? 0 : 0;
    this.#state = "ready";
    const app = s.baseUrl === "https://api.wandb.ai" ? "https://wandb.ai" : s.baseUrl;
    this.#runUrl = `${app}/${enc(entity)}/${enc(bucket.project ?? s.project)}/runs/${
      enc(bucket.name ?? s.runId)
    }`;
    try {
      this.#infoFn(`W&B run: ${this.#runUrl}`);
    } catch { /* never stop training for a message */ }
  }

  #fail(message: string): void {
    if (this.#state === "failed") return;
    this.#state = "failed";
    this.#rows = [];
    this.#row = null;
    clearInterval(this.#timer);
    this.#warnOnce("fail", `${message}; training goes on without W&B`);
  }

  #warnOnce(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    try {
      this.#warnFn(message);
    } catch { /* a failing warning sink must not stop training */ }
  }
}
