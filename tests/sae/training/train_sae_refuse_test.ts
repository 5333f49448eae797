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
const TRAINABLE = "standard, gated, jumprelu, topk, batchtopk, matryoshka_batchtopk, " +
  "transcoder, skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder, matching_pursuit";

// Built-ins come first; tests sharing this isolate may register more after them.
Deno.test("the trainable architectures: SAELens' training classes and the four transcoders", () => {
  assertEquals(listTrainableArchitectures().slice(0, 11).join(", "), TRAINABLE);
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
        err.message.includes(`(trainable: ${TRAINABLE}`),
      err.message,
    );
  }
  assertEquals(gpu.pool.liveBytes, live, "nothing allocated");
});

Deno.test("transcoder training configs: b_dec on the input is refused; hand-built names too", () => {
  const base = createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  for (const arch of ["transcoder", "skip_transcoder", "jumprelu_transcoder"]) {
    // The config layer refuses b_dec on the input (it has d_out entries) …
    assertThrows(
      () => createTrainingConfig({ architecture: arch, dIn: 4, dSae: 8 }),
      ConfigError,
      "apply_b_dec_to_input is true, expected false",
    );
    // … and a hand-built config with it does not get past TrainingSAE either.
    const cfg = { ...base, architecture: arch, dOut: 3 } as TrainingSAEConfig;
    assertThrows(() => TrainingSAE.create(cfg, { gpu }), TrainSaeError, "apply_b_dec_to_input");
  }
  // Not fooled by names on Object.prototype.
  const proto = { ...base, architecture: "constructor" } as TrainingSAEConfig;
  assertThrows(
    () => TrainingSAE.fromParams(proto, {}, { gpu }),
    TrainSaeError,
    "cannot be trained",
  );
});
