/**
 * Benchmark of cached activations (`io/arrow_ipc.ts`, `io/hf_dataset.ts`,
 * `stages/cached_activations.ts`) at GPT-2-small shapes: 256 sequences × 128 positions × 768
 * float32 (+ 128 int32 token ids each; 101 MB of activations in 2 data files).
 *
 * - `cache_write`: the Arrow IPC stream writer, one record batch per LLM batch of 32 sequences,
 *   fsync at the end (what the cache runner does per shard, without the model);
 * - `cache_read`: row ranges of 32 sequences in order through `HfDataset` (host only);
 * - `cache_read_random`: one sequence at a time in a random order (the shuffle pass's reads);
 * - `cache_stage`: the cached-activations stage end to end — read, filter nothing, upload to the
 *   GPU — as training reads a cache (blocks of 32 sequences).
 *
 * Rates are sequences/s and MB/s of activation bytes, per wall second and per process CPU second
 * (all threads; on a shared machine the latter is the steadier figure); each is the median of 3
 * timed passes after 1 warm-up (the page cache is warm: the format's costs, not the disk's).
 *
 * Run alone: `deno run -A bench/cache_bench.ts`, or `deno task bench cache`.
 * @module
 */

import process from "node:process";
import type { Gpu } from "../gpu/device.ts";
import { ArrowStreamWriter } from "../io/arrow_ipc.ts";
import {
  arrowColumnFor,
  datasetInfoJson,
  datasetStateJson,
  hfDataFileName,
  type HfFeature,
  hfSchemaMetadata,
  openHfDataset,
} from "../io/hf_dataset.ts";
import { cachedActivations } from "../stages/cached_activations.ts";
import { Mulberry32, randomPermutation } from "../util/rng.ts";

/** A benchmark case (structurally what `bench/bench.ts` collects as `BenchCase`). */
interface CacheBenchCase {
  name: string;
  tags: string[];
  run(gpu: Gpu): Promise<Record<string, unknown>[]>;
}

const ROWS = 256, T = 128, D = 768, BATCH = 32, FILES = 2;
const HOOK = "blocks.8.hook_resid_pre";
const ACT_MB = (ROWS * T * D * 4) / 1e6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median wall and process-CPU seconds of 3 passes after a warm-up. */
async function timed(fn: () => Promise<void>): Promise<{ seconds: number; cpuSeconds: number }> {
  const times: number[] = [], cpu: number[] = [];
  for (let i = 0; i < 4; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    if (i === 0) continue;
    times.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { seconds: median(times), cpuSeconds: median(cpu) };
}

const features = new Map<string, HfFeature>([
  [HOOK, { type: "Array2D", shape: [T, D], dtype: "float32" }],
  ["token_ids", { type: "List", feature: { type: "Value", dtype: "int32" }, length: T }],
]);

/** Writes the cache folder; returns its path. */
async function writeCache(dir: string): Promise<void> {
  const acts = new Float32Array(BATCH * T * D);
  for (let i = 0; i < acts.length; i++) acts[i] = (i % 9973) * 1e-3;
  const toks = Int32Array.from({ length: BATCH * T }, (_, i) => i % 50257);
  const names = Array.from({ length: FILES }, (_, i) => hfDataFileName(i, FILES));
  for (const name of names) {
    const w = await ArrowStreamWriter.create(
      `${dir}/${name}`,
      [...features].map(([k, f]) => arrowColumnFor(k, f)),
      hfSchemaMetadata(features),
    );
    for (let r = 0; r < ROWS / FILES; r += BATCH) {
      await w.write(BATCH, { [HOOK]: acts, token_ids: toks });
    }
    await w.close();
  }
  await Deno.writeTextFile(`${dir}/dataset_info.json`, datasetInfoJson(features));
  await Deno.writeTextFile(`${dir}/state.json`, datasetStateJson(names, "0123456789abcdef"));
}

function record(
  name: string,
  { seconds, cpuSeconds }: { seconds: number; cpuSeconds: number },
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    value: ROWS / seconds,
    unit: "sequences/s",
    mb_per_s: ACT_MB / seconds,
    sequences_per_cpu_s: ROWS / cpuSeconds,
    mb_per_cpu_s: ACT_MB / cpuSeconds,
    seconds,
    cpu_seconds: cpuSeconds,
    rows: ROWS,
    context: T,
    d_in: D,
    batch: BATCH,
    activation_mb: ACT_MB,
    ...extra,
  };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_cache_bench_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The cases `bench/bench.ts` runs. */
export const cases: CacheBenchCase[] = [
  {
    name: "cache_write",
    tags: ["cache", "io"],
    run: () =>
      withDir(async (dir) => {
        const s = await timed(() => writeCache(dir));
        return [record("cache_write", s, { adapter: "CPU" })];
      }),
  },
  {
    name: "cache_read",
    tags: ["cache", "io"],
    run: () =>
      withDir(async (dir) => {
        await writeCache(dir);
        using ds = await openHfDataset(dir);
        const s = await timed(async () => {
          for (let r = 0; r < ROWS; r += BATCH) {
            await ds.readArray2D(HOOK, r, BATCH);
            await ds.readIntList("token_ids", r, BATCH);
          }
        });
        return [record("cache_read", s, { adapter: "CPU" })];
      }),
  },
  {
    name: "cache_read_random",
    tags: ["cache", "io"],
    run: () =>
      withDir(async (dir) => {
        await writeCache(dir);
        using ds = await openHfDataset(dir);
        const perm = randomPermutation(ROWS, new Mulberry32(1));
        const s = await timed(async () => {
          for (const r of perm) {
            await ds.readArray2D(HOOK, r, 1);
            await ds.readIntList("token_ids", r, 1);
          }
        });
        return [record("cache_read_random", s, { adapter: "CPU" })];
      }),
  },
  {
    name: "cache_stage",
    tags: ["cache", "stages"],
    run: (gpu: Gpu) =>
      withDir(async (dir) => {
        await writeCache(dir);
        using ds = await openHfDataset(dir);
        const s = await timed(async () => {
          const reader = cachedActivations({
            dataset: ds,
            columns: [{ key: HOOK, column: HOOK, dIn: D }],
            contextSize: T,
            blockSize: BATCH,
            gpu,
          }).getReader();
          for (let n = 0; n < ROWS / BATCH; n++) {
            const r = await reader.read();
            for (const t of r.value!.acts.values()) t.dispose();
          }
          await reader.cancel();
          await gpu.sync();
        });
        return [record("cache_stage", s, { adapter: gpu.info.description })];
      }),
  },
];

if (import.meta.main) {
  const { getGpu } = await import("../gpu/device.ts");
  const gpu = await getGpu();
  const date = new Date().toISOString();
  for (const c of cases) {
    for (const r of await c.run(gpu)) console.log(JSON.stringify({ ...r, date }));
  }
}
