/**
 * Benchmark of one SAE training step per architecture: `TrainingSAE.recordStep` (forward, losses,
 * backward) plus an Adam update of every parameter through the shared `Adam` of
 * `gpu/kernels/adam.ts` (the trainer's optimiser kernel; clipping, schedulers and bookkeeping
 * are not included), one submit per step, with a dead mask that marks no latent dead (the
 * trainer always passes one). Sizes: batch 4096, d_in 768, d_sae 6144 (k 32), and batch 512,
 * d_in 128, d_sae 1024. Reports tokens/s of the fastest timed step (and the mean).
 *
 * Run alone: `deno run -A bench/sae_bench.ts [--small] [--arch topk,...]`.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Adam } from "../gpu/kernels/adam.ts";
import { Tensor } from "../gpu/tensor.ts";
import { createTrainingConfig } from "../sae/config.ts";
import { createRng } from "../util/rng.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";

/** Architectures the step supports, in bench order. */
export const SAE_BENCH_ARCHS = [
  "standard",
  "gated",
  "jumprelu",
  "topk",
  "batchtopk",
  "matryoshka_batchtopk",
] as const;

/** One size of the benchmark. */
export interface SaeBenchSize {
  batch: number;
  dIn: number;
  dSae: number;
  k: number;
}

/** The two sizes of the brief: GPT-2-small-like and small. */
export const SAE_BENCH_SIZES: SaeBenchSize[] = [
  { batch: 4096, dIn: 768, dSae: 6144, k: 32 },
  { batch: 512, dIn: 128, dSae: 1024, k: 32 },
];

/** One measurement as printed (one JSON object per line). */
export interface SaeBenchResult {
  name: string;
  architecture: string;
  d_in: number;
  d_sae: number;
  k: number | null;
  batch: number;
  value: number;
  unit: "tokens/s";
  /** Fastest timed step (value = batch / this). */
  ms_per_step: number;
  ms_per_step_mean: number;
  steps: number;
  optimizer: string;
  tags: string[];
  adapter: string;
}

/** Times `iters` training steps (after `warmup`) of `arch` at `size`. */
export async function benchSaeStep(
  gpu: Gpu,
  arch: string,
  size: SaeBenchSize,
  options: { warmup?: number; iters?: number } = {},
): Promise<SaeBenchResult> {
  const { batch, dIn, dSae, k } = size;
  const topk = arch === "topk" || arch === "batchtopk" || arch === "matryoshka_batchtopk";
  const cfg = createTrainingConfig({
    architecture: arch,
    dIn,
    dSae,
    ...(topk ? { k } : {}),
    ...(arch === "matryoshka_batchtopk"
      ? { matryoshkaWidths: [dSae / 8, dSae / 4, dSae / 2] }
      : {}),
  } as never);
  const sae = TrainingSAE.create(cfg, { gpu, seed: 0 });
  const rng = createRng(1);
  const o = { gpu };
  const x = Tensor.from(Float32Array.from({ length: batch * dIn }, () => rng.normal()), [
    batch,
    dIn,
  ], o);
  const nc = sae.coefficients().length;
  const coef = Tensor.from(new Float32Array(nc).fill(arch === "jumprelu" ? 0.1 : 5), [nc], o);
  const dead = Tensor.zeros([dSae], "u32", o);
  const names = [...sae.params.keys()];
  const adam = new Adam(names.map((n) => sae.params.get(n)!), { lr: 1e-4 });
  const step = () => {
    adam.prepare();
    sae.recordStep(x, coef, dead);
    adam.update(names.map((n) => sae.grads.get(n)!));
  };
  try {
    const warmup = options.warmup ?? 1, iters = options.iters ?? 3;
    for (let i = 0; i < warmup; i++) step();
    await gpu.sync();
    // Each step timed on its own (submit + wait); the best one is reported, since other jobs on
    // a shared machine only ever slow a step down.
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      step();
      await gpu.sync();
      times.push((performance.now() - t0) / 1e3);
    }
    const seconds = Math.min(...times);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    return {
      name: "sae_train_step",
      architecture: arch,
      d_in: dIn,
      d_sae: dSae,
      k: topk ? k : null,
      batch,
      value: batch / seconds,
      unit: "tokens/s",
      ms_per_step: seconds * 1e3,
      ms_per_step_mean: mean * 1e3,
      steps: iters,
      optimizer: "Adam (gpu/kernels/adam.ts), no clipping",
      tags: ["sae"],
      adapter: gpu.info.description,
    };
  } finally {
    for (const t of [x, coef, dead]) t.dispose();
    adam.dispose();
    sae.dispose();
  }
}

/** Steps timed per size: fewer for the large size (a dense step is tens of seconds on llvmpipe). */
export function saeBenchIters(size: SaeBenchSize): { warmup: number; iters: number } {
  return size.batch * size.dSae >= 1 << 24 ? { warmup: 1, iters: 2 } : { warmup: 1, iters: 5 };
}

/** A benchmark case as the suite runner (`bench/bench.ts`) takes it. */
export interface SaeBenchCase {
  name: string;
  tags: string[];
  run: (gpu: Gpu) => AsyncIterable<SaeBenchResult>;
}

/** The SAE training-step cases of the benchmark suite (tag "sae"). */
export const cases: SaeBenchCase[] = SAE_BENCH_SIZES.map((size) => ({
  name: `sae_train_step_${size.batch}x${size.dIn}x${size.dSae}`,
  tags: ["sae"],
  // A generator, so the runner prints each architecture's line as soon as it is measured.
  run: async function* (gpu: Gpu) {
    for (const arch of SAE_BENCH_ARCHS) {
      yield await benchSaeStep(gpu, arch, size, saeBenchIters(size));
    }
  },
}));

if (import.meta.main) {
  const gpu = await getGpu();
  const small = Deno.args.includes("--small");
  const at = Deno.args.indexOf("--arch");
  const archs = at >= 0 ? Deno.args[at + 1].split(",") : [...SAE_BENCH_ARCHS];
  for (const size of small ? SAE_BENCH_SIZES.slice(1) : SAE_BENCH_SIZES) {
    for (const arch of archs) {
      console.log(JSON.stringify(await benchSaeStep(gpu, arch, size, saeBenchIters(size))));
    }
  }
}
