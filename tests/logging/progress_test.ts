// Progress output for a scripted event sequence with a fake clock: the exact text on a fake
// TTY (one line redrawn with "\r\x1b[2K", at most every 100 ms, cut to the terminal width,
// lines that stay printed above it) and on a plain writer (lines only, no carriage returns).

import { type ProgressOptions, ProgressSink } from "../../logging/progress.ts";
import type { MetricsEvent } from "../../logging/types.ts";
import { assert, assertEquals } from "../assert.ts";

const CLEAR = "\r\x1b[2K";

/** [time in ms, event] */
const SCRIPT: [number, MetricsEvent][] = [
  [0, {
    type: "start",
    runName: "demo",
    totalTokens: 20480,
    config: {},
    saes: [{
      id: "sae0",
      hookName: "blocks.0.hook_mlp_out",
      architecture: "standard",
      dIn: 128,
      dSae: 512,
    }],
    memory: { buffer: 64 * 2 ** 20 },
  }],
  [1000, { type: "step", sae: "sae0", step: 0, tokens: 4096 }],
  [1050, { type: "step", sae: "sae0", step: 1, tokens: 8192 }],
  [1050, {
    type: "log",
    sae: "sae0",
    step: 1,
    tokens: 8192,
    values: {
      "losses/mse_loss": 0.25,
      "metrics/l0": 12.5,
      "metrics/explained_variance": 0.875,
      "sparsity/dead_features": 3,
      "plots/feature_density_line_chart": [-10, -2],
    },
  }],
  [2000, { type: "step", sae: "sae0", step: 2, tokens: 12288 }],
  [2000, {
    type: "eval",
    sae: "sae0",
    step: 2,
    tokens: 12288,
    values: { "model_performance_preservation/ce_loss_score": 0.95 },
  }],
  [2500, { type: "checkpoint", name: "12288", path: "/ck/12288", tokens: 12288 }],
  [13000, { type: "step", sae: "sae0", step: 3, tokens: 16384 }],
  [14000, { type: "end", tokens: 20480, values: { sae0: { "metrics/l0": 11 } } }],
];

function run(options: ProgressOptions, script = SCRIPT, close = false) {
  const writes: string[] = [];
  let t = 0;
  const sink = new ProgressSink({ write: (s) => writes.push(s), now: () => t, ...options });
  for (const [time, event] of script) {
    t = time;
    sink.write(event);
  }
  if (close) sink.close({ exitCode: 1 });
  return writes;
}

const HEADER = [
  "run demo: 20.5k tokens, 1 SAE\n",
  "  sae0: standard 128->512 at blocks.0.hook_mlp_out\n",
  "  memory: buffer 64.0 MiB\n",
];
const METRICS = "mse 0.25 L0 12.5 EV 0.875 dead 3";
// rate: 4096 tok/s after 1 s; then 0.3·8192 + 0.7·4096 = 5324.8; then 0.3·372.36 + 0.7·5324.8
const BAR_2 =
  `[############--------] 60.0% 12.3k/20.5k tok | step 2 | 5.32k tok/s | ETA 2s | ${METRICS}`;

Deno.test("progress on a TTY: the exact redraws and kept lines of a scripted run", () => {
  const writes = run({ isTTY: true, color: false, columns: 200 });
  assertEquals(writes, [
    ...HEADER,
    `${CLEAR}[####----------------] 20.0% 4.10k/20.5k tok | step 0 | 4.10k tok/s | ETA 4s`,
    // 1050: step and log are within 100 ms of the last redraw: nothing drawn
    `${CLEAR}${BAR_2}`,
    `${CLEAR}eval step 2: model_performance_preservation/ce_loss_score 0.95\n${BAR_2}`,
    `${CLEAR}checkpoint 12288 at 12.3k tokens: /ck/12288\n${BAR_2}`,
    `${CLEAR}[################----] 80.0% 16.4k/20.5k tok | step 3 | 3.84k tok/s | ETA 1s | ${METRICS}`,
    `${CLEAR}done: 20.5k tokens in 14s (1.46k tok/s) | mse 0.25 L0 11 EV 0.875 dead 3\n`,
  ]);
});

Deno.test("progress when not a TTY: plain lines, no carriage return, no escape codes", () => {
  const writes = run({ isTTY: false });
  assertEquals(writes, [
    ...HEADER,
    // the step events before 10 s print nothing; the log event prints its line
    `40.0% 8.19k/20.5k tok | step 1 | 4.10k tok/s | ETA 3s | ${METRICS}\n`,
    "eval step 2: model_performance_preservation/ce_loss_score 0.95\n",
    "checkpoint 12288 at 12.3k tokens: /ck/12288\n",
    // 10.5 s after the last line: a progress line
    `80.0% 16.4k/20.5k tok | step 3 | 3.84k tok/s | ETA 1s | ${METRICS}\n`,
    "done: 20.5k tokens in 14s (1.46k tok/s) | mse 0.25 L0 11 EV 0.875 dead 3\n",
  ]);
  assert(writes.every((w) => !w.includes("\r") && !w.includes("\x1b")));
});

