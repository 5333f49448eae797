/**
 * Atomic output: every file and folder saeflow writes either appears complete under its final
 * name or not at all, and whatever stood there before survives a failed or killed write.
 *
 * **Files** ({@link writeFileAtomic}): written to a temporary sibling, fsynced, renamed over the
 * destination.
 *
 * **Folders** ({@link writeFolderAtomic}, used for SAE folders and training checkpoints). POSIX
 * cannot rename a folder over a non-empty one, so a folder is swapped in with two renames and
 * the protocol makes every intermediate state recoverable. With target `dir/name` and a tag
 * `<pid>-<random hex>` per write, the siblings are:
 *
 * | sibling           | holds                                     | recovery, when it finds it           |
 * | ----------------- | ----------------------------------------- | ------------------------------------ |
 * | `.name.tmp-<tag>` | the new folder being written (incomplete) | removed once its writer is gone      |
 * | `.name.new-<tag>` | the new folder, complete and fsynced      | restored if `name` is missing, else  |
 * |                   |                                           | removed once its writer is gone      |
 * | `.name.old-<tag>` | the previous folder, moved aside          | restored if `name` and every `.new`  |
 * |                   |                                           | are missing, else removed            |
 * | `.name.del-<tag>` | a folder being deleted                    | removed                              |
 *
 * A write: (1) {@link recoverFolder} on the target; (2) every file into `.tmp` (each fsynced),
 * entries of the previous folder that the caller does not own hard-linked in (see
 * {@link FolderWriteOptions.owned}), the folder fsynced; (3) rename `.tmp` → `.new` — this
 * rename is the completion marker, so no marker file ends up in the folder; (4) rename `name` →
 * `.old` (when it exists); (5) rename `.new` → `name`, fsync the parent; (6) rename `.old` →
 * `.del` and delete it. A kill before (4) leaves `name` untouched; between (4) and (5) `name` is
 * missing but `.new` is complete, and the next {@link recoverFolder} renames it into place; after
 * (5) only garbage is left. A folder under its final name is therefore always one complete write.
 * A sibling's writer is "gone" when it is this process and not in flight, when `/proc/<pid>` is
 * missing (Linux), or elsewhere after an hour untouched. Concurrent writes of one folder from
 * two processes are not supported (within one process they are queued). Every reader of such a
 * folder calls {@link recoverFolder} first. A symlinked target is followed (the folder it points
 * to is replaced, the link kept); a root or the working directory (or a parent of it) is refused.
 *
 * Failures (disk full, permissions, I/O) throw {@link FileWriteError} naming the file or folder
 * being written; the previous folder is left as it was and the temporary one removed.
 * @module
 */

import { basename, dirname, join } from "../util/path.ts";
import {
  activeTags,
  FileWriteError,
  lstatOrNull,
  newTag,
  resolveTarget,
  siblingPath,
  syncDir,
} from "./atomic_names.ts";
import { discardFolder, recoverFolder } from "./atomic_recover.ts";

export { FileWriteError, recoverFolder };

/** Writes all of `data` to a new file at `path` and fsyncs it (the default file writer). */
export async function writeAndSync(path: string, data: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < data.length) written += await file.write(data.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
}

function problemOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Writes `data` to `path` atomically (temp file in the same directory, fsync, rename).
 * Parent directories are created. A failure throws {@link FileWriteError} naming `path` and
 * leaves an existing file as it was.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("hi"));
 * if (await Deno.readTextFile(`${dir}/a.txt`) !== "hi") throw new Error("not written");
 * if ([...Deno.readDirSync(dir)].length !== 1) throw new Error("a temp file was left behind");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.part-${newTag()}`);
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await writeAndSync(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new FileWriteError(path, problemOf(err), { cause: err });
  }
}

/** Writes a UTF-8 text file atomically (see {@link writeFileAtomic}). */
export async function writeTextFileAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Writes `value` as pretty JSON (2-space indent, trailing newline) atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeTextFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** What a {@link writeFolderAtomic} fill callback writes through. */
export interface FolderWriter {
  /** The temporary folder being filled; other code may write into it directly too. */
  readonly dir: string;
  /** Writes file `name` (relative, `/`-separated; parents created) with `data`, fsynced. */
  writeFile(name: string, data: Uint8Array): Promise<void>;
  /** Writes UTF-8 text file `name`. */
  writeText(name: string, text: string): Promise<void>;
  /** Writes `value` as pretty JSON (2-space indent, trailing newline). */
  writeJson(name: string, value: unknown): Promise<void>;
}

/** Options of {@link writeFolderAtomic}. */
export interface FolderWriteOptions {
  /**
   * Names of the entries this write owns. When given, every other entry of the folder being
   * replaced is kept (hard-linked, or copied, into the new folder), so a save never deletes a
   * file it did not write; owned names the new folder lacks disappear (e.g. a stale
   * `sparsity.safetensors`). When absent, the folder is replaced as a whole.
   */
  owned?: readonly string[];
  /** The low-level file write (default {@link writeAndSync}); tests inject failures here. */
  writeFile?: (path: string, data: Uint8Array) => Promise<void>;
}

/** Per-target queue, so writes of one folder from this process never interleave. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Writes folder `path` atomically (protocol in the module doc): `fill` writes the new content
 * into a temporary sibling, which then replaces `path` as one recoverable step. Parent folders
 * are created. Errors of the file system (disk full, permissions) become {@link FileWriteError}
 * naming the file or folder; errors `fill` throws itself propagate unchanged. On any error the
 * previous folder is left as it was and the temporary one removed.
 *
 * @example
 * ```ts
 * import { writeFolderAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFolderAtomic(`${dir}/out`, async (w) => {
 *   await w.writeJson("cfg.json", { k: 4 });
 *   await w.writeText("notes/a.txt", "v1");
 * });
 * await writeFolderAtomic(`${dir}/out`, (w) => w.writeJson("cfg.json", { k: 32 }));
 * const names = [...Deno.readDirSync(dir)].map((e) => e.name);
 * if (names.join() !== "out") throw new Error(`left behind: ${names}`);
 * if (JSON.parse(Deno.readTextFileSync(`${dir}/out/cfg.json`)).k !== 32) throw new Error();
 * // Replaced as a whole: the old notes/ folder is gone.
 * if ([...Deno.readDirSync(`${dir}/out`)].length !== 1) throw new Error("notes/ kept");
 * ```
 */
export async function writeFolderAtomic(
  path: string,
  fill: (writer: FolderWriter) => Promise<unknown> | unknown,
  options: FolderWriteOptions = {},
): Promise<void> {
  let target: string;
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    target = await resolveTarget(path);
  } catch (err) {
    throw new FileWriteError(path, problemOf(err), { cause: err });
  }
  const previous = queues.get(target) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(() => writeFolderNow(path, target, fill, options));
  queues.set(target, run);
  try {
    await run;
  } finally {
    if (queues.get(target) === run) queues.delete(target);
  }
}

async function writeFolderNow(
  path: string,
  target: string,
  fill: (writer: FolderWriter) => Promise<unknown> | unknown,
  options: FolderWriteOptions,
): Promise<void> {
  refuseSpecialTarget(path, target);
  await recoverFolder(target);
  const existing = await lstatOrNull(target);
  if (existing && !existing.isDirectory) {
    throw new FileWriteError(path, "it exists and is not a folder; nothing was changed");
  }
  const tag = newTag(), parent = dirname(target);
  const tmp = siblingPath(target, "tmp", tag), fresh = siblingPath(target, "new", tag);
  const old = siblingPath(target, "old", tag);
  const fsError = (where: string, err: unknown) =>
    err instanceof FileWriteError ? err : new FileWriteError(where, problemOf(err), { cause: err });
  activeTags.add(tag);
  let movedAside = false;
  try {
    try {
      await Deno.mkdir(tmp);
    } catch (err) {
      throw fsError(path, err);
    }
    const written = new Set<string>();
    await fill(folderWriter(path, tmp, written, options.writeFile ?? writeAndSync));
    try {
      if (existing && options.owned) await keepOthers(target, tmp, new Set(options.owned));
      await syncTree(tmp, written);
      await Deno.rename(tmp, fresh);
      await syncDir(parent);
      if (existing) {
        await Deno.rename(target, old);
        movedAside = true;
      }
      await swapIn(fresh, target);
      await syncDir(parent);
    } catch (err) {
      throw fsError(path, err);
    }
  } catch (err) {
    // Undo: the previous folder goes back under its name if it was moved aside.
    if (movedAside && (await lstatOrNull(target)) === null) {
      await Deno.rename(old, target).catch(() => {});
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.remove(fresh, { recursive: true }).catch(() => {});
    throw err;
  } finally {
    activeTags.delete(tag);
  }
  if (movedAside) await discardFolder(old, target);
}

/** Renames `fresh` to `target`; done too when another process's recovery already did it. */
async function swapIn(fresh: string, target: string): Promise<void> {
  try {
    await Deno.rename(fresh, target);
  } catch (err) {
    const doneElsewhere = (await lstatOrNull(fresh)) === null &&
      (await lstatOrNull(target)) !== null;
    if (!doneElsewhere) throw err;
  }
}

function refuseSpecialTarget(path: string, target: string): void {
  let cwd = "";
  try {
    cwd = Deno.cwd();
  } catch {
    // No read permission for the cwd: nothing to compare against.
  }
  const isAncestorOfCwd = cwd !== "" && (cwd === target || cwd.startsWith(target + "/"));
  if (dirname(target) === target || isAncestorOfCwd) {
    throw new FileWriteError(
      path,
      `it is ${isAncestorOfCwd ? "the working directory or one of its parents" : "a root"}, ` +
        `which cannot be replaced as a whole; write into a subfolder`,
    );
  }
}

function folderWriter(
  shownDir: string,
  tmp: string,
  written: Set<string>,
  write: (path: string, data: Uint8Array) => Promise<void>,
): FolderWriter {
  const writeFile = async (name: string, data: Uint8Array) => {
    if (name === "" || name.split(/[/\\]/).some((s) => s === "" || s === "." || s === "..")) {
      throw new FileWriteError(join(shownDir, name), "expected a relative name inside the folder");
    }
    const full = join(tmp, name);
    try {
      await Deno.mkdir(dirname(full), { recursive: true });
      await write(full, data);
      written.add(full);
    } catch (err) {
      throw new FileWriteError(
        join(shownDir, name),
        `${problemOf(err)} (while writing the new folder in ${tmp}; ${shownDir} was not changed)`,
        { cause: err },
      );
    }
  };
  const writeText = (name: string, text: string) => writeFile(name, new TextEncoder().encode(text));
  return {
    dir: tmp,
    writeFile,
    writeText,
    writeJson: (name, value) => writeText(name, JSON.stringify(value, null, 2) + "\n"),
  };
}

/** Hard-links (or copies) every entry of `from` not owned and not already in `to` into `to`. */
async function keepOthers(from: string, to: string, owned: Set<string>): Promise<void> {
  for await (const e of Deno.readDir(from)) {
    if (owned.has(e.name) || (await lstatOrNull(join(to, e.name))) !== null) continue;
    await linkTree(join(from, e.name), join(to, e.name));
  }
}

async function linkTree(src: string, dst: string): Promise<void> {
  const st = await Deno.lstat(src);
  if (st.isSymlink) {
    await Deno.symlink(await Deno.readLink(src), dst);
  } else if (st.isDirectory) {
    await Deno.mkdir(dst);
    for await (const e of Deno.readDir(src)) await linkTree(join(src, e.name), join(dst, e.name));
  } else {
    try {
      await Deno.link(src, dst);
    } catch {
      await Deno.copyFile(src, dst);
    }
  }
}

/** Fsyncs every file under `dir` not in `done`, then every folder. */
async function syncTree(dir: string, done: Set<string>): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const full = join(dir, e.name);
    if (e.isDirectory) await syncTree(full, done);
    else if (e.isFile && !done.has(full)) {
      const f = await Deno.open(full, { read: true });
      try {
        await f.sync();
      } finally {
        f.close();
      }
    }
  }
  await syncDir(dir);
}
