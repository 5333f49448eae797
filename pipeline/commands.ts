/**
 * The building blocks of the `pipeline.ts` commands: reading the config of a fresh or resumed
 * run (with `--field value` overrides), running one training with interrupt handling
 * ({@link Interrupts}: the first Ctrl-C or SIGTERM aborts the runner's signal so that a
 * checkpoint is written after the current batch; a second one exits at once), and printing
 * errors as one line.
 * @module
 */

import { loadConfigFile } from "../config/load.ts";
import type { ProgressOptions } from "../logging/progress.ts";
import { PIPELINE_FILES } from "../stages/checkpoint.ts";
import { SaeflowError } from "../util/errors.ts";
import { join } from "../util/path.ts";
import {
  applyCliOverrides,
  checkConfigKeys,
  nestedConfigDict,
  type Override,
  UsageError,
} from "./cli_args.ts";
import { type PipelineConfig, pipelineConfigFromDict } from "./config.ts";
import { PipelineError } from "./errors.ts";
import { markCompleted, type ResumeTarget } from "./run_folder.ts";
import { defaultMetricsPath, type RunnerOptions, SAETrainingRunner } from "./runner.ts";

/** Where the CLI writes its own lines (progress output is the log stage's). */
export interface CliIo {
  /** Informational lines (stdout). */
  out(line: string): void;
  /** Errors and the interrupt message (stderr). */
  err(line: string): void;
}

/** `Deno.cron`'s signature (the overload with options). */
export type CronFn = (
  name: string,
  schedule: string,
  options: { signal?: AbortSignal },
  handler: () => Promise<void> | void,
) => Promise<void>;

/** Exit codes of `pipeline.ts`. */
export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130 } as const;

/** Quotes a path for a shell command line when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Interrupt handling for one process: the first SIGINT/SIGTERM aborts the current run (or, when
 * none is running, exits with 130), a second one exits at once.
 */
export class Interrupts {
  #controller: AbortController | null = null;
  #count = 0;
  #listeners: [Deno.Signal, () => void][] = [];
  #idle: (() => void) | null = null;
  readonly #io: CliIo;
  readonly #exit: (code: number) => void;

  /** Handles interrupts, printing to `io` and exiting the process with `exit`. */
  constructor(io: CliIo, exit: (code: number) => void) {
    this.#io = io;
    this.#exit = exit;
  }

  /** Listens to SIGINT and SIGTERM (SIGTERM where the OS has it). */
  install(): void {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const fn = () => this.interrupt(sig);
      try {
        Deno.addSignalListener(sig, fn);
        this.#listeners.push([sig, fn]);
      } catch { /* SIGTERM is not available on Windows */ }
    }
  }

  /** Stops listening. */
  uninstall(): void {
    for (const [sig, fn] of this.#listeners.splice(0)) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch { /* ignore */ }
    }
  }

  /** The signal of a new run (interrupts abort it until {@link endRun}). */
  beginRun(): AbortSignal {
    this.#controller = new AbortController();
    if (this.#count > 0) this.#controller.abort();
    return this.#controller.signal;
  }

  /** The current run has ended. */
  endRun(): void {
    this.#controller = null;
  }

  /** Called while idle (no run): resolves the wait of a scheduler instead of exiting. */
  onIdleInterrupt(fn: (() => void) | null): void {
    this.#idle = fn;
  }

  /** Whether an interrupt has been received. */
  get interrupted(): boolean {
    return this.#count > 0;
  }

  /** One interrupt (see the class doc). */
  interrupt(name = "SIGINT"): void {
    this.#count++;
    const what = name === "SIGINT" ? "Ctrl-C" : name;
    if (this.#controller === null) {
      if (this.#idle) {
        this.#io.err(`${what}: stopping`);
        const fn = this.#idle;
        this.#idle = null;
        fn();
        return;
      }
      this.#io.err(`${what}: exiting`);
      this.#exit(EXIT.interrupted);
      return;
    }
    if (this.#count === 1) {
      this.#io.err(
        `${what}: finishing the current batch and writing a checkpoint (Ctrl-C again to exit ` +
          "at once, losing the work since the last checkpoint)",
      );
      this.#controller.abort();
      return;
    }
    this.#io.err(`${what} again: exiting now, without a checkpoint`);
    this.#exit(EXIT.interrupted);
  }
}

/** What a command needs from its caller. */
export interface CommandContext {
  /** Output. */
  io: CliIo;
  /** Interrupt handling. */
  interrupts: Interrupts;
  /** Runner options passed through. */
  runner: Omit<RunnerOptions, "signal" | "log">;
  /** Progress output options. */
  progress: ProgressOptions | false;
}

/**
 * Reads a run config for `train`/`schedule`: the YAML/JSON file (SAELens's keys; the flat v3–v5
 * form is converted), its unknown keys refused with close matches, the overrides applied.
 */
export async function trainConfigDict(
  path: string,
  overrides: readonly Override[],
): Promise<Record<string, unknown>> {
  const raw = await loadConfigFile(path);
  const nested = nestedConfigDict(raw, path);
  checkConfigKeys(nested, path);
  return applyCliOverrides(nested, overrides);
}

/** {@link trainConfigDict}, parsed; `runId` is appended to `checkpoint_path`. */
export async function trainConfig(
  path: string,
  overrides: readonly Override[],
  runId?: string | null,
): Promise<PipelineConfig> {
  const dict = await trainConfigDict(path, overrides);
  return pipelineConfigFromDict(dict, {
    where: whereOf(path, overrides),
    runId: runId ?? undefined,
  });
}

