/**
 * The benchmark suite: `deno task bench [filter]` imports every `bench/*_bench.ts` (sorted by
 * file name), runs the cases whose name or one of whose tags contains `filter` (case-insensitive
 * substring; no filter runs all) and prints one JSON object per line per measurement, with the
 * adapter's description and the date added.
 *
 * A bench file exports `cases: BenchCase[]`; its `run` should return (or yield) its records and
 * leave printing to this runner. Time GPU work with {@link timeGpu}.
 * @module
 */

import process from "node:process";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { tuneMatmul } from "../gpu/kernels/matmul/mod.ts";

/** One benchmark case. */
export interface BenchCase {
  /** Unique name, e.g. `matmul_1024x768x6144_nn`. */
  name: string;
  /** Filter words, e.g. `["matmul", "kernels"]`. */
  tags?: string[];
  /**
   * Runs the case and returns (or yields) its measurements, each at least `name`, `value`,
   * `unit` and its shape fields.
   */
  run(gpu: Gpu): AsyncIterable<Record<string, unknown>> | Promise<Record<string, unknown>[]>;
}

/** Warm-up and timed iterations of {@link timeGpu}. */
export interface TimeOptions {
  /** Untimed runs first (compiling, pool warm-up); default 1. */
  warmup?: number;
  /** Timed runs; default 3. */
  iters?: number;
}

/** Everything {@link timeGpuDetailed} measured. */
export interface GpuTiming {
  /** Median wall-clock seconds of one run (record + submit + wait). */
  seconds: number;
  /** Median process CPU seconds of one run, all threads (llvmpipe's workers included). */
  cpuSeconds: number;
  /** Every timed run's wall-clock seconds, in order. */
  runs: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times `fn` (which records GPU work): `warmup` untimed runs, then `iters` runs each followed by
 * `gpu.sync()`. CPU time matters on a shared machine: with llvmpipe, CPU seconds ÷ cores
 * estimates the wall time on an idle machine.
 */
export async function timeGpuDetailed(
  gpu: Gpu,
  fn: () => void | Promise<void>,
  options: TimeOptions = {},
): Promise<GpuTiming> {
  const { warmup = 1, iters = 3 } = options;
  await gpu.sync();
  for (let i = 0; i < warmup; i++) {
    await fn();
    await gpu.sync();
  }
  const runs: number[] = [], cpu: number[] = [];
  for (let i = 0; i < Math.max(1, iters); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    await gpu.sync();
    runs.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { seconds: median(runs), cpuSeconds: median(cpu), runs };
}

/**
 * Median wall-clock seconds of one run of `fn` (see {@link timeGpuDetailed}).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { timeGpu } from "./bench.ts";
 * const gpu = await getGpu();
 * const s = await timeGpu(gpu, () => {}, { warmup: 0, iters: 1 });
 * if (!(s >= 0)) throw new Error("bad timing");
 * ```
 */
export async function timeGpu(
  gpu: Gpu,
  fn: () => void | Promise<void>,
  options: TimeOptions = {},
): Promise<number> {
  return (await timeGpuDetailed(gpu, fn, options)).seconds;
}

/** True when `filter` is empty or a substring of the case's name or of one of its tags. */
export function matchesFilter(c: BenchCase, filter: string | undefined): boolean {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return [c.name, ...(c.tags ?? [])].some((s) => s.toLowerCase().includes(f));
}

/**
 * The `cases` of every `*_bench.ts` in `dir` (file names sorted), with their file. A file that
 * fails to load is reported on stderr and skipped.
 */
export async function loadCases(
  dir = new URL(".", import.meta.url),
): Promise<{ file: string; cases: BenchCase[] }[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith("_bench.ts")) files.push(entry.name);
  }
  files.sort();
  const out = [];
  for (const file of files) {
    let mod: { cases?: unknown };
    try {
      mod = await import(new URL(file, dir).href);
    } catch (err) {
      // One broken bench file must not hide the others' results.
      console.error(`bench/${file}: cannot load (${(err as Error).message.split("\n")[0]})`);
      continue;
    }
    if (!Array.isArray(mod.cases)) {
      console.error(`bench/${file}: does not export \`cases: BenchCase[]\`; skipped`);
      continue;
    }
    out.push({ file, cases: mod.cases as BenchCase[] });
  }
  return out;
}

/** Runs the matching cases and prints one JSON line per measurement; returns their count. */
export async function runBenchmarks(filter?: string, gpu?: Gpu): Promise<number> {
  const device = gpu ?? await getGpu();
  const date = new Date().toISOString();
  let count = 0;
  let tuned = false;
  for (const { file, cases } of await loadCases()) {
    for (const c of cases.filter((x) => matchesFilter(x, filter))) {
      if (!tuned) {
        // What the library would use: the variants measured fastest on this adapter (read from
        // the tuning file, measured and recorded there when missing). Matmul cases name theirs.
        const choice = await tuneMatmul(device, undefined, { cache: true });
        console.error(
          `matmul variants: ${choice.map((r) => `${r.layout} ${r.variant}`).join(", ")}`,
        );
        tuned = true;
      }
      const result = await c.run(device);
      const records = Symbol.asyncIterator in result
        ? result as AsyncIterable<Record<string, unknown>>
        : (result as Record<string, unknown>[]);
      for await (const record of records) {
        console.log(JSON.stringify({
          name: c.name,
          ...record,
          adapter: record.adapter ?? device.info.description,
          date,
          file,
        }));
        count++;
      }
    }
  }
  return count;
}

if (import.meta.main) {
  // No top-level await: bench files import this module, and a pending top-level await here
  // would deadlock their imports.
  runBenchmarks(Deno.args[0]).then((count) => {
    if (count === 0) console.error(`no benchmark case matches "${Deno.args[0] ?? ""}"`);
  });
}
