/**
 * The sibling folders of an atomic folder write (see `atomic.ts` for the protocol), how a
 * target path is resolved, and whether the process that made a sibling is gone. Shared by the
 * writer (`atomic.ts`) and the recovery every reader runs first (`atomic_recover.ts`).
 * @module
 */

import { SaeflowError } from "../util/errors.ts";
import { basename, dirname, join } from "../util/path.ts";

/**
 * A file or folder write that failed: disk full, no permission, an I/O error, a target that is
 * not a folder. `path` is the file or folder that was being written; whatever stood there before
 * is left as it was.
 *
 * @example
 * ```ts
 * import { FileWriteError } from "./atomic_names.ts";
 * const err = new FileWriteError("out/cfg.json", "No space left on device (os error 28)");
 * if (!err.message.startsWith("cannot write out/cfg.json")) throw new Error(err.message);
 * ```
 */
export class FileWriteError extends SaeflowError {
  /** The file or folder that was being written. */
  readonly path: string;
  /** `problem` says what went wrong; the message starts with `cannot write <path>`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`cannot write ${path}: ${problem}`, options);
    this.path = path;
  }
}

/** The stages a sibling folder goes through (see `atomic.ts`). */
export type SiblingKind = "tmp" | "new" | "old" | "del";

/** One sibling folder of a target, parsed from its name `.<name>.<kind>-<pid>-<hex>`. */
export interface Sibling {
  /** Its stage. */
  kind: SiblingKind;
  /** The process that made it. */
  pid: number;
  /** `<pid>-<hex>`: the same for every sibling of one write. */
  tag: string;
  /** Its full path. */
  path: string;
}

const SIBLING_RE = /^(tmp|new|old|del)-(\d{1,10})-([0-9a-f]{8,32})$/;

/** Path of the `kind` sibling of `target` for the write tagged `tag`. */
export function siblingPath(target: string, kind: SiblingKind, tag: string): string {
  return join(dirname(target), `.${basename(target)}.${kind}-${tag}`);
}

/** A fresh tag `<pid>-<16 hex>` for one write. */
export function newTag(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${Deno.pid}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The siblings of `target` (resolved, see {@link resolveTarget}) left by any write. */
export async function listSiblings(target: string): Promise<Sibling[]> {
  const parent = dirname(target), prefix = `.${basename(target)}.`;
  const out: Sibling[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      if (!e.name.startsWith(prefix)) continue;
      const m = SIBLING_RE.exec(e.name.slice(prefix.length));
      if (!m) continue;
      out.push({
        kind: m[1] as SiblingKind,
        pid: Number(m[2]),
        tag: `${m[2]}-${m[3]}`,
        path: join(parent, e.name),
      });
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return out;
}

/** Tags of the folder writes in flight in this process. */
export const activeTags: Set<string> = new Set();

/** How long a sibling of another process is kept where liveness cannot be checked (1 hour). */
export const STALE_AFTER_MS = 60 * 60 * 1000;

/**
 * True when the write that made `s` cannot still be running: this process and not in flight,
 * or (Linux) no `/proc/<pid>`, or elsewhere untouched for {@link STALE_AFTER_MS}.
 */
export async function writerGone(s: Sibling): Promise<boolean> {
  if (s.pid === Deno.pid) return !activeTags.has(s.tag);
  if (Deno.build.os === "linux") {
    try {
      await Deno.stat(`/proc/${s.pid}`);
      return false;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return true;
      // No access to /proc: fall through to the age rule.
    }
  }
  try {
    const st = await Deno.lstat(s.path);
    return st.mtime !== null && Date.now() - st.mtime.getTime() > STALE_AFTER_MS;
  } catch {
    return false;
  }
}

/** Null when nothing is at `path`, else its lstat. */
export async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * The real location of folder `path`: symlinks (the path itself and its parents) followed, so
 * a write replaces the folder a symlink points to and keeps the link. The result is absolute.
 * The parent must exist.
 */
export async function resolveTarget(path: string): Promise<string> {
  let p = path.replace(/[/\\]+$/, "") || path;
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstatOrNull(p);
    if (!st?.isSymlink) break;
    const link = await Deno.readLink(p);
    p = /^([/\\]|[A-Za-z]:)/.test(link) ? link : join(dirname(p), link);
  }
  const name = basename(p);
  if (name === "" || name === "." || name === "..") return await Deno.realPath(p);
  return join(await Deno.realPath(dirname(p)), name);
}

/** Flushes a folder's entries (new names) to disk; a no-op where folders cannot be opened. */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile;
  try {
    dir = await Deno.open(path, { read: true });
  } catch {
    return;
  }
  try {
    await dir.sync();
  } catch {
    // Windows cannot fsync a directory handle; rename is durable there without it.
  } finally {
    dir.close();
  }
}
