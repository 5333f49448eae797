/**
 * `deno task gpu-check`: one command for a machine with a real GPU. It prints the adapter, its
 * features and limits; runs every realistic-shape GPU-vs-reference check of `tests/realistic/`
 * (every kernel family, SAE inference, the training step of every trainable architecture, the
 * LM forward) without `deno test`; then the matmul, SAE-step (all architectures) and LM
 * benchmarks; and writes everything as JSON lines to one file. Designed to finish within
 * 8 minutes on an H100/H200 (the check tables take well under a minute there; benchmark stages
 * that would start after `--budget-s` are recorded as skipped).
 *
 * ```
 * deno task gpu-check [--out FILE] [--small] [--only FAMILY,...] [--no-checks] [--no-bench]
 *                     [--budget-s S] [--pytorch PYTHON]
 * ```
 *
 * - `--out FILE`: the JSON-lines file (default `gpu_check.jsonl`); one object per line with
 *   `record` = `adapter`, `check`, `bench`, `skipped` or `summary`.
 * - `--small`: small benchmark shapes (for software adapters such as llvmpipe); the checks are
 *   the same.
 * - `--only`: run only the checks of these families (`topk`, `scatter`, `train_step`, …).
 * - `--pytorch PYTHON`: also time `bench/pytorch_sae_step.py` with that interpreter (on CUDA
 *   when torch sees a GPU) for side-by-side figures.
 *
 * Exit status: 0 when every check passed, 1 otherwise (the file is complete either way).
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { tuneMatmul } from "../gpu/kernels/matmul/mod.ts";
import { REALISTIC_CHECKS } from "../tests/realistic/mod.ts";
import { benchMatmulShape } from "./matmul_bench.ts";
import { benchSaeStep, SAE_BENCH_ARCHS, SAE_BENCH_SIZES, saeBenchIters } from "./sae_bench.ts";
import { GPT2_SMALL_SHAPE, runLmShape, SMALL_SHAPE } from "./lm_bench.ts";

/** Parsed command line of {@link gpuCheck}. */
export interface GpuCheckOptions {
  out: string;
  small: boolean;
  only: string[] | null;
  checks: boolean;
  bench: boolean;
  budgetS: number;
  pytorch: string | null;
}

/** Parses the arguments (see the module doc); throws on an unknown flag. */
export function parseGpuCheckArgs(args: string[]): GpuCheckOptions {
  const o: GpuCheckOptions = {
    out: "gpu_check.jsonl",
    small: false,
    only: null,
    checks: true,
    bench: true,
    budgetS: 450,
    pytorch: null,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`gpu-check: ${a} needs a value`);
      return v;
    };
    if (a === "--out") o.out = value();
    else if (a === "--small") o.small = true;
    else if (a === "--only") o.only = value().split(",").filter(Boolean);
    else if (a === "--no-checks") o.checks = false;
    else if (a === "--no-bench") o.bench = false;
    else if (a === "--budget-s") {
      o.budgetS = Number(value());
      if (!(o.budgetS > 0)) throw new Error(`gpu-check: --budget-s must be a positive number`);
    } else if (a === "--pytorch") o.pytorch = value();
    else throw new Error(`gpu-check: unknown argument ${a} (see bench/gpu_check.ts)`);
  }
  return o;
}

const round = (x: number, d = 3) => Number(x.toFixed(d));

