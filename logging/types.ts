/**
 * The metrics stream's contract: the small events the training step, evaluation and checkpoint
 * stages emit on their own stream (never on the activation stream: no `tee`), and the sinks that
 * consume them (progress output, a JSONL metrics file, Weights & Biases).
 *
 * Event order in a run: one `start`, then `step`/`log`/`eval`/`checkpoint` events in the order
 * they happen, then one `end`. Every event carries `tokens`, the number of training samples
 * (tokens) seen so far by the SAE it names (SAELens `n_training_samples`).
 *
 * - `step`: one per training step and SAE; cheap, no metrics (drives the progress bar).
 * - `log`: SAELens's per-step log dict (§5.2: `losses/mse_loss`, `metrics/l0`,
 *   `metrics/explained_variance`, `sparsity/dead_features`, `details/current_learning_rate`, …)
 *   and the sparsity-window dict (§5.3, `plots/feature_density_line_chart` as `number[]`), keys
 *   exactly as SAELens writes them. The trainer emits them every `wandb_log_frequency` steps
 *   (`SAETrainer` honours it; the log stage forwards every event it gets and never subsamples).
 * - `eval`: evaluation metrics (§5.4), flattened with `/` (e.g.
 *   `model_performance_preservation/ce_loss_score`); arrays become W&B histograms
 *   (`weights/W_dec_norms`). The trainer runs evals every
 *   `wandb_log_frequency · eval_every_n_wandb_logs` steps.
 * - `checkpoint`: a checkpoint folder was written (`sae` omitted when it holds every SAE).
 * - `end`: training finished; `values` holds final metrics per SAE id.
 *
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** A metric: a number, or a list of numbers (logged to W&B as a histogram). */
export type MetricValue = number | number[];

/** Metric values by SAELens log-dict key (`losses/mse_loss`, `metrics/l0`, …). */
export type MetricValues = Record<string, MetricValue>;

/** One SAE of a run, as announced by the `start` event. */
export interface SaeInfo {
  /** Identifies the SAE in later events (`sae` field); unique within a run. */
  id: string;
  /** Hook point it reads (`blocks.0.hook_mlp_out`). */
  hookName: string;
  /** SAELens architecture name (`standard`, `topk`, …). */
  architecture: string;
  /** Input width. */
  dIn: number;
  /** Number of latents. */
  dSae: number;
}

/**
 * An event of the metrics stream (see the module doc for the order and meaning).
 *
 * @example
 * ```ts
 * import type { MetricsEvent } from "./types.ts";
 * const events: MetricsEvent[] = [
 *   { type: "start", runName: "demo", totalTokens: 8192, config: { lr: 3e-4 },
 *     saes: [{ id: "sae0", hookName: "blocks.0.hook_mlp_out", architecture: "standard", dIn: 128, dSae: 512 }] },
 *   { type: "step", sae: "sae0", step: 0, tokens: 4096 },
 *   { type: "log", sae: "sae0", step: 0, tokens: 4096, values: { "losses/mse_loss": 0.5, "metrics/l0": 12 } },
 *   { type: "end", tokens: 8192 },
 * ];
 * if (events.length !== 4) throw new Error("unreachable");
 * ```
 */
export type MetricsEvent =
  | {
    type: "start";
    /** The run's name (SAELens `run_name`, defaulted by the runner config). */
    runName: string;
    /** Tokens the run trains on (SAELens `training_tokens`). */
    totalTokens: number;
    /** Every SAE the run trains. */
    saes: SaeInfo[];
    /** The runner config as SAELens's snake_case dict (`runner_cfg.json`). */
    config: Record<string, unknown>;
    /** Memory the run reserves, in bytes, by name (e.g. `{ buffer: 1.2e9 }`); printed at start. */
    memory?: Record<string, number>;
  }
  | {
    type: "step";
    sae: string;
    /** The step's index (SAELens `n_training_steps` before the step counted itself). */
    step: number;
    /** `n_training_samples` of that SAE after the step. */
    tokens: number;
  }
  | { type: "log"; sae: string; step: number; tokens: number; values: MetricValues }
  | { type: "eval"; sae: string; step: number; tokens: number; values: MetricValues }
  | {
    type: "checkpoint";
    /** The SAE whose checkpoint it is; omitted when the folder holds every SAE. */
    sae?: string;
    /** Checkpoint name (SAELens: `str(n_training_samples)` or `final_<n>`). */
    name: string;
    /** Folder written. */
    path: string;
    tokens: number;
  }
  | {
    type: "end";
    tokens: number;
    /** Final metrics per SAE id (same keys as `log` values). */
    values?: Record<string, Record<string, number>>;
  };

/** How a run ended, given to {@link LogSink.close}. */
export interface CloseInfo {
  /** 0 after an `end` event and a clean close, non-zero when the run failed or was aborted. */
  exitCode: number;
}

/**
 * A consumer of metrics events. `write` is synchronous and never waits on I/O (network work
 * is queued and sent in the background); `close` finishes whatever is queued, within the sink's
 * own time limit, and never throws for network trouble.
 */
export interface LogSink {
  /** A short name for warnings (`progress`, `jsonl`, `wandb`, …). */
  readonly name: string;
  /** Consumes one event. */
  write(event: MetricsEvent): void;
  /** Flushes and releases everything; called once. */
  close(info: CloseInfo): Promise<void>;
}

/**
 * The `LoggingConfig` fields the log stage reads (structurally the runner config's `logger`,
 * camelCase), so `logging/` does not depend on where the runner config lives.
 */
export interface LoggingSettings {
  /** SAELens `log_to_wandb`. */
  logToWandb: boolean;
  /** SAELens `wandb_project`; null/empty: `WANDB_PROJECT`, else `"uncategorized"`. */
  wandbProject?: string | null;
  /** SAELens `wandb_entity`; null: `WANDB_ENTITY`, else the API key's default entity. */
  wandbEntity?: string | null;
  /** SAELens `wandb_id`; null: `WANDB_RUN_ID`, else a new random 8-character id. */
  wandbId?: string | null;
  /** SAELens `run_name`: the W&B display name when the `start` event gives none. */
  runName?: string | null;
  /**
   * SAELens `wandb_log_frequency`: the trainer emits `log` events every this many steps. Recorded
   * here for documentation only; the log stage forwards every event it receives.
   */
  wandbLogFrequency?: number;
}

/**
 * Thrown when logging cannot start: an unwritable metrics file, W&B requested without an API
 * key, an invalid `WANDB_MODE`, base URL or run id. Never thrown for W&B trouble during a run
 * (that is a warning; training goes on).
 *
 * @example
 * ```ts
 * import { LoggingError } from "./types.ts";
 * const e = new LoggingError("metrics file /x/m.jsonl cannot be created");
 * if (e.name !== "LoggingError") throw new Error("name not set");
 * ```
 */
export class LoggingError extends SaeflowError {}
