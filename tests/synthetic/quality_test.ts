// Ground-truth quality at small size: a TopK SAE with k = 64 — every row runs the sparse
// backward in two 32-entry chunks — trained through source → buffer → saeStep on synthetic
// superposition data must recover the dictionary (MCC, F1) and reconstruct it (EV).
//
// Calibration on llvmpipe, 300 steps of 256 rows at lr 0.02 — a rate where gradient noise
// matters (with k = 48, lr 0.04 collapsed even correct training, and at lr 0.01 correct and
// broken runs ended within 0.005 MCC) — over four (model seed, SAE seed) pairs on Vulkan, and
// the pair used here on GL as well:
//   correct kernels                          MCC 0.601-0.640  F1 0.359-0.374  EV 0.905-0.908
//   accumulators not re-zeroed per chunk     MCC 0.447-0.491  F1 0.174-0.218  EV 0.795-0.885
//     (the sparse_backward bug fixed in d15587f: grad W_enc/b_enc wrong past 32 entries/row)
//   encoder never updated                    MCC 0.321        F1 0.096        EV 0.718
//   untrained                                MCC ≈ 0.255
// MCC and F1 thresholds sit midway between correct and broken; EV is only a sanity bound (the
// accumulator bug barely moves it). The run is deterministic for a given adapter.

import { getGpu } from "../../gpu/device.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { createTrainerConfig } from "../../sae/training/trainer_config.ts";
import { evalSaeOnSynthetic } from "../../synthetic/eval.ts";
import { SyntheticModel } from "../../synthetic/model.ts";
import { trainOnSynthetic } from "../../synthetic/train.ts";
import { assert } from "../assert.ts";

const gpu = await getGpu();

/** 256 features in d = 128, each firing with probability 0.02 (L0 ≈ 5), magnitudes ≈ 1. */
const QUALITY_MODEL = {
  dIn: 128,
  nFeatures: 256,
  firing: { exponent: 1, maxProb: 0.02, minProb: 0.02 },
  magnitude: { meanStart: 1, meanEnd: 1, stdMean: 0.2, stdStd: 0.1 },
  seed: 1,
};

Deno.test("quality: TopK k=64 (> 32 entries per row) recovers the synthetic dictionary", async () => {
  const model = new SyntheticModel(QUALITY_MODEL);
  const sae = TrainingSAE.create(
    createTrainingConfig({ architecture: "topk", dIn: 128, dSae: 256, k: 64 }),
    { gpu, seed: 1 },
  );
  try {
    const evalOpts = { samples: 4096, blockRows: 2048 };
    const before = await evalSaeOnSynthetic(sae, model, evalOpts);
    await trainOnSynthetic({
      model,
      gpu,
      blockRows: 1024,
      trainees: [{
        id: "topk",
        sae,
        trainer: createTrainerConfig({
          totalTrainingSamples: 300 * 256,
          trainBatchSizeSamples: 256,
          lr: 0.02,
        }),
      }],
    });
    const r = await evalSaeOnSynthetic(sae, model, evalOpts);
    const summary = `MCC ${r.mcc.toFixed(3)} (untrained ${before.mcc.toFixed(3)}), F1 ${
      r.classification.f1.toFixed(3)
    }, EV ${r.explainedVariance.toFixed(3)}, L0 ${r.saeL0.toFixed(1)}, dead ${r.deadLatents}`;
    console.log(summary);
    assert(before.mcc < 0.3, `untrained: ${summary}`);
    // The sparse backward ran with more than 32 entries in (nearly) every row.
    assert(r.saeL0 > 48, `L0: ${summary}`);
    assert(r.mcc >= 0.55, `MCC: ${summary}`);
    assert(r.classification.f1 >= 0.29, `F1: ${summary}`);
    assert(r.explainedVariance >= 0.85, `EV: ${summary}`);
  } finally {
    sae.dispose();
  }
});
