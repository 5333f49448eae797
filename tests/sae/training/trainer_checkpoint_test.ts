// Checkpoints (§5.5, §8): thresholds and folder contents, no files without a path, scaler and
// trainer-state round trips, bit-for-bit resume, and NaN steps that must not reach a checkpoint.

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { readSafetensors } from "../../../io/safetensors.ts";
import { writeJsonAtomic } from "../../../io/atomic.ts";
import {
  createTrainingConfig,
  trainingConfigToDict,
  type TrainingSAEConfig,
} from "../../../sae/config.ts";
import { readCheckpointFolder } from "../../../sae/training/checkpoint.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import {
  createTrainerConfig,
  type SAETrainerConfig,
} from "../../../sae/training/trainer_config.ts";
import { NonFiniteStepError } from "../../../sae/training/trainer_log.ts";
import { Mulberry32 } from "../../../util/rng.ts";
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { createTestSAE, type TestSAE, TRAINABLE_ARCHITECTURES } from "./_sae_impls.ts";

const gpu = await getGpu();
const D_IN = 5, D_SAE = 10;

function saeCfg(fields: Record<string, unknown> = {}): TrainingSAEConfig {
  return createTrainingConfig({ architecture: "standard", dIn: D_IN, dSae: D_SAE, ...fields });
}

function hostBatches(seed: number, count: number, n: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => randomArray(rng, n * D_IN, -2, 2));
}

const upload = (bs: Float32Array[]) =>
  bs.map((b) => Tensor.from(b, [b.length / D_IN, D_IN], { gpu }));

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...await listTree(`${dir}/${e.name}`, `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

const FILES = [
  "activation_scaler.json",
  "cfg.json",
  "runner_cfg.json",
  "sae_weights.safetensors",
  "sparsity.safetensors",
  "trainer_state.json",
  "trainer_state.safetensors",
];

Deno.test("checkpoints: 100 tokens, batch 8, 2 checkpoints + final → folders 40, 72, final_104", async () => {
  const dir = await Deno.makeTempDir();
  const sae = createTestSAE(saeCfg(), gpu, 1);
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 100,
      trainBatchSizeSamples: 8,
      nCheckpoints: 2,
      checkpointPath: dir,
      saveFinalCheckpoint: true,
    }),
    sae,
    upload(hostBatches(2, 13, 8)),
    {
      saveCheckpointFn: (folder) => writeJsonAtomic(`${folder}/runner_cfg.json`, { runner: true }),
    },
  );
  assertEquals(trainer.checkpointThresholds, [34, 68]);
  await trainer.fit();
  const tree = await listTree(dir);
  assertEquals(tree, ["40", "72", "final_104"].flatMap((f) => FILES.map((n) => `${f}/${n}`)));
  for (const f of ["40", "72", "final_104"]) {
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/${f}/cfg.json`));
    assertEquals(cfg, JSON.parse(JSON.stringify(trainingConfigToDict(sae.cfg))));
    const sp = (await readSafetensors(`${dir}/${f}/sparsity.safetensors`)).tensors.get("sparsity")!;
    assertEquals([sp.dtype, sp.shape], ["F32", [D_SAE]]);
    assert(
      [...sp.data as Float32Array].every((v) => Number.isFinite(v) && v <= 0),
      "log10 sparsity ≤ 0",
    );
  }
  const w = (await readSafetensors(`${dir}/final_104/sae_weights.safetensors`)).tensors;
  assertEquals(w.get("W_enc")!.shape, [D_IN, D_SAE]);
  assertEquals([...w.get("W_dec")!.data as Float32Array], [
    ...await sae.params.get("W_dec")!.toArray(),
  ]);
  const state = JSON.parse(await Deno.readTextFile(`${dir}/final_104/trainer_state.json`));
  assertEquals([state.n_training_samples, state.n_training_steps, state.optimizer.step], [
    104,
    13,
    13,
  ]);
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("no checkpoint files (and no callback) when checkpointPath is null", async () => {
  const sae = createTestSAE(saeCfg(), gpu, 1);
  let called = 0;
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 40,
      trainBatchSizeSamples: 8,
      nCheckpoints: 3,
      checkpointPath: null,
      saveFinalCheckpoint: true,
    }),
    sae,
    upload(hostBatches(2, 5, 8)),
    { saveCheckpointFn: () => void called++ },
  );
  await trainer.fit();
  assertEquals(called, 0);
  assertEquals(trainer.checkpointThresholds, []); // still consumed at their steps
  trainer.dispose();
  sae.dispose();
});

