/**
 * The HTTP side of W&B logging: authenticated JSON posts with a time limit on each request
 * (body included), bounded retries with exponential backoff, a size cap on what the server
 * sends back, and the `upsertBucket` mutation that creates (or continues) a run. The fields of
 * the mutation are those the Python SDK's `internal_api.upsert_run` sends and reads.
 * Nothing here throws for network trouble: every call resolves to a {@link PostResult}.
 * @module
 */

/** The outcome of one post (after its retries). */
export interface PostResult {
  ok: boolean;
  /** HTTP status; 0 when no answer came (network error, time-out, closed). */
  status: number;
  /** Whether trying again may help (5xx, 429, 409, network errors, time-outs). */
  retry: boolean;
  /** What went wrong, for a warning. */
  error: string;
  /** The answer's text (up to 1 MiB) when it was read. */
  body?: string;
}

/** Options of {@link WandbApi}. */
export interface WandbApiOptions {
  /** The W&B API key (sent as basic auth `api:<key>`). */
  apiKey: string;
  /** The fetch to use. */
  fetch: typeof fetch;
  /** Time limit of one request, body included. */
  timeoutMs: number;
  /** First retry delay, doubled each retry. */
  retryBaseMs: number;
  /** Aborts every request and retry wait (the sink's close deadline). */
  signal: AbortSignal;
}

/** The run fields of an `upsertBucket` answer. */
export interface Bucket {
  /** The run id. */
  name?: string;
  project?: string;
  entity?: string;
  /** False when the run already existed. */
  inserted?: boolean;
  /** History lines the run already has (for an existing run). */
  historyLineCount?: number;
}

/** Variables of {@link UPSERT_BUCKET}. */
export interface UpsertVariables {
  /** The run id. */
  name: string;
  project: string;
  /** null: the API key's default entity. */
  entity: string | null;
  displayName: string | null;
  /** The config as a JSON string of `{key: {desc, value}}`. */
  config: string;
  host: string | null;
}

/** The mutation that creates or updates a run (a subset of the SDK's `upsert_run`). */
export const UPSERT_BUCKET = `mutation UpsertBucket($id: String, $name: String, $project: String,
  $entity: String, $displayName: String, $config: JSONString, $host: String) {
  upsertBucket(input: {id: $id, name: $name, modelName: $project, entityName: $entity,
    displayName: $displayName, config: $config, host: $host}) {
    bucket { id name displayName historyLineCount project { id name entity { id name } } }
    inserted
  }
}`;

const MAX_RESPONSE_BYTES = 1 << 20;
/** Statuses the SDK does not retry (a retry cannot help). */
const NO_RETRY = new Set([400, 401, 403, 404, 422]);

/** Posts to W&B (see the module doc). */
export class WandbApi {
  readonly #o: WandbApiOptions;
  readonly #auth: string;

  /** Keeps the options; sends nothing. */
  constructor(options: WandbApiOptions) {
    this.#o = options;
    this.#auth = `Basic ${btoa(`api:${options.apiKey}`)}`;
  }

  /** Creates or continues the run; `{error}` when that failed. */
  async upsertRun(
    baseUrl: string,
    vars: UpsertVariables,
    retries: number,
  ): Promise<Bucket | { error: string }> {
    const body = JSON.stringify({ query: UPSERT_BUCKET, variables: { id: null, ...vars } });
    const r = await this.postRetrying(`${baseUrl}/graphql`, body, retries, true);
    return r.ok ? parseBucket(r.body ?? "") : { error: r.error };
  }

  /** {@link WandbApi.post}, retried up to `retries` times with exponential backoff. */
  async postRetrying(
    url: string,
    body: string,
    retries: number,
    read = false,
  ): Promise<PostResult> {
    let r = await this.post(url, body, read);
    for (let attempt = 0; !r.ok && r.retry && attempt < retries; attempt++) {
      const delay = this.#o.retryBaseMs * 2 ** attempt * (1 + 0.25 * Math.random());
      if (!(await sleep(delay, this.#o.signal))) break;
      r = await this.post(url, body, read);
    }
    return r;
  }

  /** One JSON post; the answer is read when `read` (or on an error), else discarded. */
  async post(url: string, body: string, read = false): Promise<PostResult> {
    const closed = this.#o.signal;
    if (closed.aborted) return { ok: false, status: 0, retry: false, error: "closed" };
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#o.timeoutMs);
    try {
      const res = await this.#o.fetch(url, {
        method: "POST",
        headers: {
          "authorization": this.#auth,
          "content-type": "application/json",
          "user-agent": "saeflow",
        },
        body,
        signal: AbortSignal.any([timeout.signal, closed]),
      });
      let text = "";
      if (read || !res.ok) text = await readCapped(res);
      else await res.body?.cancel();
      if (res.ok) return { ok: true, status: res.status, retry: false, error: "", body: text };
      return {
        ok: false,
        status: res.status,
        retry: !NO_RETRY.has(res.status),
        error: `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`,
      };
    } catch (e) {
      const timedOut = timeout.signal.aborted && !closed.aborted;
      return {
        ok: false,
        status: 0,
        retry: !closed.aborted,
        error: timedOut
          ? `no answer within ${this.#o.timeoutMs} ms`
          : e instanceof Error
          ? e.message
          : String(e),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Reads a response body up to 1 MiB (the rest is cancelled). */
async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(Math.min(size, MAX_RESPONSE_BYTES));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, all.length - at);
    all.set(part, at);
    at += part.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * The run fields of an `upsertBucket` answer, checked (a hostile or broken server's answer is
 * validated field by field); `{error}` when it holds GraphQL errors or no bucket.
 *
 * @example
 * ```ts
 * import { parseBucket } from "./wandb_api.ts";
 * const b = parseBucket('{"data":{"upsertBucket":{"inserted":true,"bucket":{"name":"r1",' +
 *   '"project":{"name":"p","entity":{"name":"me"}}}}}}');
 * if (!("name" in b) || b.entity !== "me" || b.inserted !== true) throw new Error();
 * if (!("error" in parseBucket('{"errors":[{"message":"denied"}]}'))) throw new Error();
 * ```
 */
export function parseBucket(text: string): Bucket | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: "the server's answer is not JSON" };
  }
  const obj = (v: unknown) =>
    typeof v === "object" && v !== null ? v as Record<string, unknown> : undefined;
  const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
  const root = obj(json);
  const errors = root?.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    const msg = str(obj(errors[0])?.message) ?? "unknown error";
    return { error: `GraphQL error: ${msg.slice(0, 200)}` };
  }
  const upsert = obj(obj(root?.data)?.upsertBucket);
  const bucket = obj(upsert?.bucket);
  if (!bucket) return { error: "the answer has no data.upsertBucket.bucket" };
  const project = obj(bucket.project);
  const lines = bucket.historyLineCount;
  return {
    name: str(bucket.name),
    project: str(project?.name),
    entity: str(obj(project?.entity)?.name),
    inserted: typeof upsert?.inserted === "boolean" ? upsert.inserted : undefined,
    historyLineCount: Number.isSafeInteger(lines) && (lines as number) >= 0
      ? lines as number
      : undefined,
  };
}

/** Waits `ms`; resolves false when `signal` aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort);
  });
}
