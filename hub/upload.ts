/**
 * Uploads to the Hugging Face hub through `@huggingface/hub`'s `commitIter` (the package's
 * `commit`, with progress): one commit for every file, so a failed upload leaves the branch as it
 * was. Large files go through the package's LFS path (preupload → LFS batch → upload URLs,
 * multipart when the hub asks for it); xet is not used, so any hub that speaks git-lfs works.
 *
 * Everything the caller gives is checked before the first request: the repo id
 * (`namespace/name`), the branch, every path in the repo, every local file, and the token (an
 * upload without one fails at once). Every request goes through saeflow's hub `fetch`
 * (`http.ts`): the token only to the hub's own origin, connection failures as one clear
 * {@link HubError}, and timeouts: `HF_HUB_ETAG_TIMEOUT` for answers to small requests, and for a
 * request that sends a body of n bytes `HF_HUB_DOWNLOAD_TIMEOUT` plus n / 64 KiB seconds (a
 * stall detector, since the time to send the body counts).
 * @module
 */

import { commitIter, type CommitOperation, HubApiError } from "@huggingface/hub";
import { checkRepoPath, checkRevision, COMMIT_HASH_RE, type RepoType } from "./cache.ts";
import { type HubOptions, type HubSettings, resolveHubSettings } from "./env.ts";
import { HubError } from "./errors.ts";
import { apiErrorOf, describeRepo, makeHubFetch, type RequestContext } from "./http.ts";
import { hubFileExists } from "./download.ts";
import { recoverFolder } from "../io/atomic.ts";
import { join } from "../util/path.ts";

/**
 * Throughput assumed when timing out a request that sends a body: the wait for its answer may
 * last the download timeout plus `bytes / UPLOAD_MIN_BYTES_PER_S` seconds.
 */
export const UPLOAD_MIN_BYTES_PER_S = 65536;

/** Most files one {@link uploadHubFiles} call commits. */
export const MAX_UPLOAD_FILES = 10_000;

/** What an upload is doing, for progress reports. */
export type HubUploadPhase =
  | "creating-repo"
  | "preuploading"
  | "uploadingLargeFiles"
  | "committing";

/** A progress report of an upload. */
export type HubUploadProgress =
  | { event: "phase"; phase: HubUploadPhase }
  | {
    event: "file";
    /** Path in the repo. */
    path: string;
    /** Hashing (LFS files are hashed before upload) or sending. */
    state: "hashing" | "uploading";
    /** Fraction done, 0..1. */
    progress: number;
  };

/** Options of {@link uploadHubFiles} and {@link uploadFolder}. */
export interface HubUploadOptions extends HubOptions {
  /** `"model"` (default) or `"dataset"`. */
  repoType?: RepoType;
  /** Branch to commit to. Default `"main"`; it must exist (a new repo has only `main`). */
  revision?: string;
  /** Commit title. Default `"Upload <n> files with saeflow"`. */
  commitMessage?: string;
  /** Commit description. */
  commitDescription?: string;
  /**
   * Create the repo when it does not exist (`huggingface_hub`'s `create_repo(exist_ok=True)`).
   * Default true.
   */
  createRepo?: boolean;
  /** Visibility of a repo this call creates. Default: the namespace's default (public). */
  private?: boolean;
  /** Called with progress reports (phases, per-file hashing and upload fractions). */
  onProgress?: (p: HubUploadProgress) => void;
  /** Aborts the upload (nothing is committed unless the commit request already went out). */
  signal?: AbortSignal;
}

/** One file to upload: local bytes or a local file, and where it goes in the repo. */
export interface HubUploadFile {
  /** Path in the repo, `/`-separated (e.g. `"blocks.0.hook_resid_pre/cfg.json"`). */
  pathInRepo: string;
  /** A local file to read (lazily: large files are not held in memory). */
  localPath?: string;
  /** Or the content itself (text is UTF-8). */
  content?: Uint8Array | string;
}

