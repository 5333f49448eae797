/**
 * The commands of `pipeline.ts` as functions: {@link main} parses the arguments and runs `train`,
 * `resume` or `schedule`, and returns the exit code (0 done, 1 error, 2 bad command line, 130
 * interrupted). Errors print as one line (`error: <message>`), with the stack only under
 * `--debug` (or a bare `--verbose`, or `SAEFLOW_DEBUG=1`).
 *
 * Ctrl-C (SIGINT) or SIGTERM aborts the runner's signal: the step stage captures a checkpoint
 * after the current batch, the checkpoint stage writes it, and the command prints how to resume
 * and returns 130. A second Ctrl-C exits at once.
 * @module
 */

import type { ProgressOptions } from "../logging/progress.ts";
import { fieldHelp, parseArgs, type ParsedArgs, usage, UsageError } from "./cli_args.ts";
import {
  type CliIo,
  type CommandContext,
  type CronFn,
  EXIT,
  Interrupts,
  reportError,
  resumeConfig,
  runTraining,
  shellQuote,
  trainConfig,
} from "./commands.ts";
import { PipelineError } from "./errors.ts";
import { readCompleted, resolveResumeTarget } from "./run_folder.ts";
import type { RunnerOptions } from "./runner.ts";
import { startSchedule } from "./schedule.ts";
import { EVAL_USAGE, runEvalCommand } from "./eval_command.ts";
import { CACHE_USAGE, runCacheCommand } from "./cache_activations.ts";
import { PRETOKENIZE_USAGE, runPretokenizeCommand } from "./pretokenize.ts";

export { type CliIo, EXIT } from "./commands.ts";

const defaultIo: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Options of {@link main} (defaults: the real process). */
export interface MainOptions {
  /** Output (default: console.log / console.error). */
  io?: CliIo;
  /** Environment (default `Deno.env.get`, errors ignored). */
  env?: (name: string) => string | undefined;
  /** Install SIGINT/SIGTERM handlers (default true; tests that run in-process say false). */
  signals?: boolean;
  /** Runner options passed through (a model, a GPU, hub settings, `onEvent`, `worker`). */
  runner?: Omit<RunnerOptions, "signal" | "log">;
  /** Progress output options (default: stdout, a bar on a TTY); false: none. */
  progress?: ProgressOptions | false;
  /** Exits the process (a second Ctrl-C, or one before a run started; default `Deno.exit`). */
  exit?: (code: number) => void;
  /** `Deno.cron` (default: the real one, present with `--unstable-cron`). */
  cron?: CronFn;
  /** Aborting it interrupts the run as Ctrl-C does (tests). */
  signal?: AbortSignal;
}

async function resumeCommand(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const target = await resolveResumeTarget(args.target!);
  const givenRunFolder = target.checkpoint !== args.target!.replace(/[/\\]+$/, "");
  if (target.entry.final) {
    throw new PipelineError(
      `resume: ${target.checkpoint} is the final checkpoint of a finished run (taken after ` +
        "training_tokens were reached); there is nothing left to train. Its SAE is in the " +
        "run's output_path",
    );
  }
  if (givenRunFolder) {
    const done = await readCompleted(target.runFolder);
    if (done !== null) {
      throw new PipelineError(
        `resume: run ${target.runFolder} has finished (${done.tokens} tokens` +
          (done.outputPath ? `, SAE in ${done.outputPath}` : "") +
          `); to train again from a checkpoint, name it: pipeline.ts resume ${
            shellQuote(target.checkpoint)
          }`,
      );
    }
  }
  const cfg = await resumeConfig(target, args.overrides);
  return await runTraining(cfg, ctx, target);
}

/** A command of `pipeline.ts` implemented elsewhere (evals, caching, pretokenizing). */
export interface ToolCommand {
  /** One line of usage. */
  usage: string;
  /** Runs with the arguments after the command name (false: it only printed its help). */
  run(args: string[], io: CliIo): Promise<boolean>;
}

