// With the GPU TrainingSAE (every trainable architecture; no fallback): the log dict of each
// logged step equals `trainStepLogDict` computed from the reference forward pass on the same
// parameters, batch, coefficients and dead mask; and the GPU firing counters equal FiringStats
// fed with the SAE's per-step firing counts.

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { createTrainingConfig } from "../../../sae/config.ts";
import { trainingStepRef } from "../../../sae/reference/mod.ts";
import { refConfigOf, TrainingSAE } from "../../../sae/training/train_sae.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import { FiringStats } from "../../../sae/training/firing_stats.ts";
import {
  isPeriodicStep,
  type SparsityWindowLog,
  sparsityWindowLogDict,
  trainStepLogDict,
} from "../../../sae/training/metrics.ts";
import { assertClose, assertEquals } from "../../assert.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { TRAINABLE_ARCHITECTURES } from "./_sae_impls.ts";

const gpu = await getGpu();
const D_IN = 6, D_SAE = 12, N = 8, LOG_EVERY = 3;

const ARCHS = [
  "standard",
  "gated",
  "jumprelu",
  "topk",
  "batchtopk",
  "matryoshka_batchtopk",
  "matching_pursuit",
];

Deno.test("the log-dict table covers every trainable architecture", () => {
  assertEquals([...ARCHS].sort(), [...TRAINABLE_ARCHITECTURES].sort());
});

for (const arch of ARCHS) {
  const cfg = createTrainingConfig({
    architecture: arch,
    dIn: D_IN,
    dSae: D_SAE,
    k: 2,
    l1Coefficient: 0.3,
    l1WarmUpSteps: 4,
    l0Coefficient: 0.2,
    l0WarmUpSteps: 4,
    ...(arch === "matryoshka_batchtopk" ? { matryoshkaWidths: [4, 9, 12] } : {}),
    ...(arch === "matching_pursuit" ? { maxIterations: 4, decoderInitNorm: 1 } : {}),
  });
  Deno.test({
    name: `GPU TrainingSAE ${arch}: logged dicts match the reference; counters match FiringStats`,
    fn: async () => {
      const sae = TrainingSAE.create(cfg, { gpu, seed: 3 });
      const logs = new Map<number, Record<string, unknown>>();
      const tcfg = createTrainerConfig({
        totalTrainingSamples: 8 * N,
        trainBatchSizeSamples: N,
        lr: 0.02,
        lrWarmUpSteps: 2,
        lrDecaySteps: 3,
        deadFeatureWindow: 1,
        featureSamplingWindow: 5,
        logEvery: LOG_EVERY,
      });
      const trainer = new SAETrainer(tcfg, sae, [], { logger: (s, d) => void logs.set(s, d) });
      const stats = new FiringStats(D_SAE, N);
      const expected = new Map<number, Record<string, number>>();
      let window: { step: number; dict: SparsityWindowLog } | null = null;
      const rng = createRng(4);
      for (let t = 0; t < 8; t++) {
        const x = randomArray(rng, N * D_IN, -1.5, 1.5);
        const logged = isPeriodicStep(t, LOG_EVERY);
        const before = logged
          ? {
            params: Object.fromEntries(await sae.stateDict()),
            mask: await trainer.deadNeurons(),
            coefficients: trainer.getCoefficients(),
          }
          : null;
        if (isPeriodicStep(t, tcfg.featureSamplingWindow)) {
          window = { step: t, dict: sparsityWindowLogDict(stats.featureSparsity()) };
          stats.resetWindow();
        }
        const out = await trainer.step(Tensor.from(x, [N, D_IN], { gpu }));
        stats.updateFromCounts(await out.firedCounts.toArray());
        if (!before) continue;
        const { forward } = trainingStepRef(refConfigOf(cfg), before.params, x, N, {
          coefficients: before.coefficients,
          deadMask: before.mask,
        });
        expected.set(
          t,
          trainStepLogDict({
            x,
            xHat: forward.sae_out,
            featureActs: forward.featureActs,
            n: N,
            dIn: D_IN,
            dSae: D_SAE,
            loss: forward.loss,
            losses: forward.losses,
            metrics: forward.metrics,
            lr: trainer.lrScheduler.lr,
            nTrainingSamples: trainer.nTrainingSamples,
            coefficients: trainer.getCoefficients(),
            meanPassesSinceFired: stats.meanPassesSinceFired(),
            deadFeatures: stats.deadCount(1),
          }),
        );
      }
      await trainer.flushLogs();
      const { passes, actFreq } = await trainer.gpuState.read();
      assertEquals([...passes], [...stats.nForwardPassesSinceFired], "passes since fired");
      assertEquals([...actFreq], [...stats.actFreqScores], "act_freq_scores");
      assertEquals(trainer.nFracActiveSamples, stats.nFracActiveSamples);
      assertEquals([...logs.keys()], [2, 5, 4].sort(), "logged steps"); // (t + 1) % 3 == 0, plus the window at 4
      for (const [t, want] of expected) {
        const got = logs.get(t)!;
        assertEquals(Object.keys(got), Object.keys(want), `${arch} step ${t} keys`);
        for (const [k, w] of Object.entries(want)) {
          const g = got[k] as number;
          if (k.startsWith("details/") || k.startsWith("sparsity/")) {
            assertEquals(g, w, `${arch} step ${t} ${k}`);
          } else assertClose(g, w, 1e-4, 1e-3, `${arch} step ${t} ${k}`);
        }
      }
      assertEquals(window!.step, 4);
      assertEquals(logs.get(4), { ...window!.dict }, "sparsity window dict");
      trainer.dispose();
      sae.dispose();
    },
  });
}