/** What an upload did. */
export interface HubUploadResult {
  /** `namespace/name`. */
  repoId: string;
  repoType: RepoType;
  /** Branch committed to. */
  revision: string;
  /** The new commit's sha. */
  commit: string;
  /** Its URL on the hub, when the hub gave one. */
  commitUrl?: string;
  /** True when this call created the repo. */
  createdRepo: boolean;
  /** Paths committed, sorted. */
  files: string[];
}

/**
 * Checks a repo id for an upload: `namespace/name`, each part of letters, digits, `-`, `_`, `.`,
 * not starting or ending with `-` or `.`, without `--` or `..`, at most 96 characters
 * (`huggingface_hub`'s `validate_repo_id`; an upload also needs the namespace).
 *
 * @throws {HubError} `invalid` naming the id and the rule it breaks.
 *
 * @example
 * ```ts
 * import { checkUploadRepoId } from "./upload.ts";
 * checkUploadRepoId("my-org/gpt2-small-saes");
 * let threw = false;
 * try { checkUploadRepoId("no-namespace"); } catch { threw = true; }
 * if (!threw) throw new Error("a repo id without namespace must be refused");
 * ```
 */
export function checkUploadRepoId(repoId: string): void {
  const bad = (why: string): never => {
    throw new HubError(
      "invalid",
      `invalid repo id ${JSON.stringify(repoId)} for an upload (${why}): expected ` +
        `"namespace/name", e.g. "my-user/gpt2-small-saes"`,
    );
  };
  if (typeof repoId !== "string" || repoId.length === 0) bad("it is empty");
  if (repoId.length > 96) bad("it is longer than 96 characters");
  const parts = repoId.split("/");
  if (parts.length !== 2) {
    bad(parts.length === 1 ? "it has no namespace" : "it has more than one /");
  }
  for (const part of parts) {
    if (!/^[A-Za-z0-9_.-]+$/.test(part)) bad(`"${part}" may hold only letters, digits, - _ .`);
    if (/^[-.]|[-.]$/.test(part)) bad(`"${part}" starts or ends with - or .`);
    if (part.includes("--") || part.includes("..")) bad(`"${part}" contains -- or ..`);
  }
}

/** Checks a branch to commit to: a valid ref name and not a commit hash. */
function checkBranch(revision: string): void {
  checkRevision(revision);
  if (COMMIT_HASH_RE.test(revision)) {
    throw new HubError(
      "invalid",
      `cannot upload to revision ${revision}: it is a commit hash; commits go to a branch ` +
        `such as "main"`,
    );
  }
}

/**
 * Checks the target of an upload without any request: the repo id ({@link checkUploadRepoId}),
 * the branch (a ref name, not a commit hash), the repo type, the hub settings, offline mode, and
 * that there is a token. Returns the resolved settings.
 *
 * @throws {HubError} `invalid`, `offline`, or `unauthorized` when there is no token.
 *
 * @example
 * ```ts
 * import { checkUploadTarget } from "./upload.ts";
 * let err: unknown;
 * try { checkUploadTarget("me/saes", { token: null, endpoint: "http://127.0.0.1:9" }); }
 * catch (e) { err = e; }
 * if (!(err instanceof Error) || !err.message.includes("needs a Hugging Face token")) {
 *   throw new Error("an upload without a token must be refused");
 * }
 * ```
 */
export function checkUploadTarget(repoId: string, opts: HubUploadOptions = {}): HubSettings {
  checkUploadRepoId(repoId);
  checkBranch(opts.revision ?? "main");
  const repoType = opts.repoType ?? "model";
  if (repoType !== "model" && repoType !== "dataset") {
    throw new HubError(
      "invalid",
      `repoType is ${JSON.stringify(repoType)}: expected "model" or "dataset"`,
    );
  }
  const settings = resolveHubSettings(opts);
  if (settings.offline) {
    throw new HubError(
      "offline",
      `cannot upload to ${repoType} ${repoId}: offline mode is on (HF_HUB_OFFLINE or ` +
        `offline: true)`,
    );
  }
  if (!settings.token) {
    throw new HubError(
      "unauthorized",
      `uploading to ${repoType} ${repoId} needs a Hugging Face token with write access: pass ` +
        `\`token\`, set HF_TOKEN, or log in with \`huggingface-cli login\` (no request was made)`,
    );
  }
  return settings;
}

