/**
 * Autotuning of matmul: time each candidate variant once per adapter and layout on a
 * representative product and remember the fastest for `matmul`.
 * @module
 */

import type { Gpu } from "../device.ts";
import { Tensor } from "../tensor.ts";
import {
  dummyBinding,
  type MatmulCall,
  type MatmulLayout,
  type MatmulVariant,
} from "./matmul_common.ts";
import {
  getMatmulVariant,
  matmul,
  MATMUL_VARIANTS,
  setTunedMatmulVariant,
  tunedMatmulVariant,
} from "./matmul.ts";

/** Options of {@link selectMatmulVariant}. */
export interface TuneOptions {
  /** Variant names to time (default: every variant from 3 on; 1 and 2 never win). */
  candidates?: string[];
  /** Product to time, `[m, k, n]` (default `[256, 768, 512]`, K as in GPT-2 small). */
  shape?: [number, number, number];
  /** Measure again even when a choice is cached. */
  force?: boolean;
}

/** What one tuning measured: GFLOP/s per candidate (NaN where it failed) and the choice. */
export interface TuneResult {
  layout: MatmulLayout;
  variant: string;
  gflops: Record<string, number>;
  /** Seconds spent, compiling included. */
  seconds: number;
}

const results = new WeakMap<Gpu, Map<MatmulLayout, TuneResult>>();

/** The last tuning results of `gpu`, by layout. */
export function matmulTuneResults(gpu: Gpu): TuneResult[] {
  return [...(results.get(gpu)?.values() ?? [])];
}

function randomTensor(gpu: Gpu, shape: number[]): Tensor {
  const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.from(data, shape, { gpu });
}

/** A call with the tuning product's geometry, for `supports` checks (bindings are dummies). */
function probeCall(
  gpu: Gpu,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): MatmulCall {
  const binding = dummyBinding(gpu);
  return {
    m,
    n,
    k,
    transA,
    transB,
    a: binding,
    lda: transA ? m : k,
    aOff: 0,
    b: binding,
    ldb: transB ? k : n,
    bOff: 0,
    c: binding,
    ldc: n,
    cOff: 0,
    bias: binding,
    biasOff: 0,
    flags: 0,
    alpha: 1,
  };
}

/**
 * Times the candidates on `layout` once (first call per adapter and layout; later calls return
 * the cached choice) and makes the fastest the default of `matmul`. Each candidate runs once to
 * compile and warm up, then once or twice timed with `gpu.sync()`; a candidate 4× slower than
 * the best so far is not timed twice. About 1-2 s of GPU time on llvmpipe, plus compiling.
 */
export async function selectMatmulVariant(
  gpu: Gpu,
  layout: MatmulLayout,
  options: TuneOptions = {},
): Promise<MatmulVariant> {
  const cached = tunedMatmulVariant(gpu, layout);
  if (cached && !options.force) return cached;
  const t0 = performance.now();
  const [m, k, n] = options.shape ?? [256, 768, 512];
  const transA = layout[0] === "t", transB = layout[1] === "t";
  const names = options.candidates ?? MATMUL_VARIANTS.slice(2).map((v) => v.name);
  using a = randomTensor(gpu, transA ? [k, m] : [m, k]);
  using b = randomTensor(gpu, transB ? [n, k] : [k, n]);
  using out = Tensor.empty([m, n], "f32", { gpu });
  const gflops: Record<string, number> = {};
  let best: MatmulVariant | undefined, bestSeconds = Infinity;
  for (const name of names) {
    const v = getMatmulVariant(name);
    if (!v.supports(gpu, probeCall(gpu, m, k, n, transA, transB))) {
      gflops[v.name] = NaN; // unsupported on this device: never chosen
      continue;
    }
    const once = async () => {
      const start = performance.now();
      matmul(a, b, { transA, transB, out, variant: v.name });
      await gpu.sync();
      return (performance.now() - start) / 1000;
    };
    await once(); // compile + warm up
    let seconds = await once();
    if (seconds < 4 * bestSeconds) seconds = Math.min(seconds, await once());
    gflops[v.name] = (2 * m * n * k) / seconds / 1e9;
    if (seconds < bestSeconds) [best, bestSeconds] = [v, seconds];
  }
  if (!best) best = getMatmulVariant("2");
  setTunedMatmulVariant(gpu, layout, best);
  let perGpu = results.get(gpu);
  if (!perGpu) results.set(gpu, perGpu = new Map());
  perGpu.set(layout, {
    layout,
    variant: best.name,
    gflops,
    seconds: (performance.now() - t0) / 1000,
  });
  return best;
}

/** Tunes every layout in `layouts` (default A·B, A·Bᵀ and Aᵀ·B); see {@link selectMatmulVariant}. */
export async function tuneMatmul(
  gpu: Gpu,
  layouts: MatmulLayout[] = ["nn", "nt", "tn"],
  options: TuneOptions = {},
): Promise<TuneResult[]> {
  for (const layout of layouts) await selectMatmulVariant(gpu, layout, options);
  const perGpu = results.get(gpu);
  return layouts.map((l) => perGpu?.get(l)).filter((r): r is TuneResult => !!r);
}
