// TrainingSAE refuses architectures it cannot train with an error that names the architecture
// and lists the trainable ones: a registered custom architecture with a valid training config,
// and (hand-built) configs of inference-only architectures. Nothing is allocated on the GPU.

import { getGpu } from "../../../gpu/device.ts";
import { createTrainingConfig, type TrainingSAEConfig } from "../../../sae/config.ts";
import { ConfigError } from "../../../config/errors.ts";
import { registerArchitecture } from "../../../sae/registry.ts";
import {
  listTrainableArchitectures,
  TrainingSAE,
  TrainSaeError,
} from "../../../sae/training/train_sae.ts";
import { assert, assertEquals, assertThrows } from "../../assert.ts";

const gpu = await getGpu();
const TRAINABLE = "standard, gated, jumprelu, topk, batchtopk, matryoshka_batchtopk";

Deno.test("the trainable architectures are SAELens' six training classes", () => {
  assertEquals(listTrainableArchitectures().join(", "), TRAINABLE);
});

Deno.test("TrainingSAE refuses a registered architecture it has no training step for", () => {
  registerArchitecture("test_untrainable_relu_variant", {
    inferenceFields: [],
    trainingFields: [],
  });
  const cfg = createTrainingConfig({
    architecture: "test_untrainable_relu_variant",
    dIn: 4,
    dSae: 8,
  });
  const live = gpu.pool.liveBytes;
  for (
    const make of [
      () => TrainingSAE.create(cfg, { gpu, seed: 1 }),
      () => TrainingSAE.fromParams(cfg, {}, { gpu }),
    ]
  ) {
    const err = assertThrows(make, TrainSaeError);
    assert(
      err.message.includes(`architecture: "test_untrainable_relu_variant" cannot be trained`) &&
        err.message.includes(`(trainable: ${TRAINABLE})`),
      err.message,
    );
  }
  assertEquals(gpu.pool.liveBytes, live, "nothing allocated");
});

Deno.test("TrainingSAE refuses inference-only architectures (transcoders)", () => {
  const base = createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  for (const arch of ["transcoder", "skip_transcoder", "jumprelu_transcoder"]) {
    // The config layer refuses them first …
    assertThrows(
      () => createTrainingConfig({ architecture: arch, dIn: 4, dSae: 8 }),
      ConfigError,
      "inference-only",
    );
    // … and a hand-built config does not get past TrainingSAE either.
    const cfg = { ...base, architecture: arch } as TrainingSAEConfig;
    assertThrows(
      () => TrainingSAE.create(cfg, { gpu }),
      TrainSaeError,
      `architecture: "${arch}" cannot be trained (trainable: ${TRAINABLE})`,
    );
  }
  // Not fooled by names on Object.prototype.
  const proto = { ...base, architecture: "constructor" } as TrainingSAEConfig;
  assertThrows(
    () => TrainingSAE.fromParams(proto, {}, { gpu }),
    TrainSaeError,
    "cannot be trained",
  );
});
