/**
 * Downloads from the Hugging Face hub into the cache layout Python uses (see `cache.ts`), through
 * `@huggingface/hub` (`modelInfo`/`datasetInfo` to resolve a revision to its commit,
 * `listFiles`, `fileExists`) and saeflow's own file probe and download (`http.ts`, `blob.ts`).
 *
 * Every server answer is treated as hostile: ETags must be 40/64 hex before they name a blob,
 * sizes are enforced while streaming, LFS blobs are checked against their sha256, every request
 * times out (`HF_HUB_ETAG_TIMEOUT`, `HF_HUB_DOWNLOAD_TIMEOUT`), and caller-given revisions and
 * paths are checked before they name a file or enter a URL.
 *
 * Why not `downloadFileToCacheDir`/`snapshotDownload` from the package: they name the snapshot
 * folder after the *file's* last commit (not the revision's commit, as Python does), never write
 * `refs/main`, log to the console, have no offline mode and can leave `*.incomplete` files.
 * @module
 */

import { datasetInfo, fileExists, listFiles, modelInfo } from "@huggingface/hub";
import { downloadBlob } from "./blob.ts";
import {
  cachedFilePath,
  cachedSnapshotFiles,
  checkRepoPath,
  checkRevision,
  COMMIT_HASH_RE,
  fileExists as localFileExists,
  linkSnapshotFile,
  onDisk,
  readCachedRef,
  repoCacheDir,
  type RepoType,
  writeCachedRef,
} from "./cache.ts";
import { type HubOptions, type HubSettings, resolveHubSettings } from "./env.ts";
import { HubError } from "./errors.ts";
import {
  describeRepo,
  encodeRepoPath,
  makeHubFetch,
  probeFile,
  type RequestContext,
  toHubError,
} from "./http.ts";
import { join } from "../util/path.ts";

/** Most files {@link hubListFiles} accepts from one listing (an endless listing is refused). */
const MAX_LISTED_FILES = 1_000_000;

/** A failure to talk to the hub at all (as opposed to an answer): the cache may stand in. */
function isNetworkFailure(e: HubError): boolean {
  return e.kind === "unreachable" || e.kind === "timeout";
}

/** Options shared by the download functions (explicit values beat env vars, see `env.ts`). */
export interface HubDownloadOptions extends HubOptions {
  /** Branch, tag or 40-hex commit. Default `"main"`. */
  revision?: string;
  /** Repo kind. Default `"model"`. */
  repoType?: RepoType;
  /** Re-download even if the file is cached. */
  forceDownload?: boolean;
}

/** Options of {@link hubDownloadMany}. */
export interface HubDownloadManyOptions extends HubDownloadOptions {
  /** Files downloaded at the same time. Default 4. */
  concurrency?: number;
}

interface Job {
  settings: HubSettings;
  ctx: RequestContext;
  storage: string;
  force: boolean;
}

/** Rejects a repo id that is not `name` or `org/name` of letters, digits, `_`, `-`, `.`. */
function checkRepoId(repoId: string): void {
  const ok = typeof repoId === "string" && /^[\w.-]+(\/[\w.-]+)?$/.test(repoId) &&
    repoId.split("/").every((s) => s !== "." && s !== "..") && repoId.length <= 200;
  if (!ok) {
    throw new HubError(
      "invalid",
      `invalid repo id ${JSON.stringify(repoId)}: expected "name" or "org/name"`,
    );
  }
}

function makeJob(repoId: string, opts: HubDownloadOptions, path?: string): Job {
  const settings = resolveHubSettings(opts);
  const ctx: RequestContext = {
    repoId,
    repoType: opts.repoType ?? "model",
    revision: opts.revision ?? "main",
    path,
  };
  checkRepoId(repoId);
  checkRevision(ctx.revision);
  if (path !== undefined) checkRepoPath(repoId, path);
  return {
    settings,
    ctx,
    storage: repoCacheDir(settings.cacheDir, repoId, ctx.repoType),
    force: opts.forceDownload ?? false,
  };
}

function offlineError(job: Job): HubError {
  const what = job.ctx.path ? `${job.ctx.path} of ${describeRepo(job.ctx)}` : describeRepo(job.ctx);
  return new HubError(
    "offline",
    `Offline mode (HF_HUB_OFFLINE or offline: true) and ${what} at revision ` +
      `${job.ctx.revision} is not in the cache ${job.settings.cacheDir}: download it once online.`,
  );
}

