/**
 * A local mock of the W&B API for tests (never contact the real service). It listens on
 * `127.0.0.1:<free port>`, checks HTTP basic auth `api:<apiKey>` (401 otherwise), and records
 * every request:
 * - `POST /graphql`: answers `upsertBucket` with `{data: {upsertBucket: {bucket: {id, name,
 *   displayName, historyLineCount, project: {id, name, entity: {id, name}}}, inserted}}}`;
 * - `POST /files/<entity>/<project>/<run>/file_stream`: answers `{"exitcode": null, "limits": {}}`.
 * Each route can instead fail (HTTP 500), hang until the server closes,
 * answer GraphQL errors, or fail its first N requests.
 * @module
 */

/** How a route answers. */
export type MockBehaviour = "ok" | "fail" | "hang" | "errors" | { failFirst: number };

/** Options of {@link startMockWandb}. */
export interface MockWandbOptions {
  /** The key the server accepts (default `"mock-key"`). */
  apiKey?: string;
  /** The entity the server reports for a run created without one (default `"mock-entity"`). */
  entity?: string;
  graphql?: MockBehaviour;
  fileStream?: MockBehaviour;
  /** Answer `inserted: false` with this `historyLineCount` (an existing run). */
  existingHistoryLines?: number;
  /** Safety net: the server closes itself after this long (default 60 000 ms). */
  maxLifetimeMs?: number;
}

/** One recorded request. */
export interface MockRequest {
  route: "graphql" | "file_stream" | "other";
  path: string;
  /** Whether the basic auth matched. */
  authorized: boolean;
  /** The parsed JSON body (undefined if not JSON). */
  body: Record<string, unknown> | undefined;
  /** `performance.now()` when it arrived. */
  time: number;
  /** The HTTP status answered (0 while hanging / never answered). */
  status: number;
}

/** A running mock server. */
export interface MockWandb extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  apiKey: string;
  requests: MockRequest[];
  /** Requests of one route. */
  of(route: MockRequest["route"]): MockRequest[];
  close(): Promise<void>;
}

function behaves(b: MockBehaviour, n: number): "ok" | "fail" | "hang" | "errors" {
  return typeof b === "object" ? (n < b.failFirst ? "fail" : "ok") : b;
}

/** Starts the mock (see the module doc). */
export function startMockWandb(options: MockWandbOptions = {}): MockWandb {
  const apiKey = options.apiKey ?? "mock-key";
  const entity = options.entity ?? "mock-entity";
  const requests: MockRequest[] = [];
  const hanging = new Set<() => void>();
  let closing = false;
  const counts = { graphql: 0, file_stream: 0, other: 0 };

  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const route = path === "/graphql"
      ? "graphql"
      : /^\/files\/[^/]+\/[^/]+\/[^/]+\/file_stream$/.test(path)
      ? "file_stream"
      : "other";
    const text = await req.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    const authorized = req.method === "POST" &&
      req.headers.get("authorization") === `Basic ${btoa(`api:${apiKey}`)}`;
    const rec: MockRequest = { route, path, authorized, body, time: performance.now(), status: 0 };
    requests.push(rec);
    const answer = (status: number, json: unknown) => {
      rec.status = status;
      return Response.json(json, { status });
    };
    if (!authorized) return answer(401, { error: "unauthorized" });
    if (route === "other") return answer(404, { error: "not found" });
    const mode = behaves(
      route === "graphql" ? options.graphql ?? "ok" : options.fileStream ?? "ok",
      counts[route]++,
    );
    if (mode === "hang") {
      if (!closing) {
        await new Promise<void>((resolve) => {
          const done = () => {
            hanging.delete(done);
            resolve();
          };
          hanging.add(done);
        });
      }
      return answer(503, { error: "gave up hanging" });
    }
    if (mode === "fail") return answer(500, { error: "mock failure" });
    if (route === "file_stream") return answer(200, { exitcode: null, limits: {} });
    if (mode === "errors") return answer(200, { errors: [{ message: "permission denied" }] });
    const vars = (body?.variables ?? {}) as Record<string, unknown>;
    const existing = options.existingHistoryLines;
    return answer(200, {
      data: {
        upsertBucket: {
          bucket: {
            id: "UnVuOnYxOm1vY2s=",
            name: vars.name,
            displayName: vars.displayName ?? null,
            historyLineCount: existing ?? 0,
            project: {
              id: "UHJvamVjdA==",
              name: vars.project,
              entity: { id: "RW50aXR5", name: vars.entity ?? entity },
            },
          },
          inserted: existing === undefined,
        },
      },
    });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const close = async () => {
    if (closing) return;
    closing = true;
    clearTimeout(safety);
    for (const release of [...hanging]) release();
    await server.shutdown();
  };
  const safety = setTimeout(() => void close(), options.maxLifetimeMs ?? 60_000);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    apiKey,
    requests,
    of: (route) => requests.filter((r) => r.route === route),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Parses a history/summary line as Python's json.loads would (bare NaN / ±Infinity). */
export function parsePyJson(text: string): Record<string, unknown> {
  const marked = text.replace(
    /([:,\[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g,
    (_m, pre, tok) => `${pre}"\\u0000${tok}"`,
  );
  return JSON.parse(
    marked,
    (_k, v) => typeof v === "string" && v.startsWith("\u0000") ? Number(v.slice(1)) : v,
  );
}

/** The history lines the server received, in offset order (checks offsets are contiguous). */
export function receivedHistory(mock: MockWandb, firstOffset = 0): Record<string, unknown>[] {
  const lines: string[] = [];
  for (const r of mock.of("file_stream")) {
    if (r.status !== 200) continue;
    const files = r.body?.files as
      | Record<string, { offset: number; content: string[] }>
      | undefined;
    const h = files?.["wandb-history.jsonl"];
    if (!h) continue;
    if (h.offset !== firstOffset + lines.length) {
      throw new Error(`history offset ${h.offset}, expected ${firstOffset + lines.length}`);
    }
    lines.push(...h.content);
  }
  return lines.map(parsePyJson);
}

/** The last summary the server accepted. */
export function receivedSummary(mock: MockWandb): Record<string, unknown> | undefined {
  let last: string | undefined;
  for (const r of mock.of("file_stream")) {
    const files = r.body?.files as Record<string, { content: string[] }> | undefined;
    if (r.status === 200 && files?.["wandb-summary.json"]) {
      last = files["wandb-summary.json"].content.at(-1);
    }
  }
  return last === undefined ? undefined : parsePyJson(last);
}
