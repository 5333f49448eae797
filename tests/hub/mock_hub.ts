/**
 * A local mock of the Hugging Face hub for tests (never contact the real hub). It serves
 * in-memory repos on `127.0.0.1:<random free port>` with the routes `@huggingface/hub` calls for
 * downloads, with ETag / X-Repo-Commit / Range support, 404s with the hub's `X-Error-Code`s,
 * gated repos (401 without the token, 403 with a wrong one), and a log of every request.
 *
 * Routes (`<kind>` is `models` or `datasets`; `<rev>` a branch, tag, `HEAD` or commit sha):
 * - `GET  /api/<kind>/<repo>/revision/<rev>`: info JSON `{_id, id, sha, siblings, gated, …}`;
 * - `GET  /api/<kind>/<repo>/tree/<rev>[/<dir>]?recursive=true|false`: file/dir entries with
 *   `oid`, `size`, `lfs` (no pagination);
 * - `POST /api/<kind>/<repo>/paths-info/<rev>` body `{paths, expand}`: entries for existing paths;
 * - `GET|HEAD [/datasets]/<repo>/resolve/<rev>/<path>` and `…/raw/…`: the bytes, headers
 *   `ETag` (git blob sha1, or sha256 for LFS files, quoted), `X-Repo-Commit`, `Accept-Ranges`,
 *   `Content-Length`; LFS files also `X-Linked-Etag`/`X-Linked-Size`; `Range: bytes=a-b`
 *   (also `a-` and `-n`) gives 206 + `Content-Range`, unsatisfiable 416.
 * LFS files: `*.safetensors|*.bin|*.pt|*.pth|*.npz|*.gguf` unless `lfs` says otherwise.
 *
 * Upload routes, as `@huggingface/hub`'s `commit` (without xet) and `createRepo` call them; each
 * needs `Authorization: Bearer <hub.writeToken>` (401 without a token, 403 with any other, e.g.
 * the read-only `hub.token`), except the LFS storage URLs, which are pre-signed as on S3:
 * - `POST /api/repos/create` body `{name, organization, type}`: a repo whose `main` holds
 *   `.gitattributes`; 409 when it exists;
 * - `POST /api/<kind>/<repo>/preupload/<branch>` body `{files: [{path, size, sample}]}`:
 *   `uploadMode` `lfs` (LFS path or over 10 MB) or `regular` per file;
 * - `POST [/datasets]/<repo>.git/info/lfs/objects/batch` (git-lfs batch API, `basic` transfer):
 *   an upload URL per object not stored yet (`PUT /mock-lfs/<oid>`); objects larger than
 *   `lfsMultipartChunkSize` get a multipart upload (`chunk_size`, one `PUT` URL per part, and a
 *   completion `POST` that joins them); uploaded bytes must hash to the oid;
 * - `POST /api/<kind>/<repo>/commit/<branch>` (NDJSON: `header`, `file` base64, `lfsFile`
 *   naming an uploaded oid, `deletedFile`): applied all at once, or not at all (any bad line,
 *   an LFS object never uploaded, a stale `parentCommit`: 4xx and the branch is unchanged).
 * `fail(filter)` makes matching requests answer an error (e.g. every LFS upload PUT) before they
 * change anything; `listFiles`/`readFile`/`commits` show what the repo holds afterwards.
 *
 * Hostile modes, for tests of a client that must not trust the server: `setHostile` makes one
 * file's answers lie (any header replaced or removed, e.g. a path as ETag; other bytes than
 * the ETag promises; more bytes than declared; a body trickled slowly; a GET never answered),
 * and `hang` leaves every request matching a filter unanswered (e.g. the revision lookup).
 *
 * @example
 * ```ts ignore
 * import { startMockHub } from "./mock_hub.ts";
 * import { hubDownload } from "../../hub/mod.ts";
 * await using hub = await startMockHub({ "org/sae": { files: { "cfg.json": '{"d_in":4}' } } });
 * const cacheDir = await Deno.makeTempDir();
 * const p = await hubDownload("org/sae", "cfg.json", hub.options(cacheDir));
 * hub.count({ route: "resolve", path: "cfg.json", range: false }); // 1 full GET
 * ```
 * @module
 */

/** File contents: bytes, or text (encoded as UTF-8). */
export type MockFileData = Uint8Array | string;

/** One revision (branch or tag) of a mock repo. */
export interface MockRevisionSpec {
  /** Files by repo path (`"dir/file.json"`). */
  files: Record<string, MockFileData> | Map<string, MockFileData>;
  /** Commit sha (40 hex); default derived from the repo id, revision name and contents. */
  commit?: string;
}

/** A mock repo: its `main` revision plus optional other branches/tags. */
export interface MockRepoSpec extends MockRevisionSpec {
  /** `"model"` (default) or `"dataset"`. */
  type?: "model" | "dataset";
  /** Gated: every route answers 401 without `Authorization: Bearer <hub.token>`, 403 if wrong. */
  gated?: boolean;
  /** Extra revisions by name (e.g. `{ "v1": {...} }`). */
  revisions?: Record<string, MockRevisionSpec>;
}

/** Options of {@link startMockHub}. */
export interface MockHubOptions {
  /** Token accepted for gated repos. Default `"hf_mock_token"`. */
  token?: string;
  /** Token that may write (create repos, commit); it also reads gated repos. Default `"hf_mock_write_token"`. */
  writeToken?: string;
  /** LFS objects larger than this many bytes are uploaded in parts of this size. Default: never. */
  lfsMultipartChunkSize?: number;
  /** Which paths are LFS files (ETag = sha256). Default: weight-like extensions. */
  lfs?: (path: string) => boolean;
  /** Safety net: the server shuts itself down after this long. Default 120 000 ms. */
  maxLifetimeMs?: number;
}

