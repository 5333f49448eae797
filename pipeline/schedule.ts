/**
 * `pipeline.ts schedule config.yaml --cron "…"`: runs a config on a cron schedule with
 * `Deno.cron` (needs `--unstable-cron`). Every trigger calls {@link ScheduledRun.trigger}, which
 * starts the run, or resumes it from its latest checkpoint when one exists, or does nothing when
 * the run has finished (`completed.json`, or a `final_*` checkpoint) or is still running.
 *
 * The run needs a stable id so that every trigger finds the same run folder
 * (`checkpoint_path/<id>`): `--run-id`, else `logger.wandb_id`, else `sched-<hash>` with the
 * hash taken over the config after overrides (so an edited config is a new run). Two runs never
 * train at once: an in-process lock per run folder, plus the lock file `run.lock` in the run
 * folder (stale once its process is gone, see `run_folder.ts`) against other processes.
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import { pipelineConfigFromDict } from "./config.ts";
import type { Override } from "./cli_args.ts";
import {
  type CommandContext,
  type CronFn,
  EXIT,
  reportError,
  resumeConfig,
  runTraining,
  trainConfigDict,
  whereOf,
} from "./commands.ts";
import { acquireRunLock, latestCheckpoint, readCompleted } from "./run_folder.ts";

/** What one trigger did. */
export type TriggerStatus =
  | "trained" // a fresh run finished
  | "resumed" // a resumed run finished
  | "interrupted" // Ctrl-C: a checkpoint was written
  | "finished" // the run had already finished: nothing done
  | "busy" // a run of this folder is in progress in this process
  | "locked" // another process holds the run folder's lock
  | "failed"; // an error (printed as one line)

/** The result of {@link ScheduledRun.trigger}. */
export interface TriggerResult {
  /** What happened. */
  status: TriggerStatus;
  /** The checkpoint resumed from, for `resumed` (and `interrupted`/`failed` after a resume). */
  resumedFrom?: string;
  /** The error, for `failed`. */
  error?: unknown;
}

/**
 * The run id a scheduled config gets when none is given: `sched-` and 12 hex digits of the
 * SHA-256 of the config dict with its keys sorted (so key order and formatting do not matter).
 *
 * @example
 * ```ts
 * import { scheduleRunId } from "./schedule.ts";
 * const a = await scheduleRunId({ lr: 1e-4, sae: { d_in: 8, architecture: "topk" } });
 * const b = await scheduleRunId({ sae: { architecture: "topk", d_in: 8 }, lr: 0.0001 });
 * if (a !== b || !/^sched-[0-9a-f]{12}$/.test(a)) throw new Error(a + " " + b);
 * if (a === (await scheduleRunId({ lr: 2e-4, sae: { d_in: 8, architecture: "topk" } }))) throw new Error();
 * ```
 */
