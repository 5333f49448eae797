/**
 * Network plumbing shared by the hub functions: a `fetch` that adds the token for the hub's own
 * origin and turns connection failures into one clear {@link HubError}, and the mapping of
 * `@huggingface/hub`'s `HubApiError` (HTTP status) to {@link HubError}.
 * @module
 */

import { HubApiError } from "@huggingface/hub";
import { HubError } from "./errors.ts";
import type { HubSettings } from "./env.ts";
import type { RepoType } from "./cache.ts";

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

/**
 * A `fetch` for `@huggingface/hub`: adds `Authorization: Bearer <token>` to requests for the
 * endpoint's origin only (never to a CDN it redirects to), and rethrows network failures as
 * {@link HubError} `unreachable`. (`@huggingface/hub` insists tokens start with `hf_`; adding
 * the header here accepts any token, as Python does.)
 */
export function makeHubFetch(settings: HubSettings, ctx: RequestContext): typeof fetch {
  const origin = new URL(settings.endpoint).origin;
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : {}));
    if (settings.token && new URL(url).origin === origin && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${settings.token}`);
    }
    headers.set("user-agent", "saeflow (deno; @huggingface/hub)");
    try {
      const resp = await fetch(input, { ...init, headers });
      if (headers.get("range") === "bytes=0-0") {
        // `fileDownloadInfo`'s size probe never reads its 1-byte body, which would leak the
        // connection's resource: buffer it here.
        const body = await resp.arrayBuffer();
        return new Response(resp.status === 204 ? null : body, {
          status: resp.status,
          statusText: resp.statusText,
          headers: resp.headers,
        });
      }
      return resp;
    } catch (err) {
      if (err instanceof HubError) throw err;
      throw unreachableError(settings, ctx, err);
    }
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
