/**
 * Autotuning of matmul: time each candidate variant once per adapter and layout on a
 * representative product and remember the fastest for `matmul`.
 * @module
 */

import type { Gpu } from "../../device.ts";
import { Tensor } from "../../tensor.ts";
import { dummyBinding, type MatmulCall, type MatmulLayout, type MatmulVariant } from "./common.ts";
import { matmul } from "./matmul.ts";
import {
  findMatmulVariant,
  getMatmulVariant,
  setTunedMatmulVariant,
  tunedMatmulVariant,
} from "./variants.ts";
import {
  defaultMatmulTuningPath,
  type MatmulTuningEntry,
  readMatmulTuning,
  writeMatmulTuning,
} from "./tune_cache.ts";

/** Options of {@link selectMatmulVariant}. */
export interface TuneOptions {
  /**
   * Variant names to time (default: variants 3-7, likeliest winner first for the adapter kind;
   * 1 and 2 never win).
   */
  candidates?: string[];
  /** Representative product `[m, k, n]` (default `[1024, 768, 1024]`, K of GPT-2 small). */
  shape?: [number, number, number];
  /** Measure again even when a choice is cached (in this process or in the tuning file). */
  force?: boolean;
  /**
   * The tuning file ({@link tuneMatmul} only): `true` for the default
   * (`defaultMatmulTuningPath()`), or a path. Layouts this adapter already has an entry for (at
   * the same representative shape) are taken from it without measuring; what is measured is
   * written back atomically. Default: no file.
   */
  cache?: boolean | string;
}

