/**
 * The trainer with transcoders (input at hook_name, target at hook_name_out): every transcoder
 * lowers its loss step by step on a fixed (x, y), `fit()` takes `{ input, target }` batches, a
 * checkpointed run resumes bit for bit, and a missing or misplaced target is a named error.
 */
import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { createTrainingConfig, type TrainingSAEConfig } from "../../../sae/config.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import { TrainingSAE } from "../../../sae/training/train_sae.ts";
import { TrainingError } from "../../../sae/training/errors.ts";
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { TRAINABLE_TRANSCODERS } from "./_sae_impls.ts";

const gpu = await getGpu();
const D_IN = 6, D_OUT = 4, D_SAE = 12, N = 16;

function cfgOf(arch: string, fields: Record<string, unknown> = {}): TrainingSAEConfig {
  return createTrainingConfig({
    architecture: arch,
    dIn: D_IN,
    dSae: D_SAE,
    dOut: D_OUT,
    applyBDecToInput: false,
    l1Coefficient: 0.1,
    l0Coefficient: 0.05,
    ...fields,
  });
}

function pair(seed: number): { x: Float32Array; y: Float32Array } {
  const rng = createRng(seed);
  return { x: randomArray(rng, N * D_IN, -1, 1), y: randomArray(rng, N * D_OUT, -1, 1) };
}

Deno.test("every transcoder: 5 trainer steps on the same (x, y) strictly lower the loss", async () => {
  assertEquals(TRAINABLE_TRANSCODERS, [
    "transcoder",
    "skip_transcoder",
    "jumprelu_transcoder",
    "jumprelu_skip_transcoder",
  ]);
  for (const arch of TRAINABLE_TRANSCODERS) {
    const sae = TrainingSAE.create(cfgOf(arch), { gpu, seed: 1 });
    const losses: number[] = [];
    const trainer = new SAETrainer(
      createTrainerConfig({
        totalTrainingSamples: 5 * N,
        trainBatchSizeSamples: N,
        lr: 0.01,
        logEvery: 1,
      }),
      sae,
      [],
      {
        logger: (_s, d) => void losses.push(Number(d["losses/overall_loss"])),
        disposeBatches: false,
      },
    );
    const { x, y } = pair(3);
    using tx = Tensor.from(x, [N, D_IN], { gpu });
    using ty = Tensor.from(y, [N, D_OUT], { gpu });
    for (let s = 0; s < 5; s++) await trainer.step(tx, ty);
    await trainer.flushLogs();
    assertEquals(losses.length, 5, arch);
    for (let s = 1; s < 5; s++) assert(losses[s] < losses[s - 1], `${arch}: ${losses}`);
    trainer.dispose();
    sae.dispose();
  }
});

Deno.test("transcoder fit(): { input, target } batches; the target is required and checked", async () => {
  const sae = TrainingSAE.create(cfgOf("skip_transcoder"), { gpu, seed: 2 });
  const batches = [0, 1, 2].map((s) => {
    const { x, y } = pair(10 + s);
    return {
      input: Tensor.from(x, [N, D_IN], { gpu }),
      target: Tensor.from(y, [N, D_OUT], { gpu }),
    };
  });
  const cfg = createTrainerConfig({ totalTrainingSamples: 3 * N, trainBatchSizeSamples: N });
  const trainer = new SAETrainer(cfg, sae, batches);
  await trainer.fit();
  assertEquals(trainer.nTrainingSamples, 3 * N);
  assert(batches.every((b) => b.input.disposed && b.target.disposed), "batches disposed");
  trainer.dispose();
  // Without a target, or a target of the wrong width: named errors, nothing trained.
  const t2 = new SAETrainer(cfg, sae, [], { disposeBatches: false });
  using x = Tensor.from(pair(1).x, [N, D_IN], { gpu });
  await assertRejects(() => t2.step(x), TrainingError, "needs the target activations [n, 4]");
  using wrong = Tensor.zeros([N, D_IN], "f32", { gpu });
  await assertRejects(() => t2.step(x, wrong), TrainingError, "expected [16, 4] f32");
  assertEquals(t2.nTrainingSteps, 0);
  t2.dispose();
  sae.dispose();
  // A target given to an SAE that reconstructs its input.
  const std = TrainingSAE.create(
    createTrainingConfig({ architecture: "standard", dIn: D_IN, dSae: D_SAE }),
    { gpu, seed: 1 },
  );
  const t3 = new SAETrainer(cfg, std, [], { disposeBatches: false });
  using y = Tensor.zeros([N, D_OUT], "f32", { gpu });
  await assertRejects(() => t3.step(x, y), TrainingError, "reconstructs its input");
  t3.dispose();
  std.dispose();
});

Deno.test("jumprelu skip transcoder: 3 steps + checkpoint + resume + 3 steps == 6 steps, bit for bit", async () => {
  const root = await Deno.makeTempDir();
  const cfg = createTrainerConfig({
    totalTrainingSamples: 6 * N,
    trainBatchSizeSamples: N,
    lr: 0.01,
  });
  const data = [0, 1, 2, 3, 4, 5].map((s) => pair(20 + s));
  const run = async (trainer: SAETrainer, from: number, to: number) => {
    for (let s = from; s < to; s++) {
      using x = Tensor.from(data[s].x, [N, D_IN], { gpu });
      using y = Tensor.from(data[s].y, [N, D_OUT], { gpu });
      await trainer.step(x, y);
    }
  };
  const straight = TrainingSAE.create(cfgOf("jumprelu_skip_transcoder", { l0WarmUpSteps: 4 }), {
    gpu,
    seed: 5,
  });
  const t1 = new SAETrainer(cfg, straight, [], { disposeBatches: false });
  await run(t1, 0, 6);
  const a = TrainingSAE.create(cfgOf("jumprelu_skip_transcoder", { l0WarmUpSteps: 4 }), {
    gpu,
    seed: 5,
  });
  const t2 = new SAETrainer(cfg, a, [], { disposeBatches: false });
  await run(t2, 0, 3);
  await t2.saveCheckpoint("mid", root);
  const b = TrainingSAE.create(cfgOf("jumprelu_skip_transcoder", { l0WarmUpSteps: 4 }), {
    gpu,
    seed: 99,
  });
  const t3 = await SAETrainer.resume(`${root}/mid`, cfg, b, [], { disposeBatches: false });
  await run(t3, 3, 6);
  const [w1, w3] = await Promise.all([straight.stateDict(), b.stateDict()]);
  for (const [name, v] of w1) assertEquals([...w3.get(name)!], [...v], name);
  for (const t of [t1, t2, t3]) t.dispose();
  for (const s of [straight, a, b]) s.dispose();
  await Deno.remove(root, { recursive: true });
});
