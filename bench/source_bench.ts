/**
 * Benchmark of the source stage (`stages/source.ts`): one pass over a generated dataset file
 * through `source()` (batches of 64 documents), per format: JSON Lines, JSON Lines + zstd,
 * Parquet text (snappy), Parquet `list<int32>` tokens, plain text lines. Reports documents/s,
 * MB/s of document content (the texts' UTF-8 bytes; for tokens, 4 bytes per id) and MB/s of the
 * file as stored. CPU only (the GPU argument is unused).
 *
 * Run alone: `deno run -A bench/source_bench.ts`, or `deno task bench source`.
 * @module
 */

import process from "node:process";
import { source, type SourceOptions } from "../stages/source.ts";
import {
  jsonl,
  parquetBytes,
  sampleTexts,
  sampleTokens,
  zstd,
} from "../tests/io/dataset_fixtures.ts";

/** A benchmark case (structurally what `bench/bench.ts` collects as `BenchCase`). */
interface SourceBenchCase {
  name: string;
  tags: string[];
  run(): Promise<Record<string, unknown>[]>;
}

const DOCS = 100_000;
const TOKEN_ROWS = 20_000;
const CONTEXT = 128;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * Times full passes over `opts` (1 warm-up, 3 timed): median wall seconds and median process CPU
 * seconds of a pass (on a shared machine the CPU time estimates an idle machine's wall time, the
 * stage being one JS thread). Checks the document count.
 */
async function timePasses(
  opts: SourceOptions,
  docs: number,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const times: number[] = [], cpu: number[] = [];
  for (let i = 0; i < 4; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    for await (const b of source({ ...opts, repeat: false, batchSize: 64 })) n += b.docs.length;
    if (n !== docs) throw new Error(`read ${n} documents, expected ${docs}`);
    if (i === 0) continue;
    times.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { seconds: median(times), cpuSeconds: median(cpu) };
}

interface Fixture {
  file: string;
  docs: number;
  /** Bytes of document content (the texts' UTF-8 bytes; 4 per token id). */
  contentBytes: number;
  fileBytes: number;
}

async function makeFixture(
  dir: string,
  format: "jsonl" | "jsonl.zst" | "parquet" | "parquet-tokens" | "txt",
): Promise<Fixture> {
  if (format === "parquet-tokens") {
    const toks = sampleTokens(TOKEN_ROWS, CONTEXT, 3);
    const bytes = parquetBytes([{ name: "tokens", kind: "int32list", data: toks }], {
      rowGroupSize: 2048,
    });
    const file = `${dir}/tokens.parquet`;
    await Deno.writeFile(file, bytes);
    return {
      file,
      docs: TOKEN_ROWS,
      contentBytes: TOKEN_ROWS * CONTEXT * 4,
      fileBytes: bytes.length,
    };
  }
  const texts = sampleTexts(DOCS, 2, 60);
  const lines = jsonl("text", texts);
  const contentBytes = new TextEncoder().encode(texts.join("")).length;
  let bytes: Uint8Array;
  let file: string;
  if (format === "jsonl") {
    bytes = new TextEncoder().encode(lines);
    file = `${dir}/docs.jsonl`;
  } else if (format === "jsonl.zst") {
    bytes = zstd(lines);
    file = `${dir}/docs.jsonl.zst`;
  } else if (format === "txt") {
    bytes = new TextEncoder().encode(texts.join("\n") + "\n");
    file = `${dir}/docs.txt`;
  } else {
    bytes = parquetBytes([{ name: "text", kind: "string", data: texts }], {
      rowGroupSize: 8192,
    });
    file = `${dir}/docs.parquet`;
  }
  await Deno.writeFile(file, bytes);
  return { file, docs: DOCS, contentBytes, fileBytes: bytes.length };
}

function sourceCase(
  format: "jsonl" | "jsonl.zst" | "parquet" | "parquet-tokens" | "txt",
): SourceBenchCase {
  return {
    name: `source_${format.replace(".", "_").replace("-", "_")}`,
    tags: ["source", "stages", "io"],
    async run() {
      const dir = await Deno.makeTempDir({ prefix: "saeflow_source_bench_" });
      try {
        const fx = await makeFixture(dir, format);
        const { seconds, cpuSeconds } = await timePasses({ datasetPath: fx.file }, fx.docs);
        return [{
          value: fx.docs / seconds,
          unit: "docs/s",
          format,
          docs: fx.docs,
          content_mb_per_s: fx.contentBytes / 1e6 / seconds,
          file_mb_per_s: fx.fileBytes / 1e6 / seconds,
          docs_per_cpu_s: fx.docs / cpuSeconds,
          content_mb_per_cpu_s: fx.contentBytes / 1e6 / cpuSeconds,
          content_mb: fx.contentBytes / 1e6,
          file_mb: fx.fileBytes / 1e6,
          seconds,
          cpu_seconds: cpuSeconds,
          batch_size: 64,
          adapter: "CPU",
        }];
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** The cases `bench/bench.ts` runs. */
export const cases: SourceBenchCase[] = [
  sourceCase("jsonl"),
  sourceCase("jsonl.zst"),
  sourceCase("txt"),
  sourceCase("parquet"),
  sourceCase("parquet-tokens"),
];

if (import.meta.main) {
  const date = new Date().toISOString();
  for (const c of cases) {
    for (const r of await c.run()) console.log(JSON.stringify({ name: c.name, ...r, date }));
  }
}
