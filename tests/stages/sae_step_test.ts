/**
 * The step stage with a transcoder unit: `createStepUnit` gives it an output key beside its
 * input key, every batch hands the trainer (x, target) from the same rows, and a batch without
 * the target's key is a named StageError.
 */
import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { createTrainerConfig } from "../../sae/training/trainer_config.ts";
import { createStepUnit, saeStep, type StepEvent } from "../../stages/sae_step.ts";
import { StageError, type TrainBatch } from "../../stages/types.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const gpu = await getGpu();

function unit() {
  const sae = TrainingSAE.create(
    createTrainingConfig({
      architecture: "transcoder",
      dIn: 4,
      dSae: 8,
      dOut: 3,
      applyBDecToInput: false,
    }),
    { gpu, seed: 1 },
  );
  return createStepUnit({
    id: "tc",
    hookName: "blocks.0.mlp.hook_in",
    hookNameOut: "blocks.0.hook_mlp_out",
    sae,
    trainerConfig: createTrainerConfig({ totalTrainingSamples: 16, trainBatchSizeSamples: 8 }),
  });
}

function batch(index: number, withTarget: boolean): TrainBatch {
  const acts = new Map<string, Tensor>([
    ["blocks.0.mlp.hook_in", Tensor.from(new Float32Array(32).fill(0.5), [8, 4], { gpu })],
  ]);
  if (withTarget) {
    acts.set("blocks.0.hook_mlp_out", Tensor.from(new Float32Array(24).fill(1), [8, 3], { gpu }));
  }
  return { index, acts, rows: 8 };
}

async function drive(batches: TrainBatch[], u: ReturnType<typeof unit>): Promise<StepEvent[]> {
  const events: StepEvent[] = [];
  await ReadableStream.from(batches)
    .pipeThrough(saeStep({ units: [u], checkpoints: false }))
    .pipeTo(new WritableStream({ write: (e) => void events.push(e) }));
  return events;
}

Deno.test("saeStep: a transcoder unit trains on (input, target) rows of each batch", async () => {
  const u = unit();
  assertEquals([u.key, u.outputKey], ["blocks.0.mlp.hook_in", "blocks.0.hook_mlp_out"]);
  const events = await drive([batch(0, true), batch(1, true)], u);
  assertEquals(events.filter((e) => e.type === "step").length, 2);
  assert(events.some((e) => e.type === "trained"));
  assertEquals(u.trainer.nTrainingSamples, 16);
  u.trainer.dispose();
  (u.trainer.sae as TrainingSAE).dispose();
});

Deno.test("saeStep: a batch without the transcoder's target key is a named StageError", async () => {
  const u = unit();
  await assertRejects(
    () => drive([batch(0, false)], u),
    StageError,
    "no activations for blocks.0.hook_mlp_out (the target of transcoder tc)",
  );
  u.trainer.dispose();
  (u.trainer.sae as TrainingSAE).dispose();
});