/** Byte length of a request body, when it can be told without reading it. */
function bodySize(body: BodyInit | null | undefined): number {
  if (body === null || body === undefined) return 0;
  if (typeof body === "string") return body.length * 3; // UTF-8 upper bound
  if (body instanceof Blob) return body.size;
  if (body instanceof ArrayBuffer) return body.byteLength;
  if (ArrayBuffer.isView(body)) return body.byteLength;
  return 0;
}

/** Largest answer an upload request may get (they are small JSON documents). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/**
 * The hub `fetch` of an upload: small requests under `etagTimeout`; a request sending a body
 * under `downloadTimeout` + body / {@link UPLOAD_MIN_BYTES_PER_S} seconds. Answers are read
 * whole (at most 16 MiB) before they are handed on, so an answer the package leaves unread
 * (an LFS upload's) never holds a connection.
 */
function uploadFetch(settings: HubSettings, ctx: RequestContext): typeof fetch {
  const small = makeHubFetch(settings, ctx, "metadata");
  return async (input, init) => {
    const n = bodySize(init?.body);
    const fetchFn = n <= 4096 ? small : makeHubFetch(
      { ...settings, downloadTimeout: settings.downloadTimeout + n / UPLOAD_MIN_BYTES_PER_S },
      ctx,
      "download",
    );
    const resp = await fetchFn(input, init);
    const parts: Uint8Array[] = [];
    let size = 0;
    if (resp.body) {
      const reader = resp.body.getReader();
      try {
        while (true) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.length;
          if (size > MAX_ANSWER_BYTES) {
            throw new HubError(
              "protocol",
              `the hub's answer to ${resp.url || String(input)} is over ${MAX_ANSWER_BYTES} ` +
                `bytes: expected a small JSON document`,
            );
          }
          parts.push(value);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    }
    const body = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      body.set(p, off);
      off += p.length;
    }
    const nullBody = [101, 103, 204, 205, 304].includes(resp.status);
    const out = new Response(nullBody ? null : body, {
      status: resp.status,
      statusText: resp.statusText,
      headers: resp.headers,
    });
    Object.defineProperty(out, "url", { value: resp.url });
    return out;
  };
}

/** Why an upload request failed, as a sentence (HTTP status and the hub's words). */
function reasonOf(err: unknown, hasToken: boolean): { kind: HubError["kind"]; text: string } {
  if (err instanceof HubApiError) {
    const status = err.statusCode;
    const said = err.message.split(". URL:")[0];
    if (status === 401) {
      return {
        kind: "unauthorized",
        text: `the hub rejected the token (HTTP 401: ${said}); use a valid token with write ` +
          `access${hasToken ? "" : " (none was sent)"}`,
      };
    }
    if (status === 403) {
      return {
        kind: "unauthorized",
        text: `the token cannot write there (HTTP 403: ${said}); use a token with write ` +
          `access to this namespace (a "write" token, or a fine-grained one allowed to write ` +
          `this repo)`,
      };
    }
    if (status === 404) return { kind: "not_found", text: `not found (HTTP 404: ${said})` };
    return { kind: "protocol", text: `HTTP ${status}: ${said}` };
  }
  if (err instanceof HubError && err.kind === "timeout") {
    const what = err.message.split(": the hub at")[0];
    return {
      kind: "timeout",
      text: `${what}; retry, or raise HF_HUB_DOWNLOAD_TIMEOUT (bodies) / HF_HUB_ETAG_TIMEOUT`,
    };
  }
  if (err instanceof HubError && err.kind === "unreachable") {
    const cause = err.cause instanceof Error ? err.cause.message : String(err.cause);
    return { kind: "unreachable", text: `cannot reach the hub (${cause}); check the network` };
  }
  if (err instanceof HubError) return { kind: err.kind, text: err.message };
  if (err instanceof DOMException && err.name === "AbortError") {
    return { kind: "protocol", text: "aborted" };
  }
  const msg = err instanceof Error ? err.message : String(err);
  return { kind: "protocol", text: msg };
}

