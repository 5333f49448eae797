/**
 * Ground-truth quality benchmark (SynthSAEBench recipe, scaled down): every trainable
 * architecture is trained on the same synthetic stream — 1,024 true features in d = 128 with
 * Zipfian firing (0.4 → 5e-4, exponent 0.5), a hierarchy of 8 roots × branching 4 × depth 3
 * (mutually exclusive children, compensated probabilities), rank-25 correlations of scale 0.1,
 * magnitudes 5 → 4 with folded-normal spreads; true L0 ≈ 7.3 — through
 * `syntheticSource → buffer → saeStep`, 300 steps of 1,024 rows at lr 0.01 (SynthSAEBench trains
 * 200 M samples at 3e-4; this is a few minutes on 2 cores), d_sae 256 (a quarter of the true
 * features, as SynthSAEBench's 4,096 of 16,384). Sparsity settings give every architecture an
 * L0 near the top-256 features' true L0 (≈ 5.6): k = 6 for the TopK family, l1 2 for standard
 * and gated, l0 1.2 for JumpReLU. Each SAE is then scored on 16,384 fresh samples (stream 1)
 * with `evalSaeOnSynthetic`.
 *
 * Records: `quality_<arch>` with the pipeline's training tokens/s (host sampling, GPU decode,
 * buffer, step — everything a run pays) beside MCC, uniqueness, precision / recall / F1,
 * explained variance, L0, dead latents, shrinkage; and `quality_generator`, the generator alone
 * (rows/s sampled and decoded, synced).
 *
 * Run alone: `deno run -A bench/quality_bench.ts [--steps N] [--arch topk,...]`, or
 * `deno task bench quality`.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { createTrainingConfig } from "../sae/config.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";
import { createTrainerConfig } from "../sae/training/trainer_config.ts";
import { SyntheticDecoder } from "../synthetic/decode.ts";
import { evalSaeOnSynthetic } from "../synthetic/eval.ts";
import { SyntheticModel, synthSaeBenchConfig } from "../synthetic/model.ts";
import { trainOnSynthetic } from "../synthetic/train.ts";

/** A benchmark case (structurally what `bench/bench.ts` collects as `BenchCase`). */
interface QualityBenchCase {
  name: string;
  tags: string[];
  run(gpu: Gpu): Promise<Record<string, unknown>[]>;
}

/** The benchmark's synthetic model. */
export const QUALITY_MODEL = synthSaeBenchConfig({ nFeatures: 1024, dIn: 128, seed: 0 });

/** Architectures and their sparsity settings (L0 ≈ 6 each, see the module doc). */
export const QUALITY_ARCHS: Record<string, Record<string, unknown>> = {
  standard: { l1Coefficient: 2 },
  gated: { l1Coefficient: 2 },
  jumprelu: { l0Coefficient: 1.2 },
  topk: { k: 6 },
  batchtopk: { k: 6 },
  matryoshka_batchtopk: { k: 6, matryoshkaWidths: [32, 64, 128, 256] },
};

const D_SAE = 256, BATCH = 1024, LR = 0.01, BLOCK = 4096, EVAL_SAMPLES = 16384;

/** Trains and scores one architecture; `steps` of {@link BATCH} rows. */
export async function qualityRun(
  gpu: Gpu,
  arch: string,
  steps = 300,
): Promise<Record<string, unknown>> {
  const model = new SyntheticModel(QUALITY_MODEL);
  const fields = QUALITY_ARCHS[arch];
  const sae = TrainingSAE.create(
    createTrainingConfig({ architecture: arch, dIn: model.dIn, dSae: D_SAE, ...fields } as never),
    { gpu, seed: 0 },
  );
  try {
    const trained = await trainOnSynthetic({
      model,
      gpu,
      blockRows: BLOCK,
      trainees: [{
        id: arch,
        sae,
        trainer: createTrainerConfig({
          totalTrainingSamples: steps * BATCH,
          trainBatchSizeSamples: BATCH,
          lr: LR,
        }),
      }],
    });
    const r = await evalSaeOnSynthetic(sae, model, { samples: EVAL_SAMPLES, blockRows: BLOCK });
    const f = (x: number) => Math.round(x * 1000) / 1000;
    return {
      architecture: arch,
      settings: fields,
      d_in: model.dIn,
      d_sae: D_SAE,
      n_features: model.nFeatures,
      batch: BATCH,
      steps,
      lr: LR,
      value: Math.round(trained.tokens / trained.seconds),
      unit: "tokens/s",
      train_seconds: f(trained.seconds),
      mcc: f(r.mcc),
      uniqueness: f(r.uniqueness),
      precision: f(r.classification.precision),
      recall: f(r.classification.recall),
      f1: f(r.classification.f1),
      explained_variance: f(r.explainedVariance),
      l0: f(r.saeL0),
      true_l0: f(r.trueL0),
      dead_latents: r.deadLatents,
      shrinkage: f(r.shrinkage),
      mmcs: f(r.mmcs),
      eval_samples: r.samples,
      tags: ["quality", "synthetic"],
    };
  } finally {
    sae.dispose();
  }
}

/** Rows/s of the generator alone: host sampling + GPU decode of `blocks` blocks, synced. */
export async function generatorRun(gpu: Gpu, blocks = 8): Promise<Record<string, unknown>> {
  const model = new SyntheticModel(QUALITY_MODEL);
  using dec = new SyntheticDecoder(model, gpu);
  dec.decode(model.sampleBlock(0, BLOCK)).dispose(); // warm-up: pipelines
  await gpu.sync();
  let sampleMs = 0;
  const t0 = performance.now();
  for (let b = 1; b <= blocks; b++) {
    const s0 = performance.now();
    const codes = model.sampleBlock(b, BLOCK);
    sampleMs += performance.now() - s0;
    dec.decode(codes).dispose();
  }
  await gpu.sync();
  const seconds = (performance.now() - t0) / 1000;
  return {
    d_in: model.dIn,
    n_features: model.nFeatures,
    block_rows: BLOCK,
    value: Math.round(blocks * BLOCK / seconds),
    unit: "rows/s",
    host_sampling_rows_per_s: Math.round(blocks * BLOCK / (sampleMs / 1000)),
    tags: ["quality", "synthetic"],
  };
}

/** The cases `bench/bench.ts` runs. */
export const cases: QualityBenchCase[] = [
  {
    name: "quality_generator",
    tags: ["quality", "synthetic"],
    run: async (gpu) => [await generatorRun(gpu)],
  },
  ...Object.keys(QUALITY_ARCHS).map((arch) => ({
    name: `quality_${arch}`,
    tags: ["quality", "synthetic"],
    run: async (gpu: Gpu) => [await qualityRun(gpu, arch)],
  })),
];

if (import.meta.main) {
  const args = Deno.args;
  const at = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const steps = Number(at("--steps") ?? 300);
  const archs = at("--arch")?.split(",") ?? Object.keys(QUALITY_ARCHS);
  const gpu = await getGpu();
  const date = new Date().toISOString();
  const adapter = gpu.info.description;
  console.log(
    JSON.stringify({ name: "quality_generator", ...await generatorRun(gpu), adapter, date }),
  );
  for (const arch of archs) {
    console.log(
      JSON.stringify({
        name: `quality_${arch}`,
        ...await qualityRun(gpu, arch, steps),
        adapter,
        date,
      }),
    );
  }
}
