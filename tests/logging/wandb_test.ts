// The W&B sink against a local mock of W&B's API (127.0.0.1 only): the run is created with the
// runner config, history rows arrive in order with _step/_runtime/_timestamp, the summary holds
// the latest values, the run is completed; and a failing, hanging or refusing server never
// blocks `write`, never throws, warns once, and `close` ends within its time limit.

import { type WandbOptions, WandbSink } from "../../logging/wandb.ts";
import type { LoggingSettings, MetricsEvent } from "../../logging/types.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  type MockWandb,
  parsePyJson,
  receivedHistory,
  receivedSummary,
  startMockWandb,
} from "./mock_wandb.ts";

const T0 = 1_700_000_000_000;
const START: MetricsEvent = {
  type: "start",
  runName: "topk-512-LR-0.0003-Tokens-1.000e+06",
  totalTokens: 1_000_000,
  saes: [{
    id: "sae0",
    hookName: "blocks.0.hook_mlp_out",
    architecture: "topk",
    dIn: 128,
    dSae: 512,
  }],
  config: {
    lr: 3e-4,
    context_size: 128,
    sae: { architecture: "topk", d_in: 128, k: 32 },
    lr_end: NaN,
  },
};

interface Harness {
  sink: WandbSink;
  warnings: string[];
  clock: { t: number };
}

function makeSink(
  mock: MockWandb,
  options: WandbOptions = {},
  settings: Partial<LoggingSettings> = {},
): Harness {
  const warnings: string[] = [];
  const clock = { t: T0 };
  const sink = new WandbSink(
    { logToWandb: true, wandbProject: "proj", wandbId: "run123", ...settings },
    {
      env: () => undefined,
      netrcPath: null,
      apiKey: mock.apiKey,
      baseUrl: mock.url,
      flushIntervalMs: 20,
      retryBaseMs: 5,
      warn: (m) => warnings.push(m),
      info: () => {},
      now: () => clock.t,
      ...options,
    },
  );
  return { sink, warnings, clock };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function log(step: number, values: Record<string, number | number[]>, sae = "sae0"): MetricsEvent {
  return { type: "log", sae, step, tokens: (step + 1) * 4096, values };
}

Deno.test("W&B: run created with the config; rows in order; summary; completion", async () => {
  await using mock = startMockWandb();
  const { sink, warnings, clock } = makeSink(mock);
  sink.write(START);
  clock.t += 1000;
  const hist = [-10, -10, -3, -2.5, -1, NaN];
  sink.write(
    log(9, { "losses/mse_loss": 0.5, "metrics/l0": 12, "plots/feature_density_line_chart": hist }),
  );
  sink.write({
    type: "eval",
    sae: "sae0",
    step: 9,
    tokens: 40960,
    values: { "shrinkage/l2_ratio": 0.9 },
  });
  await sleep(60);
  clock.t += 1000;
  sink.write(log(19, { "losses/mse_loss": 0.25, "metrics/l0": NaN }));
  await sleep(60);
  clock.t += 1000;
  sink.write(log(29, { "losses/mse_loss": Infinity, "metrics/l0": 10 }));
  sink.write({ type: "end", tokens: 122880, values: { sae0: { "metrics/l0": 11.5 } } });
  await sink.close({ exitCode: 0 });

  assert(mock.requests.every((r) => r.authorized), "every request carries api:<key>");
  const [gql, ...moreGql] = mock.of("graphql");
  assertEquals(moreGql.length, 0);
  const query = gql.body!.query as string;
  assert(query.includes("upsertBucket(input:") && query.includes("modelName: $project"), query);
  const vars = gql.body!.variables as Record<string, unknown>;
  assertEquals([vars.name, vars.project, vars.entity, vars.displayName], [
    "run123",
    "proj",
    null,
    START.runName,
  ]);
  const config = parsePyJson(vars.config as string);
  assertEquals(config.lr, { desc: null, value: 3e-4 });
  assertEquals(config.sae, { desc: null, value: { architecture: "topk", d_in: 128, k: 32 } });
  assert(Number.isNaN((config.lr_end as { value: number }).value), "NaN kept as Python writes it");

  const streams = mock.of("file_stream");
  assert(
    streams.every((r) => r.path === "/files/mock-entity/proj/run123/file_stream"),
    streams[0].path,
  );
  const rows = receivedHistory(mock);
  assertEquals(rows.map((r) => r._step), [9, 19, 29]);
  assertEquals(rows.map((r) => r._runtime), [1, 2, 3]);
  assertEquals(rows.map((r) => r._timestamp), [1_700_000_001, 1_700_000_002, 1_700_000_003]);
  assertEquals(rows[0]["losses/mse_loss"], 0.5);
  assertEquals(rows[0]["shrinkage/l2_ratio"], 0.9, "the eval of step 9 merges into its row");
  const h = rows[0]["plots/feature_density_line_chart"] as {
    _type: string;
    values: number[];
    bins: number[];
  };
  assertEquals([h._type, h.values.length, h.bins.length], ["histogram", 64, 65]);
  assertEquals([h.values[0], h.values[49], h.values[53], h.values[63]], [2, 1, 1, 1]);
  assert(Number.isNaN(rows[1]["metrics/l0"] as number), "NaN sent as NaN");
  assertEquals(rows[2]["losses/mse_loss"], Infinity);

  const summary = receivedSummary(mock)!;
  assertEquals(summary["metrics/l0"], 11.5, "end values win");
  assertEquals(summary["losses/mse_loss"], Infinity);
  assertEquals(summary["shrinkage/l2_ratio"], 0.9);
  assertEquals(summary._step, 29);
  assertEquals(streams.at(-1)!.body, { complete: true, exitcode: 0 });
  assertEquals(warnings, []);
  assertEquals(sink.runUrl, `${mock.url}/mock-entity/proj/runs/run123`);
});

Deno.test("W&B: writes never wait; rows are batched (few requests); all arrive once, in order", async () => {
  await using mock = startMockWandb();
  const { sink, warnings } = makeSink(mock, { flushIntervalMs: 150 });
  sink.write(START);
  const t0 = performance.now();
  for (let step = 0; step < 300; step++) {
    sink.write({ type: "step", sae: "sae0", step, tokens: (step + 1) * 4096 });
    sink.write(log(step, { "losses/mse_loss": 1 / (step + 1), "metrics/l0": step }));
  }
  const writeMs = performance.now() - t0;
  assert(writeMs < 250, `600 writes took ${writeMs} ms`);
  await sleep(400);
  await sink.close({ exitCode: 0 });
  const rows = receivedHistory(mock);
  assertEquals(rows.map((r) => r._step), Array.from({ length: 300 }, (_, i) => i));
  const posts = mock.of("file_stream").filter((r) => r.body?.files);
  assert(posts.length <= 4, `${posts.length} history posts for 300 rows`);
  assertEquals(warnings, []);
});

Deno.test("W&B: several SAEs: keys prefixed with the SAE id; same step merges; a lower step is dropped once", async () => {
  await using mock = startMockWandb();
  const { sink, warnings } = makeSink(mock);
  sink.write({
    ...START,
    saes: [
      { id: "l0", hookName: "blocks.0.hook_resid_post", architecture: "topk", dIn: 128, dSae: 512 },
      { id: "l1", hookName: "blocks.1.hook_resid_post", architecture: "topk", dIn: 128, dSae: 512 },
    ],
  } as MetricsEvent);
  sink.write(log(9, { "metrics/l0": 30 }, "l0"));
  sink.write(log(9, { "metrics/l0": 31 }, "l1"));
  sink.write(log(19, { "metrics/l0": 20 }, "l0"));
  sink.write(log(9, { "metrics/l0": 99 }, "l1"));
  sink.write(log(8, { "metrics/l0": 98 }, "l1"));
  sink.write(log(19, { "metrics/l0": 21 }, "l1"));
  await sink.close({ exitCode: 0 });
  const rows = receivedHistory(mock);
  assertEquals(rows.map((r) => [r._step, r["l0/metrics/l0"], r["l1/metrics/l0"]]), [[9, 30, 31], [
    19,
    20,
    21,
  ]]);
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("step 9 arrived after step 19"), warnings[0]);
});

