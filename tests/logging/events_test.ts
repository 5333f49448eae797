// Feeding the metrics stream: trainerLogger turns SAELens's train, sparsity-window and eval dicts
// into log/eval events (typed arrays as lists, nested eval groups flattened); metricsChannel
// streams what is emitted. And a real GPU SAETrainer (d_in 128, d_sae 512) wired through
// trainerLogger → metricsChannel → logStage writes its log dicts to the JSONL file.

import { flattenMetrics, metricsChannel, trainerLogger } from "../../logging/events.ts";
import type { MetricsEvent } from "../../logging/types.ts";
import { sparsityWindowLogDict, trainStepLogDict } from "../../sae/training/metrics.ts";
import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { SAETrainer } from "../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../sae/training/trainer_config.ts";
import { logStage } from "../../stages/log.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { createRng, randomArray } from "../gpu/_ops_helpers.ts";

Deno.test("trainerLogger: train dicts → log, sparsity windows → log (histogram list), evals → eval", () => {
  const events: MetricsEvent[] = [];
  const logger = trainerLogger({ sae: "sae0", emit: (e) => events.push(e) });
  const train = trainStepLogDict({
    stats: {
      explainedVariance: 0.9,
      explainedVarianceLegacy: 0.8,
      explainedVarianceLegacyStd: 0.1,
      l0: 31,
    },
    loss: 1.5,
    losses: { mse_loss: 1.25, l1_loss: 0.25 },
    lr: 3e-4,
    nTrainingSamples: 40960,
    coefficients: { l1: 5 },
    meanPassesSinceFired: 2,
    deadFeatures: 7,
  });
  logger(9, train);
  const sparsity = sparsityWindowLogDict(Float32Array.of(0, 0.5, 1e-7, 0.01));
  logger(19, { ...sparsity });
  logger(19, {
    model_performance_preservation: { ce_loss_score: 0.97, ce_loss_with_sae: 3.2 },
    shrinkage: { l2_ratio: 0.91 },
    token_stats: { note: "not a number" },
  });
  assertEquals(events.map((e) => e.type), ["log", "log", "eval"]);
  const [a, b, c] = events as Extract<MetricsEvent, { type: "log" | "eval" }>[];
  assertEquals([a.sae, a.step, a.tokens], ["sae0", 9, 40960]);
  assertEquals(a.values, train);
  assertEquals([b.step, b.tokens], [19, 40960], "a sparsity dict carries the last token count");
  const hist = b.values["plots/feature_density_line_chart"] as number[];
  assert(Array.isArray(hist) && hist.length === 4 && hist[0] === Math.fround(-10), String(hist));
  assertEquals(b.values["sparsity/below_1e-6"], 2);
  assertEquals(c.values, {
    "model_performance_preservation/ce_loss_score": 0.97,
    "model_performance_preservation/ce_loss_with_sae": 3.2,
    "shrinkage/l2_ratio": 0.91,
  });
});

Deno.test("trainerLogger: a tokens callback and an isEval override", () => {
  const events: MetricsEvent[] = [];
  const logger = trainerLogger({
    sae: "x",
    emit: (e) => events.push(e),
    tokens: () => 123,
    isEval: (d) => "eval/score" in d,
  });
  logger(0, { "eval/score": 1 });
  logger(1, { custom: 2 });
  assertEquals(events.map((e) => [e.type, (e as { tokens: number }).tokens]), [["eval", 123], [
    "log",
    123,
  ]]);
});

Deno.test("flattenMetrics: bigint, number lists, deep nesting bounded, junk dropped", () => {
  const deep: Record<string, unknown> = { v: 1 };
  let node = deep;
  for (let i = 0; i < 20; i++) node = (node.n = { v: i }) as Record<string, unknown>;
  const flat = flattenMetrics({ b: 3n, l: [1, 2], mixed: [1, "x"], f: () => 1, deep });
  assertEquals([flat.b, flat.l, flat.mixed, flat.f], [3, [1, 2], undefined, undefined]);
  assert(Object.keys(flat).every((k) => k.split("/").length <= 9), Object.keys(flat).join());
});

Deno.test("metricsChannel: events in order; emit after close ignored; error reaches the reader", async () => {
  const ch = metricsChannel();
  for (let i = 0; i < 3; i++) ch.emit({ type: "step", sae: "s", step: i, tokens: i });
  ch.close();
  ch.emit({ type: "end", tokens: 0 });
  const seen = await Array.fromAsync(ch.readable);
  assertEquals(seen.map((e) => (e as { step: number }).step), [0, 1, 2]);
  const bad = metricsChannel();
  bad.error(new Error("step 3 failed"));
  await assertRejects(() => Array.fromAsync(bad.readable), Error, "step 3 failed");
});

Deno.test("a GPU SAETrainer through trainerLogger → logStage writes its log dicts to JSONL", async () => {
  const gpu = await getGpu();
  const D_IN = 128, D_SAE = 512, N = 64, STEPS = 8;
  const sae = TrainingSAE.create(
    createTrainingConfig({ architecture: "standard", dIn: D_IN, dSae: D_SAE }),
    {
      gpu,
      seed: 1,
    },
  );
  const ch = metricsChannel();
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: STEPS * N,
      trainBatchSizeSamples: N,
      lr: 1e-3,
      logEvery: 2,
      featureSamplingWindow: 4,
      deadFeatureWindow: 2,
    }),
    sae,
    [],
    { logger: trainerLogger({ sae: "sae0", emit: ch.emit }) },
  );
  const dir = await Deno.makeTempDir();
  try {
    const out: MetricsEvent[] = [];
    const done = ch.readable
      .pipeThrough(logStage({ progress: false, metricsFile: `${dir}/metrics.jsonl` }))
      .pipeTo(new WritableStream({ write: (e) => void out.push(e) }));
    ch.emit({
      type: "start",
      runName: "gpu",
      totalTokens: STEPS * N,
      config: {},
      saes: [{
        id: "sae0",
        hookName: "blocks.0.hook_mlp_out",
        architecture: "standard",
        dIn: D_IN,
        dSae: D_SAE,
      }],
    });
    const rng = createRng(2);
    for (let t = 0; t < STEPS; t++) {
      await trainer.step(Tensor.from(randomArray(rng, N * D_IN, -1, 1), [N, D_IN], { gpu }));
      ch.emit({ type: "step", sae: "sae0", step: t, tokens: trainer.nTrainingSamples });
    }
    await trainer.flushLogs();
    ch.emit({ type: "end", tokens: trainer.nTrainingSamples });
    ch.close();
    await done;
    const rows = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    const train = rows.filter((r) => r.event === "log" && "losses/mse_loss" in r);
    assertEquals(train.map((r) => r.step), [1, 3, 5, 7], "every logEvery = 2 steps");
    assertEquals(train.map((r) => r.tokens), [128, 256, 384, 512]);
    for (const r of train) {
      assert(typeof r["metrics/l0"] === "number" && r["metrics/l0"] > 0, JSON.stringify(r));
      assertEquals(r["details/current_learning_rate"], 1e-3);
      assertEquals(r["details/n_training_samples"], r.tokens);
    }
    const windows = rows.filter((r) =>
      r.event === "log" && "plots/feature_density_line_chart" in r
    );
    assertEquals(windows.map((r) => r.step), [3, 7], "sparsity windows at steps 3 and 7");
    assertEquals(windows[0]["plots/feature_density_line_chart"].length, D_SAE);
    assertEquals(rows.at(-1).event, "end");
    assertEquals(out.filter((e) => e.type === "step").length, STEPS, "every event passed through");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
