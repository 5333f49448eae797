/**
 * Benchmark of the in-place Adam kernel on one 24576×768 parameter (the W_enc / W_dec size of a
 * 32× SAE on GPT-2 small) with its gradient and moments: 7 f32 streams per parameter (read p, g,
 * m, v; write p, m, v). Reports GB/s and parameters per second.
 *
 * Run alone: `deno run -A bench/adam_bench.ts`.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { adamStep, createAdamScalars, writeAdamScalars } from "../gpu/kernels/adam.ts";

/**
 * Mean seconds per call of `fn` after `warmup` calls, measured around one final GPU sync.
 * Local stand-in with the signature of `timeGpu` from `bench/bench.ts` (not committed yet when
 * this file was written): switch to the shared one once it lands.
 */
async function timeGpu(
  gpu: Gpu,
  fn: () => void,
  options: { warmup: number; iters: number },
): Promise<number> {
  for (let i = 0; i < options.warmup; i++) fn();
  await gpu.sync();
  const t0 = performance.now();
  for (let i = 0; i < options.iters; i++) fn();
  await gpu.sync();
  return (performance.now() - t0) / 1e3 / options.iters;
}

/** A benchmark case (structurally what `bench/bench.ts` collects as `BenchCase`). */
export interface AdamBenchCase {
  name: string;
  tags: string[];
  run(gpu: Gpu): Promise<AdamBenchResult[]>;
}

const ROWS = 24576, COLS = 768;
/** Bytes moved per parameter per step. */
const BYTES_PER_PARAM = 7 * 4;

/** One Adam measurement as printed (one JSON object per line). */
export interface AdamBenchResult {
  name: string;
  value: number;
  unit: "GB/s";
  params_per_s: number;
  ms: number;
  m: number;
  n: number;
  variant: string;
  adapter: string;
}

/** Times `adamStep` (plus its per-step scalar upload) on `[rows, cols]`. */
export async function benchAdam(
  gpu: Gpu,
  rows = ROWS,
  cols = COLS,
  options: { warmup?: number; iters?: number; clip?: boolean } = {},
): Promise<AdamBenchResult> {
  const o = { gpu };
  const [p, g, m, v] = [0, 1, 2, 3].map(() => Tensor.zeros([rows, cols], "f32", o));
  const scalars = createAdamScalars(gpu);
  const clip = options.clip ? Tensor.from([0.5], [1], o) : undefined;
  let step = 0;
  try {
    const seconds = await timeGpu(gpu, () => {
      writeAdamScalars(scalars, { lr: 4e-4, step: ++step });
      adamStep(p, g, m, v, scalars, { clipFactor: clip });
    }, { warmup: options.warmup ?? 3, iters: options.iters ?? 5 });
    const n = rows * cols;
    return {
      name: "adam",
      value: (n * BYTES_PER_PARAM) / seconds / 1e9,
      unit: "GB/s",
      params_per_s: n / seconds,
      ms: seconds * 1e3,
      m: rows,
      n: cols,
      variant: `${n % 4 === 0 ? "vec4" : "scalar"}${clip ? "+clip" : ""}`,
      adapter: gpu.info.description,
    };
  } finally {
    for (const t of [p, g, m, v, scalars, ...(clip ? [clip] : [])]) t.dispose();
  }
}

/** The Adam cases of the benchmark suite. */
export const cases: AdamBenchCase[] = [
  {
    name: "adam",
    tags: ["kernels"],
    run: async (gpu: Gpu) => [
      await benchAdam(gpu),
      await benchAdam(gpu, ROWS, COLS, { clip: true }),
    ],
  },
];

if (import.meta.main) {
  const gpu = await getGpu();
  for (const c of cases) for (const r of await c.run(gpu)) console.log(JSON.stringify(r));
}
