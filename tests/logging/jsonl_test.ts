// The JSONL metrics file: exact lines for a scripted run (SAELens keys as they are, non-finite
// numbers as strings), append/truncate, batching with flushes at checkpoints and on close, and
// an unwritable path refused when the sink is created.

import { JsonlSink } from "../../logging/jsonl.ts";
import { LoggingError, type MetricsEvent } from "../../logging/types.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const EVENTS: MetricsEvent[] = [
  { type: "start", runName: "r", totalTokens: 100, config: {}, saes: [] },
  { type: "step", sae: "s", step: 0, tokens: 10 },
  {
    type: "log",
    sae: "s",
    step: 0,
    tokens: 10,
    values: {
      "losses/mse_loss": NaN,
      "metrics/l0": 2.5,
      "metrics/explained_variance": -Infinity,
      "plots/feature_density_line_chart": [-10, Infinity, -1.5],
      "step": 999, // collides with a field name: left out
    },
  },
  { type: "eval", sae: "s", step: 0, tokens: 10, values: { "shrinkage/l2_ratio": 0.75 } },
  { type: "checkpoint", name: "50", path: "/ck/50", tokens: 50 },
  { type: "checkpoint", sae: "s", name: "60", path: "/ck/s/60", tokens: 60 },
  { type: "end", tokens: 100, values: { s: { "metrics/l0": 2 }, t: { "metrics/l0": 3 } } },
];

Deno.test("jsonl: exact lines for a scripted run; NaN and infinities as strings", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/sub/metrics.jsonl`;
    let t = 0;
    const sink = new JsonlSink({ path, now: () => t });
    for (const [i, e] of EVENTS.entries()) {
      t = 1_700_000_000_121 + i; // event i at …121 + i ms
      sink.write(e);
    }
    await sink.close({ exitCode: 0 });
    const lines = (await Deno.readTextFile(path)).split("\n");
    assertEquals(lines, [
      '{"event":"log","sae":"s","step":0,"tokens":10,"time":1700000000.123,"losses/mse_loss":"NaN",' +
      '"metrics/l0":2.5,"metrics/explained_variance":"-Infinity",' +
      '"plots/feature_density_line_chart":[-10,"Infinity",-1.5]}',
      '{"event":"eval","sae":"s","step":0,"tokens":10,"time":1700000000.124,"shrinkage/l2_ratio":0.75}',
      '{"event":"checkpoint","name":"50","path":"/ck/50","tokens":50,"time":1700000000.125}',
      '{"event":"checkpoint","sae":"s","name":"60","path":"/ck/s/60","tokens":60,"time":1700000000.126}',
      '{"event":"end","sae":"s","tokens":100,"time":1700000000.127,"metrics/l0":2}',
      '{"event":"end","sae":"t","tokens":100,"time":1700000000.127,"metrics/l0":3}',
      "",
    ]);
    // every line is standard JSON
    for (const line of lines.slice(0, -1)) JSON.parse(line);
  });
});

Deno.test("jsonl: the file exists at creation; lines are batched, flushed at checkpoints and close", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.jsonl`;
    const t = 0;
    const sink = new JsonlSink({ path, now: () => t, flushIntervalMs: 1000 });
    assertEquals(await Deno.readTextFile(path), "", "created empty before any event");
    sink.write(EVENTS[2]);
    sink.write(EVENTS[3]);
    assertEquals(await Deno.readTextFile(path), "", "batched");
    sink.write(EVENTS[4]);
    assertEquals((await Deno.readTextFile(path)).split("\n").length, 4, "checkpoint flushes");
    sink.write(EVENTS[3]);
    await sink.close({ exitCode: 1 });
    assertEquals((await Deno.readTextFile(path)).split("\n").length, 5, "close flushes");
    sink.write(EVENTS[3]); // after close: ignored, no throw
  });
});

Deno.test("jsonl: appends by default (a resumed run continues the file); append: false truncates", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.jsonl`;
    for (let i = 0; i < 2; i++) {
      const sink = new JsonlSink({ path, now: () => 0 });
      sink.write({ type: "log", sae: "s", step: i, tokens: i, values: {} });
      await sink.close({ exitCode: 0 });
    }
    assertEquals((await Deno.readTextFile(path)).trim().split("\n").length, 2);
    const fresh = new JsonlSink({ path, now: () => 0, append: false });
    await fresh.close({ exitCode: 0 });
    assertEquals(await Deno.readTextFile(path), "");
  });
});

Deno.test("jsonl: an unwritable path is a LoggingError at creation", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "x");
    const e = assertThrows(
      () => new JsonlSink({ path: `${dir}/file/metrics.jsonl` }),
      LoggingError,
      `${dir}/file/metrics.jsonl`,
    );
    assert(e.message.includes("expected a writable file path"), e.message);
    assertThrows(() => new JsonlSink({ path: dir }), LoggingError, "cannot be created");
  });
});

Deno.test("jsonl: large runs flush by size (no unbounded buffer)", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/m.jsonl`;
    const sink = new JsonlSink({ path, now: () => 0, flushBytes: 4096, flushIntervalMs: 1e9 });
    const hist = Array.from({ length: 1000 }, (_, i) => -i / 100);
    sink.write({
      type: "log",
      sae: "s",
      step: 0,
      tokens: 1,
      values: { "plots/feature_density_line_chart": hist },
    });
    const size = (await Deno.stat(path)).size;
    assert(size > 4096, `one histogram row is written at once (${size} bytes)`);
    await sink.close({ exitCode: 0 });
    const row = JSON.parse((await Deno.readTextFile(path)).trim());
    assertEquals(row["plots/feature_density_line_chart"].length, 1000);
  });
});
