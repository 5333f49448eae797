/**
 * The Hugging Face cache layout shared with Python's `huggingface_hub`:
 *
 * ```
 * <cacheDir>/models--org--name/
 *   blobs/<etag>                      file contents, named by ETag (git sha1 or LFS sha256)
 *   snapshots/<commit>/<path>         relative symlink to ../../blobs/<etag> (copy if no symlinks)
 *   refs/<revision>                   the commit hash the branch/tag pointed to (no newline)
 * ```
 * @module
 */

import { HubError } from "./errors.ts";
import { writeTextFileAtomic } from "../io/atomic.ts";
import { dirname, join } from "../util/path.ts";

/** Kinds of hub repositories saeflow reads. */
export type RepoType = "model" | "dataset" | "space";

/** A full 40-hex-digit commit hash. */
export const COMMIT_HASH_RE = /^[0-9a-f]{40}$/;

/**
 * Cache folder name of a repo, as Python names it.
 *
 * @example
 * ```ts
 * import { repoFolderName } from "./cache.ts";
 * if (repoFolderName("google/gemma-2-2b") !== "models--google--gemma-2-2b") throw new Error();
 * ```
 */
export function repoFolderName(repoId: string, repoType: RepoType = "model"): string {
  return [`${repoType}s`, ...repoId.split("/")].join("--");
}

/** `<cacheDir>/<repoFolderName>`. */
export function repoCacheDir(
  cacheDir: string,
  repoId: string,
  repoType: RepoType = "model",
): string {
  return join(cacheDir, repoFolderName(repoId, repoType));
}

/** Rejects repo paths that are empty, absolute, or climb out of the snapshot folder. */
export function checkRepoPath(repoId: string, path: string): void {
  const parts = path.split(/[/\\]/);
  if (!path || path.startsWith("/") || parts.some((p) => p === ".." || p === "")) {
    throw new HubError(
      "invalid",
      `invalid file path ${JSON.stringify(path)} in repo ${repoId}: expected a relative path ` +
        `without "..", e.g. "blocks.0.hook_resid_pre/cfg.json"`,
    );
  }
}

/** Commit a revision points to in the cache (the revision itself when it is a hash). */
export async function readCachedRef(
  storage: string,
  revision: string,
): Promise<string | undefined> {
  if (COMMIT_HASH_RE.test(revision)) return revision;
  try {
    const commit = (await Deno.readTextFile(join(storage, "refs", revision))).trim();
    return COMMIT_HASH_RE.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Records `refs/<revision>` = commit (skipped when the revision is the commit itself). */
export async function writeCachedRef(
  storage: string,
  revision: string,
  commit: string,
): Promise<void> {
  if (revision === commit) return;
  const path = join(storage, "refs", revision);
  if ((await readCachedRef(storage, revision)) === commit) return;
  await writeTextFileAtomic(path, commit);
}

/** True when `path` exists, following symlinks (a dangling link counts as missing). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Local path of a cached file, or `undefined` when the revision or the file is not in the cache.
 * Makes no network call (this is what offline mode uses).
 *
 * @example
 * ```ts
 * import { cachedFilePath } from "./cache.ts";
 * const p = await cachedFilePath(await Deno.makeTempDir(), "gpt2", "config.json");
 * if (p !== undefined) throw new Error("empty cache");
 * ```
 */
export async function cachedFilePath(
  cacheDir: string,
  repoId: string,
  path: string,
  opts: { revision?: string; repoType?: RepoType } = {},
): Promise<string | undefined> {
  checkRepoPath(repoId, path);
  const storage = repoCacheDir(cacheDir, repoId, opts.repoType);
  const commit = await readCachedRef(storage, opts.revision ?? "main");
  if (!commit) return undefined;
  const pointer = join(storage, "snapshots", commit, path);
  return (await fileExists(pointer)) ? pointer : undefined;
}

/** Lists the files of a cached snapshot (relative paths, sorted); `undefined` if not cached. */
export async function cachedSnapshotFiles(
  cacheDir: string,
  repoId: string,
  opts: { revision?: string; repoType?: RepoType } = {},
): Promise<string[] | undefined> {
  const storage = repoCacheDir(cacheDir, repoId, opts.repoType);
  const commit = await readCachedRef(storage, opts.revision ?? "main");
  if (!commit) return undefined;
  const root = join(storage, "snapshots", commit);
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for await (const e of Deno.readDir(rel ? join(root, rel) : root)) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(child);
      else if (await fileExists(join(root, child))) out.push(child);
    }
  };
  try {
    await walk("");
  } catch {
    return undefined;
  }
  return out.sort();
}

let tmpCounter = 0;
function tempSibling(path: string, suffix: string): string {
  tmpCounter += 1;
  const rand = Math.floor(Math.random() * 1e9).toString(36);
  return `${path}.${Deno.pid}.${tmpCounter}.${rand}.${suffix}`;
}

/**
 * Streams `body` into `blobPath` atomically: bytes go to a temporary sibling that is renamed over
 * the blob only after all `expectedSize` bytes arrived and were synced. On any error (network
 * drop, short body) the temporary file is removed, so the cache never holds a partial blob.
 */
export async function writeBlobAtomic(
  blobPath: string,
  body: ReadableStream<Uint8Array>,
  expectedSize: number | undefined,
  describe: string,
): Promise<void> {
  await Deno.mkdir(dirname(blobPath), { recursive: true });
  const tmp = tempSibling(blobPath, "incomplete");
  let written = 0;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
        written += chunk.length;
      }
      await file.sync();
    } finally {
      file.close();
    }
    if (expectedSize !== undefined && written !== expectedSize) {
      throw new HubError(
        "protocol",
        `download of ${describe} ended after ${written} of ${expectedSize} bytes`,
      );
    }
    await Deno.rename(tmp, blobPath);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Makes `pointerPath` a relative symlink to `blobPath` (as Python does), replacing any existing
 * entry atomically; falls back to copying the blob where symlinks are not allowed.
 */
export async function linkSnapshotFile(blobPath: string, pointerPath: string): Promise<void> {
  const dir = dirname(pointerPath);
  await Deno.mkdir(dir, { recursive: true });
  const target = relativePath(dir, blobPath);
  const tmp = tempSibling(pointerPath, "link");
  try {
    await Deno.symlink(target, tmp);
  } catch {
    await Deno.copyFile(blobPath, tmp); // e.g. Windows without developer mode
  }
  try {
    await Deno.rename(tmp, pointerPath);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Relative path from directory `fromDir` to `to` (both absolute or both relative to cwd). */
function relativePath(fromDir: string, to: string): string {
  const a = fromDir.split("/").filter((s) => s && s !== ".");
  const b = to.split("/").filter((s) => s && s !== ".");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
