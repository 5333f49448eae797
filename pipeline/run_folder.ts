/**
 * A run folder (`checkpoint_path/<run id>/`) as the CLI sees it: its checkpoints (SAELens names:
 * the number of training samples, `final_<n>` for the final one), the latest one to resume from,
 * a `completed.json` marker the CLI writes when a run ends, and a lock file so that two
 * scheduled runs never train the same run at once.
 *
 * The lock is `<run folder>/run.lock`, created exclusively, holding the owner's pid, host name
 * and (on Linux) the process start time; it is stale, and taken over, when that process is gone
 * (on Linux: no `/proc/<pid>`, or a different process under that pid). Where liveness cannot be
 * checked (another host, no `/proc`), a lock is treated as held and the error says which file to
 * remove.
 * @module
 */

import { recoverFolder, writeJsonAtomic } from "../io/atomic.ts";
import { PIPELINE_FILES } from "../stages/checkpoint.ts";
import { basename, dirname, join } from "../util/path.ts";
import { PipelineError } from "./errors.ts";

/** One checkpoint of a run folder. */
export interface CheckpointEntry {
  /** Folder name (`"7168"`, `"final_20480"`). */
  name: string;
  /** Full path. */
  path: string;
  /** Training samples it was taken at. */
  samples: number;
  /** True for SAELens's `final_<n>` checkpoint (taken after training ended). */
  final: boolean;
}

const CHECKPOINT_NAME = /^(final_)?(\d{1,15})$/;
/** `writeFolderAtomic` siblings of a checkpoint (`.7168.new-<pid>-<hex>`, …). */
const SIBLING_NAME = /^\.((?:final_)?\d{1,15})\.(?:tmp|new|old|del)-\d{1,10}-[0-9a-f]{8,32}$/;

/** File the CLI writes into a run folder when the run has finished. */
export const COMPLETED_FILE = "completed.json";
/** The run folder's lock file (see the module doc). */
export const LOCK_FILE = "run.lock";

/**
 * Orders checkpoints oldest first: by training samples, a `final_*` after every numbered one.
 *
 * @example
 * ```ts
 * import { compareCheckpoints } from "./run_folder.ts";
 * const c = (name: string, samples: number, final = false) => ({ name, path: name, samples, final });
 * const list = [c("final_90", 90, true), c("100", 100), c("30", 30)].sort(compareCheckpoints);
 * if (list.map((e) => e.name).join() !== "30,100,final_90") throw new Error();
 * ```
 */
export function compareCheckpoints(a: CheckpointEntry, b: CheckpointEntry): number {
  if (a.final !== b.final) return a.final ? 1 : -1;
  return a.samples - b.samples;
}

/**
 * The complete checkpoints of run folder `dir`, oldest first (see {@link compareCheckpoints}).
 * A checkpoint whose write was killed between its renames is restored first (`recoverFolder`);
 * a half-written one is not listed. Only folders holding a `pipeline_state.safetensors` count.
 */
export async function listCheckpoints(dir: string): Promise<CheckpointEntry[]> {
  const names = new Set<string>();
  try {
    for await (const e of Deno.readDir(dir)) {
      const sib = SIBLING_NAME.exec(e.name);
      if (sib) names.add(sib[1]);
      else if (e.isDirectory && CHECKPOINT_NAME.test(e.name)) names.add(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new PipelineError(
      `cannot read run folder ${dir} (${err instanceof Error ? err.message : err})`,
    );
  }
  const out: CheckpointEntry[] = [];
  for (const name of names) {
    const path = join(dir, name);
    await recoverFolder(path);
    if (!(await isFile(join(path, PIPELINE_FILES.pipelineState)))) continue;
    const m = CHECKPOINT_NAME.exec(name)!;
    out.push({ name, path, samples: Number(m[2]), final: m[1] !== undefined });
  }
  return out.sort(compareCheckpoints);
}

/** The latest checkpoint of run folder `dir` ({@link listCheckpoints}), or null when none. */
export async function latestCheckpoint(dir: string): Promise<CheckpointEntry | null> {
  const all = await listCheckpoints(dir);
  return all.length === 0 ? null : all[all.length - 1];
}

/** What {@link resolveResumeTarget} found. */
export interface ResumeTarget {
  /** The checkpoint folder to resume from. */
  checkpoint: string;
  /** The run folder it belongs to (where later checkpoints go). */
  runFolder: string;
  /** Its entry (name, samples, final). */
  entry: CheckpointEntry;
}

/**
 * Resolves the argument of `pipeline.ts resume`: a checkpoint folder (holding
 * `runner_cfg.json` and `pipeline_state.safetensors`), or a run folder, whose latest checkpoint
 * is taken. Throws a {@link PipelineError} naming what was found and what was expected.
 */
export async function resolveResumeTarget(path: string): Promise<ResumeTarget> {
  const clean = path.replace(/[/\\]+$/, "") || path;
  const st = await statOrNull(clean);
  if (st === null) {
    throw new PipelineError(
      `resume: ${path} does not exist; expected a checkpoint folder or a run folder ` +
        "(checkpoint_path/<run id>)",
    );
  }
  if (!st.isDirectory) {
    throw new PipelineError(
      `resume: ${path} is a file; expected a checkpoint folder or a run folder`,
    );
  }
  await recoverFolder(clean);
  const name = basename(clean);
  const m = CHECKPOINT_NAME.exec(name);
  if (await isFile(join(clean, PIPELINE_FILES.runnerCfg))) {
    if (!(await isFile(join(clean, PIPELINE_FILES.pipelineState)))) {
      throw new PipelineError(
        `resume: ${path} has a runner_cfg.json but no ${PIPELINE_FILES.pipelineState}: it is a ` +
          "final SAE output or a SAELens checkpoint, not a saeflow checkpoint; expected a " +
          "checkpoint folder written by saeflow (checkpoint_path/<run id>/<samples>)",
      );
    }
    const entry: CheckpointEntry = {
      name,
      path: clean,
      samples: m ? Number(m[2]) : NaN,
      final: m?.[1] !== undefined,
    };
    return { checkpoint: clean, runFolder: dirname(clean), entry };
  }
  const latest = await latestCheckpoint(clean);
  if (latest === null) {
    throw new PipelineError(
      `resume: ${path} holds no checkpoint; expected a checkpoint folder (with runner_cfg.json) ` +
        "or a run folder with checkpoint subfolders named by their training samples " +
        "(n_checkpoints > 0 writes them; Ctrl-C writes one too)",
    );
  }
  return { checkpoint: latest.path, runFolder: clean, entry: latest };
}

/** What `completed.json` holds. */
export interface CompletedInfo {
  /** Training samples the run ended at. */
  tokens: number;
  /** Where the final SAE went (null: output_path was null). */
  outputPath: string | null;
  /** ISO time the run ended. */
  finishedAt: string;
}

/** Writes `completed.json` into run folder `dir` (atomically). */
export async function markCompleted(dir: string, info: CompletedInfo): Promise<void> {
  await writeJsonAtomic(join(dir, COMPLETED_FILE), {
    tokens: info.tokens,
    output_path: info.outputPath,
    finished_at: info.finishedAt,
  });
}

/** The `completed.json` of run folder `dir`, or null when the run has not finished. */
export async function readCompleted(dir: string): Promise<CompletedInfo | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, COMPLETED_FILE));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const v = JSON.parse(text);
    return {
      tokens: Number(v.tokens),
      outputPath: typeof v.output_path === "string" ? v.output_path : null,
      finishedAt: String(v.finished_at),
    };
  } catch {
    // A damaged marker still says the run finished.
    return { tokens: NaN, outputPath: null, finishedAt: "unknown" };
  }
}