/** Trains with checkpoints under `dir` (then disposes `sae`); returns final host params and Adam state. */
async function run(
  tcfg: SAETrainerConfig,
  sae: TestSAE,
  batches: Float32Array[],
  resumeFrom?: string,
  rng?: Mulberry32,
) {
  // A data side that draws from `rng` for every batch (like a shuffling buffer would).
  const provider = (async function* () {
    for (const t of upload(batches)) {
      rng?.nextUint32();
      yield t;
    }
  })();
  const trainer = resumeFrom
    ? await SAETrainer.resume(resumeFrom, tcfg, sae, provider, { rng })
    : new SAETrainer(tcfg, sae, provider, { rng });
  await trainer.fit();
  const params = Object.fromEntries(await sae.stateDict());
  const adam = await trainer.optimizer.state();
  trainer.dispose();
  sae.dispose();
  return { params, adam, trainer };
}

/** One row of the resume table: an architecture, its config fields and a parameter that must train. */
interface ResumeCase {
  arch: string;
  fields: Record<string, unknown>;
  /** A parameter or buffer whose value must differ between the initial SAE and the end. */
  moves: string;
}

const RESUME_CASES: ResumeCase[] = [
  {
    arch: "standard",
    fields: { normalizeActivations: "expected_average_only_in" },
    moves: "b_enc",
  },
  { arch: "gated", fields: { normalizeActivations: "expected_average_only_in" }, moves: "r_mag" },
  // Run-time normalisation: the aux gate re-encodes the un-normalised input.
  { arch: "gated", fields: { normalizeActivations: "layer_norm" }, moves: "b_gate" },
  // θ trained directly; a wide bandwidth so that every step moves it.
  { arch: "jumprelu", fields: { jumpreluBandwidth: 1, l0Coefficient: 0.5 }, moves: "threshold" },
  { arch: "topk", fields: { k: 2 }, moves: "b_enc" },
  { arch: "batchtopk", fields: { k: 2 }, moves: "topk_threshold" },
  {
    arch: "matryoshka_batchtopk",
    fields: { k: 2, matryoshkaWidths: [3, 6, D_SAE] },
    moves: "topk_threshold",
  },
  // The tied pursuit trains only W_dec and b_dec.
  {
    arch: "matching_pursuit",
    fields: { maxIterations: 4, decoderInitNorm: 1, normalizeActivations: "layer_norm" },
    moves: "W_dec",
  },
];

Deno.test("the resume table covers every trainable architecture", () => {
  assertEquals(
    [...new Set(RESUME_CASES.map((c) => c.arch))].sort(),
    [
      ...TRAINABLE_ARCHITECTURES,
    ].sort(),
  );
});

