// Dictionary recovery on synthetic superposition data (sae_anchors §6): x = Σ f_i d_i with 32
// random unit directions in 16 dimensions, ~3 active per sample, magnitudes U(0.5, 1.5). After a
// few hundred steps each SAE's decoder rows must match the true directions (MMCS ≥ 0.9; the
// untrained init scores ≈ 0.5). Settings and thresholds were found by sweeps over seeds: the
// trained MMCS was 0.93-0.99 for every architecture.

import { getGpu } from "../../../gpu/device.ts";
import { createTrainingConfig } from "../../../sae/config.ts";
import { meanMaxCosineSimilarity, SyntheticActivations } from "../../../sae/training/synthetic.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import { assert } from "../../assert.ts";
import { TrainingSAE } from "../../../sae/training/train_sae.ts";

const gpu = await getGpu();
const D_IN = 16, N_TRUE = 32, BATCH = 64;

const CASES = [
  { arch: "standard", dSae: 32, steps: 400, lr: 0.01, fields: { l1Coefficient: 1 } },
  { arch: "gated", dSae: 32, steps: 400, lr: 0.01, fields: { l1Coefficient: 1 } },
  { arch: "jumprelu", dSae: 32, steps: 600, lr: 0.01, fields: { l0Coefficient: 0.3 } },
  { arch: "topk", dSae: 48, steps: 300, lr: 0.02, fields: { k: 3 } },
];

for (const c of CASES) {
  Deno.test(`superposition: ${c.arch} SAE recovers the true dictionary (MMCS ≥ 0.9)`, async () => {
    const gen = new SyntheticActivations({ dIn: D_IN, nFeatures: N_TRUE, meanActive: 3, seed: 1 });
    const cfg = createTrainingConfig({
      architecture: c.arch,
      dIn: D_IN,
      dSae: c.dSae,
      ...c.fields,
    });
    const sae = TrainingSAE.create(cfg, { gpu, seed: 2 });
    const init = meanMaxCosineSimilarity(
      gen.dictionary,
      (await sae.stateDict()).get("W_dec")!,
      D_IN,
    );
    const trainer = new SAETrainer(
      createTrainerConfig({
        totalTrainingSamples: c.steps * BATCH,
        trainBatchSizeSamples: BATCH,
        lr: c.lr,
      }),
      sae,
      gen.stream(gpu, BATCH),
    );
    await trainer.fit();
    const mmcs = meanMaxCosineSimilarity(
      gen.dictionary,
      (await sae.stateDict()).get("W_dec")!,
      D_IN,
    );
    assert(init < 0.6, `${c.arch}: untrained MMCS ${init} should be near 0.5`);
    assert(
      mmcs >= 0.9,
      `${c.arch}: MMCS ${mmcs.toFixed(3)} < 0.9 (init ${init.toFixed(3)})`,
    );
    trainer.dispose();
    sae.dispose();
  });
}
