/**
 * Benchmarks of the sparse-index kernels at the GPT-2 small 32× TopK SAE size (batch 4096,
 * d 768, d_sae 24576, k 32): per-row top-k of the pre-activations (also aux-k: k 384 among a
 * dead-latent mask), the BatchTopK K-th largest and mask, the sparse decoder, latent gradients,
 * the counting sort and the scatter-adds of the backward.
 *
 * Run alone: `deno run -A bench/topk_bench.ts [--small]` (`--small`: batch 512).
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { topkRows } from "../gpu/kernels/topk.ts";
import { batchTopKMask, kthLargest } from "../gpu/kernels/kth_largest.ts";
import { CountingSort } from "../gpu/kernels/counting_sort.ts";
import {
  gatherRowsWeighted,
  scatterAddRows,
  scatterAddValues,
  sparseDot,
} from "../gpu/kernels/scatter.ts";
import type { BenchCase } from "./bench.ts";
import { timeGpu } from "./bench.ts";

/** One measurement as printed (one JSON object per line). */
export type TopkBenchResult = {
  name: string;
  value: number;
  unit: "rows/s";
  ms: number;
  rows: number;
  n: number;
  k: number;
  d?: number;
  variant: string;
  gflops?: number;
  adapter: string;
};

/** The benchmark shape. */
export interface TopkBenchSize {
  rows: number;
  d: number;
  dSae: number;
  k: number;
}

/** GPT-2 small, 32× expansion, TopK 32, batch 4096. */
export const TOPK_BENCH_SIZE: TopkBenchSize = { rows: 4096, d: 768, dSae: 24576, k: 32 };

/** Deterministic uniform [-1, 1) values (xorshift; fast enough for 100 M entries). */
function randomF32(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2147483648 - 1;
  }
  return out;
}

async function measure(
  gpu: Gpu,
  fields: Omit<TopkBenchResult, "value" | "unit" | "ms" | "adapter">,
  fn: () => void,
  iters: { warmup: number; iters: number },
  flops = 0,
): Promise<TopkBenchResult> {
  const seconds = await timeGpu(gpu, fn, iters);
  const r: TopkBenchResult = {
    ...fields,
    value: fields.rows / seconds,
    unit: "rows/s",
    ms: seconds * 1e3,
    ...(flops ? { gflops: flops / seconds / 1e9 } : {}),
    adapter: gpu.info.description,
  };
  return r;
}

/** Top-k, aux-k and BatchTopK selection on `[rows, dSae]` pre-activations. */
export async function benchTopk(gpu: Gpu, size = TOPK_BENCH_SIZE): Promise<TopkBenchResult[]> {
  const { rows, dSae: n, k } = size;
  const it = { warmup: 1, iters: 3 };
  const x = Tensor.from(randomF32(rows * n, 1), [rows, n], { gpu });
  const dead = new Uint32Array(n).map((_, j) => (j % 10 === 0 ? 1 : 0));
  const mask = Tensor.from(dead, [n], { gpu });
  const keep: Tensor[] = [];
  // Outputs go back to the pool at once: the next iteration reuses them (recording order keeps
  // this safe), so memory stays flat.
  const drop = (r: { values: Tensor; indices: Tensor }) => {
    r.values.dispose();
    r.indices.dispose();
  };
  const out: TopkBenchResult[] = [];
  try {
    for (const sort of ["rank", "merge"] as const) {
      out.push(
        await measure(gpu, { name: "topk", rows, n, k, variant: `relu,${sort}` }, () => {
          drop(topkRows(x, k, { relu: true, sort }));
        }, it),
      );
    }
    out.push(
      await measure(gpu, { name: "topk", rows, n, k: 384, variant: "auxk-mask10%" }, () => {
        drop(topkRows(x, 384, { relu: true, mask }));
      }, it),
    );
    out.push(
      await measure(gpu, { name: "kth_largest", rows, n, k, variant: `K=${k}·rows` }, () => {
        kthLargest(x, k * rows).dispose();
      }, it),
    );
    const kth = kthLargest(x, k * rows);
    keep.push(kth);
    out.push(
      await measure(gpu, { name: "batchtopk_mask", rows, n, k, variant: "relu" }, () => {
        batchTopKMask(x, kth, { relu: true }).dispose();
      }, it),
    );
    out.push(
      await measure(
        gpu,
        { name: "batchtopk_rows", rows, n, k: 4 * k, variant: "threshold" },
        () => {
          drop(topkRows(x, 4 * k, { relu: true, threshold: kth }));
        },
        it,
      ),
    );
  } finally {
    for (const t of [x, mask, ...keep]) t.dispose();
  }
  return out;
}