/**
 * Creates the repo unless it exists (`create_repo(exist_ok=True)`): 409 means it exists; on 403
 * (no right to create in the namespace) a repo that exists is still fine, as Python does.
 * Returns true when it was created.
 */
async function ensureRepo(
  settings: HubSettings,
  ctx: RequestContext,
  fetchFn: typeof fetch,
  isPrivate: boolean | undefined,
): Promise<boolean> {
  const [organization, name] = ctx.repoId.split("/");
  const url = `${settings.endpoint}/api/repos/create`;
  const resp = await fetchFn(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name,
      organization,
      type: ctx.repoType,
      ...(isPrivate === undefined ? {} : { private: isPrivate }),
    }),
  });
  if (resp.ok) {
    await resp.body?.cancel();
    return true;
  }
  if (resp.status === 409) {
    await resp.body?.cancel();
    return false;
  }
  const err = await apiErrorOf(resp, url);
  if (resp.status === 403) {
    // Maybe a token that may write this repo but not create repos in its namespace.
    const kind = ctx.repoType === "model" ? "models" : "datasets";
    const info = await fetchFn(
      `${settings.endpoint}/api/${kind}/${ctx.repoId}/revision/${encodeURIComponent(ctx.revision)}`,
    );
    await info.body?.cancel();
    if (info.ok) return false;
  }
  throw err;
}

/**
 * Uploads files to a hub repo in one commit, creating the repo if needed. Every path and local
 * file is checked before the first request; the commit is atomic on the hub, so if any file fails
 * (a rejected token, an LFS upload that fails, a timeout) the branch is unchanged and the error
 * names the repo, the branch and the file(s) being sent.
 *
 * @throws {HubError} `invalid` (repo id, branch, a path, a local file, duplicate paths),
 * `unauthorized` (no token: before any request; 401/403 from the hub), `offline`, `not_found`
 * (branch missing), `timeout`/`unreachable`, `protocol` (any other failure).
 */
