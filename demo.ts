/**
 * `deno task demo`: saeflow end to end on this machine's GPU, offline.
 *
 * 1. Opens the WebGPU device, prints the adapter, picks the matmul variants by measurement and
 *    checks matmul against its plain-TS reference.
 * 2. Trains an SAE with the command line, `pipeline.ts train examples/shakespeare.yaml`: the
 *    shipped tiny GPT-2, the shipped corpus as a local text dataset, packing and the shuffle
 *    buffer on; progress bar, checkpoints, `metrics.jsonl`, the SAE in SAELens's format in
 *    `out/demo/sae`.
 * 3. Loads that SAE from its files and the model its `cfg.json` names, runs SAELens's evals on
 *    text (`eval_results.json` beside the SAE) and prints the top features with their contexts.
 *
 * Extra arguments go to `pipeline.ts train` (e.g. `--training_tokens 20480`). Exits non-zero
 * when a check or the run fails.
 * @module
 */

import { getGpu } from "./gpu/device.ts";
import { Tensor } from "./gpu/tensor.ts";
import {
  defaultMatmulTuningPath,
  matmul,
  matmulRef,
  tuneMatmul,
} from "./gpu/kernels/matmul/mod.ts";
import { writeJsonAtomic } from "./io/atomic.ts";
import { HookedSAETransformer } from "./model/hooked_sae_transformer.ts";
import { evalConfig } from "./evals/config.ts";
import { runEvals } from "./evals/run_evals.ts";
import { ActivationsStore } from "./pipeline/activations_store.ts";
import { main } from "./pipeline/cli.ts";
import { formatTopFeatures, topFeatures } from "./pipeline/features.ts";
import { parseArgs } from "./pipeline/cli_args.ts";
import { trainConfig } from "./pipeline/commands.ts";
import { SAE } from "./sae/sae.ts";
import { createRng } from "./util/rng.ts";
import { join } from "./util/path.ts";
import { quietMesaRuntimeDir } from "./util/env.ts";

/** The config the demo trains. */
export const DEMO_CONFIG = "examples/shakespeare.yaml";

function randn(n: number, rng: { normal(): number }): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

/** Matmul in every layout with a fused epilogue against the reference; true when all agree. */
export async function matmulCheck(log: (line: string) => void = console.log): Promise<boolean> {
  const rng = createRng(7);
  const [m, k, n] = [256, 384, 512];
  const a = randn(m * k, rng), b = randn(k * n, rng), bias = randn(n, rng);
  let ok = true;
  for (const layout of ["A·B", "A·Bᵀ", "Aᵀ·B"] as const) {
    const transA = layout === "Aᵀ·B", transB = layout === "A·Bᵀ";
    const aData = transA ? transpose(a, m, k) : a;
    const bData = transB ? transpose(b, k, n) : b;
    using ta = Tensor.from(aData, transA ? [k, m] : [m, k]);
    using tb = Tensor.from(bData, transB ? [n, k] : [k, n]);
    using tbias = Tensor.from(bias, [n]);
    using c = matmul(ta, tb, { transA, transB, bias: tbias, activation: "gelu_tanh" });
    const got = (await c.toArray()) as Float32Array;
    const want = matmulRef(aData, bData, m, k, n, {
      transA,
      transB,
      bias,
      activation: "gelu_tanh",
    });
    let worst = 0;
    for (let i = 0; i < got.length; i++) {
      const err = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
      if (!(err <= worst)) worst = err; // NaN counts as the worst error
    }
    const pass = worst < 1e-4;
    ok &&= pass;
    log(
      `  matmul ${layout.padEnd(5)} ${m}×${k}×${n} + bias + GELU: max rel. error ${
        worst.toExponential(2)
      } ${pass ? "ok" : "FAILED"}`,
    );
  }
  return ok;
}

/** What {@link runDemo} measured after training. */
export interface DemoResult {
  /** Exit code of the training command (0: trained). */
  trainExitCode: number;
  /** SAELens's eval metrics of the trained SAE (flat keys, e.g. `reconstruction_quality/explained_variance`). */
  metrics: Record<string, number>;
  /** The printed feature lines. */
  features: string[];
  /** Where the SAE was written. */
  outputPath: string;
}