/** Sparse decode and backward at `size`: gather, dot, sort, scatters. */
export async function benchScatter(gpu: Gpu, size = TOPK_BENCH_SIZE): Promise<TopkBenchResult[]> {
  const { rows, d, dSae, k } = size;
  const it = { warmup: 1, iters: 3 };
  const o = { gpu };
  const W = Tensor.from(randomF32(dSae * d, 2), [dSae, d], o);
  const X = Tensor.from(randomF32(rows * d, 3), [rows, d], o);
  const vals = Tensor.from(randomF32(rows * k, 4), [rows, k], o);
  const idxHost = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < k; s++) idxHost[r * k + s] = (r * 7919 + s * 769) % dSae;
  }
  const idx = Tensor.from(idxHost, [rows, k], o);
  const bias = Tensor.zeros([d], "f32", o);
  const base = { rows, n: dSae, k, d };
  const fl = 2 * rows * k * d;
  const out: TopkBenchResult[] = [];
  try {
    out.push(
      await measure(
        gpu,
        { name: "sparse_decode", ...base, variant: "gatherRowsWeighted+bias" },
        () => {
          gatherRowsWeighted(W, idx, vals, { bias }).dispose();
        },
        it,
        fl,
      ),
    );
    out.push(
      await measure(
        gpu,
        { name: "sparse_dot", ...base, variant: "sparseDot" },
        () => {
          sparseDot(X, W, idx).dispose();
        },
        it,
        fl,
      ),
    );
    out.push(
      await measure(gpu, { name: "counting_sort", ...base, variant: "blocked" }, () => {
        new CountingSort(idx, dSae, { distinctPerRow: true }).dispose();
      }, it),
    );
    const sort = new CountingSort(idx, dSae, { distinctPerRow: true });
    out.push(
      await measure(
        gpu,
        { name: "scatter_add_rows", ...base, variant: "per-latent gather-sum" },
        () => {
          scatterAddRows(sort, vals, X).dispose();
        },
        it,
        fl,
      ),
    );
    out.push(
      await measure(gpu, { name: "scatter_add_values", ...base, variant: "per-latent sum" }, () => {
        scatterAddValues(sort, vals).dispose();
      }, it),
    );
    sort.dispose();
  } finally {
    for (const t of [W, X, vals, idx, bias]) t.dispose();
  }
  return out;
}

/** The top-k and scatter cases of the benchmark suite (tags `sparse`, `kernels`). */
export const cases: BenchCase[] = [
  { name: "topk", tags: ["sparse", "kernels"], run: (gpu: Gpu) => benchTopk(gpu) },
  { name: "sparse_scatter", tags: ["sparse", "kernels"], run: (gpu: Gpu) => benchScatter(gpu) },
];

if (import.meta.main) {
  const gpu = await getGpu();
  const size = Deno.args.includes("--small") ? { ...TOPK_BENCH_SIZE, rows: 512 } : TOPK_BENCH_SIZE;
  for (const r of [...await benchTopk(gpu, size), ...await benchScatter(gpu, size)]) {
    console.log(JSON.stringify(r));
  }
}