export async function uploadHubFiles(
  repoId: string,
  files: readonly HubUploadFile[],
  opts: HubUploadOptions = {},
): Promise<HubUploadResult> {
  const settings = checkUploadTarget(repoId, opts);
  const repoType = opts.repoType ?? "model";
  const revision = opts.revision ?? "main";
  const operations = await prepareOperations(repoId, files);
  const ctx: RequestContext = { repoId, repoType, revision };
  const fetchFn = uploadFetch(settings, ctx);
  const where = `${describeRepo(ctx)} (branch ${revision}) on ${settings.endpoint}`;
  const fail = (err: unknown, doing: string, unchanged: boolean): HubError => {
    const r = reasonOf(err, settings.token !== undefined);
    const hint = r.kind === "not_found"
      ? `; the repo and its branch ${JSON.stringify(revision)} must exist (a new repo has only ` +
        `"main"; create other branches on the hub first)`
      : "";
    const after = !unchanged
      ? " The commit may or may not have been applied: check the repo before retrying."
      : doing === "creating the repo"
      ? " Nothing was created or committed."
      : " Nothing was committed: the repo is unchanged.";
    return new HubError(
      r.kind,
      `Upload to ${where} failed while ${doing}: ${r.text}${hint}.${after}`,
      err instanceof HubApiError
        ? err.statusCode
        : err instanceof HubError
        ? err.status
        : undefined,
      { cause: err },
    );
  };
  const report = opts.onProgress ?? (() => {});

  let createdRepo = false;
  if (opts.createRepo ?? true) {
    report({ event: "phase", phase: "creating-repo" });
    try {
      createdRepo = await ensureRepo(settings, ctx, fetchFn, opts.private);
    } catch (err) {
      throw fail(err, "creating the repo", true);
    }
  }

  let phase: HubUploadPhase = "preuploading";
  const sending = new Set<string>();
  const hashing = new Set<string>();
  const paths = operations.map((o) => o.path).sort();
  const doing = (): string => {
    if (phase === "preuploading") return `preparing the upload of ${paths.length} file(s)`;
    if (phase === "committing") return `committing ${paths.length} file(s)`;
    const names = [...(sending.size > 0 ? sending : hashing)].sort();
    if (names.length === 0) return "uploading the large files";
    return `${sending.size > 0 ? "uploading" : "hashing"} ${names.join(", ")}`;
  };
  try {
    const it = commitIter({
      repo: { type: repoType, name: repoId },
      operations,
      title: opts.commitMessage ?? `Upload ${paths.length} files with saeflow`,
      description: opts.commitDescription,
      branch: revision,
      hubUrl: settings.endpoint,
      fetch: fetchFn,
      useXet: false,
      abortSignal: opts.signal,
    });
    let out = await it.next();
    while (!out.done) {
      const e = out.value;
      if (e.event === "phase") {
        phase = e.phase;
        report({ event: "phase", phase: e.phase });
      } else if (e.state !== "error") {
        const set = e.state === "hashing" ? hashing : sending;
        if (e.progress >= 1) set.delete(e.path);
        else set.add(e.path);
        if (e.state === "uploading") hashing.delete(e.path);
        report({ event: "file", path: e.path, state: e.state, progress: e.progress });
      }
      out = await it.next();
    }
    const commit = out.value?.commit.oid;
    if (typeof commit !== "string" || !COMMIT_HASH_RE.test(commit)) {
      throw new HubError(
        "protocol",
        `the hub answered the commit without a commit hash (${JSON.stringify(commit)})`,
      );
    }
    return {
      repoId,
      repoType,
      revision,
      commit,
      commitUrl: typeof out.value?.commit.url === "string" ? out.value.commit.url : undefined,
      createdRepo,
      files: paths,
    };
  } catch (err) {
    // A commit request that got an HTTP answer changed nothing unless it succeeded; one that
    // got no answer (timeout, reset) may have been applied.
    const unknown = phase === "committing" && !(err instanceof HubApiError) &&
      !(err instanceof HubError && err.kind === "protocol");
    throw fail(err, doing(), !unknown);
  }
}

/** Bytes read from a local file per chunk of {@link LocalFileBlob.stream}. */
const FILE_CHUNK_BYTES = 1 << 20;

/**
 * A `Blob` over a byte range of a local file, read only when asked (hashing, the preupload
 * sample, the upload body; Deno's `fetch` sends it through `stream()` with its `size` as
 * Content-Length). Used instead of the package's own `FileBlob`, whose Node-stream adapter
 * throws an uncaught error in Deno when an upload is cancelled mid-file. Each stream opens the
 * file on its first read and closes it at the end or on cancel.
 */
class LocalFileBlob extends Blob {
  readonly #path: string;
  readonly #start: number;
  readonly #end: number;

  constructor(path: string, start: number, end: number) {
    super();
    this.#path = path;
    this.#start = start;
    this.#end = Math.max(start, end);
  }

  override get size(): number {
    return this.#end - this.#start;
  }

  override get type(): string {
    return "";
  }