/**
 * The config of a resumed run: the checkpoint's `runner_cfg.json` with the overrides applied,
 * `resume_from_checkpoint` set to the checkpoint, and `checkpoint_path` set to the run folder
 * the checkpoint is in (kept verbatim, no run id appended), unless overridden.
 */
export async function resumeConfig(
  target: ResumeTarget,
  overrides: readonly Override[],
): Promise<PipelineConfig> {
  const cfgPath = join(target.checkpoint, PIPELINE_FILES.runnerCfg);
  const raw = await loadConfigFile(cfgPath);
  const nested = nestedConfigDict(raw, cfgPath);
  checkConfigKeys(nested, cfgPath);
  const dict = applyCliOverrides(nested, overrides);
  dict.resume_from_checkpoint = target.checkpoint;
  if (!overrides.some((o) => o.path === "checkpoint_path")) {
    dict.checkpoint_path = target.runFolder;
  }
  return pipelineConfigFromDict(dict, { where: whereOf(cfgPath, overrides), fromSaved: true });
}

/** How errors name a config: the file, and the command line when it overrides fields. */
export function whereOf(path: string, overrides: readonly Override[]): string {
  return overrides.length === 0 ? path : `${path} with the command-line overrides`;
}

/** Says where a run's outputs go. */
function printPlan(cfg: PipelineConfig, io: CliIo, resumed: ResumeTarget | null): void {
  const r = cfg.runner;
  const names = cfg.saes.map((s) => s.id).join(", ");
  io.out(
    `saeflow: run ${r.logger.runName} (${cfg.saes.length} SAE${cfg.multi ? "s" : ""}: ${names})`,
  );
  if (resumed) {
    io.out(`  resuming from: ${resumed.checkpoint}`);
  }
  io.out(
    `  checkpoints:   ${
      r.checkpointPath === null
        ? "none (checkpoint_path is null: Ctrl-C cannot save the run)"
        : `${r.checkpointPath}${r.nCheckpoints > 0 ? ` (${r.nCheckpoints} during training)` : ""}`
    }`,
  );
  io.out(`  final SAE:     ${r.outputPath ?? "not saved (output_path is null)"}`);
  const metrics = defaultMetricsPath(r.checkpointPath, r.outputPath);
  io.out(`  metrics:       ${metrics ?? "none"}`);
}

/**
 * Runs one training (fresh or resumed) with interrupt handling; returns the exit code: 0 when
 * the run finished (and, with a checkpoint path, `completed.json` written into the run folder),
 * 130 when it was interrupted (the checkpoint written and the resume command printed).
 */
export async function runTraining(
  cfg: PipelineConfig,
  ctx: CommandContext,
  resumed: ResumeTarget | null = null,
): Promise<number> {
  const { io } = ctx;
  printPlan(cfg, io, resumed);
  const r = cfg.runner;
  const signal = ctx.interrupts.beginRun();
  const written: string[] = [];
  const onEvent = ctx.runner.onEvent;
  let result;
  try {
    result = await new SAETrainingRunner(cfg, {
      ...ctx.runner,
      onEvent: (e) => {
        if (e.type === "checkpoint") written.push(e.path);
        onEvent?.(e);
      },
      signal,
      log: {
        progress: ctx.progress,
        logger: r.logger,
        metricsFile: defaultMetricsPath(r.checkpointPath, r.outputPath),
      },
    }).run();
  } catch (err) {
    // A failure after checkpoints were written (a NaN step, a broken download): say which one
    // holds the work so far.
    const last = written.at(-1);
    if (last !== undefined && err instanceof SaeflowError) {
      throw new PipelineError(
        `${err.message}; the run's latest checkpoint is intact: ${last} (continue with ` +
          `deno run -A pipeline.ts resume ${shellQuote(last)} once the cause is fixed)`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    ctx.interrupts.endRun();
  }
  for (const sae of result.saes.values()) sae.dispose?.();
  if (result.interrupted) {
    const last = result.checkpoints.at(-1);
    if (last !== undefined) {
      io.err(
        `interrupted at ${result.tokens} tokens; resume with: deno run -A pipeline.ts resume ${
          shellQuote(last)
        }`,
      );
    } else {
      io.err(
        `interrupted at ${result.tokens} tokens; no checkpoint was written (checkpoint_path is ` +
          "null), so the run cannot be resumed",
      );
    }
    return EXIT.interrupted;
  }
  if (r.checkpointPath !== null) {
    await markCompleted(r.checkpointPath, {
      tokens: result.tokens,
      outputPath: r.outputPath,
      finishedAt: new Date().toISOString(),
    });
  }
  io.out(
    r.outputPath === null
      ? `trained ${result.tokens} tokens; output_path is null, so the SAE was not saved`
      : `trained ${result.tokens} tokens; SAE${cfg.multi ? "s" : ""} saved to ${r.outputPath}`,
  );
  return EXIT.ok;
}

/** Prints an error as one line (plus the stack under `debug`); returns its exit code. */
export function reportError(err: unknown, io: CliIo, debug: boolean): number {
  const code = err instanceof UsageError ? EXIT.usage : EXIT.error;
  if (err instanceof SaeflowError) {
    io.err(`error: ${oneLine(err.message)}`);
  } else {
    const msg = err instanceof Error ? err.message : String(err);
    io.err(
      `error: ${oneLine(msg)}` +
        (debug ? "" : " (an unexpected error; run with --debug for the stack trace)"),
    );
  }
  if (debug) {
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      if (e.stack) io.err(e === err ? e.stack : `caused by: ${e.stack}`);
    }
  }
  return code;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}
