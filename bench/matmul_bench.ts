/**
 * Matmul benchmark: every variant in each layout (A·B, A·Bᵀ, Aᵀ·B) at 1024×768×6144 (an SAE
 * encoder batch) and 4096×768×24576 (a 32× expansion at batch 4096). GFLOP/s = 2·m·k·n / median
 * wall seconds (record + submit + wait); `cpu_equiv_gflops` uses process CPU seconds ÷ cores
 * instead, the wall-clock figure to expect on an idle machine when llvmpipe shares its cores.
 *
 * The large product is slow on llvmpipe: a variant runs there only when its speed at the small
 * size predicts at most `SAEFLOW_BENCH_MAX_S` seconds (default 120) per run, else a record with
 * `skipped` says why. `SAEFLOW_BENCH_VARIANTS=6,7` times only those variants.
 * Run: `deno task bench matmul`.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { matmul, MATMUL_VARIANTS, type MatmulLayout } from "../gpu/kernels/matmul/mod.ts";
import { type BenchCase, timeGpuDetailed } from "./bench.ts";

/** The benchmarked products `[m, k, n]`. */
export const MATMUL_BENCH_SHAPES: [number, number, number][] = [
  [1024, 768, 6144],
  [4096, 768, 24576],
];
const LAYOUTS: MatmulLayout[] = ["nn", "nt", "tn"];

/** Variants to time: env `SAEFLOW_BENCH_VARIANTS` (comma-separated names or numbers) or all. */
function variants() {
  let only: string[] = [];
  try {
    only = (Deno.env.get("SAEFLOW_BENCH_VARIANTS") ?? "").split(",").filter(Boolean);
  } catch { /* no env permission: all */ }
  return only.length
    ? MATMUL_VARIANTS.filter((v) => only.some((o) => v.name === o || v.name.split("_")[0] === o))
    : MATMUL_VARIANTS;
}

function maxSeconds(): number {
  try {
    return Number(Deno.env.get("SAEFLOW_BENCH_MAX_S") ?? 120);
  } catch {
    return 120;
  }
}

function randomTensor(gpu: Gpu, shape: number[], seed: number): Tensor {
  const data = new Float32Array(shape[0] * shape[1]);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.from(data, shape, { gpu });
}

/** GFLOP/s seen per layout/variant at the small size, to predict the large size's time. */
const seen = new Map<string, number>();

/** Times every variant (or those of `SAEFLOW_BENCH_VARIANTS`) on one product and layout. */
export async function* benchMatmulShape(
  gpu: Gpu,
  m: number,
  k: number,
  n: number,
  layout: MatmulLayout,
): AsyncGenerator<Record<string, unknown>> {
  const transA = layout[0] === "t", transB = layout[1] === "t";
  const flops = 2 * m * k * n;
  const large = m * n > 1024 * 6144;
  const a = randomTensor(gpu, transA ? [k, m] : [m, k], 1);
  const b = randomTensor(gpu, transB ? [n, k] : [k, n], 2);
  const out = Tensor.empty([m, n], "f32", { gpu });
  const cores = navigator.hardwareConcurrency || 1;
  try {
    for (const v of variants()) {
      const base = { name: `matmul_${m}x${k}x${n}_${layout}`, m, k, n, layout, variant: v.name };
      const known = seen.get(`${layout}/${v.name}`);
      if (large && known !== undefined && flops / known / 1e9 > maxSeconds()) {
        const est = Math.round(flops / known / 1e9);
        yield {
          ...base,
          value: null,
          unit: "GFLOP/s",
          skipped: `predicted ${est} s per run at ${known.toFixed(2)} GFLOP/s > ${maxSeconds()} s`,
        };
        continue;
      }
      const run = () => void matmul(a, b, { transA, transB, out, variant: v.name });
      // Warm-up (compiling) first; slow variants get a single timed run.
      const t0 = performance.now();
      run();
      await gpu.sync();
      const warm = (performance.now() - t0) / 1000;
      const iters = large || warm > 10 ? 1 : 3;
      const t = await timeGpuDetailed(gpu, run, { warmup: 0, iters });
      const gflops = flops / t.seconds / 1e9;
      if (!large) seen.set(`${layout}/${v.name}`, gflops);
      yield {
        ...base,
        value: Number(gflops.toFixed(3)),
        unit: "GFLOP/s",
        ms: Number((t.seconds * 1e3).toFixed(1)),
        cpu_equiv_gflops: Number((flops / (t.cpuSeconds / cores) / 1e9).toFixed(3)),
        iters,
        first_run_s: Number(warm.toFixed(2)),
      };
    }
  } finally {
    a.dispose();
    b.dispose();
    out.dispose();
  }
}

/** One case per shape and layout (tags `matmul`, `kernels`), each timing every variant. */
export const cases: BenchCase[] = MATMUL_BENCH_SHAPES.flatMap(([m, k, n]) =>
  LAYOUTS.map((layout) => ({
    name: `matmul_${m}x${k}x${n}_${layout}`,
    tags: ["matmul", "kernels"],
    run: (gpu: Gpu) => benchMatmulShape(gpu, m, k, n, layout),
  }))
);
