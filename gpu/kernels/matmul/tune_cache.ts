/**
 * The on-disk record of matmul tuning: which variant measured fastest on which adapter, so that
 * a measurement made once (by `deno task tune`, the demo or the benchmarks) picks the variants of
 * every later process on the same machine. One JSON file holds one entry per adapter:
 * `$SAEFLOW_CACHE_DIR/matmul_tuning.json`, else `$XDG_CACHE_HOME/saeflow/…`, else
 * `~/.cache/saeflow/…`. A missing, unreadable or malformed file is never fatal: the variants
 * fall back to measuring (or to the per-adapter-kind default) and a malformed file is reported
 * once on stderr with its path.
 * @module
 */

import type { Gpu } from "../../device.ts";
import { writeJsonAtomic } from "../../../io/atomic.ts";
import { readEnv, userCacheDir } from "../../../util/env.ts";
import { join } from "../../../util/path.ts";
import type { MatmulLayout } from "./common.ts";
import { regularFileSizeSync } from "../../../util/files.ts";

/** File name of the tuning record inside the saeflow cache directory. */
export const MATMUL_TUNING_FILENAME = "matmul_tuning.json";

/** What one adapter's entry of the tuning file holds. */
export interface MatmulTuningEntry {
  /** When the measurement was made (ISO 8601). */
  date: string;
  /** The representative product `[m, k, n]` the variants were timed on. */
  shape: [number, number, number];
  /** The fastest variant's name per layout. */
  variants: Partial<Record<MatmulLayout, string>>;
  /** GFLOP/s per candidate and layout, as measured. */
  gflops: Partial<Record<MatmulLayout, Record<string, number>>>;
}

/** The whole tuning file: entries keyed by {@link adapterKey}. */
export interface MatmulTuningFile {
  /** Format version of the file (1). */
  version: 1;
  /** One entry per adapter (and Deno version, whose wgpu compiles the kernels). */
  adapters: Record<string, MatmulTuningEntry>;
}

const LAYOUTS: readonly MatmulLayout[] = ["nn", "nt", "tn"];

/**
 * The default tuning file: `$SAEFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/saeflow`, else
 * `~/.cache/saeflow`, then `matmul_tuning.json`.
 */
export function defaultMatmulTuningPath(): string {
  const dir = readEnv("SAEFLOW_CACHE_DIR") ?? join(userCacheDir(), "saeflow");
  return join(dir, MATMUL_TUNING_FILENAME);
}

/** The key of `gpu`'s entry: adapter description, vendor, architecture and Deno version. */
export function adapterKey(gpu: Gpu): string {
  const { description, vendor, architecture } = gpu.info;
  return `${description} | ${vendor || "-"} | ${architecture || "-"} | deno ${Deno.version.deno}`;
}

const warned = new Set<string>();

function warnOnce(path: string, problem: string): void {
  if (warned.has(path)) return;
  warned.add(path);
  console.error(
    `saeflow: ignoring the matmul tuning file ${path}: ${problem}; ` +
      "expected {version: 1, adapters: {...}} as written by `deno task tune` " +
      "(delete it or run `deno task tune` again)",
  );
}

function isEntry(value: unknown): value is MatmulTuningEntry {
  if (!value || typeof value !== "object") return false;
  const e = value as Record<string, unknown>;
  const variants = e.variants as Record<string, unknown> | undefined;
  return typeof e.date === "string" && Array.isArray(e.shape) && e.shape.length === 3 &&
    e.shape.every((x) => Number.isSafeInteger(x) && (x as number) > 0) &&
    !!variants && typeof variants === "object" &&
    Object.entries(variants).every(([l, v]) =>
      LAYOUTS.includes(l as MatmulLayout) && typeof v === "string"
    );
}

/**
 * Reads the tuning file at `path` (synchronously: it is a few hundred bytes, read once per
 * device). Returns undefined when the file is missing or unreadable; a malformed file is
 * reported once on stderr and treated as missing.
 */
export function readMatmulTuningFile(path: string): MatmulTuningFile | undefined {
  let text: string;
  try {
    // Only a regular file: a FIFO at this path would block the read (and the device) forever.
    regularFileSizeSync(path, (m) => new Error(m), 1 << 20);
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined; // missing, or no --allow-read: nothing was measured here
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    warnOnce(path, `not JSON (${(err as Error).message})`);
    return undefined;
  }
  const file = parsed as Partial<MatmulTuningFile> | null;
  if (!file || typeof file !== "object" || file.version !== 1 || !file.adapters) {
    warnOnce(path, "no version 1 header");
    return undefined;
  }
  for (const [key, entry] of Object.entries(file.adapters)) {
    if (!isEntry(entry)) {
      warnOnce(path, `entry "${key}" lacks date, shape [m, k, n] or layout → variant names`);
      return undefined;
    }
  }
  return file as MatmulTuningFile;
}

/** `gpu`'s entry of the tuning file at `path` (default {@link defaultMatmulTuningPath}). */
export function readMatmulTuning(
  gpu: Gpu,
  path: string = defaultMatmulTuningPath(),
): MatmulTuningEntry | undefined {
  return readMatmulTuningFile(path)?.adapters[adapterKey(gpu)];
}

/**
 * Merges `entry` into `gpu`'s entry of the tuning file at `path` (other adapters' entries and
 * layouts not in `entry` are kept) and writes the file atomically.
 */
export async function writeMatmulTuning(
  gpu: Gpu,
  entry: MatmulTuningEntry,
  path: string = defaultMatmulTuningPath(),
): Promise<void> {
  const file = readMatmulTuningFile(path) ?? { version: 1, adapters: {} };
  const key = adapterKey(gpu);
  const old = file.adapters[key];
  const sameShape = old && old.shape.join() === entry.shape.join();
  file.adapters[key] = {
    date: entry.date,
    shape: entry.shape,
    variants: { ...(sameShape ? old.variants : {}), ...entry.variants },
    gflops: { ...(sameShape ? old.gflops : {}), ...entry.gflops },
  };
  await writeJsonAtomic(path, file);
}
