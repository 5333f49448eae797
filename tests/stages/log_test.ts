// The log stage: every event passes through unchanged while the progress, JSONL, W&B (local mock)
// and user sinks all get it; sinks that cannot start fail logStage() before any training; a
// failing user sink or W&B server never stops the stream; an aborted run closes every sink with
// a non-zero exit code, within the W&B sink's time limit.

import { logStage, openLogSinks } from "../../stages/log.ts";
import {
  type CloseInfo,
  LoggingError,
  type LogSink,
  type MetricsEvent,
} from "../../logging/types.ts";
import type { WandbOptions } from "../../logging/wandb.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { type MockWandb, receivedHistory, startMockWandb } from "../logging/mock_wandb.ts";

const START: MetricsEvent = {
  type: "start",
  runName: "stage-test",
  totalTokens: 40960,
  saes: [{
    id: "sae0",
    hookName: "blocks.0.hook_mlp_out",
    architecture: "standard",
    dIn: 128,
    dSae: 512,
  }],
  config: { lr: 3e-4, training_tokens: 40960 },
};

function runEvents(n: number): MetricsEvent[] {
  const events: MetricsEvent[] = [START];
  for (let step = 0; step < n; step++) {
    const tokens = (step + 1) * 4096;
    events.push({ type: "step", sae: "sae0", step, tokens });
    if (step % 2 === 1) {
      events.push({
        type: "log",
        sae: "sae0",
        step,
        tokens,
        values: { "losses/mse_loss": 1 / tokens, "metrics/l0": step },
      });
    }
  }
  events.push({ type: "checkpoint", name: "20480", path: "/tmp/ck/20480", tokens: 20480 });
  events.push({ type: "end", tokens: n * 4096 });
  return events;
}

class RecordingSink implements LogSink {
  readonly name: string;
  seen: MetricsEvent[] = [];
  closed: CloseInfo[] = [];
  constructor(name = "recorder", readonly failAt = -1) {
    this.name = name;
  }
  write(event: MetricsEvent): void {
    if (this.seen.length === this.failAt) throw new Error("sink exploded");
    this.seen.push(event);
  }
  close(info: CloseInfo): Promise<void> {
    this.closed.push(info);
    return Promise.resolve();
  }
}

function wandbOptions(mock: MockWandb, extra: WandbOptions = {}): WandbOptions {
  return {
    env: () => undefined,
    netrcPath: null,
    apiKey: mock.apiKey,
    baseUrl: mock.url,
    flushIntervalMs: 20,
    retryBaseMs: 5,
    ...extra,
  };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("log stage: events pass through unchanged; progress, JSONL, W&B and user sinks all get them", async () => {
  await using mock = startMockWandb();
  await withDir(async (dir) => {
    let out = "";
    const user = new RecordingSink();
    const events = runEvents(10);
    const stage = logStage({
      progress: { write: (s) => (out += s), isTTY: false },
      metricsFile: `${dir}/metrics.jsonl`,
      logger: { logToWandb: true, wandbProject: "p", wandbId: "stage1", runName: "ignored" },
      wandb: wandbOptions(mock, { info: () => {} }),
      sinks: [user],
    });
    const passed = await Array.fromAsync(ReadableStream.from(events).pipeThrough(stage));
    assertEquals(passed.length, events.length);
    assert(passed.every((e, i) => e === events[i]), "the same objects, in order");
    assertEquals(user.seen, events);
    assertEquals(user.closed, [{ exitCode: 0 }]);
    const jsonl = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(jsonl.map((r) => r.event), [
      "log",
      "log",
      "log",
      "log",
      "log",
      "checkpoint",
      "end",
    ]);
    assertEquals(jsonl.filter((r) => r.event === "log").map((r) => r.step), [1, 3, 5, 7, 9]);
    assertEquals(receivedHistory(mock).map((r) => r._step), [1, 3, 5, 7, 9]);
    assertEquals(mock.of("file_stream").at(-1)!.body, { complete: true, exitcode: 0 });
    const vars = mock.of("graphql")[0].body!.variables as Record<string, unknown>;
    assertEquals([vars.name, vars.displayName], ["stage1", "stage-test"]);
    assert(out.startsWith("run stage-test: 41.0k tokens, 1 SAE\n"), out);
    assert(out.includes("checkpoint 20480 at 20.5k tokens: /tmp/ck/20480\n"), out);
    assert(out.trimEnd().split("\n").at(-1)!.startsWith("done: 41.0k tokens in "), out);
    assert(!out.includes("\r"), "plain output");
  });
});

Deno.test("log stage: an unwritable metrics file or W&B without a key fails logStage() itself", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "");
    assertThrows(
      () => logStage({ progress: false, metricsFile: `${dir}/f/metrics.jsonl` }),
      LoggingError,
      "metrics file",
    );
    const path = `${dir}/m.jsonl`;
    assertThrows(
      () =>
        logStage({
          progress: false,
          metricsFile: path,
          logger: { logToWandb: true },
          wandb: { env: () => undefined, netrcPath: null },
        }),
      LoggingError,
      "WANDB_API_KEY",
    );
    await assertRejects(() => Deno.stat(path), Deno.errors.NotFound, undefined);
    // log_to_wandb false needs no key
    const opened = openLogSinks({
      progress: false,
      logger: { logToWandb: false },
      wandb: { env: () => undefined },
    });
    assertEquals(opened.wandb, null);
  });
});