/** Which route a request hit. */
export type MockRoute =
  | "info"
  | "tree"
  | "paths-info"
  | "resolve"
  | "raw"
  | "create-repo"
  | "preupload"
  | "lfs-batch"
  | "lfs-upload"
  | "lfs-complete"
  | "commit"
  | "unknown";

/** One logged request. */
export interface MockRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  route: MockRoute;
  repoId?: string;
  revision?: string;
  /** Repo file path for resolve/raw/tree routes. */
  path?: string;
  /** The `Range` header, if any. */
  range?: string;
  /** The `Authorization` header, if any. */
  authorization?: string;
  /** Status answered (0 while unanswered, e.g. a hanging request). */
  status: number;
  /** Body bytes handed to the connection so far, for bodies the mock streams (hostile modes). */
  bytesSent?: number;
  /** The LFS object (sha256) of `lfs-upload` / `lfs-complete` requests. */
  oid?: string;
}

/** One commit made through the upload routes (see {@link MockHub.commits}). */
export interface MockCommit {
  repoId: string;
  type: "model" | "dataset";
  /** Branch committed to. */
  revision: string;
  /** New commit sha. */
  oid: string;
  /** The header's `summary` and `description`. */
  summary: string;
  description?: string;
  /** Paths added or updated, in the order of the NDJSON body. */
  files: string[];
  /** Paths deleted. */
  deleted: string[];
}

/**
 * How one file's `resolve`/`raw` answers misbehave (see {@link MockHub.setHostile}). "Full GET"
 * means a GET without a Range header (the download itself, not the size probe).
 */
export interface MockHostileSpec {
  /**
   * Headers replaced (a string) or removed (`null`) on every answer for the file: probes, HEADs
   * and full GETs, e.g. `{ etag: '"../../../victim.txt"', "x-linked-etag": null }`.
   */
  headers?: Record<string, string | null>;
  /** Bytes sent by full GETs instead of the file's (the headers still describe the file). */
  body?: MockFileData;
  /**
   * This many more bytes (zeros) streamed after the body of full GETs, made lazily in 64 KiB
   * chunks; `Content-Length` is dropped (chunked answer) unless `headers` sets one.
   */
  extraBytes?: number;
  /** Full GETs are accepted and never answered (no status line) until the hub closes. */
  hang?: boolean;
  /** Full GETs send their headers, then `bytes` bytes every `intervalMs`. */
  trickle?: { bytes: number; intervalMs: number };
}

/** Filter of {@link MockHub.count}; `range: false` selects requests without a Range header. */
export interface MockRequestFilter {
  method?: string;
  route?: MockRoute;
  repoId?: string;
  path?: string;
  range?: boolean;
  /** The LFS object of `lfs-upload` / `lfs-complete` requests. */
  oid?: string;
}

