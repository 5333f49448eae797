/**
 * Recovery of folders written by `writeFolderAtomic` (protocol in `atomic.ts`): every reader of
 * such a folder calls {@link recoverFolder} first, so a write killed at any point is finished or
 * undone before anything is read, and the sibling folders of killed writes are removed.
 * @module
 */

import { dirname } from "../util/path.ts";
import {
  activeTags,
  FileWriteError,
  listSiblings,
  lstatOrNull,
  newTag,
  resolveTarget,
  type Sibling,
  siblingPath,
  syncDir,
  writerGone,
} from "./atomic_names.ts";

/**
 * Removes a folder so that a kill half-way never leaves a partial folder under a name that
 * recovery would restore: it is renamed to a `del` sibling first, then deleted. Errors are
 * ignored (a `del` sibling is garbage that the next recovery removes).
 */
export async function discardFolder(path: string, target: string): Promise<void> {
  const trash = siblingPath(target, "del", newTag());
  try {
    await Deno.rename(path, trash);
  } catch {
    return;
  }
  await Deno.remove(trash, { recursive: true }).catch(() => {});
}

async function mtimeOf(path: string): Promise<number> {
  return (await lstatOrNull(path))?.mtime?.getTime() ?? 0;
}

async function newestOf(list: Sibling[]): Promise<Sibling | undefined> {
  let best: Sibling | undefined, bestTime = -Infinity;
  for (const s of list) {
    const t = await mtimeOf(s.path);
    if (t > bestTime) [best, bestTime] = [s, t];
  }
  return best;
}

/**
 * Brings folder `path` to a consistent state after an interrupted `writeFolderAtomic` and
 * removes the leftovers of killed writes. Call it before reading such a folder (saeflow's own
 * readers do: `SAE.loadFromDisk`, checkpoint reads, resume).
 *
 * - When `path` is missing but a complete copy exists beside it (a write was killed between
 *   its two renames), the copy is renamed to `path`: the newly written one (`.new-…`) if there
 *   is one, else the previous folder (`.old-…`).
 * - Siblings of writes whose process is gone are removed: unfinished `.tmp-…` folders,
 *   complete `.new-…` folders that were never swapped in (`path` keeps the old content),
 *   `.old-…` and `.del-…` folders. Siblings of a write still running are left alone.
 * - Cleanup is best effort (a read-only reader still reads); only a failed restore throws.
 *
 * Returns true when a folder was restored under `path`.
 *
 * @example
 * ```ts
 * import { recoverFolder, writeFolderAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFolderAtomic(`${dir}/sae`, (w) => w.writeText("a.txt", "v1"));
 * // Simulate a kill between the two renames of a rewrite: only the complete new copy is left.
 * await Deno.rename(`${dir}/sae`, `${dir}/.sae.new-1-0123456789abcdef`);
 * if (!(await recoverFolder(`${dir}/sae`))) throw new Error("not restored");
 * if ((await Deno.readTextFile(`${dir}/sae/a.txt`)) !== "v1") throw new Error("wrong content");
 * ```
 */
export async function recoverFolder(path: string): Promise<boolean> {
  let target: string;
  try {
    target = await resolveTarget(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false; // no parent: nothing to recover
    throw err;
  }
  const siblings = await listSiblings(target);
  if (siblings.length === 0) return false;
  let restored: Sibling | undefined;
  if ((await lstatOrNull(target)) === null) {
    // A write of this process in flight finishes its own swap.
    const candidates = siblings.filter((s) => !activeTags.has(s.tag));
    restored = await newestOf(candidates.filter((s) => s.kind === "new")) ??
      await newestOf(candidates.filter((s) => s.kind === "old"));
    if (restored) {
      try {
        await Deno.rename(restored.path, target);
        await syncDir(dirname(target));
      } catch (err) {
        // A writer (or another reader) may have completed the swap meanwhile.
        if ((await lstatOrNull(target)) === null) {
          throw new FileWriteError(
            path,
            `the folder is missing after an interrupted write and its complete copy ` +
              `${restored.path} could not be moved back: ${(err as Error).message}`,
            { cause: err },
          );
        }
        restored = undefined;
      }
    }
  }
  for (const s of siblings) {
    if (s === restored || activeTags.has(s.tag)) continue;
    if ((s.kind === "tmp" || s.kind === "new") && !(await writerGone(s))) continue;
    if (s.kind === "del") await Deno.remove(s.path, { recursive: true }).catch(() => {});
    else await discardFolder(s.path, target);
  }
  return restored !== undefined;
}