/** Resolves a revision (branch/tag/commit) to its commit hash through the hub's info API. */
async function resolveCommit(job: Job): Promise<string> {
  const { settings, ctx } = job;
  const common = {
    name: ctx.repoId,
    revision: ctx.revision,
    hubUrl: settings.endpoint,
    fetch: makeHubFetch(settings, { ...ctx, path: undefined }),
  };
  let sha: unknown;
  try {
    if (ctx.repoType === "dataset") {
      sha = (await datasetInfo({ ...common, additionalFields: ["sha"] })).sha;
    } else if (ctx.repoType === "model") {
      sha = (await modelInfo({ ...common, additionalFields: ["sha"] })).sha;
    } else {
      throw new HubError("invalid", `repo type ${ctx.repoType} is not supported here`);
    }
  } catch (err) {
    throw toHubError(err, settings, { ...ctx, path: undefined });
  }
  if (typeof sha !== "string" || !COMMIT_HASH_RE.test(sha)) {
    throw new HubError(
      "protocol",
      `the hub at ${settings.endpoint} gave no commit hash for ${describeRepo(ctx)} at ` +
        `revision ${ctx.revision} (got ${JSON.stringify(sha)})`,
    );
  }
  return sha;
}

/** Downloads `job.ctx.path` at a known commit (no-op when the snapshot file already exists). */
async function downloadAtCommit(job: Job, commit: string): Promise<string> {
  const { settings, ctx, storage } = job;
  const path = ctx.path!;
  const pointer = join(storage, "snapshots", commit, path);
  await onDisk(
    "recording the ref in",
    join(storage, "refs"),
    () => writeCachedRef(storage, ctx.revision, commit),
  );
  if (!job.force && await localFileExists(pointer)) return pointer;

  let info;
  try {
    info = await probeFile(settings, ctx, commit);
  } catch (err) {
    throw toHubError(err, settings, ctx);
  }
  if (!info) {
    throw new HubError(
      "not_found",
      `File not found on ${settings.endpoint}: ${describeRepo(ctx)} at revision ` +
        `${ctx.revision} (commit ${commit.slice(0, 10)}) has no file ${path}.`,
      404,
    );
  }
  const blob = join(storage, "blobs", info.etag);
  if (job.force || !await localFileExists(blob)) {
    const fetchBody = makeHubFetch(settings, ctx, "download");
    const url = info.url;
    try {
      await downloadBlob({
        blobPath: blob,
        etag: info.etag,
        size: info.size,
        url,
        describe: `${path} of ${describeRepo(ctx)}`,
        force: job.force,
        get: (offset) =>
          fetchBody(url, {
            headers: offset > 0
              ? { range: `bytes=${offset}-`, "accept-encoding": "identity" }
              : { "accept-encoding": "identity" },
          }),
      });
    } catch (err) {
      if (err instanceof HubError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new HubError(
        "unreachable",
        `Download of ${path} of ${describeRepo(ctx)} from ${url} was interrupted ` +
          `(${reason}); nothing was cached under its final name (the bytes received are kept ` +
          `as ${blob}.incomplete and resumed by the next download): retry when the ` +
          `connection is stable.`,
        undefined,
        { cause: err },
      );
    }
  }
  await onDisk("linking", pointer, () => linkSnapshotFile(blob, pointer));
  return pointer;
}

/**
 * Resolves the commit for a job. `commit` undefined means "serve from the cache": offline mode,
 * or an unreachable hub (`networkError` set) while the revision has a cached ref.
 */
async function commitOrCache(job: Job): Promise<{ commit?: string; networkError?: HubError }> {
  if (job.settings.offline) return {};
  if (COMMIT_HASH_RE.test(job.ctx.revision)) return { commit: job.ctx.revision };
  try {
    return { commit: await resolveCommit(job) };
  } catch (err) {
    // Like Python: with no connection, a revision already in the cache is served from it.
    if (err instanceof HubError && (err.kind === "unreachable" || err.kind === "timeout")) {
      if (await readCachedRef(job.storage, job.ctx.revision)) return { networkError: err };
    }
    throw err;
  }
}

async function fromCache(job: Job, original?: HubError): Promise<string> {
  const p = await cachedFilePath(job.settings.cacheDir, job.ctx.repoId, job.ctx.path!, {
    revision: job.ctx.revision,
    repoType: job.ctx.repoType,
  });
  if (p) return p;
  throw original ?? offlineError(job);
}

/**
 * Downloads one file of a hub repo into the cache (Python's layout) and returns its local path
 * (`<cache>/models--org--name/snapshots/<commit>/<path>`). A file already cached for the
 * revision's current commit is not downloaded again; with a commit-hash revision a cached file
 * is returned without any network call. Offline mode (or an unreachable hub) serves the cache.
 *
 * @throws {HubError} `not_found` (repo/revision/file), `unauthorized` (gated/private: set
 * HF_TOKEN), `unreachable`, `timeout`, `offline`, `protocol` (a bad ETag, size, redirect, body
 * or sha256), `invalid` (a malformed repo id, revision or path).
 *
 * @example
 * ```ts ignore
 * import { hubDownload } from "./download.ts";
 * const cfgPath = await hubDownload("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.0.hook_resid_pre/cfg.json");
 * ```
 */
export async function hubDownload(
  repoId: string,
  path: string,
  opts: HubDownloadOptions = {},
): Promise<string> {
  const job = makeJob(repoId, opts, path);
  if (!job.force && COMMIT_HASH_RE.test(job.ctx.revision)) {
    const pointer = join(job.storage, "snapshots", job.ctx.revision, path);
    if (await localFileExists(pointer)) return pointer;
  }
  const { commit, networkError } = await commitOrCache(job);
  if (commit === undefined) return await fromCache(job, networkError);
  return await downloadAtCommit(job, commit);
}

/**
 * Downloads several files of one repo at one consistent commit (the revision is resolved once)
 * and returns their local paths in the order given.
 *
 * @example
 * ```ts ignore
 * import { hubDownloadMany } from "./download.ts";
 * const [cfg, weights] = await hubDownloadMany("org/saes", ["l0/cfg.json", "l0/sae_weights.safetensors"]);
 * ```
 */
export async function hubDownloadMany(
  repoId: string,
  paths: readonly string[],
  opts: HubDownloadManyOptions = {},
): Promise<string[]> {
  const base = makeJob(repoId, opts);
  const jobs = paths.map((p) => makeJob(repoId, opts, p));
  const { commit, networkError } = await commitOrCache(base);
  const out = new Array<string>(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = commit === undefined
        ? await fromCache(jobs[i], networkError)
        : await downloadAtCommit(jobs[i], commit);
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 4, jobs.length));
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

/**
 * True when `path` exists in the repo at `revision` (HEAD request); in offline mode, or when
 * the hub is unreachable, answers from the cache (`false` only if cached info says nothing).
 *
 * @throws {HubError} `unauthorized` for gated repos without access; `unreachable` when the hub
 * cannot be contacted and the revision is not cached.
 */
export async function hubFileExists(
  repoId: string,
  path: string,
  opts: Omit<HubDownloadOptions, "forceDownload"> = {},
): Promise<boolean> {
  const job = makeJob(repoId, opts, path);
  const cached = () =>
    cachedFilePath(job.settings.cacheDir, repoId, path, {
      revision: job.ctx.revision,
      repoType: job.ctx.repoType,
    });
  if (job.settings.offline) return (await cached()) !== undefined;
  try {
    return await fileExists({
      repo: { type: job.ctx.repoType, name: repoId },
      path: encodeRepoPath(path),
      revision: job.ctx.revision,
      hubUrl: job.settings.endpoint,
      fetch: makeHubFetch(job.settings, job.ctx),
    });
  } catch (err) {
    const e = toHubError(err, job.settings, job.ctx);
    if (isNetworkFailure(e) && await readCachedRef(job.storage, job.ctx.revision)) {
      return (await cached()) !== undefined;
    }
    throw e;
  }
}

/**
 * All file paths of a repo at `revision` (recursive, sorted). Offline, it lists the cached
 * snapshot, i.e. only the files downloaded so far.
 */
export async function hubListFiles(
  repoId: string,
  opts: Omit<HubDownloadOptions, "forceDownload"> = {},
): Promise<string[]> {
  const job = makeJob(repoId, opts);
  const cached = () =>
    cachedSnapshotFiles(job.settings.cacheDir, repoId, {
      revision: job.ctx.revision,
      repoType: job.ctx.repoType,
    });
  if (job.settings.offline) {
    const files = await cached();
    if (files) return files;
    throw offlineError(job);
  }
  const out: string[] = [];
  try {
    for await (
      const e of listFiles({
        repo: { type: job.ctx.repoType, name: repoId },
        recursive: true,
        revision: job.ctx.revision,
        hubUrl: job.settings.endpoint,
        fetch: makeHubFetch(job.settings, job.ctx),
      })
    ) {
      if (e.type === "file") out.push(e.path);
      if (out.length > MAX_LISTED_FILES) {
        throw new HubError(
          "protocol",
          `the hub at ${job.settings.endpoint} listed more than ${MAX_LISTED_FILES} files for ` +
            `${describeRepo(job.ctx)} at revision ${job.ctx.revision}: giving up`,
        );
      }
    }
  } catch (err) {
    const e = toHubError(err, job.settings, job.ctx);
    if (isNetworkFailure(e)) {
      const files = await cached();
      if (files) return files;
    }
    throw e;
  }
  return out.sort();
}