Deno.test("progress when not a TTY: a log dict without a shown metric (sparsity window) adds no line", () => {
  const sparsity: [number, MetricsEvent] = [1060, {
    type: "log",
    sae: "sae0",
    step: 1,
    tokens: 8192,
    values: { "metrics/mean_log10_feature_sparsity": -3, "sparsity/below_1e-5": 0 },
  }];
  const script = [...SCRIPT];
  script.splice(script.findIndex(([t]) => t > 1050), 0, sparsity);
  assertEquals(run({ isTTY: false }, script), run({ isTTY: false }));
});

Deno.test("progress on a TTY: at most one redraw per 100 ms, one line each, cut to the width", () => {
  const script: [number, MetricsEvent][] = [[0, SCRIPT[0][1]]];
  for (let i = 0; i < 50; i++) {
    script.push([1000 + 10 * i, { type: "step", sae: "sae0", step: i, tokens: (i + 1) * 400 }]);
    script.push([1000 + 10 * i + 5, {
      type: "log",
      sae: "sae0",
      step: i,
      tokens: (i + 1) * 400,
      values: { "losses/mse_loss": 1 / (i + 1), "metrics/l0": i },
    }]);
  }
  const writes = run({ isTTY: true, color: false, columns: 40 }, script).slice(HEADER.length);
  assertEquals(writes.length, 5, "redraws at 1000, 1100, 1200, 1300, 1400 ms");
  for (const w of writes) {
    assert(w.startsWith(CLEAR) && !w.includes("\n"), JSON.stringify(w));
    assert(w.length - CLEAR.length <= 39, `longer than the terminal: ${JSON.stringify(w)}`);
  }
});

Deno.test("progress colour: green bar on a TTY; none with NO_COLOR or when not a TTY", () => {
  const green = run({ isTTY: true, columns: 200, env: () => undefined });
  assert(green.some((w) => w.includes("[\x1b[32m####\x1b[39m----")), JSON.stringify(green));
  const noColor = run({
    isTTY: true,
    columns: 200,
    env: (n) => (n === "NO_COLOR" ? "1" : undefined),
  });
  assert(noColor.every((w) => !w.includes("\x1b[3")), "NO_COLOR honoured");
  const plain = run({ isTTY: false, color: true, env: () => undefined });
  assert(plain.every((w) => !w.includes("\x1b")), "plain output never colours");
});

Deno.test("progress with several SAEs: first SAE's metrics and the count; one end line each", () => {
  const saes = ["a", "b", "c"].map((id) => ({
    id,
    hookName: `blocks.0.hook_${id}`,
    architecture: "topk",
    dIn: 128,
    dSae: 1024,
  }));
  const script: [number, MetricsEvent][] = [
    [0, { type: "start", runName: "multi", totalTokens: 8192, config: {}, saes }],
    [1000, { type: "log", sae: "a", step: 0, tokens: 4096, values: { "metrics/l0": 32 } }],
    [1000, { type: "log", sae: "b", step: 0, tokens: 4096, values: { "metrics/l0": 16 } }],
    [1000, { type: "step", sae: "c", step: 0, tokens: 4096 }],
    [2000, { type: "end", tokens: 8192, values: { c: { "metrics/l0": 8 } } }],
  ];
  const tty = run({ isTTY: true, color: false, columns: 200 }, script);
  assertEquals(tty.slice(4), [
    // tokens done = the slowest SAE (b and c have reported no tokens yet)
    `${CLEAR}[--------------------] 0.0% 0/8.19k tok | step 0 | 0 tok/s | ETA ? | a: L0 32 (3 SAEs)`,
    `${CLEAR}done: 8.19k tokens in 2s (4.10k tok/s)\n  a: L0 32\n  b: L0 16\n  c: L0 8\n`,
  ]);
  const plain = run({ isTTY: false }, script);
  assertEquals(plain.slice(4), [
    "0.0% 0/8.19k tok | step 0 | 0 tok/s | ETA ? | a: L0 32\n",
    "0.0% 0/8.19k tok | step 0 | 0 tok/s | ETA ? | b: L0 16\n",
    "done: 8.19k tokens in 2s (4.10k tok/s)\n  a: L0 32\n  b: L0 16\n  c: L0 8\n",
  ]);
});

Deno.test("progress: a run that stops without an end event says so", () => {
  const writes = run({ isTTY: true, color: false, columns: 200 }, SCRIPT.slice(0, 2), true);
  assertEquals(writes.slice(3), [
    `${CLEAR}[####----------------] 20.0% 4.10k/20.5k tok | step 0 | 4.10k tok/s | ETA 4s`,
    `${CLEAR}[####----------------] 20.0% 4.10k/20.5k tok | step 0 | 4.10k tok/s | ETA 4s\n`,
    "stopped after 4.10k tokens (exit code 1)\n",
  ]);
});
