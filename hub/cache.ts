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
import { dirname, join, unsafeRelativePath } from "../util/path.ts";

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

/**
 * Rejects repo file paths that could leave the snapshot folder or change meaning in a URL:
 * empty, absolute, with `\`, empty, `.` or `..` segments, also percent-encoded (see
 * {@link unsafeRelativePath}).
 *
 * @throws {HubError} `invalid` naming the path and the repo.
 */
export function checkRepoPath(repoId: string, path: string): void {
  const why = unsafeRelativePath(path);
  if (why !== undefined) {
    throw new HubError(
      "invalid",
      `invalid file path ${JSON.stringify(path)} in repo ${repoId} (${why}): expected a ` +
        `relative path inside the repo, e.g. "blocks.0.hook_resid_pre/cfg.json"`,
    );
  }
}

/**
 * Rejects a revision that could not be a git branch, tag or commit, before it names a file
 * (`refs/<revision>`) or goes into a URL. Follows `git check-ref-format`: `/`-separated
 * segments, none empty or starting with `.` or ending with `.lock`, no `..`, `@{`, `\`, space,
 * control character or any of `~^:?*[`.
 *
 * @throws {HubError} `invalid` naming the revision.
 *
 * @example
 * ```ts
 * import { checkRevision } from "./cache.ts";
 * checkRevision("main");
 * checkRevision("refs/pr/1");
 * let threw = false;
 * try { checkRevision("../../escape"); } catch { threw = true; }
 * if (!threw) throw new Error("a climbing revision must be refused");
 * ```
 */
export function checkRevision(revision: string): void {
  const bad = (why: string): never => {
    throw new HubError(
      "invalid",
      `invalid revision ${JSON.stringify(revision)} (${why}): expected a branch, tag or ` +
        `commit hash such as "main", "v1.0" or "refs/pr/1"`,
    );
  };
  if (typeof revision !== "string" || revision.length === 0) bad("it is empty");
  if (revision.length > 255) bad("it is longer than 255 characters");
  if (revision === "@") bad('"@" alone is not a ref');
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(revision)) {
    bad("it contains a space, a control character or one of ~^:?*[\\");
  }
  if (revision.includes("..")) bad('it contains ".."');
  if (revision.includes("@{")) bad('it contains "@{"');
  for (const seg of revision.split("/")) {
    if (seg === "") bad("it has an empty segment (leading, trailing or double /)");
    if (seg.startsWith(".")) bad(`segment "${seg}" starts with "."`);
    if (seg.endsWith(".lock")) bad(`segment "${seg}" ends with ".lock"`);
    if (unsafeRelativePath(seg) !== undefined) bad(`segment "${seg}" is not a plain name`);
  }
}

/** A blob name taken from an ETag: 40 hex digits (git blob id) or 64 (LFS sha256). */
export const ETAG_RE = /^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/;

/**
 * The blob name of an ETag (`W/"abc…"` → `abc…`), accepted only when it is 40 or 64 hex digits:
 * anything else would become a file name in `blobs/` chosen by the server.
 *
 * @throws {HubError} `protocol` naming `url` and the ETag received.
 *
 * @example
 * ```ts
 * import { blobNameFromEtag } from "./cache.ts";
 * const sha = "a".repeat(64);
 * if (blobNameFromEtag(`W/"${sha}"`, "http://hub/x") !== sha) throw new Error();
 * let threw = false;
 * try { blobNameFromEtag('"../../../victim.txt"', "http://hub/x"); } catch { threw = true; }
 * if (!threw) throw new Error("a path as ETag must be refused");
 * ```
 */
export function blobNameFromEtag(etag: string | null | undefined, url: string): string {
  const name = String(etag ?? "").trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  if (!ETAG_RE.test(name)) {
    const shown = etag === null || etag === undefined
      ? "no ETag"
      : `ETag ${JSON.stringify(etag.length > 100 ? etag.slice(0, 100) + "…" : etag)}`;
    throw new HubError(
      "protocol",
      `the hub answered ${shown} for ${url}: expected a 40-hex git blob id or a 64-hex sha256 ` +
        `(optionally quoted or W/-prefixed); refusing to name a cache file after it`,
    );
  }
  return name;
}

/** Commit a revision points to in the cache (the revision itself when it is a hash). */
export async function readCachedRef(
  storage: string,
  revision: string,
): Promise<string | undefined> {
  if (COMMIT_HASH_RE.test(revision)) return revision;
  checkRevision(revision);
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
  checkRevision(revision);
  if (!COMMIT_HASH_RE.test(commit)) {
    throw new HubError("protocol", `refusing to record ${JSON.stringify(commit)} as a commit`);
  }
  const path = join(storage, "refs", revision);
  if ((await readCachedRef(storage, revision)) === commit) return;
  await writeTextFileAtomic(path, commit);
}

/**
 * Runs a file-system step of the cache, turning its failure (disk full, permissions, a file
 * where a folder should be) into a {@link HubError} `io` naming `path`. `HubError`s pass through.
 */
export async function onDisk<T>(what: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HubError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new HubError(
      "io",
      `${what} ${path} in the Hugging Face cache failed: ${reason}`,
      undefined,
      { cause: err },
    );
  }
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
