/**
 * Benchmark of the language-model forward on the GPU at GPT-2 small's shape (12 layers, d_model
 * 768, 12 heads, d_mlp 3072, vocab 50257, context 1024; random weights) on a batch of 8 × 128
 * tokens: SAELens's harvesting call (`runWithCache` of `blocks.8.hook_resid_pre` with
 * stopAtLayer 9) and the full forward to logits. Unit: tokens per second (batch·context / time
 * of one forward including its submit and wait).
 *
 * Run alone: `deno run -A bench/lm_bench.ts [--small]` (`--small`: 2 layers, batch 2 × 32).
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { defineModelConfig, expectedParamShapes, type ModelConfig } from "../model/mod.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import { disposeCache } from "../model/hooks/gpu.ts";
import type { ParamMap } from "../model/params.ts";

/** A bench shape. */
export interface LmBenchShape {
  nLayers: number;
  batch: number;
  context: number;
}

/** GPT-2 small at batch 8 × context 128. */
export const GPT2_SMALL_SHAPE: LmBenchShape = { nLayers: 12, batch: 8, context: 128 };
/** The `--small` smoke shape: 2 layers, batch 2 × 32. */
export const SMALL_SHAPE: LmBenchShape = { nLayers: 2, batch: 2, context: 32 };

/** One measurement as printed (one JSON object per line). */
export interface LmBenchResult {
  name: string;
  value: number;
  unit: "tokens/s";
  ms: number;
  mode: "stop_at_layer_9" | "full";
  batch: number;
  context: number;
  n_layers: number;
  d_model: number;
  d_vocab: number;
  iters: number;
  tags: string[];
  adapter: string;
}

/** GPT-2 small's config with `nLayers` blocks. */
export function gpt2SmallConfig(nLayers: number): ModelConfig {
  return defineModelConfig({
    modelName: "gpt2-bench",
    nLayers,
    dModel: 768,
    nHeads: 12,
    dVocab: 50257,
    nCtx: 1024,
    actFn: "gelu_new",
  });
}

/** Random TL parameters for `cfg` (uniform ±0.02, norm weights 1), seeded and cheap. */
export function randomParams(cfg: ModelConfig, seed = 1): ParamMap {
  let s = seed >>> 0;
  const params: ParamMap = new Map();
  for (const [name, shape] of expectedParamShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/ln\w*\.w$/.test(name)) data.fill(1);
    else if (!/\.b(_\w+)?$/.test(name)) {
      for (let i = 0; i < data.length; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        data[i] = (s / 4294967296 - 0.5) * 0.04;
      }
    }
    params.set(name, { data, shape });
  }
  return params;
}

/** Times the harvesting call and the full forward of `model` on random tokens. */
export async function benchLmForward(
  gpu: Gpu,
  model: HookedTransformer,
  shape: LmBenchShape,
  options: { warmup?: number; iters?: number } = {},
): Promise<LmBenchResult[]> {
  const { batch, context } = shape;
  const ids = Int32Array.from({ length: batch * context }, (_, i) => (i * 7919) % 50257);
  using tokens = Tensor.from(ids, [batch, context], { gpu });
  const hook = `blocks.${Math.min(8, model.cfg.nLayers - 1)}.hook_resid_pre`;
  const stop = Math.min(9, model.cfg.nLayers);
  const modes = {
    stop_at_layer_9: async () => {
      const r = await model.runWithCache(tokens, { namesFilter: [hook], stopAtLayer: stop });
      await r.cache.get(hook)!.toArray();
      r.residual?.dispose();
      disposeCache(r.cache);
    },
    full: async () => {
      const logits = await model.forward(tokens);
      await gpu.sync();
      logits.dispose();
    },
  };
  const out: LmBenchResult[] = [];
  for (
    const [mode, run] of Object.entries(modes) as [LmBenchResult["mode"], () => Promise<void>][]
  ) {
    const warmup = options.warmup ?? 1, iters = options.iters ?? 2;
    for (let i = 0; i < warmup; i++) await run();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await run();
    const seconds = (performance.now() - t0) / 1e3 / iters;
    out.push({
      name: `lm_forward_${mode}`,
      value: (batch * context) / seconds,
      unit: "tokens/s",
      ms: seconds * 1e3,
      mode,
      batch,
      context,
      n_layers: model.cfg.nLayers,
      d_model: model.cfg.dModel,
      d_vocab: model.cfg.dVocab,
      iters,
      tags: ["lm"],
      adapter: gpu.info.description,
    });
  }
  return out;
}

/** Builds GPT-2 small's shape with `shape.nLayers` blocks (random weights) and times it. */
export async function runLmShape(
  gpu: Gpu,
  shape: LmBenchShape,
  iters: { warmup: number; iters: number },
): Promise<LmBenchResult[]> {
  const cfg = gpt2SmallConfig(shape.nLayers);
  using model = await HookedTransformer.fromParams({ cfg, params: randomParams(cfg), gpu });
  return await benchLmForward(gpu, model, shape, iters);
}

/** The LM forward cases of the benchmark suite (tag "lm"). */
export const cases: { name: string; tags: string[]; run: (gpu: Gpu) => Promise<unknown[]> }[] = [
  {
    name: "lm_forward_gpt2_small_8x128",
    tags: ["lm"],
    run: (gpu: Gpu) => runLmShape(gpu, GPT2_SMALL_SHAPE, { warmup: 1, iters: 1 }),
  },
];

if (import.meta.main) {
  const gpu = await getGpu();
  const small = Deno.args.includes("--small");
  const shape = small ? SMALL_SHAPE : GPT2_SMALL_SHAPE;
  for (const r of await runLmShape(gpu, shape, { warmup: 1, iters: small ? 3 : 1 })) {
    console.log(JSON.stringify(r));
  }
}
