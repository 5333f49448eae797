// SAETrainer's loop: loss decrease (§8), schedulers driving Adam's lr, norm-scaling folding and
// bad input with the GPU TrainingSAE (every trainable architecture); firing bookkeeping
// against FiringStats and whole-run log dicts against a host re-implementation of the loop with
// the reference-backed stand-in SAE, where the host loop can match it exactly.

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { createTrainingConfig, type TrainingSAEConfig } from "../../../sae/config.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import {
  createTrainerConfig,
  type SAETrainerConfig,
} from "../../../sae/training/trainer_config.ts";
import { ADAM_SLOTS, adamScalars } from "../../../gpu/kernels/adam.ts";
import type { FiringStats } from "../../../sae/training/firing_stats.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertRejects } from "../../assert.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { RefTrainingSAE } from "./_ref_training_sae.ts";
import { createTestSAE, TRAINABLE_ARCHITECTURES } from "./_sae_impls.ts";
import type { TrainableSAE } from "../../../sae/training/trainer_types.ts";
import { hostLoop } from "./_host_loop.ts";

const gpu = await getGpu();

function saeCfg(
  fields: Partial<TrainingSAEConfig> & Record<string, unknown> = {},
): TrainingSAEConfig {
  return createTrainingConfig({ architecture: "standard", dIn: 6, dSae: 12, ...fields });
}

function batchesOf(seed: number, count: number, n: number, d: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => randomArray(rng, n * d, -1, 1));
}

const upload = (bs: Float32Array[], d: number) =>
  bs.map((b) => Tensor.from(b, [b.length / d, d], { gpu }));

async function hostParams(sae: TrainableSAE): Promise<Record<string, Float32Array>> {
  return Object.fromEntries(await sae.stateDict());
}

Deno.test("5 steps on the same batch strictly decrease the loss (every architecture)", async () => {
  for (const arch of TRAINABLE_ARCHITECTURES) {
    const cfg = saeCfg({
      architecture: arch,
      k: 3,
      l1Coefficient: 0.1,
      l0Coefficient: 0.1,
      ...(arch === "matryoshka_batchtopk" ? { matryoshkaWidths: [4, 12] } : {}),
    });
    const sae = createTestSAE(cfg, gpu, 1);
    const x = batchesOf(2, 1, 8, 6)[0];
    const losses: number[] = [];
    const trainer = new SAETrainer(
      createTrainerConfig({
        totalTrainingSamples: 40,
        trainBatchSizeSamples: 8,
        lr: 1e-2,
        logEvery: 1,
      }),
      sae,
      upload([x, x, x, x, x], 6),
      { logger: (_, d) => void losses.push(d["losses/overall_loss"] as number) },
    );
    await trainer.fit();
    assertEquals(losses.length, 5, arch);
    for (let i = 1; i < 5; i++) assert(losses[i] < losses[i - 1], `${arch}: ${losses}`);
    trainer.dispose();
    sae.dispose();
  }
});

Deno.test("firing bookkeeping matches FiringStats; firing features have 0 passes; 4 samples per step", async () => {
  const cfg = saeCfg({ l1Coefficient: 0.5 });
  const sae = RefTrainingSAE.create(cfg, { gpu, seed: 3 });
  // Features 0-5 get a very negative bias so they never fire (some dead, some alive).
  sae.loadStateDict(
    new Map([["b_enc", Float32Array.from({ length: 12 }, (_, i) => (i < 6 ? -10 : 0))]]),
  );
  const p0 = await hostParams(sae);
  const tcfg = createTrainerConfig({
    totalTrainingSamples: 20,
    trainBatchSizeSamples: 4,
    lr: 5e-2,
    deadFeatureWindow: 2,
    featureSamplingWindow: 100,
  });
  const batches = batchesOf(4, 5, 4, 6);
  const trainer = new SAETrainer(tcfg, sae, []);
  let out = null;
  for (const b of upload(batches, 6)) out = await trainer.step(b);
  const counts = await out!.firedCounts.toArray();
  const host = hostLoop(cfg, tcfg, p0, batches, [...sae.params.keys()]);
  const { passes, actFreq } = await trainer.gpuState.read();
  assert(counts.some((c) => c > 0) && counts.some((c) => c === 0), `degenerate case ${counts}`);
  for (let i = 0; i < 12; i++) assertEquals(passes[i] === 0, counts[i] > 0, `feature ${i}`);
  const stats: FiringStats = host.stats;
  assertEquals(trainer.nFracActiveSamples, 20);
  assertEquals(stats.nFracActiveSamples, 20);
  assertEquals([...passes], [...stats.nForwardPassesSinceFired]);
  assertEquals([...actFreq], [...stats.actFreqScores]);
  assertEquals([...await trainer.deadNeurons()], [...stats.deadMask(2)]);
  assertEquals([...await trainer.featureSparsity()], [...stats.featureSparsity()]);
  trainer.dispose();
  sae.dispose();
});

