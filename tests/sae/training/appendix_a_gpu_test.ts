// Appendix A test vectors through the WebGPU code (the plain-TS reference runs them in
// tests/sae/reference/* and tests/training/*): vector 3 (JumpReLU pre-act loss 1.3) and vector 4
// (every BatchTopK case) through `TrainingSAE.recordStep`, vector 5 (log dict 0.6875 / 0.75 /
// 0.25 / 2.0) through `SAETrainer`'s logged dict, vector 8 (norm scaler: constant-2 64-d rows →
// 0.5; batch norms 5, 10, 0, 1, 2 → mean 3.6) through the GPU estimator and the trainer.

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { createTrainingConfig } from "../../../sae/config.ts";
import { readCheckpointFolder } from "../../../sae/training/checkpoint.ts";
import { TrainingSAE } from "../../../sae/training/train_sae.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import { batchIterator, estimateScalingFactor } from "../../../sae/training/trainer_data.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { deadMask, gpuStep, type Problem } from "./_train_sae_helpers.ts";

const gpu = await getGpu();

function eye(d: number, diag: ArrayLike<number> = new Array(d).fill(1)): Float32Array {
  const m = new Float32Array(d * d);
  for (let i = 0; i < d; i++) m[i * d + i] = diag[i];
  return m;
}

// ---- vector 3: pre-act loss -------------------------------------------------------------------

// SAELens `calculate_pre_act_loss(1.0, θ=[1,2,1.5,0.5], h=[[0.5,1.5,1.0,0.8],[0.8,2.5,1.2,0.2]],
// dead=[1,0,1,0], n=[2,1,1.5,3]) = 1.3`. With W_enc = I, b_enc = 0, no b_dec on the input and
// W_dec = diag(n) the GPU step's hidden pre-activations are h and the decoder norms are n.
function preActProblem(): Problem {
  const cfg = createTrainingConfig({
    architecture: "jumprelu",
    dIn: 4,
    dSae: 4,
    applyBDecToInput: false,
    preActLossCoefficient: 1.0,
  });
  return {
    cfg,
    params: {
      W_enc: eye(4),
      b_enc: new Float32Array(4),
      W_dec: eye(4, [2, 1, 1.5, 3]),
      b_dec: new Float32Array(4),
      threshold: Float32Array.of(1, 2, 1.5, 0.5),
    },
    x: Float32Array.of(0.5, 1.5, 1.0, 0.8, 0.8, 2.5, 1.2, 0.2),
    n: 2,
  };
}

Deno.test("Appendix A 3 on the GPU: JumpReLU pre_act_loss = 1.3; 0 without dead latents", async () => {
  const pb = preActProblem();
  const keys = ["mse_loss", "l0_loss", "pre_act_loss"];
  for (
    const [dead, want] of [
      [deadMask(4, [0, 2]), 1.3],
      [null, 0],
      [deadMask(4, []), 0],
    ] as const
  ) {
    const g = await gpuStep(gpu, pb, [1], dead);
    assertEquals(g.sae.lossKeys, keys);
    const [total, mse, l0, pre] = g.losses;
    assertClose(pre, want, 1e-6, 0, `pre_act_loss (dead ${dead})`);
    // Step L0: h > θ only at (0, 3) and (1, 1) → mean 1.
    assertClose(l0, 1, 1e-6, 0, "l0_loss");
    assertClose(total, mse + l0 + pre, 1e-5, 0, "overall = sum of parts");
    g.sae.dispose();
  }
});

// ---- vector 4: BatchTopK ---------------------------------------------------------------------

const BATCHTOPK_CASES: { name: string; h: number[]; k: number; f: number[] }[] = [
  { name: "k = 2", h: [1, -2, 3, -4, -5, 6, -7, 8], k: 2, f: [1, 0, 3, 0, 0, 6, 0, 8] },
  { name: "imbalanced", h: [1, 2, 3, 4, -5, -6, 0.5, -8], k: 2, f: [1, 2, 3, 4, 0, 0, 0, 0] },
  { name: "k = 1.5", h: [1, -2, 3, -4, -5, 6, -7, 8], k: 1.5, f: [0, 0, 3, 0, 0, 6, 0, 8] },
  {
    name: "fewer positives than k·B",
    h: [1, -2, -3, -4, -5, -6, -7, 2],
    k: 2,
    f: [1, 0, 0, 0, 0, 0, 0, 2],
  },
];

for (const arch of ["batchtopk", "matryoshka_batchtopk"]) {
  for (const c of BATCHTOPK_CASES) {
    Deno.test(`Appendix A 4 on the GPU (${arch}): BatchTopK ${c.name}`, async () => {
      // h = x·I + 0: the GPU selection sees exactly SAELens' pre-activations (rescale off, and
      // W_dec = I so that rescaling would not matter anyway).
      const pb: Problem = {
        cfg: createTrainingConfig({
          architecture: arch,
          dIn: 4,
          dSae: 4,
          k: c.k,
          applyBDecToInput: false,
          rescaleActsByDecoderNorm: false,
          topkThresholdLr: 0.5,
          ...(arch === "matryoshka_batchtopk" ? { matryoshkaWidths: [2, 4] } : {}),
        }),
        params: {
          W_enc: eye(4),
          b_enc: new Float32Array(4),
          W_dec: eye(4),
          b_dec: new Float32Array(4),
          topk_threshold: Float32Array.of(0.25),
        },
        x: Float32Array.from(c.h),
        n: 2,
      };
      const g = await gpuStep(gpu, pb, [], null);
      assert(g.featureActs !== null, "one window: feature acts are kept");
      assertAllClose(g.featureActs!.subarray(0, 8), c.f, 0, 0, "feature acts");
      const nnz = c.f.filter((v) => v !== 0).length;
      assertEquals(g.l0Sum, nnz, "l0 sum");
      const fired = [0, 1, 2, 3].map((j) => (c.f[j] !== 0 ? 1 : 0) + (c.f[4 + j] !== 0 ? 1 : 0));
      assertEquals([...g.firedCounts], fired, "fired counts");
      // x̂ = f·I: the decode of exactly the kept activations.
      assertAllClose(g.saeOut!, c.f, 0, 0, "sae_out");
      // θ ← ½θ + ½·min{f > 0}.
      const minPos = Math.min(...c.f.filter((v) => v > 0));
      assertClose(g.metrics[0], 0.5 * 0.25 + 0.5 * minPos, 1e-7, 0, "topk_threshold");
      g.sae.dispose();
    });
  }
}