/** A running mock hub. Close it with `await hub.close()` or `await using hub = …`. */
export interface MockHub {
  /** Base URL, e.g. `http://127.0.0.1:41234` (pass as `endpoint`). */
  readonly url: string;
  /** Port it listens on. */
  readonly port: number;
  /** Token accepted for gated repos (read-only: uploads with it get 403). */
  readonly token: string;
  /** Token that may create repos and commit. */
  readonly writeToken: string;
  /** Commits made through the upload routes, oldest first. */
  readonly commits: MockCommit[];
  /** Every request so far, in order. */
  readonly requests: MockRequest[];
  /** Number of logged requests matching `filter`. */
  count(filter?: MockRequestFilter): number;
  /** Hub options for saeflow's `hub/` functions: this endpoint, `cacheDir`, no env token. */
  options(cacheDir: string): { endpoint: string; cacheDir: string; token: null; offline: false };
  /** Like {@link MockHub.options} with `token` set (default: the write token). */
  writeOptions(
    cacheDir: string,
    token?: string,
  ): { endpoint: string; cacheDir: string; token: string; offline: false };
  /** True when the mock holds this repo. */
  hasRepo(repoId: string, type?: "model" | "dataset"): boolean;
  /** Sorted file paths of a repo at `revision` (default `"main"`); throws for an unknown repo. */
  listFiles(repoId: string, revision?: string, type?: "model" | "dataset"): string[];
  /** A copy of a file's bytes at `revision`, or `undefined` when absent. */
  readFile(
    repoId: string,
    path: string,
    revision?: string,
    type?: "model" | "dataset",
  ): Uint8Array | undefined;
  /**
   * Every later request matching `filter` answers `status` (default 500) with a JSON error and
   * changes nothing (`null` stops it); e.g. `{ route: "lfs-upload" }` fails LFS uploads.
   */
  fail(filter: MockRequestFilter | null, status?: number): void;
  /** Adds or replaces a repo (e.g. a new commit on `main`). */
  setRepo(repoId: string, spec: MockRepoSpec): Promise<void>;
  /** Commit sha of `revision` (default `"main"`) of a repo. */
  commitOf(repoId: string, revision?: string, type?: "model" | "dataset"): string;
  /** Full (non-Range) GETs of this file will send half the bytes, then drop the connection. */
  breakFile(repoId: string, path: string, type?: "model" | "dataset"): void;
  /** Makes one file's answers hostile (see {@link MockHostileSpec}); `null` restores it. */
  setHostile(
    repoId: string,
    path: string,
    spec: MockHostileSpec | null,
    type?: "model" | "dataset",
  ): void;
  /**
   * Every later request matching `filter` (e.g. `{ route: "info" }`) is accepted and never
   * answered until the hub closes or `hang(null)` is called (then they get a 503).
   */
  hang(filter: MockRequestFilter | null): void;
  /** Stops the server (idempotent). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface FileEntry {
  data: Uint8Array<ArrayBuffer>;
  gitOid: string;
  sha256: string;
  lfs: boolean;
}
interface RevisionState {
  commit: string;
  files: Map<string, FileEntry>;
}
interface RepoState {
  id: string;
  type: "model" | "dataset";
  gated: boolean;
  revisions: Map<string, RevisionState>;
}

const enc = new TextEncoder();
const DEFAULT_LFS = /\.(safetensors|bin|pt|pth|npz|gguf)$/;

async function hex(algo: "SHA-1" | "SHA-256", data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest(algo, data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function matches(r: MockRequest, filter: MockRequestFilter): boolean {
  return (filter.method === undefined || r.method === filter.method) &&
    (filter.route === undefined || r.route === filter.route) &&
    (filter.repoId === undefined || r.repoId === filter.repoId) &&
    (filter.path === undefined || r.path === filter.path) &&
    (filter.range === undefined || (r.range !== undefined) === filter.range) &&
    (filter.oid === undefined || r.oid === filter.oid);
}

/** Returns a TCP port on 127.0.0.1 that nothing listens on (for "unreachable hub" tests). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts a mock hub serving `repos` (keyed by repo id, e.g. `"org/name"` or `"gpt2"`).
 * See the module doc for routes and behaviour.
 */
export async function startMockHub(
  repos: Record<string, MockRepoSpec> = {},
  opts: MockHubOptions = {},
): Promise<MockHub> {
  const token = opts.token ?? "hf_mock_token";
  const writeToken = opts.writeToken ?? "hf_mock_write_token";
  const partSize = opts.lfsMultipartChunkSize;
  if (partSize !== undefined && !(Number.isSafeInteger(partSize) && partSize > 0)) {
    throw new Error(`mock lfsMultipartChunkSize must be a positive integer: ${partSize}`);
  }
  /** Uploaded LFS objects by sha256 (verified), visible in a repo once a commit names them. */
  const lfsStore = new Map<string, Uint8Array<ArrayBuffer>>();
  /** Parts of multipart uploads in progress: oid → part number → bytes. */
  const lfsParts = new Map<string, Map<number, Uint8Array<ArrayBuffer>>>();
  const commits: MockCommit[] = [];
  let failure: { filter: MockRequestFilter; status: number } | null = null;
  const isLfs = opts.lfs ?? ((p: string) => DEFAULT_LFS.test(p));
  const state = new Map<string, RepoState>();
  const broken = new Set<string>();
  const hostile = new Map<string, MockHostileSpec>();
  let hangFilter: MockRequestFilter | null = null;
  const hanging = new Set<() => void>();
  const liveTimers = new Set<ReturnType<typeof setTimeout>>();
  const requests: MockRequest[] = [];
  const key = (type: string, id: string) => `${type}:${id}`;

  async function buildRevision(id: string, name: string, spec: MockRevisionSpec) {
    const files = new Map<string, FileEntry>();
    const entries = spec.files instanceof Map ? [...spec.files] : Object.entries(spec.files);
    for (const [path, raw] of entries) {
      const data = typeof raw === "string" ? enc.encode(raw) : new Uint8Array(raw); // own copy
      const gitOid = await hex("SHA-1", concat(enc.encode(`blob ${data.length}\0`), data));
      files.set(path, { data, gitOid, sha256: await hex("SHA-256", data), lfs: isLfs(path) });
    }
    const summary = [...files].map(([p, f]) => `${p}:${f.gitOid}`).sort().join("\n");
    const commit = spec.commit ?? await hex("SHA-1", enc.encode(`${id}@${name}\n${summary}`));
    if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`mock commit must be 40 hex: ${commit}`);
    return { commit, files };
  }

  async function setRepo(id: string, spec: MockRepoSpec) {
    const type = spec.type ?? "model";
    const revisions = new Map<string, RevisionState>();
    revisions.set("main", await buildRevision(id, "main", spec));
    for (const [name, r] of Object.entries(spec.revisions ?? {})) {
      revisions.set(name, await buildRevision(id, name, r));
    }
    state.set(key(type, id), { id, type, gated: spec.gated ?? false, revisions });
  }
  for (const [id, spec] of Object.entries(repos)) await setRepo(id, spec);

  function findRevision(repo: RepoState, rev: string): RevisionState | undefined {
    if (rev === "HEAD") return repo.revisions.get("main");
    return repo.revisions.get(rev) ?? [...repo.revisions.values()].find((r) => r.commit === rev);
  }

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  const hubError = (status: number, code: string, message: string) =>
    json(status, { error: message }, { "x-error-code": code });

  function fileHeaders(f: FileEntry, commit: string): Record<string, string> {
    const etag = f.lfs ? f.sha256 : f.gitOid;
    const h: Record<string, string> = {
      "etag": `"${etag}"`,
      "x-repo-commit": commit,
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
    };
    if (f.lfs) {
      h["x-linked-etag"] = `"${f.sha256}"`;
      h["x-linked-size"] = String(f.data.length);
    }
    return h;
  }

