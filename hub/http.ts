/**
 * Network plumbing shared by the hub functions: a `fetch` that adds the token for the hub's own
 * origin and turns connection failures into one clear {@link HubError}, and the mapping of
 * `@huggingface/hub`'s `HubApiError` (HTTP status) to {@link HubError}.
 * @module
 */

import { HubApiError } from "@huggingface/hub";
import { HubError } from "./errors.ts";
import type { HubSettings } from "./env.ts";
import { blobNameFromEtag, type RepoType } from "./cache.ts";

/** What a request was about, for error messages. */
export interface RequestContext {
  repoId: string;
  repoType: RepoType;
  revision: string;
  path?: string;
}

/** `model gpt2`, `dataset org/x`: how messages name a repo. */
export function describeRepo(ctx: RequestContext): string {
  return `${ctx.repoType} ${ctx.repoId}`;
}

/** One sentence for an unreachable endpoint. */
export function unreachableError(
  settings: HubSettings,
  ctx: RequestContext,
  cause: unknown,
): HubError {
  const what = ctx.path ? `${ctx.path} from ${describeRepo(ctx)}` : describeRepo(ctx);
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new HubError(
    "unreachable",
    `Cannot reach the Hugging Face hub at ${settings.endpoint} to fetch ${what} ` +
      `(revision ${ctx.revision}; ${reason}): check the network, point HF_ENDPOINT at a ` +
      `reachable mirror, or set HF_HUB_OFFLINE=1 to use what is already in the cache ` +
      `${settings.cacheDir}.`,
    undefined,
    { cause },
  );
}

/** Which timeout a request runs under: metadata (`etagTimeout`) or a file body (`downloadTimeout`). */
export type RequestKind = "metadata" | "download";

/** The {@link HubError} `timeout` for `url`, naming the timeout and how to raise it. */
export function timeoutError(
  settings: HubSettings,
  ctx: RequestContext,
  kind: RequestKind,
  url: string,
  phase: string,
): HubError {
  const seconds = kind === "download" ? settings.downloadTimeout : settings.etagTimeout;
  const knob = kind === "download"
    ? "HF_HUB_DOWNLOAD_TIMEOUT (or the downloadTimeout option)"
    : "HF_HUB_ETAG_TIMEOUT (or the etagTimeout option)";
  const what = ctx.path ? `${ctx.path} of ${describeRepo(ctx)}` : describeRepo(ctx);
  return new HubError(
    "timeout",
    `Timed out after ${seconds} s waiting for ${phase} from ${url} (${what}, revision ` +
      `${ctx.revision}): the hub at ${settings.endpoint} accepted the request but went silent. ` +
      `Retry, raise ${knob}, or set HF_HUB_OFFLINE=1 to use the cache ${settings.cacheDir}.`,
  );
}

/**
 * `body` re-served so that each read must deliver a chunk within `ms` (an idle timeout);
 * otherwise `abort()` is called and the stream errors with `onTimeout(bytesSoFar)`. Chunks are
 * only requested while the consumer reads (high-water mark 0), so time the consumer spends
 * (e.g. writing to disk) never counts.
 */