/** Runs the whole check; returns the number of failed checks. */
export async function gpuCheck(o: GpuCheckOptions, gpu?: Gpu): Promise<number> {
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1e3;
  const date = new Date().toISOString();
  const file = await Deno.open(o.out, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const write = async (rec: Record<string, unknown>) => {
    await file.write(enc.encode(JSON.stringify({ ...rec, date }) + "\n"));
  };
  try {
    const device = gpu ?? await getGpu();
    const limits = device.device.limits as unknown as Record<string, number>;
    const adapter = {
      record: "adapter",
      description: device.info.description,
      vendor: device.info.vendor,
      architecture: device.info.architecture,
      is_fallback_adapter: device.info.isFallbackAdapter,
      device_features: device.info.features,
      adapter_features: [...device.adapter.features].sort(),
      limits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      },
      deno: Deno.version.deno,
      backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
      small: o.small,
    };
    console.log(
      `adapter: ${adapter.description} (vendor ${adapter.vendor || "?"}, architecture ${
        adapter.architecture || "?"
      }, fallback ${adapter.is_fallback_adapter})`,
    );
    console.log(`features: ${adapter.adapter_features.join(", ") || "none"}`);
    console.log(`enabled: ${adapter.device_features.join(", ") || "none"}`);
    await write(adapter);

    let passed = 0, failed = 0;
    if (o.checks) {
      const checks = REALISTIC_CHECKS.filter((c) => !o.only || o.only.includes(c.family));
      console.log(`checks: ${checks.length} realistic-shape GPU-vs-reference checks`);
      for (const c of checks) {
        const s0 = performance.now();
        let rec: Record<string, unknown>;
        try {
          const errors = await c.run(device);
          rec = { ok: true, errors };
          passed++;
        } catch (err) {
          rec = { ok: false, error: String((err as Error)?.stack ?? err) };
          failed++;
        }
        const seconds = round((performance.now() - s0) / 1e3);
        console.log(`${rec.ok ? "ok  " : "FAIL"} ${seconds.toFixed(2).padStart(7)} s  ${c.name}`);
        if (!rec.ok) console.log(`     ${String(rec.error).split("\n")[0]}`);
        await write({ record: "check", name: c.name, family: c.family, seconds, ...rec });
      }
      console.log(`checks: ${passed} passed, ${failed} failed (${elapsed().toFixed(1)} s)`);
    }

    let benches = 0;
    if (o.bench) {
      const bench = async (suite: string, gen: () => AsyncIterable<Record<string, unknown>>) => {
        if (elapsed() > o.budgetS) {
          console.log(`skipped ${suite}: past the ${o.budgetS} s budget`);
          await write({ record: "skipped", suite, reason: `past the ${o.budgetS} s budget` });
          return;
        }
        for await (const r of gen()) {
          const v = typeof r.value === "number" ? `${round(r.value, 1)} ${r.unit}` : r.skipped;
          console.log(
            `bench ${suite}: ${r.name} ${r.variant ?? r.architecture ?? r.mode ?? ""} ${v}`,
          );
          await write({ record: "bench", suite, ...r, adapter: device.info.description });
          benches++;
        }
      };
      const choice = await tuneMatmul(device, undefined, { cache: true });
      console.log(`matmul variants: ${choice.map((r) => `${r.layout} ${r.variant}`).join(", ")}`);
      await write({
        record: "matmul_tuning",
        variants: choice.map((r) => ({ layout: r.layout, variant: r.variant })),
      });
      const shapes: [number, number, number][] = o.small
        ? [[512, 768, 2048]]
        : [[1024, 768, 6144], [4096, 768, 24576]];
      for (const [m, k, n] of shapes) {
        for (const layout of ["nn", "nt", "tn"] as const) {
          await bench("matmul", () => benchMatmulShape(device, m, k, n, layout));
        }
      }
      for (const size of o.small ? SAE_BENCH_SIZES.slice(1) : SAE_BENCH_SIZES) {
        await bench("sae_step", async function* () {
          for (const arch of SAE_BENCH_ARCHS) {
            yield { ...await benchSaeStep(device, arch, size, saeBenchIters(size)) };
          }
        });
      }
      await bench("lm_forward", async function* () {
        const shape = o.small ? SMALL_SHAPE : GPT2_SMALL_SHAPE;
        for (const r of await runLmShape(device, shape, { warmup: 1, iters: o.small ? 2 : 3 })) {
          yield { ...r };
        }
      });
      if (o.pytorch) {
        await bench("pytorch_sae_step", () => pytorchSteps(o.pytorch!, o.small));
      }
    }
    const seconds = round(elapsed(), 1);
    await write({
      record: "summary",
      checks_passed: passed,
      checks_failed: failed,
      benches,
      seconds,
    });
    console.log(
      `gpu-check: ${passed} checks passed, ${failed} failed, ${benches} benchmark ` +
        `records, ${seconds} s; JSON lines in ${o.out}`,
    );
    return failed;
  } finally {
    file.close();
  }
}

/** Runs `bench/pytorch_sae_step.py` and yields its JSON lines. */
async function* pytorchSteps(python: string, small: boolean) {
  const script = new URL("./pytorch_sae_step.py", import.meta.url).pathname;
  const args = [script, "--device", "auto", ...(small ? ["--small"] : [])];
  const out = await new Deno.Command(python, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  for (const line of text.split("\n").filter((l) => l.trim().startsWith("{"))) {
    yield JSON.parse(line) as Record<string, unknown>;
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    yield { name: "pytorch_sae_step", value: null, unit: "tokens/s", skipped: `failed: ${err}` };
  }
}

if (import.meta.main) {
  const failed = await gpuCheck(parseGpuCheckArgs(Deno.args));
  Deno.exit(failed ? 1 : 0);
}
