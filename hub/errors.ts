/** Errors raised by the Hugging Face hub layer. @module */

import { SaeflowError } from "../util/errors.ts";

/**
 * Why a hub operation failed:
 * - `unreachable`: the endpoint could not be contacted (connection refused, DNS, reset);
 * - `timeout`: the endpoint accepted the request but did not answer, or stopped sending, within
 *   the timeout (`HF_HUB_ETAG_TIMEOUT` / `HF_HUB_DOWNLOAD_TIMEOUT`); like `unreachable`, a
 *   revision already in the cache is then served from it;
 * - `not_found`: the repo, revision or file does not exist;
 * - `unauthorized`: 401/403, a gated or private repo (or a missing/invalid token);
 * - `offline`: offline mode (or no network) and the file is not in the cache;
 * - `protocol`: the server answered something unexpected (bad header or ETag, truncated or
 *   oversized body, content not matching its sha256, no Range support).
 * - `invalid`: the caller passed something malformed (e.g. a path with "..");
 * - `io`: the local cache could not be read or written (disk full, permissions), naming the path.
 */
export type HubErrorKind =
  | "unreachable"
  | "timeout"
  | "not_found"
  | "unauthorized"
  | "offline"
  | "protocol"
  | "invalid"
  | "io";

/**
 * Error thrown by every `hub/` function. `kind` tells callers what went wrong without parsing the
 * message (e.g. a loader treats `not_found` for an optional file as "absent"); `status` is the
 * HTTP status when there was one.
 *
 * @example
 * ```ts
 * import { HubError } from "./errors.ts";
 * const e = new HubError("not_found", "gpt2@main has no file x.json", 404);
 * if (e.kind !== "not_found") throw new Error("unreachable");
 * ```
 */
export class HubError extends SaeflowError {
  /** What went wrong (see {@link HubErrorKind}). */
  readonly kind: HubErrorKind;
  /** HTTP status code, when the failure came from an HTTP answer. */
  readonly status?: number;

  /** Creates the error. */
  constructor(kind: HubErrorKind, message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * Error thrown by the tokenizer layer: unreadable tokenizer files, unknown special tokens, or
 * inputs that cannot be tokenized as asked (e.g. a BOS is wanted but the tokenizer has none).
 */
export class TokenizerError extends SaeflowError {}