/** A held run lock; release it with `release()` (or `await using`). */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  /** Removes the lock file (idempotent). */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a lock file holds. */
interface LockInfo {
  pid: number;
  hostname: string;
  procStart: string | null;
  since: string;
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** The start time of process `pid` from `/proc/<pid>/stat` (Linux), null when unknown. */
async function procStartOf(pid: number): Promise<string | null | "gone"> {
  if (Deno.build.os !== "linux") return null;
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "gone";
    return null;
  }
  // Fields after the command (which may hold spaces) start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[19] ?? null; // field 22 overall: starttime
}

/** Whether the lock `info` is still held by a live process; null when it cannot be told. */
async function lockAlive(info: LockInfo): Promise<boolean | null> {
  if (info.hostname !== hostname()) return null;
  if (info.pid === Deno.pid) return true;
  const start = await procStartOf(info.pid);
  if (start === "gone") return false;
  if (start === null) return null;
  return info.procStart === null || info.procStart === start;
}

/**
 * Takes the lock of run folder `dir` (created if missing), or returns a string saying who holds
 * it. A lock left by a process that is gone is taken over.
 *
 * @example
 * ```ts
 * import { acquireRunLock } from "./run_folder.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(dir);
 * if (typeof lock === "string") throw new Error(lock);
 * if (typeof (await acquireRunLock(dir)) !== "string") throw new Error("taken twice");
 * await lock.release();
 * const again = await acquireRunLock(dir);
 * if (typeof again === "string") throw new Error(again);
 * await again.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireRunLock(dir: string): Promise<RunLock | string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const start = await procStartOf(Deno.pid);
  const mine: LockInfo = {
    pid: Deno.pid,
    hostname: hostname(),
    procStart: typeof start === "string" && start !== "gone" ? start : null,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(JSON.stringify(mine) + "\n"));
      } finally {
        f.close();
      }
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await Deno.remove(path).catch(() => {});
      };
      return { path, release, [Symbol.asyncDispose]: release };
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) {
        throw new PipelineError(
          `cannot create lock file ${path} (${err instanceof Error ? err.message : err})`,
        );
      }
    }
    let info: LockInfo | null = null;
    try {
      info = JSON.parse(await Deno.readTextFile(path));
    } catch {
      info = null; // being written, or damaged: judge by its age below
    }
    if (info === null || typeof info.pid !== "number") {
      const st = await statOrNull(path);
      if (st?.mtime && Date.now() - st.mtime.getTime() > 60_000) {
        await Deno.remove(path).catch(() => {});
        continue;
      }
      return `run folder ${dir} is locked (${path} is unreadable; remove it if no run is active)`;
    }
    const alive = await lockAlive(info);
    if (alive === false) {
      await Deno.remove(path).catch(() => {});
      continue;
    }
    return `run folder ${dir} is locked by process ${info.pid} on ${info.hostname} since ` +
      `${info.since}` +
      (alive === null ? ` (cannot check that process; remove ${path} if it is gone)` : "");
  }
  return `run folder ${dir} is locked (${path} keeps coming back)`;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isFile === true;
}