Deno.test("log dicts of logged steps equal a host re-implementation of SAELens' loop", async () => {
  for (const arch of ["standard", "jumprelu", "batchtopk"]) {
    const cfg = saeCfg({
      architecture: arch,
      k: 2,
      l1WarmUpSteps: 3,
      l0WarmUpSteps: 3,
      l0Coefficient: 0.3,
    });
    const sae = RefTrainingSAE.create(cfg, { gpu, seed: 5 });
    const p0 = await hostParams(sae);
    const tcfg = createTrainerConfig({
      totalTrainingSamples: 48,
      trainBatchSizeSamples: 8,
      lr: 2e-2,
      lrWarmUpSteps: 2,
      lrDecaySteps: 2,
      adamBeta1: 0.5,
      deadFeatureWindow: 1,
      logEvery: 2,
    });
    const batches = batchesOf(6, 6, 8, 6);
    const logs = new Map<number, Record<string, unknown>>();
    const trainer = new SAETrainer(tcfg, sae, upload(batches, 6), {
      logger: (step, d) => void logs.set(step, d),
    });
    await trainer.fit();
    const host = hostLoop(cfg, tcfg, p0, batches, [...sae.params.keys()]);
    assertEquals([...logs.keys()], [1, 3, 5], arch);
    if (arch === "batchtopk") {
      // The dead mask matters here (aux-k loss): make sure the case exercises it.
      const dead = [...host.logs.values()].map((d) => d["sparsity/dead_features"]);
      const aux = [...host.logs.values()].map((d) => d["losses/auxiliary_reconstruction_loss"]);
      assert(dead.some((v) => v > 0) && aux.some((v) => v > 0), `no dead features: ${dead} ${aux}`);
    }
    for (const [step, want] of host.logs) {
      const got = logs.get(step)!;
      assertEquals(Object.keys(got), Object.keys(want), `${arch} step ${step} keys`);
      for (const [k, w] of Object.entries(want)) {
        const g = got[k] as number;
        if (k.startsWith("details/") || k.startsWith("sparsity/")) {
          assertEquals(g, w, `${arch} ${k}`);
        } else assertClose(g, w, 2e-5, 2e-3, `${arch} step ${step} ${k}`);
      }
    }
    const final = await hostParams(sae);
    for (const k of Object.keys(host.params)) {
      assertAllClose(final[k], host.params[k], 1e-5, 1e-3, `${arch} ${k}`);
    }
    trainer.dispose();
    sae.dispose();
  }
});

Deno.test("schedulers drive Adam: the step size read back from the GPU params equals the scheduler's", async () => {
  const cfg = saeCfg();
  const sae = createTestSAE(cfg, gpu, 7);
  const tcfg: SAETrainerConfig = createTrainerConfig({
    totalTrainingSamples: 32,
    trainBatchSizeSamples: 4,
    lr: 0.1,
    lrWarmUpSteps: 2,
    lrDecaySteps: 4,
    lrSchedulerName: "cosineannealing",
    lrEnd: 0.01,
  });
  const batches = upload(batchesOf(8, 8, 4, 6), 6);
  const trainer = new SAETrainer(tcfg, sae, []);
  const expected = [0.05, 0.1];
  for (let t = 0; t < 8; t++) {
    const lr = trainer.lrScheduler.lr;
    if (t < 2) assertClose(lr, expected[t], 1e-12);
    await trainer.step(batches[t]);
    const words = new Float32Array(await gpu.read(trainer.gpuState.paramsBuffer, 0, 32));
    assertEquals(words[ADAM_SLOTS.lr], Math.fround(lr), `step ${t} lr`);
    assertEquals(words, adamScalars({ lr, step: t + 1 }), `step ${t} Adam scalars`);
  }
  assertClose(trainer.lrScheduler.lr, 0, 1e-15);
  trainer.dispose();
  sae.dispose();
});

