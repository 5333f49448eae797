/**
 * The ONE place saeflow reads Hugging Face environment variables. Every resolver takes an explicit
 * override that beats the environment, so library callers (and tests) never depend on env state.
 *
 * Variables, with the precedence Python's `huggingface_hub` uses:
 * - endpoint: `HF_ENDPOINT`, default `https://huggingface.co`;
 * - token: `HF_TOKEN`, then `HUGGING_FACE_HUB_TOKEN`, then the file `HF_TOKEN_PATH`
 *   (default `$HF_HOME/token`);
 * - cache: `HF_HUB_CACHE`, then `HUGGINGFACE_HUB_CACHE`, then `$HF_HOME/hub`, where `HF_HOME`
 *   defaults to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`;
 * - offline: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set to 1/true/yes/on;
 * - timeouts, in seconds (default 10 each): `HF_HUB_ETAG_TIMEOUT` for metadata requests (the
 *   wait for an answer and for each chunk of it), `HF_HUB_DOWNLOAD_TIMEOUT` for file downloads
 *   (the wait for the answer and then for each chunk of the body: an idle timeout, so a large
 *   file on a slow but live connection never times out).
 * @module
 */

import { readEnv, userCacheDir } from "../util/env.ts";
import { join } from "../util/path.ts";
import { regularFileSizeSync } from "../util/files.ts";
import { HubError } from "./errors.ts";

/** Default hub endpoint (no trailing slash). */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/** Explicit settings; any field left undefined falls back to the environment. */
export interface HubOptions {
  /** Hub base URL, e.g. a mirror or a local mock (`http://127.0.0.1:PORT`). */
  endpoint?: string;
  /** Access token; `null` means "send no token even if the environment has one". */
  token?: string | null;
  /** Root of the hub cache (the folder holding `models--org--name/`). */
  cacheDir?: string;
  /** Offline mode: never touch the network, serve only from the cache. */
  offline?: boolean;
  /**
   * Seconds to wait for a metadata answer (revision lookup, file probe, listing, Range reads of a
   * header) and for each chunk of its body. Default `HF_HUB_ETAG_TIMEOUT`, else 10.
   */
  etagTimeout?: number;
  /**
   * Seconds to wait for a file download's answer and then for each chunk of its body (an idle
   * timeout). Default `HF_HUB_DOWNLOAD_TIMEOUT`, else 10.
   */
  downloadTimeout?: number;
}

/** Fully resolved settings. */
export interface HubSettings {
  /** Hub base URL without trailing slash. */
  endpoint: string;
  /** Token to send, if any. */
  token: string | undefined;
  /** Cache root. */
  cacheDir: string;
  /** True when the network must not be used. */
  offline: boolean;
  /** Metadata timeout in seconds (see {@link HubOptions.etagTimeout}). */
  etagTimeout: number;
  /** Download idle timeout in seconds (see {@link HubOptions.downloadTimeout}). */
  downloadTimeout: number;
}

/** huggingface_hub's default for both `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT`. */
export const DEFAULT_HUB_TIMEOUT_S = 10;

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function resolveHfHome(): string {
  return readEnv("HF_HOME") ?? join(userCacheDir(), "huggingface");
}

/**
 * The hub endpoint: `override`, else `HF_ENDPOINT`, else {@link DEFAULT_HF_ENDPOINT}.
 * Trailing slashes are removed. Anything but an http(s) URL is a `HubError` (`invalid`) naming
 * where it came from.
 *
 * @throws {HubError} `invalid` when it is not an http(s) URL (naming where it came from).
 *
 * @example
 * ```ts
 * import { resolveEndpoint } from "./env.ts";
 * if (resolveEndpoint("http://127.0.0.1:9/") !== "http://127.0.0.1:9") throw new Error();
 * ```
 */
export function resolveEndpoint(override?: string): string {
  const raw = override ?? readEnv("HF_ENDPOINT") ?? DEFAULT_HF_ENDPOINT;
  let ok = false;
  try {
    ok = typeof raw === "string" && /^https?:$/.test(new URL(raw).protocol);
  } catch {
    ok = false;
  }
  if (!ok) {
    const source = override !== undefined ? "the endpoint option" : "HF_ENDPOINT";
    throw new HubError(
      "invalid",
      `${source} is ${JSON.stringify(raw)}: expected an http(s) URL such as ` +
        `"${DEFAULT_HF_ENDPOINT}" or "http://127.0.0.1:8080"`,
    );
  }
  return raw.replace(/\/+$/, "");
}