export async function scheduleRunId(dict: Record<string, unknown>): Promise<string> {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v !== null && typeof v === "object"
      ? Object.fromEntries(
        Object.keys(v as object).sort().map((
          k,
        ) => [k, canonical((v as Record<string, unknown>)[k])]),
      )
      : v;
  const bytes = new TextEncoder().encode(JSON.stringify(canonical(dict)));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sched-" + Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Run folders with a trigger in flight in this process. */
const inFlight = new Set<string>();

/** One scheduled config (see the module doc); {@link trigger} is the cron handler. */
export class ScheduledRun {
  /** The config dict (overrides applied). */
  readonly dict: Record<string, unknown>;
  /** Where errors name the config. */
  readonly where: string;
  /** The run id. */
  readonly runId: string;
  /** The run folder (`checkpoint_path/<run id>`). */
  readonly runFolder: string;
  readonly #ctx: CommandContext;

  private constructor(
    dict: Record<string, unknown>,
    where: string,
    runId: string,
    runFolder: string,
    ctx: CommandContext,
  ) {
    this.dict = dict;
    this.where = where;
    this.runId = runId;
    this.runFolder = runFolder;
    this.#ctx = ctx;
  }

  /**
   * Reads and checks the config once (a bad config fails here, before anything is scheduled)
   * and fixes its run id. `checkpoint_path: null` is refused: a scheduled run must be resumable.
   */
  static async create(options: {
    configPath: string;
    overrides: readonly Override[];
    runId?: string | null;
    ctx: CommandContext;
  }): Promise<ScheduledRun> {
    const dict = await trainConfigDict(options.configPath, options.overrides);
    const logger = dict.logger as Record<string, unknown> | undefined;
    const runId = options.runId ??
      (typeof logger?.wandb_id === "string" ? logger.wandb_id : null) ??
      await scheduleRunId(dict);
    const where = whereOf(options.configPath, options.overrides);
    const cfg = pipelineConfigFromDict(dict, { where, runId });
    if (cfg.runner.checkpointPath === null) {
      throw new ConfigError(
        `${options.configPath}: checkpoint_path is null; a scheduled run needs one (it resumes ` +
          "from its checkpoints and keeps its lock there)",
      );
    }
    return new ScheduledRun(
      dict,
      options.configPath,
      runId,
      cfg.runner.checkpointPath,
      options.ctx,
    );
  }

  /**
   * The cron handler: trains, resumes, or skips (see the module doc). Never throws: an error is
   * printed as one line and returned as `failed`, and the schedule goes on.
   */
  async trigger(): Promise<TriggerResult> {
    const { io } = this.#ctx;
    if (inFlight.has(this.runFolder)) {
      io.out(`schedule: run ${this.runId} is still training; this trigger is skipped`);
      return { status: "busy" };
    }
    inFlight.add(this.runFolder);
    let resumedFrom: string | undefined;
    try {
      const lock = await acquireRunLock(this.runFolder);
      if (typeof lock === "string") {
        io.out(`schedule: ${lock}; this trigger is skipped`);
        return { status: "locked" };
      }
      try {
        const done = await readCompleted(this.runFolder);
        const latest = await latestCheckpoint(this.runFolder);
        if (done !== null || latest?.final) {
          io.out(
            `schedule: run ${this.runId} has finished` +
              (done?.outputPath ? ` (SAE in ${done.outputPath})` : "") +
              "; nothing to do (change the config or --run-id to train a new run)",
          );
          return { status: "finished" };
        }
        let code: number;
        if (latest !== null) {
          resumedFrom = latest.path;
          const cfg = await resumeConfig(
            { checkpoint: latest.path, runFolder: this.runFolder, entry: latest },
            [],
          );
          code = await runTraining(cfg, this.#ctx, {
            checkpoint: latest.path,
            runFolder: this.runFolder,
            entry: latest,
          });
        } else {
          const cfg = pipelineConfigFromDict(this.dict, { where: this.where, runId: this.runId });
          code = await runTraining(cfg, this.#ctx);
        }
        const status: TriggerStatus = code === EXIT.ok
          ? (latest !== null ? "resumed" : "trained")
          : code === EXIT.interrupted
          ? "interrupted"
          : "failed";
        return { status, resumedFrom };
      } finally {
        await lock.release();
      }
    } catch (error) {
      reportError(error, io, false);
      return { status: "failed", resumedFrom, error };
    } finally {
      inFlight.delete(this.runFolder);
    }
  }
}

/** Options of {@link startSchedule}. */
export interface StartScheduleOptions {
  /** The config file. */
  configPath: string;
  /** `--field value` overrides. */
  overrides: readonly Override[];
  /** `--run-id`, if given. */
  runId: string | null;
  /** The cron expression (UTC). */
  cron: string;
  /** `Deno.cron`. */
  cronFn: CronFn;
  /** Output, interrupts, runner options. */
  ctx: CommandContext;
}

/**
 * Registers the cron job and waits until Ctrl-C (SIGINT/SIGTERM); returns 130 then. An
 * interrupt during a run first lets it write its checkpoint.
 */
export async function startSchedule(options: StartScheduleOptions): Promise<number> {
  const { ctx } = options;
  const run = await ScheduledRun.create(options);
  const stop = new AbortController();
  // Ctrl-C while idle, or after it stopped a run (which wrote its checkpoint), ends the wait.
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  ctx.interrupts.onIdleInterrupt(finish);
  // Deno.cron throws at once for a bad schedule; its promise settles only when the job stops.
  let job: Promise<void>;
  try {
    job = options.cronFn(
      `saeflow ${run.runId}`,
      options.cron,
      { signal: stop.signal },
      async () => {
        if (ctx.interrupts.interrupted) return;
        await run.trigger();
        if (ctx.interrupts.interrupted) finish();
      },
    );
  } catch (err) {
    ctx.interrupts.onIdleInterrupt(null);
    throw new ConfigError(
      `--cron ${JSON.stringify(options.cron)} was refused by Deno.cron (${
        err instanceof Error ? err.message : err
      }); expected a 5-field cron expression in UTC, e.g. '0 3 * * *'`,
    );
  }
  job.catch((err) => ctx.io.err(`schedule: the cron job failed: ${err?.message ?? err}`));
  ctx.io.out(
    `schedule: run ${run.runId} on '${options.cron}' (UTC); run folder ${run.runFolder}; ` +
      "Ctrl-C stops",
  );
  await finished;
  stop.abort();
  return EXIT.interrupted;
}