for (const { arch, fields, moves } of RESUME_CASES) {
  const norm = (fields.normalizeActivations as string | undefined) ?? "none";
  Deno.test(`resume (${arch}, ${norm}): 3 steps + checkpoint + resume + 3 steps == 6 straight steps, bit for bit`, async () => {
    const root = await Deno.makeTempDir();
    const cfg = () => saeCfg({ architecture: arch, l1WarmUpSteps: 4, l0WarmUpSteps: 4, ...fields });
    const tcfg = (path: string) =>
      createTrainerConfig({
        totalTrainingSamples: 48,
        trainBatchSizeSamples: 8,
        nCheckpoints: 2, // thresholds [16, 32]: checkpoints "24" (after 3 steps) and "40"
        checkpointPath: path,
        lr: 0.05,
        lrWarmUpSteps: 2,
        lrDecaySteps: 3,
        lrSchedulerName: "cosineannealing",
        adamBeta1: 0.5,
        adamBeta2: 0.9,
        deadFeatureWindow: 1,
        featureSamplingWindow: 4,
        nBatchesForNormEstimate: 2,
      });
    const scaled = norm === "expected_average_only_in"; // the trainer estimates a norm factor
    const est = scaled ? hostBatches(7, 2, 8) : [];
    const batches = hostBatches(8, 6, 8);
    const rngA = new Mulberry32(5);
    const saeA = createTestSAE(cfg(), gpu, 3);
    const initial = await saeA.stateDict();
    const a = await run(tcfg(`${root}/a`), saeA, [...est, ...batches], undefined, rngA);
    assert(
      [...a.params[moves]].some((v, i) => v !== initial.get(moves)![i]),
      `${arch}: ${moves} must change during training`,
    );
    assertEquals(
      await listTree(`${root}/a`),
      ["24", "40"].flatMap((f) =>
        FILES.filter((n) => n !== "runner_cfg.json").map((n) => `${f}/${n}`)
      ),
    );
    const ck = await readCheckpointFolder(`${root}/a/24`);
    assertEquals(ck.state.nTrainingSteps, 3);
    if (scaled) {
      assert(ck.scalingFactor !== null && ck.scalingFactor > 0, "scaler persisted");
    } else assertEquals(ck.scalingFactor, null);
    // Resume into a fresh SAE with a different init: everything must come from the checkpoint.
    const rngB = new Mulberry32(999);
    const b = await run(
      tcfg(`${root}/b`),
      createTestSAE(cfg(), gpu, 4),
      batches.slice(3),
      `${root}/a/24`,
      rngB,
    );
    assertEquals(rngB.getState(), rngA.getState(), "rng state restored at the checkpoint");
    for (const k of Object.keys(a.params)) {
      assertEquals([...b.params[k]], [...a.params[k]], `${arch} ${k}`);
    }
    for (const k of a.adam.expAvg.keys()) {
      assertEquals([...b.adam.expAvg.get(k)!], [...a.adam.expAvg.get(k)!], `exp_avg ${k}`);
      assertEquals([...b.adam.expAvgSq.get(k)!], [...a.adam.expAvgSq.get(k)!], `exp_avg_sq ${k}`);
    }
    // The resumed run's checkpoint "40" is byte-identical to the straight run's.
    assertEquals(
      await listTree(`${root}/b`),
      FILES.filter((n) => n !== "runner_cfg.json").map((n) => `40/${n}`),
    );
    for (const f of FILES.filter((n) => n !== "runner_cfg.json")) {
      const [x, y] = await Promise.all([
        Deno.readFile(`${root}/a/40/${f}`),
        Deno.readFile(`${root}/b/40/${f}`),
      ]);
      assertEquals(x, y, `checkpoint 40/${f}`);
    }
    await Deno.remove(root, { recursive: true });
  });
}

Deno.test("a NaN batch: no weight update, error names the step, later checkpoint not written", async () => {
  const dir = await Deno.makeTempDir();
  const batches = hostBatches(9, 6, 8);
  batches[2][7] = NaN;
  const tcfg = createTrainerConfig({
    totalTrainingSamples: 48,
    trainBatchSizeSamples: 8,
    nCheckpoints: 3, // thresholds [12, 24, 36]: "16" after step 1, "32" after step 3
    checkpointPath: dir,
    lr: 0.05,
    logEvery: 100,
  });
  const sae = createTestSAE(saeCfg(), gpu, 2);
  const trainer = new SAETrainer(tcfg, sae, upload(batches));
  const err = await assertRejects(() => trainer.fit(), NonFiniteStepError);
  assertEquals((err as NonFiniteStepError).step, 2);
  assert(/training step 2: the input batch contains NaN/.test(err.message), err.message);
  assertEquals(
    await listTree(dir),
    FILES.filter((n) => n !== "runner_cfg.json").map((n) => `16/${n}`),
  );
  // The weights are those after step 1 (= the good checkpoint's): steps 2 and 3 were skipped.
  const good = await readCheckpointFolder(`${dir}/16`);
  for (const [k, v] of await sae.stateDict()) assertEquals([...v], [...good.weights.get(k)!], k);
  assert([...good.weights.get("W_enc")!].every(Number.isFinite), "checkpoint is clean");
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a NaN batch with a logger: logs before it arrive, the error comes at the next readback", async () => {
  const batches = hostBatches(9, 8, 4);
  batches[3][0] = Infinity;
  const steps: number[] = [];
  const sae = createTestSAE(saeCfg(), gpu, 2);
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 32, trainBatchSizeSamples: 4, logEvery: 2 }),
    sae,
    upload(batches),
    { logger: (s) => void steps.push(s) },
  );
  const err = await assertRejects(() => trainer.fit(), NonFiniteStepError, "training step 3");
  assertEquals(steps, [1]); // step 3's snapshot carries the flag; step 5's drain reads it
  assertEquals(trainer.nTrainingSteps, 5, `thrown while draining at step 5: ${err.message}`);
  trainer.dispose();
  sae.dispose();
});