  /** `ms` of waiting that the hub's close cuts short (no timer outlives the hub). */
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        liveTimers.delete(t);
        resolve();
      }, ms);
      liveTimers.add(t);
    });
  }

  /** A body of `total` bytes made by `chunkAt(offset, n)`, counted into `log.bytesSent`. */
  function lazyBody(
    total: number,
    chunk: number,
    intervalMs: number,
    chunkAt: (offset: number, n: number) => Uint8Array,
    log: MockRequest,
  ): ReadableStream<Uint8Array> {
    let sent = 0;
    let cancelled = false;
    log.bytesSent = 0;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        if (intervalMs > 0) await sleep(intervalMs);
        if (cancelled || closed) {
          if (!cancelled) c.close();
          return;
        }
        const n = Math.min(chunk, total - sent);
        c.enqueue(chunkAt(sent, n));
        sent += n;
        log.bytesSent = sent;
        if (sent >= total) c.close();
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
  }

  function hostileFile(
    req: Request,
    repo: RepoState,
    f: FileEntry,
    commit: string,
    path: string,
    spec: MockHostileSpec,
    log: MockRequest,
  ): Response | Promise<Response> {
    const apply = (resp: Response): Response => {
      const h = new Headers(resp.headers);
      for (const [k, v] of Object.entries(spec.headers ?? {})) {
        if (v === null) h.delete(k);
        else h.set(k, v);
      }
      return new Response(resp.body, { status: resp.status, headers: h });
    };
    const fullGet = req.method === "GET" && !req.headers.get("range");
    if (!fullGet) return apply(plainFile(req, repo, f, commit, path));
    if (spec.hang) return waitForever();
    const data = spec.body === undefined
      ? f.data
      : typeof spec.body === "string"
      ? enc.encode(spec.body)
      : spec.body;
    const headers = new Headers(fileHeaders(f, commit));
    const extra = spec.extraBytes ?? 0;
    const total = data.length + extra;
    if (extra === 0) headers.set("content-length", String(data.length));
    for (const [k, v] of Object.entries(spec.headers ?? {})) {
      if (v === null) headers.delete(k);
      else headers.set(k, v);
    }
    const chunkAt = (off: number, n: number) => {
      const out = new Uint8Array(n);
      if (off < data.length) out.set(data.subarray(off, Math.min(off + n, data.length)));
      return out;
    };
    const body = spec.trickle
      ? lazyBody(total, spec.trickle.bytes, spec.trickle.intervalMs, chunkAt, log)
      : extra > 0
      ? lazyBody(total, 65536, 0, chunkAt, log)
      : data;
    return new Response(body as BodyInit, { status: 200, headers });
  }

  /** A handler result that never comes (until the hub closes or `hang(null)`: then a 503). */
  function waitForever(): Promise<Response> {
    return new Promise((resolve) => {
      const done = () => {
        hanging.delete(done);
        resolve(new Response("mock hub: released", { status: 503 }));
      };
      hanging.add(done);
    });
  }

  function serveFile(
    req: Request,
    repo: RepoState,
    f: FileEntry,
    commit: string,
    path: string,
    log: MockRequest,
  ): Response | Promise<Response> {
    const evil = hostile.get(key(repo.type, repo.id) + "|" + path);
    if (evil) return hostileFile(req, repo, f, commit, path, evil, log);
    return plainFile(req, repo, f, commit, path);
  }

  function plainFile(req: Request, repo: RepoState, f: FileEntry, commit: string, path: string) {
    const headers = fileHeaders(f, commit);
    const size = f.data.length;
    const range = req.headers.get("range");
    const head = req.method === "HEAD";
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      let start = -1, end = -1;
      if (m && m[1] !== "") {
        start = Number(m[1]);
        end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      } else if (m && m[2] !== "") {
        start = Math.max(0, size - Number(m[2]));
        end = size - 1;
      }
      if (!m || start < 0 || start >= size || end < start) {
        return new Response(null, {
          status: 416,
          headers: { ...headers, "content-range": `bytes */${size}` },
        });
      }
      const body = f.data.slice(start, end + 1);
      return new Response(head ? null : body, {
        status: 206,
        headers: {
          ...headers,
          "content-range": `bytes ${start}-${end}/${size}`,
          "content-length": String(body.length),
        },
      });
    }
    headers["content-length"] = String(size);
    if (head) return new Response(null, { status: 200, headers });
    if (broken.has(key(repo.type, repo.id) + "|" + path)) {
      const half = f.data.slice(0, Math.floor(size / 2));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(half);
          // Fail after the first chunk went out: the client sees a truncated body.
          setTimeout(() => c.error(new Error("mock hub: connection dropped")), 20);
        },
      });
      return new Response(stream, { status: 200, headers });
    }
    return new Response(f.data, { status: 200, headers });
  }

  function listEntries(rev: RevisionState, dir: string, recursive: boolean, expand: boolean) {
    const prefix = dir ? dir.replace(/\/+$/, "") + "/" : "";
    const dirs = new Set<string>();
    const out: Record<string, unknown>[] = [];
    for (const [p, f] of [...rev.files].sort(([a], [b]) => a.localeCompare(b))) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length).split("/");
      for (let i = 1; i < rest.length; i++) {
        if (!recursive && i > 1) break;
        dirs.add(prefix + rest.slice(0, i).join("/"));
      }
      if (!recursive && rest.length > 1) continue;
      out.push(fileEntry(p, f, rev, expand));
    }
    for (const d of [...dirs].sort()) {
      out.push({ type: "directory", oid: "0".repeat(40), size: 0, path: d });
    }
    return out;
  }

  function fileEntry(p: string, f: FileEntry, rev: RevisionState, expand: boolean) {
    const e: Record<string, unknown> = {
      type: "file",
      oid: f.gitOid,
      size: f.data.length,
      path: p,
    };
    if (f.lfs) e.lfs = { oid: f.sha256, size: f.data.length, pointerSize: 134 };
    if (expand) {
      e.lastCommit = { id: rev.commit, title: "mock commit", date: "2024-01-01T00:00:00.000Z" };
      e.securityFileStatus = { status: "safe" };
    }
    return e;
  }

  /** 401 without a token, 403 with one that cannot write, `null` for the write token. */
  function checkWrite(req: Request, what: string): Response | null {
    const auth = req.headers.get("authorization");
    if (!auth) {
      return hubError(401, "Unauthorized", `Invalid credentials: ${what} needs a token`);
    }
    if (auth !== `Bearer ${writeToken}`) {
      return hubError(403, "Forbidden", `You don't have the rights to ${what}`);
    }
    return null;
  }

  /** The injected failure for `log`, if `fail(filter)` matches it. */
  function injected(log: MockRequest): Response | null {
    if (!failure || !matches(log, failure.filter)) return null;
    return hubError(failure.status, "MockFailure", `mock hub: injected failure of ${log.route}`);
  }

  async function readJson(req: Request): Promise<Record<string, unknown> | null> {
    try {
      const v = JSON.parse(await req.text());
      return v !== null && typeof v === "object" && !Array.isArray(v) ? v : null;
    } catch {
      return null;
    }
  }

  function badPath(p: unknown): boolean {
    return typeof p !== "string" || p === "" || p.startsWith("/") || p.includes("\\") ||
      p.split("/").some((s) => s === "" || s === "." || s === "..");
  }

  const GITATTRIBUTES = [
    "*.bin filter=lfs diff=lfs merge=lfs -text",
    "*.safetensors filter=lfs diff=lfs merge=lfs -text",
    "*.pt filter=lfs diff=lfs merge=lfs -text",
    "*.npz filter=lfs diff=lfs merge=lfs -text",
    "",
  ].join("\n");

  /** Upload routes (see the module doc), or `null` when `segs` is none of them. */
  async function uploadRoute(
    req: Request,
    log: MockRequest,
    segs: string[],
  ): Promise<Response | null> {
    const base = `http://127.0.0.1:${server.addr.port}`;
    // POST /api/repos/create
    if (segs.length === 3 && segs[0] === "api" && segs[1] === "repos" && segs[2] === "create") {
      log.route = "create-repo";
      if (req.method !== "POST") return hubError(405, "MethodNotAllowed", "use POST");
      const body = await readJson(req);
      const name = body?.name, org = body?.organization;
      const type = body?.type ?? "model";
      if (
        typeof name !== "string" || typeof org !== "string" ||
        (type !== "model" && type !== "dataset") || !/^[\w.-]+$/.test(name + org)
      ) {
        return hubError(400, "BadRequest", "expected {name, organization, type}");
      }
      const repoId = `${org}/${name}`;
      log.repoId = repoId;
      const denied = checkWrite(req, `create a ${type} under the namespace "${org}"`);
      if (denied) return denied;
      const fail = injected(log);
      if (fail) return fail;
      const url = `${base}/${type === "dataset" ? "datasets/" : ""}${repoId}`;
      if (state.has(key(type, repoId))) {
        return json(409, { error: `You already created this ${type} repo`, url });
      }
      await setRepo(repoId, { type, files: { ".gitattributes": GITATTRIBUTES } });
      return json(200, { url, name: repoId, id: `mock-${repoId}` });
    }
    // POST [/datasets]/<repo>.git/info/lfs/objects/batch
    const tail = ["info", "lfs", "objects", "batch"];
    if (segs.length >= 5 && tail.every((t, i) => segs[segs.length - 4 + i] === t)) {
      log.route = "lfs-batch";
      const dataset = segs[0] === "datasets";
      const repoSegs = segs.slice(dataset ? 1 : 0, segs.length - 4);
      const last = repoSegs[repoSegs.length - 1] ?? "";
      if (!last.endsWith(".git") || repoSegs.length > 2) {
        return hubError(404, "NotFound", "mock hub: no such LFS endpoint");
      }
      const repoId = [...repoSegs.slice(0, -1), last.slice(0, -4)].join("/");
      log.repoId = repoId;
      if (req.method !== "POST") return hubError(405, "MethodNotAllowed", "use POST");
      const repo = state.get(key(dataset ? "dataset" : "model", repoId));
      if (!repo) return hubError(404, "RepoNotFound", "Repository not found");
      const denied = checkWrite(req, `upload to ${repo.type} ${repoId}`);
      if (denied) return denied;
      const fail = injected(log);
      if (fail) return fail;
      const body = await readJson(req);
      const objects = body?.objects;
      if (body?.operation !== "upload" || !Array.isArray(objects)) {
        return hubError(400, "BadRequest", "expected {operation: 'upload', objects}");
      }
      const out: unknown[] = [];
      for (const o of objects as { oid?: unknown; size?: unknown }[]) {
        const oid = o?.oid, size = o?.size;
        if (typeof oid !== "string" || !/^[0-9a-f]{64}$/.test(oid) || !Number.isSafeInteger(size)) {
          return hubError(400, "BadRequest", "each object needs a sha256 oid and a size");
        }
        const n = size as number;
        if (lfsStore.has(oid)) {
          out.push({ oid, size: n, authenticated: true }); // already stored: nothing to send
        } else if (partSize !== undefined && n > partSize) {
          const header: Record<string, string> = { chunk_size: String(partSize) };
          const parts = Math.ceil(n / partSize);
          for (let i = 1; i <= parts; i++) header[String(i)] = `${base}/mock-lfs/${oid}/part/${i}`;
          out.push({
            oid,
            size: n,
            authenticated: true,
            actions: { upload: { href: `${base}/mock-lfs/${oid}/complete`, header } },
          });
        } else {
          out.push({
            oid,
            size: n,
            authenticated: true,
            actions: { upload: { href: `${base}/mock-lfs/${oid}` } },
          });
        }
      }
      return json(200, { transfer: "basic", objects: out }, {
        "content-type": "application/vnd.git-lfs+json",
      });
    }
    // PUT /mock-lfs/<oid>[/part/<n>], POST /mock-lfs/<oid>/complete (pre-signed: no token)
    if (segs[0] === "mock-lfs" && segs.length >= 2) {
      const oid = segs[1];
      log.oid = oid;
      const complete = segs.length === 3 && segs[2] === "complete";
      log.route = complete ? "lfs-complete" : "lfs-upload";
      const fail = injected(log);
      if (fail) return fail;
      const verify = async (data: Uint8Array<ArrayBuffer>) => {
        if (await hex("SHA-256", data) !== oid) {
          return hubError(400, "BadDigest", `uploaded bytes do not hash to ${oid}`);
        }
        lfsStore.set(oid, data);
        return null;
      };
      if (segs.length === 2) {
        if (req.method !== "PUT") return hubError(405, "MethodNotAllowed", "use PUT");
        const bad = await verify(new Uint8Array(await req.arrayBuffer()));
        return bad ?? new Response(null, { status: 200, headers: { etag: `"${oid}"` } });
      }
      if (segs.length === 4 && segs[2] === "part" && /^\d+$/.test(segs[3])) {
        if (req.method !== "PUT") return hubError(405, "MethodNotAllowed", "use PUT");
        const data = new Uint8Array(await req.arrayBuffer());
        const parts = lfsParts.get(oid) ?? new Map();
        parts.set(Number(segs[3]), data);
        lfsParts.set(oid, parts);
        return new Response(null, {
          status: 200,
          headers: { etag: `"${await hex("SHA-1", data)}"` },
        });
      }
      if (complete) {
        if (req.method !== "POST") return hubError(405, "MethodNotAllowed", "use POST");
        const body = await readJson(req);
        const list = body?.parts as { partNumber?: number; etag?: string }[] | undefined;
        const parts = lfsParts.get(oid);
        if (!Array.isArray(list) || !parts || list.length !== parts.size) {
          return hubError(400, "BadRequest", "completion must list every uploaded part");
        }
        const chunks: Uint8Array[] = [];
        for (let i = 1; i <= list.length; i++) {
          const p = list.find((x) => x?.partNumber === i);
          const data = parts.get(i);
          if (!p || !data || p.etag !== `"${await hex("SHA-1", data)}"`) {
            return hubError(400, "BadRequest", `part ${i} is missing or its ETag is wrong`);
          }
          chunks.push(data);
        }
        lfsParts.delete(oid);
        const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let off = 0;
        for (const c of chunks) {
          all.set(c, off);
          off += c.length;
        }
        return await verify(all) ?? json(200, { success: true });
      }
      return hubError(404, "NotFound", "mock hub: no such LFS storage URL");
    }
    // POST /api/<kind>/<repo>/(preupload|commit)/<branch>
    if (
      segs[0] !== "api" || (segs[1] !== "models" && segs[1] !== "datasets") || segs.length < 5
    ) {
      return null;
    }
    const i = segs.findIndex((s, j) => j > 2 && (s === "preupload" || s === "commit"));
    if (i < 0 || i > 4 || segs.length !== i + 2) return null;
    const type = segs[1] === "models" ? "model" : "dataset";
    log.route = segs[i] as MockRoute;
    const repoId = segs.slice(2, i).join("/");
    log.repoId = repoId;
    log.revision = segs[i + 1];
    if (req.method !== "POST") return hubError(405, "MethodNotAllowed", "use POST");
    const repo = state.get(key(type, repoId));
    if (!repo) return hubError(404, "RepoNotFound", "Repository not found");
    const denied = checkWrite(req, `create a commit on ${type} ${repoId}`);
    if (denied) return denied;
    const fail = injected(log);
    if (fail) return fail;
    const branch = segs[i + 1];
    const rev = repo.revisions.get(branch);
    if (!rev) return hubError(404, "RevisionNotFound", `Invalid rev id: ${branch}`);
    if (log.route === "preupload") {
      const body = await readJson(req);
      const files = body?.files;
      if (!Array.isArray(files)) return hubError(400, "BadRequest", "expected {files}");
      return json(200, {
        files: (files as { path?: unknown; size?: unknown }[]).map((f) => ({
          path: f?.path,
          uploadMode: typeof f?.path === "string" &&
              (isLfs(f.path) || (typeof f.size === "number" && f.size > 10 * 1024 * 1024))
            ? "lfs"
            : "regular",
          shouldIgnore: false,
        })),
      });
    }
    // commit: validate every line, then apply all at once
    const lines = (await req.text()).split("\n").filter((l) => l.trim() !== "");
    const next = new Map(rev.files);
    let header: { summary?: unknown; description?: unknown; parentCommit?: unknown } | null = null;
    const added: string[] = [], deleted: string[] = [];
    for (const [n, line] of lines.entries()) {
      let op: { key?: unknown; value?: Record<string, unknown> };
      try {
        op = JSON.parse(line);
      } catch {
        return hubError(400, "BadRequest", `line ${n + 1} of the commit is not JSON`);
      }
      const v = op?.value;
      if (n === 0) {
        if (op?.key !== "header" || !v || typeof v.summary !== "string") {
          return hubError(400, "BadRequest", "the first line must be the header with a summary");
        }
        header = v;
        continue;
      }
      if (!v || badPath(v.path)) {
        return hubError(
          422,
          "InvalidPath",
          `line ${n + 1}: invalid path ${JSON.stringify(v?.path)}`,
        );
      }
      const path = v.path as string;
      if (op.key === "file") {
        if (v.encoding !== "base64" || typeof v.content !== "string") {
          return hubError(400, "BadRequest", `line ${n + 1}: expected base64 content`);
        }
        let data: Uint8Array<ArrayBuffer>;
        try {
          data = Uint8Array.from(atob(v.content), (c) => c.charCodeAt(0));
        } catch {
          return hubError(400, "BadRequest", `line ${n + 1}: content is not base64`);
        }
        const gitOid = await hex("SHA-1", concat(enc.encode(`blob ${data.length}\0`), data));
        next.set(path, { data, gitOid, sha256: await hex("SHA-256", data), lfs: false });
        added.push(path);
      } else if (op.key === "lfsFile") {
        const data = typeof v.oid === "string" ? lfsStore.get(v.oid) : undefined;
        if (!data || v.size !== data.length || v.algo !== "sha256") {
          return hubError(
            422,
            "LfsObjectMissing",
            `line ${n + 1}: ${path} points to an LFS object that was not uploaded`,
          );
        }
        const gitOid = await hex("SHA-1", concat(enc.encode(`blob ${data.length}\0`), data));
        next.set(path, { data, gitOid, sha256: v.oid as string, lfs: true });
        added.push(path);
      } else if (op.key === "deletedFile") {
        if (!next.delete(path)) {
          return hubError(404, "EntryNotFound", `line ${n + 1}: ${path} does not exist`);
        }
        deleted.push(path);
      } else {
        return hubError(400, "BadRequest", `line ${n + 1}: unknown key ${JSON.stringify(op.key)}`);
      }
    }
    if (!header) return hubError(400, "BadRequest", "empty commit");
    if (header.parentCommit !== undefined && header.parentCommit !== rev.commit) {
      return hubError(412, "PreconditionFailed", "parentCommit is not the head of the branch");
    }
    const summary = [...next].map(([p, f]) => `${p}:${f.gitOid}`).sort().join("\n");
    const oid = await hex("SHA-1", enc.encode(`${rev.commit}\n${header.summary}\n${summary}`));
    repo.revisions.set(branch, { commit: oid, files: next });
    commits.push({
      repoId,
      type,
      revision: branch,
      oid,
      summary: header.summary as string,
      description: typeof header.description === "string" ? header.description : undefined,
      files: added,
      deleted,
    });
    const url = `${base}/${type === "dataset" ? "datasets/" : ""}${repoId}/commit/${oid}`;
    return json(200, { success: true, commitOid: oid, commitUrl: url, hookOutput: "" });
  }

  async function route(req: Request, log: MockRequest): Promise<Response> {
    const u = new URL(req.url);
    const segs = u.pathname.split("/").slice(1).map(decodeURIComponent);
    const upload = await uploadRoute(req, log, segs);
    if (upload) return upload;
    let type: "model" | "dataset" = "model";
    let kind: MockRoute = "unknown";
    let repoSegs: string[] = [], rest: string[] = [];
    if (segs[0] === "api" && (segs[1] === "models" || segs[1] === "datasets")) {
      type = segs[1] === "models" ? "model" : "dataset";
      const i = segs.findIndex((s, j) => j > 2 && ["revision", "tree", "paths-info"].includes(s));
      if (i > 2) {
        kind = segs[i] === "revision" ? "info" : segs[i] as MockRoute;
        repoSegs = segs.slice(2, i);
        rest = segs.slice(i + 1);
      }
    } else {
      const body = segs[0] === "datasets" ? segs.slice(1) : segs;
      if (segs[0] === "datasets") type = "dataset";
      const i = body.findIndex((s, j) => j > 0 && (s === "resolve" || s === "raw"));
      if (i > 0) {
        kind = body[i] as MockRoute;
        repoSegs = body.slice(0, i);
        rest = body.slice(i + 1);
      }
    }
    log.route = kind;
    if (kind === "unknown" || repoSegs.length > 2 || rest.length === 0) {
      return hubError(404, "NotFound", `mock hub: no route for ${req.method} ${u.pathname}`);
    }
    const repoId = repoSegs.join("/");
    log.repoId = repoId;
    log.revision = rest[0];
    const filePath = rest.slice(1).join("/");
    if (filePath) log.path = filePath;
    const repo = state.get(key(type, repoId));
    if (!repo) return hubError(404, "RepoNotFound", "Repository not found");
    if (repo.gated) {
      const auth = req.headers.get("authorization");
      if (!auth) {
        return hubError(
          401,
          "GatedRepo",
          `Access to ${type} ${repoId} is restricted. You must have access to it and be ` +
            `authenticated to access it. Please log in.`,
        );
      }
      if (auth !== `Bearer ${token}` && auth !== `Bearer ${writeToken}`) {
        return hubError(403, "GatedRepo", `Access to ${type} ${repoId} is restricted.`);
      }
    }
    const rev = findRevision(repo, rest[0]);
    if (!rev) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rest[0]}`);

    if (kind === "info") {
      if (req.method !== "GET") return hubError(405, "MethodNotAllowed", "use GET");
      return json(200, {
        _id: `mock-${repoId}`,
        id: repoId,
        sha: rev.commit,
        private: false,
        gated: repo.gated ? "manual" : false,
        downloads: 0,
        likes: 0,
        lastModified: "2024-01-01T00:00:00.000Z",
        tags: [],
        siblings: [...rev.files.keys()].sort().map((rfilename) => ({ rfilename })),
      });
    }
    if (kind === "tree") {
      const recursive = u.searchParams.get("recursive") === "true";
      const expand = u.searchParams.get("expand") === "true";
      return json(200, listEntries(rev, filePath, recursive, expand), {
        "x-repo-commit": rev.commit,
      });
    }
    if (kind === "paths-info") {
      if (req.method !== "POST") return hubError(405, "MethodNotAllowed", "use POST");
      const text = await req.text();
      if (text.length > 1_000_000) return hubError(413, "TooLarge", "body too large");
      const body = JSON.parse(text) as { paths?: string[]; expand?: boolean };
      const out: unknown[] = [];
      for (const p of body.paths ?? []) {
        const f = rev.files.get(p);
        if (f) out.push(fileEntry(p, f, rev, body.expand ?? false));
        else if ([...rev.files.keys()].some((k) => k.startsWith(p + "/"))) {
          out.push({ type: "directory", oid: "0".repeat(40), size: 0, path: p });
        }
      }
      return json(200, out);
    }
    // resolve / raw
    if (req.method !== "GET" && req.method !== "HEAD") {
      return hubError(405, "MethodNotAllowed", "use GET or HEAD");
    }
    const f = rev.files.get(filePath);
    if (!f) {
      return hubError(404, "EntryNotFound", `${filePath} does not exist on "${rest[0]}"`);
    }
    return await serveFile(req, repo, f, rev.commit, filePath, log);
  }

  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: () => new Response(null, { status: 500 }),
    },
    async (req) => {
      const log: MockRequest = {
        method: req.method,
        url: new URL(req.url).pathname + new URL(req.url).search,
        route: "unknown",
        range: req.headers.get("range") ?? undefined,
        authorization: req.headers.get("authorization") ?? undefined,
        status: 0,
      };
      requests.push(log);
      let resp = await route(req, log);
      const fail = resp.status < 400 ? injected(log) : null;
      if (fail) {
        await resp.body?.cancel();
        resp = fail;
      }
      if (hangFilter && matches(log, hangFilter)) {
        await resp.body?.cancel();
        return await waitForever();
      }
      log.status = resp.status;
      return resp;
    },
  );
  const port = server.addr.port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    for (const t of liveTimers) clearTimeout(t);
    liveTimers.clear();
    for (const release of [...hanging]) release();
    await server.shutdown();
  };
  const timer = setTimeout(() => void close(), opts.maxLifetimeMs ?? 120_000);
  Deno.unrefTimer(timer);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    writeToken,
    commits,
    requests,
    count(filter: MockRequestFilter = {}) {
      return requests.filter((r) => matches(r, filter)).length;
    },
    options(cacheDir: string) {
      return { endpoint: `http://127.0.0.1:${port}`, cacheDir, token: null, offline: false };
    },
    writeOptions(cacheDir: string, t: string = writeToken) {
      return { endpoint: `http://127.0.0.1:${port}`, cacheDir, token: t, offline: false };
    },
    hasRepo(repoId: string, type: "model" | "dataset" = "model") {
      return state.has(key(type, repoId));
    },
    listFiles(repoId: string, revision = "main", type: "model" | "dataset" = "model") {
      const repo = state.get(key(type, repoId));
      const r = repo && findRevision(repo, revision);
      if (!r) throw new Error(`mock hub has no ${type} ${repoId}@${revision}`);
      return [...r.files.keys()].sort();
    },
    readFile(
      repoId: string,
      path: string,
      revision = "main",
      type: "model" | "dataset" = "model",
    ) {
      const repo = state.get(key(type, repoId));
      const f = repo && findRevision(repo, revision)?.files.get(path);
      return f ? f.data.slice() : undefined;
    },
    fail(filter: MockRequestFilter | null, status = 500) {
      failure = filter === null ? null : { filter, status };
    },
    setRepo,
    commitOf(repoId: string, revision = "main", type: "model" | "dataset" = "model") {
      const r = state.get(key(type, repoId))?.revisions.get(revision);
      if (!r) throw new Error(`mock hub has no ${type} ${repoId}@${revision}`);
      return r.commit;
    },
    breakFile(repoId: string, path: string, type: "model" | "dataset" = "model") {
      broken.add(key(type, repoId) + "|" + path);
    },
    setHostile(
      repoId: string,
      path: string,
      spec: MockHostileSpec | null,
      type: "model" | "dataset" = "model",
    ) {
      if (spec === null) hostile.delete(key(type, repoId) + "|" + path);
      else hostile.set(key(type, repoId) + "|" + path, spec);
    },
    hang(filter: MockRequestFilter | null) {
      hangFilter = filter;
      if (filter === null) { for (const release of [...hanging]) release(); }
    },
    close,
    [Symbol.asyncDispose]: close,
  } as MockHub;
}