Deno.test("W&B: an existing run id continues its history after historyLineCount", async () => {
  await using mock = startMockWandb({ existingHistoryLines: 5 });
  const { sink } = makeSink(mock);
  sink.write(START);
  sink.write(log(50, { "metrics/l0": 1 }));
  sink.write(log(60, { "metrics/l0": 2 }));
  await sink.close({ exitCode: 0 });
  assertEquals(receivedHistory(mock, 5).map((r) => r._step), [50, 60]);
});

Deno.test("W&B: a server that fails a few times loses nothing", async () => {
  await using mock = startMockWandb({ graphql: { failFirst: 1 }, fileStream: { failFirst: 2 } });
  const { sink, warnings } = makeSink(mock, { maxRetries: 3 });
  sink.write(START);
  for (let s = 0; s < 5; s++) sink.write(log(s, { "metrics/l0": s }));
  await sleep(100);
  for (let s = 5; s < 10; s++) sink.write(log(s, { "metrics/l0": s }));
  await sink.close({ exitCode: 0 });
  assertEquals(receivedHistory(mock).map((r) => r["metrics/l0"]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(mock.of("file_stream").at(-1)!.body, { complete: true, exitcode: 0 });
  assertEquals(warnings, []);
});

Deno.test("W&B: a refused API key: one warning, no file_stream, nothing thrown", async () => {
  await using mock = startMockWandb();
  const { sink, warnings } = makeSink(mock, { apiKey: "wrong-key" });
  sink.write(START);
  sink.write(log(0, { "metrics/l0": 1 }));
  await sleep(50);
  sink.write(log(1, { "metrics/l0": 1 }));
  await sink.close({ exitCode: 0 });
  assertEquals(mock.of("graphql").length, 1, "401 is not retried");
  assertEquals(mock.of("file_stream").length, 0);
  assertEquals(warnings.length, 1);
  assert(
    warnings[0].includes("could not create the run") && warnings[0].includes("401"),
    warnings[0],
  );
});

Deno.test("W&B: GraphQL errors and 500s: bounded retries, one warning, close returns", async () => {
  for (const graphql of ["errors", "fail"] as const) {
    await using mock = startMockWandb({ graphql });
    const { sink, warnings } = makeSink(mock, { maxRetries: 2 });
    sink.write(START);
    sink.write(log(0, { "metrics/l0": 1 }));
    await sink.close({ exitCode: 0 });
    assertEquals(mock.of("graphql").length, graphql === "fail" ? 3 : 1, graphql);
    assertEquals(warnings.length, 1, warnings.join("\n"));
    assert(
      warnings[0].includes(graphql === "fail" ? "HTTP 500" : "permission denied"),
      warnings[0],
    );
  }
});

Deno.test("W&B: file_stream always 500: training goes on, each problem warned once, close bounded", async () => {
  await using mock = startMockWandb({ fileStream: "fail" });
  const { sink, warnings } = makeSink(mock, { maxRetries: 1, closeTimeoutMs: 3000 });
  sink.write(START);
  for (let round = 0; round < 4; round++) {
    sink.write(log(round, { "metrics/l0": round }));
    await sleep(60);
  }
  const t0 = performance.now();
  await sink.close({ exitCode: 0 });
  assert(performance.now() - t0 < 3000, "close ended early: the server answers quickly");
  const sendWarnings = warnings.filter((w) => w.includes("could not send metrics"));
  assertEquals(sendWarnings.length, 1, warnings.join("\n"));
  assert(warnings.some((w) => w.includes("could not mark the run finished")), warnings.join("\n"));
  assert(mock.of("file_stream").length < 40, `${mock.of("file_stream").length} requests`);
});

Deno.test("W&B: a hanging server: writes return at once, close ends within closeTimeoutMs", async () => {
  for (const where of ["graphql", "fileStream"] as const) {
    await using mock = startMockWandb({ [where]: "hang" });
    const { sink, warnings } = makeSink(mock, {
      requestTimeoutMs: where === "graphql" ? 100 : 60_000,
      maxRetries: 1,
      closeTimeoutMs: 400,
      maxQueuedRows: 5,
    });
    sink.write(START);
    const t0 = performance.now();
    for (let s = 0; s < 20; s++) sink.write(log(s, { "metrics/l0": s }));
    assert(performance.now() - t0 < 100, "writes did not wait");
    await sleep(100);
    const t1 = performance.now();
    await sink.close({ exitCode: 0 });
    const closeMs = performance.now() - t1;
    assert(closeMs < 400 + 1500, `${where}: close took ${closeMs} ms`);
    assert(warnings.some((w) => w.includes("oldest are dropped")), warnings.join("\n"));
    if (where === "fileStream") {
      assert(warnings.some((w) => w.includes("gave up after 400 ms")), warnings.join("\n"));
    }
  }
});

Deno.test("W&B: a heartbeat when nothing else was posted for heartbeatMs", async () => {
  await using mock = startMockWandb();
  const { sink } = makeSink(mock, { heartbeatMs: 40, flushIntervalMs: 10, now: Date.now });
  sink.write(START);
  await sleep(250);
  await sink.close({ exitCode: 3 });
  const bodies = mock.of("file_stream").map((r) => r.body);
  assert(
    bodies.some((b) => JSON.stringify(b) === '{"complete":false,"failed":false}'),
    JSON.stringify(bodies),
  );
  assertEquals(bodies.at(-1), { complete: true, exitcode: 3 });
});

Deno.test("W&B: WANDB_MODE=disabled/offline sends nothing and needs no key", async () => {
  await using mock = startMockWandb();
  for (const mode of ["disabled", "offline"]) {
    const warnings: string[] = [];
    const sink = new WandbSink({ logToWandb: true }, {
      env: (n) => (n === "WANDB_MODE" ? mode : undefined),
      netrcPath: null,
      baseUrl: mock.url,
      warn: (m) => warnings.push(m),
    });
    sink.write(START);
    sink.write(log(0, { "metrics/l0": 1 }));
    await sink.close({ exitCode: 0 });
    assertEquals(warnings.length, mode === "offline" ? 1 : 0);
  }
  assertEquals(mock.requests.length, 0);
});