for (const arch of ["batchtopk", "matryoshka_batchtopk"]) {
  Deno.test(`${arch} checkpoint: topk_threshold is an F64 scalar of shape [] (SAELens' buffer), other tensors F32`, async () => {
    const dir = await Deno.makeTempDir();
    const sae = createTestSAE(
      saeCfg({ architecture: arch, k: 2, matryoshkaWidths: [4, D_SAE] }),
      gpu,
      1,
    );
    const trainer = new SAETrainer(
      createTrainerConfig({
        totalTrainingSamples: 16,
        trainBatchSizeSamples: 8,
        checkpointPath: dir,
        saveFinalCheckpoint: true,
        lr: 0.05,
      }),
      sae,
      upload(hostBatches(3, 2, 8)),
    );
    await trainer.fit();
    const path = `${dir}/final_16/sae_weights.safetensors`;
    // The raw header, independent of the reader: 8 bytes of little-endian header length + JSON.
    const bytes = await Deno.readFile(path);
    const len = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
    assertEquals(Object.keys(header).filter((k) => k !== "__metadata__").sort(), [
      "W_dec",
      "W_enc",
      "b_dec",
      "b_enc",
      "topk_threshold",
    ]);
    assertEquals(header.topk_threshold.dtype, "F64");
    assertEquals(header.topk_threshold.shape, []);
    const [lo, hi] = header.topk_threshold.data_offsets;
    assertEquals(hi - lo, 8, "one float64");
    for (const k of ["W_enc", "b_enc", "W_dec", "b_dec"]) assertEquals(header[k].dtype, "F32", k);
    assertEquals(header.W_enc.shape, [D_IN, D_SAE]);
    assertEquals(header.W_dec.shape, [D_SAE, D_IN]);
    // The stored value is the trained buffer (nonzero after training), widened exactly.
    const theta = new DataView(bytes.buffer, 8 + len + lo, 8).getFloat64(0, true);
    const [buf] = await sae.buffers.get("topk_threshold")!.toArray();
    assert(buf > 0, `threshold trained: ${buf}`);
    assertEquals(theta, buf);
    const st = (await readSafetensors(path)).tensors.get("topk_threshold")!;
    assertEquals([st.dtype, st.shape, [...st.data as Float64Array]], ["F64", [], [buf]]);
    // And it reads back as the SAE's [1] buffer.
    const ck = await readCheckpointFolder(`${dir}/final_16`);
    assertEquals([...ck.weights.get("topk_threshold")!], [buf]);
    trainer.dispose();
    sae.dispose();
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("snapshot() / restore(): a fresh trainer continues bit for bit; a mismatch changes nothing", async () => {
  const cfg = createTrainerConfig({ totalTrainingSamples: 64, trainBatchSizeSamples: 8 });
  const batches = hostBatches(31, 8, 8);
  const a = createTestSAE(saeCfg(), gpu, 3);
  const ta = new SAETrainer(cfg, a, [], { disposeBatches: false });
  const first = upload(batches.slice(0, 4));
  for (const b of first) await ta.step(b);
  const snap = await ta.snapshot();
  assertEquals([snap.state.nTrainingSteps, snap.state.nTrainingSamples], [4, 32]);
  assertEquals(snap.cfg.architecture, "standard");
  assertEquals([...snap.shapes.get("W_enc")!], [D_IN, D_SAE]);
  // A second SAE with other weights takes the snapshot, weights included.
  const b = createTestSAE(saeCfg(), gpu, 99);
  const tb = new SAETrainer(cfg, b, [], { disposeBatches: false });
  tb.restore(snap);
  assertEquals([tb.nTrainingSteps, tb.nTrainingSamples], [4, 32]);
  const rest = upload(batches.slice(4));
  for (const x of rest) {
    await ta.step(x);
    await tb.step(x);
  }
  const [wa, wb] = await Promise.all([a.stateDict(), b.stateDict()]);
  for (const [name, v] of wa) assertEquals([...wb.get(name)!], [...v], name);
  // The counters are read-only from outside: only restore() sets them.
  assert(!Object.getOwnPropertyDescriptor(SAETrainer.prototype, "nTrainingSteps")?.set);
  // Other Adam betas: refused, and nothing moved.
  const c = createTestSAE(saeCfg(), gpu, 5);
  const tc = new SAETrainer({ ...cfg, adamBeta1: 0.5 }, c, []);
  let threw = false;
  try {
    tc.restore(snap);
  } catch (e) {
    threw = (e as Error).message.includes("Adam betas");
  }
  assert(threw, "a betas mismatch is refused");
  assertEquals([tc.nTrainingSteps, tc.nTrainingSamples], [0, 0]);
  for (const t of [...first, ...rest]) t.dispose();
  for (const t of [ta, tb, tc]) t.dispose();
  for (const s of [a, b, c]) s.dispose();
});