/**
 * The access token: `override` (`null` = none), else `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`,
 * else the token file (`HF_TOKEN_PATH`, default `$HF_HOME/token`), else `undefined`.
 */
export function resolveToken(override?: string | null): string | undefined {
  if (override === null) return undefined;
  if (override !== undefined) return override.trim() || undefined;
  const fromEnv = readEnv("HF_TOKEN") ?? readEnv("HUGGING_FACE_HUB_TOKEN");
  if (fromEnv) return fromEnv.trim();
  const path = readEnv("HF_TOKEN_PATH") ?? join(resolveHfHome(), "token");
  try {
    // Only a regular file: a FIFO here would block the read forever.
    regularFileSizeSync(path, (m) => new Error(m), 1 << 20);
    return Deno.readTextFileSync(path).trim() || undefined;
  } catch {
    return undefined; // no token file (or not readable): anonymous access
  }
}

/** The cache root: `override`, else `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`. */
export function resolveCacheDir(override?: string): string {
  return override ?? readEnv("HF_HUB_CACHE") ?? readEnv("HUGGINGFACE_HUB_CACHE") ??
    join(resolveHfHome(), "hub");
}

/** Offline mode: `override`, else `HF_HUB_OFFLINE` / `TRANSFORMERS_OFFLINE` truthy. */
export function resolveOffline(override?: boolean): boolean {
  if (override !== undefined) return override;
  const v = (readEnv("HF_HUB_OFFLINE") ?? readEnv("TRANSFORMERS_OFFLINE"))?.trim().toUpperCase();
  return v === "1" || v === "TRUE" || v === "YES" || v === "ON";
}

/**
 * A timeout in seconds: `override`, else the variable `envName`, else
 * {@link DEFAULT_HUB_TIMEOUT_S}. Must be a positive finite number.
 *
 * @throws {HubError} `invalid` naming the option or variable when the value is not a positive
 * number of seconds.
 *
 * @example
 * ```ts
 * import { resolveTimeout } from "./env.ts";
 * if (resolveTimeout("HF_HUB_ETAG_TIMEOUT", 0.5) !== 0.5) throw new Error();
 * let threw = false;
 * try { resolveTimeout("HF_HUB_ETAG_TIMEOUT", -1); } catch { threw = true; }
 * if (!threw) throw new Error("a negative timeout must be refused");
 * ```
 */
export function resolveTimeout(
  envName: "HF_HUB_ETAG_TIMEOUT" | "HF_HUB_DOWNLOAD_TIMEOUT",
  override?: number,
): number {
  const option = envName === "HF_HUB_ETAG_TIMEOUT" ? "etagTimeout" : "downloadTimeout";
  if (override !== undefined) {
    if (typeof override !== "number" || !Number.isFinite(override) || override <= 0) {
      throw new HubError(
        "invalid",
        `hub option ${option} is ${String(override)}: expected a positive number of seconds`,
      );
    }
    return override;
  }
  const raw = readEnv(envName);
  if (raw === undefined) return DEFAULT_HUB_TIMEOUT_S;
  const v = Number(raw.trim());
  if (!Number.isFinite(v) || v <= 0) {
    throw new HubError(
      "invalid",
      `environment variable ${envName}=${JSON.stringify(raw)}: expected a positive number of ` +
        `seconds (default ${DEFAULT_HUB_TIMEOUT_S})`,
    );
  }
  return v;
}

/**
 * Resolves all settings at once (explicit options beat the environment).
 *
 * @example
 * ```ts
 * import { resolveHubSettings } from "./env.ts";
 * const s = resolveHubSettings({ endpoint: "http://127.0.0.1:1", cacheDir: "/tmp/c", token: null });
 * if (s.token !== undefined || s.cacheDir !== "/tmp/c") throw new Error();
 * ```
 */
export function resolveHubSettings(opts: HubOptions = {}): HubSettings {
  return {
    endpoint: resolveEndpoint(opts.endpoint),
    token: resolveToken(opts.token),
    cacheDir: resolveCacheDir(opts.cacheDir),
    offline: resolveOffline(opts.offline),
    etagTimeout: resolveTimeout("HF_HUB_ETAG_TIMEOUT", opts.etagTimeout),
    downloadTimeout: resolveTimeout("HF_HUB_DOWNLOAD_TIMEOUT", opts.downloadTimeout),
  };
}