// ---- vector 5: the trainer's log dict --------------------------------------------------------

Deno.test("Appendix A 5 on the GPU: SAETrainer logs EV 0.6875, legacy 0.75, std 0.25, l0 2.0", async () => {
  // A standard SAE built so that x = [[−1,0],[0,2],[1,1]] gives x̂ = [[0,0],[0,2],[0.5,1]] and
  // per-row firing counts 1, 2, 3: latent 0 always fires (b_enc 1, decoder row 0), latent 1
  // reads x₁ (decoder row e₁), latent 2 reads x₀ (decoder row ½e₀).
  const cfg = createTrainingConfig({ architecture: "standard", dIn: 2, dSae: 3 });
  const sae = TrainingSAE.fromParams(cfg, {
    W_enc: Float32Array.of(0, 0, 1, 0, 1, 0),
    b_enc: Float32Array.of(1, 0, 0),
    W_dec: Float32Array.of(0, 0, 0, 1, 0.5, 0),
    b_dec: new Float32Array(2),
  }, { gpu });
  const logs: Record<string, unknown>[] = [];
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 3, trainBatchSizeSamples: 3, logEvery: 1 }),
    sae,
    [Tensor.from(Float32Array.of(-1, 0, 0, 2, 1, 1), [3, 2], { gpu })],
    { logger: (_, d) => void logs.push(d) },
  );
  await trainer.fit();
  assertEquals(logs.length, 1);
  const d = logs[0];
  assertClose(d["metrics/explained_variance"] as number, 0.6875, 1e-6, 0, "explained_variance");
  assertClose(d["metrics/explained_variance_legacy"] as number, 0.75, 1e-6, 0, "legacy");
  assertClose(d["metrics/explained_variance_legacy_std"] as number, 0.25, 1e-6, 0, "legacy std");
  assertEquals(d["metrics/l0"], 2);
  // mse_loss = mean_b Σ (x̂ − x)² = (1 + 0 + 0.25) / 3.
  assertClose(d["losses/mse_loss"] as number, 1.25 / 3, 1e-6, 0, "mse_loss");
  trainer.dispose();
  sae.dispose();
});

// ---- vector 8: the norm scaler ---------------------------------------------------------------

Deno.test("Appendix A 8 on the GPU: constant-2 64-d rows → factor 0.5; batch norms 5,10,0,1,2 → mean 3.6", async () => {
  const constant = Array.from(
    { length: 3 },
    () => Tensor.from(new Float32Array(10 * 64).fill(2), [10, 64], { gpu }),
  );
  let checked = 0;
  const s = await estimateScalingFactor(
    batchIterator(constant),
    3,
    gpu,
    () => void checked++,
    true,
  );
  assertEquals(s, 0.5);
  assertEquals(checked, 3);
  // One row per batch, norms 5, 10, 0, 1, 2: s = √2 / 3.6.
  const rows = [[3, 4], [6, 8], [0, 0], [1, 0], [0, 2]];
  const five = rows.map((r) => Tensor.from(Float32Array.from(r), [1, 2], { gpu }));
  const s5 = await estimateScalingFactor(batchIterator(five), 5, gpu, () => {}, true);
  assertClose(s5, Math.SQRT2 / 3.6, 1e-12, 0, "√2 / 3.6");
});

Deno.test("Appendix A 8 through SAETrainer: expected_average_only_in on constant-2 rows persists 0.5", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = createTrainingConfig({
    architecture: "standard",
    dIn: 64,
    dSae: 8,
    normalizeActivations: "expected_average_only_in",
  });
  const sae = TrainingSAE.create(cfg, { gpu, seed: 1 });
  const batches = Array.from(
    { length: 4 },
    () => Tensor.from(new Float32Array(4 * 64).fill(2), [4, 64], { gpu }),
  );
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 8,
      trainBatchSizeSamples: 4,
      nBatchesForNormEstimate: 2,
      nCheckpoints: 1, // threshold 4: checkpoint "8" after the second training step
      checkpointPath: dir,
    }),
    sae,
    batches,
  );
  await trainer.fit();
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assertEquals(names.length, 1, `one checkpoint: ${names}`);
  const ck = await readCheckpointFolder(`${dir}/${names[0]}`);
  assertEquals(ck.scalingFactor, 0.5);
  // fit() folds the factor into the SAE afterwards and forgets it.
  assertEquals(trainer.activationScaler.scalingFactor, null);
  assertEquals(sae.cfg.normalizeActivations, "none");
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});