/** `pipeline.ts eval …` and the other commands that are not training runs. */
export const TOOL_COMMANDS: Record<string, ToolCommand> = {
  eval: {
    usage: EVAL_USAGE,
    run: async (args, io) =>
      (await runEvalCommand(args, { write: (t) => io.err(t.replace(/\n$/, "")) })) !== null,
  },
  cache: {
    usage: CACHE_USAGE,
    run: async (args) => {
      await runCacheCommand(args);
      return true;
    },
  },
  pretokenize: {
    usage: PRETOKENIZE_USAGE,
    run: async (args) => {
      await runPretokenizeCommand(args);
      return true;
    },
  },
};

/**
 * Runs `pipeline.ts` with `argv` (see the module doc) and returns the exit code. Never throws
 * for bad input: errors print as one line.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const lines: string[] = [];
 * const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
 * const code = await main(["train", "--help"], { io, signals: false });
 * if (code !== 0 || !lines.join("\n").includes("--sae.k")) throw new Error(lines.join("\n"));
 * if ((await main(["trian"], { io, signals: false })) !== 2) throw new Error("usage error expected");
 * ```
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const io = options.io ?? defaultIo;
  const env = options.env ?? defaultEnv;
  let args: ParsedArgs | null = null;
  const interrupts = new Interrupts(io, options.exit ?? ((code) => Deno.exit(code)));
  const onAbort = () => interrupts.interrupt("abort");
  const tool = TOOL_COMMANDS[argv[0] ?? ""];
  if (tool) {
    try {
      await tool.run(argv.slice(1), io);
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, parseDebug(argv, env));
    }
  }
  try {
    args = parseArgs(argv, env);
    if (args.help || args.command === null) {
      io.out(usage(args.command));
      if (args.command === null) {
        for (const [name, t] of Object.entries(TOOL_COMMANDS)) io.out(`  ${name}: ${t.usage}`);
      }
      if (args.command !== "resume") io.out("\n" + fieldHelp());
      if (!args.help && args.command === null) return EXIT.usage;
      return EXIT.ok;
    }
    if (args.target === null) {
      throw new UsageError(
        args.command === "resume"
          ? "resume needs a checkpoint folder or a run folder (pipeline.ts resume --help)"
          : `${args.command} needs a config file (pipeline.ts ${args.command} --help)`,
      );
    }
    if (options.signals !== false) interrupts.install();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const ctx: CommandContext = {
      io,
      interrupts,
      runner: options.runner ?? {},
      progress: options.progress ?? {},
    };
    switch (args.command) {
      case "train": {
        const cfg = await trainConfig(args.target, args.overrides, args.runId);
        return await runTraining(cfg, ctx);
      }
      case "resume":
        return await resumeCommand(args, ctx);
      case "schedule": {
        if (args.cron === null) {
          throw new UsageError(
            "schedule needs --cron '<expression>', e.g. --cron '0 3 * * *' (03:00 UTC daily)",
          );
        }
        const cron = options.cron ?? (Deno as unknown as { cron?: CronFn }).cron;
        if (typeof cron !== "function") {
          throw new UsageError(
            "schedule needs Deno.cron: run it as deno run -A --unstable-cron pipeline.ts " +
              "schedule …",
          );
        }
        return await startSchedule({
          configPath: args.target,
          overrides: args.overrides,
          runId: args.runId,
          cron: args.cron,
          cronFn: cron,
          ctx,
        });
      }
    }
    throw new UsageError(`unknown command ${args.command}`);
  } catch (err) {
    return reportError(err, io, args?.debug ?? parseDebug(argv, env));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    interrupts.uninstall();
  }
}

function parseDebug(argv: readonly string[], env: (name: string) => string | undefined): boolean {
  return argv.includes("--debug") || argv.at(-1) === "--verbose" ||
    ["1", "true", "yes"].includes((env("SAEFLOW_DEBUG") ?? "").toLowerCase());
}
