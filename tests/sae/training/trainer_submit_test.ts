// The trainer's own GPU traffic per step: exactly one gpu.write and one queue submit, nothing
// left pending, with and without logging, measured with a GPU-only fake SAE (no readbacks).

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { copy, fill } from "../../../gpu/kernels/elementwise.ts";
import {
  createTrainingConfig,
  inferenceConfigOf,
  type TrainingSAEConfig,
} from "../../../sae/config.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import type {
  CoefficientSpec,
  StepOutputs,
  TrainableSAE,
} from "../../../sae/training/trainer_types.ts";
import { assert, assertClose, assertEquals } from "../../assert.ts";

const gpu = await getGpu();

/** Records only GPU ops: gradients = 0.5, outputs = fixed values; fires features 0 and 2. */
class FakeGpuSAE implements TrainableSAE {
  readonly params = new Map<string, Tensor>();
  readonly grads = new Map<string, Tensor>();
  readonly buffers = new Map<string, Tensor>();
  readonly lossKeys = ["mse_loss", "l1_loss"];
  readonly metricKeys: string[] = [];
  readonly #out: StepOutputs;
  readonly #fired: Tensor;
  calls = 0;

  constructor(readonly cfg: TrainingSAEConfig) {
    const { dIn, dSae } = cfg;
    for (
      const [name, shape] of [["W_enc", [dIn, dSae]], ["b_enc", [dSae]], ["W_dec", [dSae, dIn]], [
        "b_dec",
        [dIn],
      ]] as const
    ) {
      this.params.set(name, Tensor.zeros(shape, "f32", { gpu }));
      this.grads.set(name, Tensor.zeros(shape, "f32", { gpu }));
    }
    this.#fired = Tensor.from(
      Float32Array.from({ length: dSae }, (_, i) => (i % 2 === 0 ? 3 : 0)),
      undefined,
      { gpu },
    );
    this.#out = {
      losses: Tensor.from(Float32Array.of(1.5, 1, 0.5), undefined, { gpu }),
      firedCounts: Tensor.zeros([dSae], "f32", { gpu }),
      recon: Tensor.from(Float32Array.of(1, 4, 2, 1.5), undefined, { gpu }),
      l0Sum: Tensor.from(Float32Array.of(12), undefined, { gpu }),
      metrics: Tensor.zeros([0], "f32", { gpu }),
    };
  }
  coefficients(): CoefficientSpec[] {
    return [{ name: "l1", value: 2, warmUpSteps: 0 }];
  }
  recordStep(_x: Tensor, _c: Tensor, _m: Tensor | null): StepOutputs {
    this.calls++;
    for (const g of this.grads.values()) fill(g, 0.5);
    copy(this.#fired, this.#out.firedCounts);
    return this.#out;
  }
  stateDict(): Promise<Map<string, Float32Array>> {
    return Promise.resolve(new Map());
  }
  loadStateDict(): void {}
  foldActivationNormScalingFactor(): void {}
  exportInference() {
    return Promise.resolve({ cfg: inferenceConfigOf(this.cfg), params: new Map() });
  }
}

for (const logging of [false, true]) {
  Deno.test(`one gpu.write and one submit per step (${logging ? "with" : "without"} a logger)`, async () => {
    const sae = new FakeGpuSAE(createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 }));
    const batches = Array.from(
      { length: 8 },
      () => Tensor.from(new Float32Array(12).fill(0.25), [3, 4], { gpu }),
    );
    const logs: [number, Record<string, unknown>][] = [];
    const trainer = new SAETrainer(
      createTrainerConfig({
        totalTrainingSamples: 24,
        trainBatchSizeSamples: 3,
        logEvery: 2,
        lr: 0.01,
      }),
      sae,
      [],
      logging ? { logger: (s, d) => void logs.push([s, d]) } : {},
    );
    await trainer.step(batches[0]); // first step also submits the construction-time clears
    const queue = gpu.device.queue;
    const submit = queue.submit.bind(queue);
    const write = gpu.write.bind(gpu);
    let submits = 0, writes = 0;
    queue.submit = (buffers: GPUCommandBuffer[]) => {
      submits++;
      return submit(buffers);
    };
    gpu.write = (b, o, d) => {
      writes++;
      return write(b, o, d);
    };
    try {
      for (let t = 1; t < 8; t++) {
        submits = writes = 0;
        await trainer.step(batches[t]);
        assertEquals([submits, writes], [1, 1], `step ${t}`);
        assertEquals(gpu.pendingOps, 0, `step ${t} left work unsubmitted`);
      }
    } finally {
      queue.submit = submit;
      gpu.write = write;
    }
    assertEquals(sae.calls, 8);
    if (logging) {
      // Steps 1, 3, 5 were logged one period later; step 7 is still pending until a drain.
      assertEquals(logs.map(([s]) => s), [1, 3, 5]);
      const d = logs[0][1];
      assertEquals(d["losses/overall_loss"], 1.5);
      assertEquals(d["losses/l1_loss"], 0.5);
      assertEquals(d["metrics/explained_variance"], 0.75); // 1 − (1/3)/(4/3)
      assertEquals(d["metrics/l0"], 4);
      // after 2 steps features 1, 3, 5, 7 have 2 passes: mean 8 / 8
      assertEquals(d["sparsity/mean_passes_since_fired"], 1);
      assertEquals(d["sparsity/dead_features"], 0);
      assertEquals(d["details/n_training_samples"], 6);
      assertEquals(d["details/l1_coefficient"], 2);
      assertEquals(d["details/current_learning_rate"], 0.01);
      assertClose(d["metrics/explained_variance_legacy"] as number, 2 / 3, 1e-7);
      assertClose(
        d["metrics/explained_variance_legacy_std"] as number,
        Math.sqrt((1.5 - 4 / 3) / 2),
        1e-6,
      );
    }
    const [w] = await Promise.all([sae.params.get("W_enc")!.toArray()]);
    assert(w.every((v) => v < 0), "Adam moved every weight against the positive gradient");
    trainer.dispose();
  });
}