function flatten(obj: Record<string, unknown>, prefix = "", out: Record<string, number> = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}/${k}` : k;
    if (typeof v === "number") out[key] = v;
    else if (v && typeof v === "object" && !Array.isArray(v)) {
      flatten(v as Record<string, unknown>, key, out);
    }
  }
  return out;
}

/**
 * Trains the demo SAE through the command line (extra `args` are `--field value` overrides),
 * then evaluates it from its files and lists its top features.
 */
export async function runDemo(
  args: string[] = [],
  log: (line: string) => void = console.log,
): Promise<DemoResult> {
  const gpu = await getGpu();
  const code = await main(["train", DEMO_CONFIG, ...args], { signals: true });
  const parsed = parseArgs(["train", DEMO_CONFIG, ...args]);
  const cfg = await trainConfig(DEMO_CONFIG, parsed.overrides, "demo");
  const outputPath = cfg.runner.outputPath!;
  if (code !== 0) return { trainExitCode: code, metrics: {}, features: [], outputPath };

  log(`\nThe trained SAE, loaded from ${outputPath} (SAELens's files), on text from the corpus:`);
  const sae = await SAE.loadFromDisk(outputPath, { gpu });
  const model = await HookedSAETransformer.fromPretrainedForSae(sae, { gpu });
  const store = ActivationsStore.fromSae({
    model,
    sae,
    dataset: cfg.runner.datasetPath,
    textSampleBy: cfg.runner.datasetTextSampleBy,
    storeBatchSizePrompts: 8,
  });
  const { metrics } = await runEvals(
    sae,
    store,
    model,
    evalConfig({
      batchSizePrompts: 8,
      nEvalReconstructionBatches: 4,
      nEvalSparsityVarianceBatches: 4,
      computeCeLoss: true,
      computeL2Norms: true,
      computeSparsityMetrics: true,
      computeVarianceMetrics: true,
    }),
  );
  const flat = flatten(metrics as Record<string, unknown>);
  await writeJsonAtomic(join(outputPath, "eval_results.json"), metrics);
  const show = (k: string, label: string) =>
    flat[k] === undefined ? "" : `${label} ${flat[k].toFixed(3)}`;
  log(
    "  " + [
      show("model_performance_preservation/ce_loss_score", "CE loss score"),
      show("reconstruction_quality/explained_variance", "explained variance"),
      show("sparsity/l0", "L0"),
      show("shrinkage/l2_ratio", "L2 ratio"),
    ].filter((s) => s).join(", ") + ` (all metrics: ${join(outputPath, "eval_results.json")})`,
  );
  using tokens = await store.getBatchTokens(16);
  const ids = (await tokens.toArray()) as Int32Array;
  const features = formatTopFeatures(
    await topFeatures(model, sae, ids, cfg.runner.contextSize, { features: 5, contexts: 3 }),
  );
  log("The features that fire most strongly, with the contexts that activate them:");
  for (const l of features) log("  " + l);
  await store.close();
  sae.dispose();
  model.dispose();
  return { trainExitCode: code, metrics: flat, features, outputPath };
}

if (import.meta.main) {
  quietMesaRuntimeDir();
  const gpu = await getGpu();
  console.log(
    `saeflow demo on ${gpu.info.description}${
      gpu.info.isFallbackAdapter ? " (software adapter)" : ""
    }; features: ${gpu.info.features.join(", ") || "none"}`,
  );
  const t0 = performance.now();
  const tuned = await tuneMatmul(gpu, undefined, { cache: true });
  const when = tuned.every((r) => r.fromCache)
    ? `recorded ${tuned[0]?.measuredAt.slice(0, 10)} in ${defaultMatmulTuningPath()}`
    : `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  console.log(
    `  matmul variants chosen by measurement (${when}): ${
      tuned.map((r) => `${r.layout} → ${r.variant}`).join(", ")
    }`,
  );
  let code = (await matmulCheck()) ? 0 : 1;
  if (code === 0) {
    console.log(`\nTraining: deno run -A pipeline.ts train ${DEMO_CONFIG} ${Deno.args.join(" ")}`);
    const r = await runDemo(Deno.args);
    code = r.trainExitCode;
  } else console.error("demo: a GPU result did not match the reference");
  await gpu.sync().catch(() => {});
  if (code === 0) console.log("\ndemo: done");
  Deno.exit(code);
}