Deno.test("log stage: a throwing sink is switched off with one warning; the stream goes on", async () => {
  let out = "";
  const bad = new RecordingSink("boom", 2);
  const good = new RecordingSink();
  const events = runEvents(4);
  const passed = await Array.fromAsync(
    ReadableStream.from(events).pipeThrough(
      logStage({ progress: { write: (s) => (out += s), isTTY: false }, sinks: [bad, good] }),
    ),
  );
  assertEquals(passed.length, events.length);
  assertEquals(good.seen.length, events.length);
  assertEquals(bad.seen.length, 2);
  assertEquals(bad.closed, [{ exitCode: 1 }], "closed when switched off, not again at the end");
  const warnings = out.split("\n").filter((l) => l.startsWith("warning:"));
  assertEquals(warnings, [
    "warning: log sink boom failed (sink exploded); it is off for the rest of the run",
  ]);
});

Deno.test("log stage: an aborted run closes every sink with exit code 1 (W&B completes with it)", async () => {
  await using mock = startMockWandb();
  let out = "";
  const user = new RecordingSink();
  const events = runEvents(3).slice(0, 5);
  let i = 0;
  const source = new ReadableStream<MetricsEvent>({
    pull(c) {
      if (i < events.length) c.enqueue(events[i++]);
      else c.error(new Error("device lost at step 3"));
    },
  });
  const stage = logStage({
    progress: { write: (s) => (out += s), isTTY: false },
    logger: { logToWandb: true, wandbProject: "p", wandbId: "aborted" },
    wandb: wandbOptions(mock, { info: () => {} }),
    sinks: [user],
  });
  await assertRejects(
    () => source.pipeThrough(stage).pipeTo(new WritableStream()),
    Error,
    "device lost",
  );
  assertEquals(user.closed, [{ exitCode: 1 }]);
  assertEquals(mock.of("file_stream").at(-1)!.body, { complete: true, exitcode: 1 });
  assert(out.includes("stopped after 12.3k tokens (exit code 1)"), out);
});

Deno.test("log stage: a hanging W&B server neither blocks events nor the end beyond closeTimeoutMs", async () => {
  await using mock = startMockWandb({ fileStream: "hang" });
  let out = "";
  const events = runEvents(20);
  const t0 = performance.now();
  const passed = await Array.fromAsync(
    ReadableStream.from(events).pipeThrough(logStage({
      progress: { write: (s) => (out += s), isTTY: false },
      logger: { logToWandb: true, wandbProject: "p", wandbId: "hang" },
      wandb: wandbOptions(mock, { requestTimeoutMs: 60_000, closeTimeoutMs: 500, info: () => {} }),
    })),
  );
  const ms = performance.now() - t0;
  assertEquals(passed.length, events.length);
  assert(ms < 500 + 2000, `the stage took ${ms} ms`);
  assert(out.includes("warning: W&B: gave up after 500 ms"), out);
  assert(out.includes("done: 81.9k tokens"), out);
});