/** What one tuning measured and chose. */
export interface TuneResult {
  /** The layout that was tuned. */
  layout: MatmulLayout;
  /** Name of the chosen variant. */
  variant: string;
  /**
   * GFLOP/s per candidate: on the representative product for the contenders, on the screening
   * product for those screened out, NaN where unsupported.
   */
  gflops: Record<string, number>;
  /** Candidates not timed at full size (predicted over 3× slower than the best). */
  screenedOut: string[];
  /** Seconds spent, compiling included (0 when taken from the tuning file). */
  seconds: number;
  /** When the choice was measured: now, or the date stored in the tuning file. */
  measuredAt: string;
  /** True when the choice came from the tuning file rather than a measurement now. */
  fromCache: boolean;
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

/** Default candidates, likeliest winner first (so that slow ones are cut short sooner). */
function defaultCandidates(gpu: Gpu): string[] {
  return gpu.info.isFallbackAdapter
    ? ["7_ubo_16x16", "6_ubo_8x16", "3_vec4_8x8", "5_tiled_128x128", "4_tiled_64x64"]
    : ["5_tiled_128x128", "4_tiled_64x64", "3_vec4_8x8", "7_ubo_16x16", "6_ubo_8x16"];
}

/**
 * Times the candidates on `layout` once (first call per adapter and layout; later calls return
 * the cached choice) and makes the fastest the default of `matmul`. Each candidate compiles on a
 * `[1, k, 1]` product (the same pipelines, almost no work) and is screened once on a small
 * product (128 × k × 256); then, fastest first, candidates are timed on the representative
 * product (default 1024 × 768 × 1024) with `gpu.sync()`, skipping those 3× slower at screening
 * whose screened speed predicts over 3× the best time so far, and re-timing those within
 * 1.5×. On llvmpipe this is
 * about 0.7 s per layout once compiled; the first tuning in a process adds the compiles (a few
 * seconds, kept across processes by Mesa's shader cache).
 */
export async function selectMatmulVariant(
  gpu: Gpu,
  layout: MatmulLayout,
  options: TuneOptions = {},
): Promise<MatmulVariant> {
  const cached = tunedMatmulVariant(gpu, layout);
  if (cached && !options.force) return cached;
  const t0 = performance.now();
  const [m, k, n] = options.shape ?? [1024, 768, 1024];
  const transA = layout[0] === "t", transB = layout[1] === "t";
  const sm = Math.min(m, 128), sn = Math.min(n, 256);
  const candidates = (options.candidates ?? defaultCandidates(gpu)).map(getMatmulVariant);
  const operands = (rows: number, cols: number) => ({
    a: randomTensor(gpu, transA ? [k, rows] : [rows, k]),
    b: randomTensor(gpu, transB ? [cols, k] : [k, cols]),
    out: Tensor.empty([rows, cols], "f32", { gpu }),
  });
  const time = async (v: MatmulVariant, ops: ReturnType<typeof operands>) => {
    const start = performance.now();
    matmul(ops.a, ops.b, { transA, transB, out: ops.out, variant: v.name });
    await gpu.sync();
    return (performance.now() - start) / 1000;
  };
  const tiny = operands(1, 1), small = operands(sm, sn);
  const screen = new Map<MatmulVariant, number>();
  const gflops: Record<string, number> = {};
  try {
    for (const v of candidates) {
      if (!v.supports(gpu, probeCall(gpu, m, k, n, transA, transB))) {
        gflops[v.name] = NaN; // unsupported on this device: never chosen
        continue;
      }
      await time(v, tiny); // compiles
      let seconds = await time(v, small);
      if (seconds < 0.05) seconds = Math.min(seconds, await time(v, small)); // noise on fast ones
      screen.set(v, seconds);
      gflops[v.name] = (2 * sm * sn * k) / seconds / 1e9;
    }
  } finally {
    for (const t of [...Object.values(tiny), ...Object.values(small)]) t.dispose();
  }
  // Full-size timing, fastest screened first; a candidate 3× slower than the fastest at
  // screening whose screened speed also predicts over 3× the best full-size time is skipped.
  const order = [...screen].sort((x, y) => x[1] - y[1]);
  const fastest = order[0]?.[1] ?? 0;
  const scale = (m * n) / (sm * sn);
  const skipped = new Set<string>();
  let best = order[0]?.[0] ?? getMatmulVariant("2"), bestSeconds = Infinity;
  if (order.length > 1) {
    const full = operands(m, n);
    try {
      for (const [v, screened] of order) {
        if (screened > 3 * fastest && screened * scale > 3 * bestSeconds) {
          skipped.add(v.name);
          continue;
        }
        let seconds = await time(v, full);
        if (seconds < 1.5 * bestSeconds || bestSeconds === Infinity) {
          seconds = Math.min(seconds, await time(v, full));
        }
        gflops[v.name] = (2 * m * n * k) / seconds / 1e9;
        if (seconds < bestSeconds) [best, bestSeconds] = [v, seconds];
      }
    } finally {
      for (const t of Object.values(full)) t.dispose();
    }
  }
  setTunedMatmulVariant(gpu, layout, best);
  let perGpu = results.get(gpu);
  if (!perGpu) results.set(gpu, perGpu = new Map());
  perGpu.set(layout, {
    layout,
    variant: best.name,
    gflops,
    screenedOut: [...skipped],
    seconds: (performance.now() - t0) / 1000,
    measuredAt: new Date().toISOString(),
    fromCache: false,
  });
  return best;
}

/**
 * Tunes every layout in `layouts` (default A·B, A·Bᵀ and Aᵀ·B); see {@link selectMatmulVariant}.
 * With `options.cache`, choices measured earlier on this adapter are read from the tuning file
 * and new measurements are written to it, so later processes (which read the file on their first
 * large product) use the measured variants too.
 */
export async function tuneMatmul(
  gpu: Gpu,
  layouts: MatmulLayout[] = ["nn", "nt", "tn"],
  options: TuneOptions = {},
): Promise<TuneResult[]> {
  const path = options.cache === true ? defaultMatmulTuningPath() : options.cache || undefined;
  const shape = options.shape ?? [1024, 768, 1024];
  const stored = path && !options.force ? readMatmulTuning(gpu, path) : undefined;
  const usable = stored && stored.shape.join() === shape.join() ? stored : undefined;
  let perGpu = results.get(gpu);
  if (!perGpu) results.set(gpu, perGpu = new Map());
  const measured: MatmulTuningEntry = {
    date: new Date().toISOString(),
    shape,
    variants: {},
    gflops: {},
  };
  for (const layout of layouts) {
    const storedName = usable?.variants[layout];
    const storedVariant = storedName && !tunedMatmulVariant(gpu, layout)
      ? findMatmulVariant(storedName) // a variant this version no longer has: measure again
      : undefined;
    if (storedVariant) {
      setTunedMatmulVariant(gpu, layout, storedVariant);
      perGpu.set(layout, {
        layout,
        variant: storedVariant.name,
        gflops: usable!.gflops?.[layout] ?? {},
        screenedOut: [],
        seconds: 0,
        measuredAt: usable!.date,
        fromCache: true,
      });
      continue;
    }
    const before = perGpu.get(layout);
    await selectMatmulVariant(gpu, layout, { ...options, shape });
    const result = perGpu.get(layout)!;
    if (result !== before && !result.fromCache) {
      measured.variants[layout] = result.variant;
      measured.gflops[layout] = result.gflops;
    }
  }
  if (path && Object.keys(measured.variants).length) await writeMatmulTuning(gpu, measured, path);
  return layouts.map((l) => perGpu.get(l)).filter((r): r is TuneResult => !!r);
}