Deno.test("expected_average_only_in: scaled training then folding equals training on s·x and folding", async () => {
  const d = 6;
  const est = batchesOf(9, 3, 5, d).map((b) => b.map((v) => v * 4));
  const train = batchesOf(10, 4, 5, d).map((b) => b.map((v) => v * 4));
  const tcfg = createTrainerConfig({
    totalTrainingSamples: 20,
    trainBatchSizeSamples: 5,
    lr: 1e-2,
    nBatchesForNormEstimate: 3,
  });
  // Run A: the trainer estimates s and scales on the GPU.
  const a = createTestSAE(saeCfg({ normalizeActivations: "expected_average_only_in" }), gpu, 11);
  const ta = new SAETrainer(tcfg, a, upload([...est, ...train], d));
  let seenScale: number | null = null;
  const origFit = ta.step.bind(ta);
  ta.step = (b) => {
    seenScale ??= ta.activationScaler.scalingFactor;
    return origFit(b);
  };
  await ta.fit();
  let normSum = 0;
  for (const b of est) {
    let s = 0;
    for (let r = 0; r < 5; r++) s += Math.hypot(...b.subarray(r * d, r * d + d));
    normSum += s / 5;
  }
  const s = Math.sqrt(d) / (normSum / 3);
  assertClose(seenScale!, s, 0, 1e-6);
  assertEquals(a.cfg.normalizeActivations, "none");
  assertEquals(ta.activationScaler.scalingFactor, null);
  // Run B: no normalisation, batches pre-scaled on the host with the same s, folded by hand.
  const b = createTestSAE(saeCfg(), gpu, 11);
  const sf = Math.fround(seenScale!);
  const tb = new SAETrainer(
    tcfg,
    b,
    upload(train.map((x) => x.map((v) => Math.fround(v * sf))), d),
  );
  await tb.fit();
  b.foldActivationNormScalingFactor(seenScale!);
  const pa = await hostParams(a), pb = await hostParams(b);
  for (const k of Object.keys(pa)) assertEquals([...pa[k]], [...pb[k]], k);
  for (const t of [ta, tb]) t.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("a batch with the wrong d_in fails naming the step and both shapes", async () => {
  const sae = createTestSAE(saeCfg(), gpu, 1);
  const good = upload(batchesOf(1, 2, 4, 6), 6);
  const bad = Tensor.from(new Float32Array(20), [4, 5], { gpu });
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 12, trainBatchSizeSamples: 4 }),
    sae,
    [...good, bad],
  );
  const err = await assertRejects(() => trainer.fit());
  assert(
    /training step 2/.test(err.message) && /\[4, 5\]/.test(err.message) &&
      /\[n, 6\]/.test(err.message),
    err.message,
  );
  bad.dispose();
  trainer.dispose();
  sae.dispose();
});

Deno.test("a provider that runs out names the step and sample counts", async () => {
  const sae = createTestSAE(saeCfg(), gpu, 1);
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 12, trainBatchSizeSamples: 4 }),
    sae,
    upload(batchesOf(1, 1, 4, 6), 6),
  );
  const err = await assertRejects(() => trainer.fit());
  assert(/ended after 1 steps \(4 samples\), expected 12/.test(err.message), err.message);
  trainer.dispose();
  sae.dispose();
});

Deno.test("evaluator runs every logEvery·evalEveryNLogs steps; a ReadableStream provider works", async () => {
  const sae = createTestSAE(saeCfg(), gpu, 1);
  const batches = upload(batchesOf(3, 6, 4, 6), 6);
  const stream = ReadableStream.from(batches);
  const seen: [number, string][] = [];
  const evalArgs: unknown[][] = [];
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 24,
      trainBatchSizeSamples: 4,
      logEvery: 1,
      evalEveryNLogs: 3,
    }),
    sae,
    stream,
    {
      logger: (s, d) => void seen.push([s, "metrics/eval" in d ? "eval" : "train"]),
      evaluator: (...args) => {
        evalArgs.push(args);
        return { "metrics/eval": 1 };
      },
    },
  );
  await trainer.fit();
  const evals = seen.filter(([, k]) => k === "eval").map(([s]) => s);
  assertEquals(evals, [2, 5]);
  assertEquals(seen.filter(([, k]) => k === "train").map(([s]) => s), [0, 1, 2, 3, 4, 5]);
  // The eval of step 2 comes after that step's train log (pending logs are drained first).
  assert(
    seen.findIndex((e) => e[0] === 2 && e[1] === "train") <
      seen.findIndex((e) => e[0] === 2 && e[1] === "eval"),
    "order",
  );
  assertEquals(evalArgs[0][0], sae);
  assertEquals(evalArgs[0][1], stream);
  assertEquals(evalArgs[0][2], trainer.activationScaler);
  trainer.dispose();
  sae.dispose();
});