function idleTimeoutBody(
  body: ReadableStream<Uint8Array>,
  ms: number,
  abort: () => void,
  onTimeout: (bytes: number) => HubError,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), ms);
      });
      try {
        const r = await Promise.race([reader.read(), expired]);
        if (r === "timeout") {
          abort();
          reader.cancel().catch(() => {});
          controller.error(onTimeout(bytes));
        } else if (r.done) {
          controller.close();
        } else {
          bytes += r.value.length;
          controller.enqueue(r.value);
        }
      } catch (err) {
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      abort();
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * A `fetch` for `@huggingface/hub` and the downloads: adds `Authorization: Bearer <token>` to
 * requests for the endpoint's origin only (never to a CDN it redirects to), rethrows network
 * failures as {@link HubError} `unreachable`, and enforces the timeout of `kind`
 * (`settings.etagTimeout` or `settings.downloadTimeout`, in seconds) on the wait for the
 * answer's headers and then on each chunk of its body, as {@link HubError} `timeout` naming the
 * URL. (`@huggingface/hub` insists tokens start with `hf_`; adding the header here accepts any
 * token, as Python does.)
 */
export function makeHubFetch(
  settings: HubSettings,
  ctx: RequestContext,
  kind: RequestKind = "metadata",
): typeof fetch {
  const origin = new URL(settings.endpoint).origin;
  const ms = 1000 * (kind === "download" ? settings.downloadTimeout : settings.etagTimeout);
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : {}));
    if (settings.token && new URL(url).origin === origin && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${settings.token}`);
    }
    headers.set("user-agent", "saeflow (deno; @huggingface/hub)");
    const controller = new AbortController();
    const callerSignal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const signal = callerSignal
      ? AbortSignal.any([callerSignal, controller.signal])
      : controller.signal;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, ms);
    let resp: Response;
    try {
      resp = await fetch(input, { ...init, headers, signal });
    } catch (err) {
      if (timedOut) throw timeoutError(settings, ctx, kind, url, "an answer");
      if (err instanceof HubError) throw err;
      throw unreachableError(settings, ctx, err);
    } finally {
      clearTimeout(timer);
    }
    const nullBody = [101, 103, 204, 205, 304].includes(resp.status);
    if (nullBody) await resp.body?.cancel();
    const body = resp.body && !nullBody
      ? idleTimeoutBody(
        resp.body,
        ms,
        () => controller.abort(),
        (bytes) =>
          timeoutError(settings, ctx, kind, url, `the next chunk of the body after ${bytes} bytes`),
      )
      : null;
    const out = new Response(body, {
      status: resp.status,
      statusText: resp.statusText,
      headers: resp.headers,
    });
    // Callers read `resp.url` (the URL after redirects).
    Object.defineProperty(out, "url", { value: resp.url });
    return out;
  };
}

/**
 * Converts an error from `@huggingface/hub` (or our fetch) into a {@link HubError} naming the
 * repo, revision and path. `HubError`s pass through unchanged.
 */
export function toHubError(err: unknown, settings: HubSettings, ctx: RequestContext): HubError {
  if (err instanceof HubError) return err;
  const where = `${describeRepo(ctx)} at revision ${ctx.revision}` +
    (ctx.path ? `, file ${ctx.path}` : "");
  if (err instanceof HubApiError) {
    const status = err.statusCode;
    if (status === 401 || status === 403) {
      const tokenHint = settings.token
        ? "the token in use was rejected or has no access to it"
        : "no token was sent: set HF_TOKEN (or pass `token`)";
      return new HubError(
        "unauthorized",
        `Access denied (HTTP ${status}) to ${where} on ${settings.endpoint}: the repo is gated ` +
          `or private (or does not exist); accept its terms on the hub and use a token with ` +
          `access (${tokenHint}).`,
        status,
        { cause: err },
      );
    }
    if (status === 404) {
      const detail = err.message.split(". URL:")[0];
      return new HubError(
        "not_found",
        `Not found on ${settings.endpoint}: ${where} (${detail}).`,
        status,
        { cause: err },
      );
    }
    return new HubError(
      "protocol",
      `The hub at ${settings.endpoint} answered HTTP ${status} for ${where}: ${err.message}`,
      status,
      { cause: err },
    );
  }
  if (err instanceof TypeError && /fetch|connect|network|dns|sending request/i.test(err.message)) {
    return unreachableError(settings, ctx, err);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new HubError("protocol", `Unexpected hub failure for ${where}: ${msg}`, undefined, {
    cause: err,
  });
}

/** A repo path with each segment percent-encoded for a URL (`a b/c#d` → `a%20b/c%23d`). */
export function encodeRepoPath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** `<endpoint>/[datasets/]<repo>/resolve/<revision>/<path>`, every part encoded. */
export function resolveUrl(settings: HubSettings, ctx: RequestContext, revision: string): string {
  const prefix = ctx.repoType === "model" ? "" : `${ctx.repoType}s/`;
  return `${settings.endpoint}/${prefix}${ctx.repoId}/resolve/${encodeURIComponent(revision)}/` +
    encodeRepoPath(ctx.path ?? "");
}

/** Reads at most `limit` bytes of a body and drops the rest (error bodies can be anything). */
async function readCapped(resp: Response, limit = 65536): Promise<string> {
  if (!resp.body) return "";
  const reader = resp.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return new TextDecoder().decode(all.subarray(0, Math.min(n, limit)));
}

/**
 * A failed answer as `@huggingface/hub`'s `HubApiError` (message from the hub's JSON `error`
 * when there is one), so that {@link toHubError} maps it like the package's own failures.
 */
export async function apiErrorOf(resp: Response, url: string): Promise<HubApiError> {
  const text = await readCapped(resp);
  let message = `Api error with status ${resp.status}`;
  try {
    const j = JSON.parse(text);
    if (typeof j?.error === "string") message = j.error;
  } catch {
    // not JSON: keep the generic message
  }
  return new HubApiError(url, resp.status, undefined, `${message}. URL: ${url}`);
}

/** What a probe of a file tells: where to download it, its blob name and its size. */
export interface ProbedFile {
  /** URL to download from (the resolve URL; redirects are followed by the download). */
  url: string;
  /** Blob name: the validated ETag, 40 hex (git blob id) or 64 hex (LFS sha256). */
  etag: string;
  /** Declared size in bytes (`X-Linked-Size`, else the total of `Content-Range`). */
  size: number;
}

/**
 * Asks the hub for a file's ETag and size as `huggingface_hub` does: a 1-byte Range GET of its
 * resolve URL without following a redirect to another origin (same-origin redirects, e.g. a
 * renamed repo, are followed), reading `X-Linked-Etag`/`X-Linked-Size` (LFS, set on the hub's
 * redirect to its CDN), else `ETag` and the size from `Content-Range`/`Content-Length`. Every
 * header is checked before use: the ETag must be 40 or 64 hex digits
 * ({@link blobNameFromEtag}), the size a non-negative integer. `null` when the hub says the
 * file does not exist (`X-Error-Code: EntryNotFound`).
 *
 * @throws {HubError} `protocol` naming the URL for a bad ETag, size or redirect; HTTP failures
 * mapped by {@link toHubError}; `timeout`/`unreachable` from {@link makeHubFetch}.
 */
export async function probeFile(
  settings: HubSettings,
  ctx: RequestContext,
  revision: string,
): Promise<ProbedFile | null> {
  const fetchFn = makeHubFetch(settings, ctx);
  const origin = new URL(settings.endpoint).origin;
  let url = resolveUrl(settings, ctx, revision);
  for (let hop = 0; hop <= 10; hop++) {
    const resp = await fetchFn(url, {
      headers: { range: "bytes=0-0", "accept-encoding": "identity" },
      redirect: "manual",
    });
    if (resp.status === 404 && resp.headers.get("x-error-code") === "EntryNotFound") {
      await resp.body?.cancel();
      return null;
    }
    const redirect = resp.status >= 300 && resp.status < 400;
    if (!resp.ok && !redirect) throw toHubError(await apiErrorOf(resp, url), settings, ctx);
    await resp.body?.cancel();
    let downloadUrl = url;
    if (redirect) {
      const location = resp.headers.get("location");
      let next: URL;
      try {
        next = new URL(location ?? "", url);
        if (location === null || !/^https?:$/.test(next.protocol)) throw new Error();
      } catch {
        throw new HubError(
          "protocol",
          `the hub redirected ${url} (HTTP ${resp.status}) to ${JSON.stringify(location)}: ` +
            `expected an http(s) Location`,
          resp.status,
        );
      }
      if (next.origin === origin) {
        url = next.href;
        continue;
      }
      downloadUrl = next.href;
    }
    const etag = blobNameFromEtag(
      resp.headers.get("x-linked-etag") ?? resp.headers.get("etag"),
      url,
    );
    const linked = resp.headers.get("x-linked-size");
    const range = resp.headers.get("content-range");
    let sizeText: string | undefined;
    if (linked !== null) sizeText = linked.trim();
    else if (redirect) sizeText = undefined;
    else if (range !== null) sizeText = /^bytes\s+(?:\d+-\d+|\*)\/(\d+)$/.exec(range.trim())?.[1];
    else if (resp.status === 200) sizeText = resp.headers.get("content-length")?.trim();
    const size = sizeText !== undefined && /^\d{1,16}$/.test(sizeText) ? Number(sizeText) : NaN;
    if (!Number.isSafeInteger(size)) {
      throw new HubError(
        "protocol",
        `the hub gave no usable size for ${url} (X-Linked-Size ${JSON.stringify(linked)}, ` +
          `Content-Range ${JSON.stringify(range)}): expected a non-negative integer`,
        resp.status,
      );
    }
    return { url: downloadUrl, etag, size };
  }
  throw new HubError("protocol", `more than 10 redirects on the hub starting from ${url}`);
}