  override slice(start = 0, end: number = this.size, _contentType?: string): LocalFileBlob {
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? this.size + v : v, 0), this.size);
    return new LocalFileBlob(this.#path, this.#start + clamp(start), this.#start + clamp(end));
  }

  /** Reads `[from, to)` of the file (offsets in the file), failing on a file that shrank. */
  async #read(file: Deno.FsFile, from: number, to: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(to - from);
    await file.seek(from, Deno.SeekMode.Start);
    let off = 0;
    while (off < out.length) {
      const n = await file.read(out.subarray(off));
      if (n === null) {
        throw new HubError(
          "io",
          `${this.#path} ended at byte ${from + off} while being uploaded (expected ` +
            `${this.#end} bytes): the file changed during the upload`,
        );
      }
      off += n;
    }
    return out;
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer;
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    using file = await Deno.open(this.#path, { read: true });
    return await this.#read(file, this.#start, this.#end);
  }

  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let file: Deno.FsFile | undefined;
    let pos = this.#start;
    const close = () => {
      try {
        file?.close();
      } catch {
        // already closed
      }
      file = undefined;
    };
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        try {
          file ??= await Deno.open(this.#path, { read: true });
          if (pos >= this.#end) {
            close();
            controller.close();
            return;
          }
          const to = Math.min(pos + FILE_CHUNK_BYTES, this.#end);
          const chunk = await this.#read(file, pos, to);
          pos = to;
          controller.enqueue(chunk);
        } catch (err) {
          close();
          controller.error(err);
        }
      },
      cancel: () => close(),
    }, { highWaterMark: 0 });
  }
}

/** Checks every file and turns it into a commit operation (local files stay on disk). */
async function prepareOperations(
  repoId: string,
  files: readonly HubUploadFile[],
): Promise<CommitOperation[]> {
  if (!Array.isArray(files) || files.length === 0) {
    throw new HubError("invalid", `nothing to upload to ${repoId}: the file list is empty`);
  }
  if (files.length > MAX_UPLOAD_FILES) {
    throw new HubError(
      "invalid",
      `${files.length} files for one upload to ${repoId}: at most ${MAX_UPLOAD_FILES}`,
    );
  }
  const seen = new Set<string>();
  const ops: CommitOperation[] = [];
  for (const f of files) {
    const path = f?.pathInRepo;
    checkRepoPath(repoId, path);
    if (seen.has(path)) {
      throw new HubError("invalid", `${path} is listed twice in the upload to ${repoId}`);
    }
    seen.add(path);
    if ((f.localPath === undefined) === (f.content === undefined)) {
      throw new HubError(
        "invalid",
        `${path}: give exactly one of localPath and content for each file to upload`,
      );
    }
    if (f.content !== undefined) {
      const bytes = typeof f.content === "string"
        ? new TextEncoder().encode(f.content)
        : new Uint8Array(f.content);
      ops.push({ operation: "addOrUpdate", path, content: new Blob([bytes]) });
      continue;
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(f.localPath!);
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "it does not exist" : String(err);
      throw new HubError(
        "invalid",
        `cannot upload ${f.localPath} as ${path}: ${why}`,
        undefined,
        { cause: err },
      );
    }
    if (!info.isFile) {
      throw new HubError(
        "invalid",
        `cannot upload ${f.localPath} as ${path}: it is not a regular file`,
      );
    }
    const real = await Deno.realPath(f.localPath!);
    ops.push({ operation: "addOrUpdate", path, content: new LocalFileBlob(real, 0, info.size) });
  }
  return ops;
}

/** Options of {@link uploadFolder}. */
export interface UploadFolderOptions extends HubUploadOptions {
  /** Folder in the repo to put the files under. Default: the repo root. */
  pathInRepo?: string;
  /** Uploads only the files (paths relative to the folder, `/`-separated) it accepts. */
  allow?: (relativePath: string) => boolean;
  /** Extra files added to the same commit (e.g. a README). */
  extraFiles?: readonly HubUploadFile[];
}

/** saeflow's atomic-write siblings (`.<name>.tmp-<pid>-<hex>`), never uploaded. */
const SIBLING_RE = /^\..+\.(tmp|new|old|del)-\d{1,10}-[0-9a-f]{8,32}$/;

/** Files of `folder` (relative paths), skipping `.git/`, `.cache/huggingface/` and siblings. */
async function listFolder(folder: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string, depth: number) => {
    if (depth > 32) {
      throw new HubError("invalid", `${dir}: folders nested more than 32 deep; not uploaded`);
    }
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (SIBLING_RE.test(e.name) || r === ".git" || r === ".cache/huggingface") continue;
      const full = join(dir, e.name);
      let isDir = e.isDirectory, isFile = e.isFile;
      if (e.isSymlink) {
        const target = await Deno.stat(full).catch(() => null);
        if (target?.isDirectory) {
          throw new HubError(
            "invalid",
            `${full} is a link to a folder: links to folders are not followed; copy the folder`,
          );
        }
        isDir = false;
        isFile = target?.isFile ?? false;
        if (!target) {
          throw new HubError("invalid", `${full} is a link to nothing: fix or remove it`);
        }
      }
      if (isDir) await walk(full, r, depth + 1);
      else if (isFile) out.push(r);
    }
  };
  await walk(folder, "", 0);
  return out;
}

/**
 * Uploads a local folder (a saved SAE, a pretokenized dataset, an activation cache) to a hub
 * repo in one commit, under `pathInRepo`. A folder an interrupted saeflow save left behind is
 * first recovered; `.git/`, `.cache/huggingface/` and saeflow's temporary siblings are skipped.
 * See {@link uploadHubFiles} for the checks, errors and atomicity.
 *
 * @example
 * ```ts ignore
 * import { uploadFolder } from "./upload.ts";
 * await uploadFolder("my-user/shakespeare-tokenized", "out/tokenized", { repoType: "dataset" });
 * ```
 */
export async function uploadFolder(
  repoId: string,
  folder: string,
  opts: UploadFolderOptions = {},
): Promise<HubUploadResult> {
  checkUploadTarget(repoId, opts); // repo id, branch and token first: no disk work for nothing
  if (opts.pathInRepo !== undefined) checkRepoPath(repoId, opts.pathInRepo);
  await recoverFolder(folder);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(folder);
  } catch (err) {
    throw new HubError("invalid", `cannot upload folder ${folder}: it does not exist`, undefined, {
      cause: err,
    });
  }
  if (!info.isDirectory) {
    throw new HubError("invalid", `cannot upload ${folder} as a folder: it is not a folder`);
  }
  const allow = opts.allow ?? (() => true);
  const files: HubUploadFile[] = (await listFolder(folder)).filter((r) => allow(r)).map((r) => ({
    pathInRepo: opts.pathInRepo ? `${opts.pathInRepo}/${r}` : r,
    localPath: join(folder, ...r.split("/")),
  }));
  if (files.length === 0) {
    throw new HubError("invalid", `nothing to upload: ${folder} has no files to send`);
  }
  return await uploadHubFiles(repoId, [...files, ...(opts.extraFiles ?? [])], opts);
}

/**
 * True when `path` exists at `revision` of a repo that exists; false when the file, the branch
 * or the repo does not exist. For uploads that add a file only when it is absent (a README).
 *
 * @throws {HubError} naming the repo and the file when the hub cannot answer.
 */
export async function hubUploadTargetHas(
  repoId: string,
  path: string,
  opts: HubUploadOptions = {},
): Promise<boolean> {
  const revision = opts.revision ?? "main";
  const repoType = opts.repoType ?? "model";
  const settings = checkUploadTarget(repoId, opts);
  try {
    return await hubFileExists(repoId, path, {
      endpoint: settings.endpoint,
      token: settings.token,
      cacheDir: settings.cacheDir,
      offline: false,
      etagTimeout: settings.etagTimeout,
      downloadTimeout: settings.downloadTimeout,
      revision,
      repoType,
    });
  } catch (err) {
    if (err instanceof HubError && err.kind === "not_found") return false;
    const inner = err instanceof HubError && err.cause instanceof HubApiError ? err.cause : err;
    const r = reasonOf(inner, true);
    throw new HubError(
      r.kind,
      `Upload to ${repoType} ${repoId} (branch ${revision}) on ${settings.endpoint} failed ` +
        `while checking whether ${path} exists: ${r.text}. Nothing was committed.`,
      err instanceof HubError ? err.status : undefined,
      { cause: err },
    );
  }
}
