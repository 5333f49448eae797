/**
 * `deno task bench pipeline`: end-to-end training throughput of the streaming pipeline, and each
 * stage's rate measured alone on the same data, for
 *
 * - `pipeline_demo`: the demo config (`examples/shakespeare.yaml`: the shipped tiny GPT-2, the
 *   shipped corpus, TopK 128 → 512), shortened;
 * - `pipeline_gpt2_1layer`: GPT-2 small's shape with random weights and one layer (hook
 *   `blocks.0.hook_resid_post`, d_in 768), a TopK SAE 768 → 6144 (k 32), a pretokenized dataset
 *   of random ids, context 128, batch 4096 tokens.
 *
 * Each stage alone: source + tokenize (in the Worker, as the runner runs it), the hook stage on
 * blocks read beforehand, the buffer on activation blocks made beforehand, and the SAE step on
 * one batch. "busy" is the share of the end-to-end wall time the stage would need alone for the
 * trained tokens; the goal is end-to-end ≥ 85 % of the slowest stage's rate alone. The hook, buffer
 * and step stages all run on the one GPU (on llvmpipe: the same CPU cores), so they cannot overlap
 * one another; `vs_gpu_stages_serial` compares with their rates combined one after another.
 *
 * Run alone: `deno run -A bench/pipeline_bench.ts [--small]`.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import { type PipelineConfig, pipelineConfigFromDict } from "../pipeline/config.ts";
import { loadConfigFile } from "../config/load.ts";
import { SAETrainingRunner } from "../pipeline/runner.ts";
import { trainerConfigFromRunner } from "../pipeline/runner_config.ts";
import { seqposSliceLength } from "../config/seqpos.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";
import { ActivationBuffer } from "../stages/buffer.ts";
import { harvest } from "../stages/hook.ts";
import { createStepUnit } from "../stages/sae_step.ts";
import { tokenizeInWorker } from "../stages/tokenize_worker.ts";
import { type ActivationBlock, activationKey, type TokenBlock } from "../stages/types.ts";
import { Mulberry32 } from "../util/rng.ts";
import { gpt2SmallConfig, randomParams } from "./lm_bench.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Setup {
  name: string;
  cfg: PipelineConfig;
  model: HookedTransformer;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

/** Reads `n` blocks of the config's token stream (in the Worker, as the runner does). */
async function readBlocks(s: Setup, n: number): Promise<TokenBlock[]> {
  const r = s.cfg.runner, tok = s.model.tokenizer;
  const stream = tokenizeInWorker({
    source: { datasetPath: r.datasetPath, textSampleBy: r.datasetTextSampleBy },
    tokenize: {
      contextSize: r.contextSize,
      blockSize: r.storeBatchSizePrompts,
      beginBatchTokenId: r.prependBos ? tok?.bosTokenId ?? null : null,
      sequenceSeparatorTokenId: tok?.bosTokenId ?? null,
    },
    tokenizer: tok?.source ?? null,
  });
  const out: TokenBlock[] = [];
  const reader = stream.getReader();
  while (out.length < n) {
    const x = await reader.read();
    if (x.done) break;
    out.push(x.value);
  }
  await reader.cancel();
  return out;
}

async function measure(gpu: Gpu, s: Setup): Promise<Record<string, unknown>[]> {
  const r = s.cfg.runner, spec = s.cfg.saes[0];
  const hooks = [{ hookName: spec.hookName, headIndex: spec.hookHeadIndex }];
  const key = activationKey(hooks[0]);
  const T = seqposSliceLength(r.contextSize, r.seqposSlice);
  const tokensPerBlock = r.storeBatchSizePrompts * T;
  const nBlocks = Math.ceil(r.trainingTokens / tokensPerBlock) + r.nBatchesInBuffer;
  const tokens = nBlocks * tokensPerBlock;

  // source + tokenize alone.
  const [blocks, tokSec] = await timed(() => readBlocks(s, nBlocks));
  // hook alone (the blocks read above).
  await harvest(s.model, blocks[0], { hooks }).then((a) => a.acts.forEach((t) => t.dispose()));
  const [acts, hookSec] = await timed(async () => {
    const out: ActivationBlock[] = [];
    for (const b of blocks) out.push(await harvest(s.model, b, { hooks }));
    await gpu.sync();
    return out;
  });
  // buffer alone (activation blocks made above; the buffer consumes them).
  const buffer = new ActivationBuffer({
    bufferSize: r.nBatchesInBuffer * T,
    batchSize: r.trainBatchSizeTokens,
    mixFraction: r.activationsMixingFraction,
    widths: new Map([[key, spec.sae.dIn]]),
    blockRows: tokensPerBlock,
    gpu,
  });
  const nBatches = Math.floor(r.trainingTokens / r.trainBatchSizeTokens);
  const [, bufSec] = await timed(async () => {
    const reader = ReadableStream.from(acts).pipeThrough(buffer).getReader();
    for (let i = 0; i < nBatches; i++) {
      const b = await reader.read();
      if (b.done) break;
      for (const t of b.value.acts.values()) t.dispose();
    }
    await gpu.sync();
    await reader.cancel();
  });
  // SAE step alone.
  const unit = createStepUnit({
    id: spec.id,
    hookName: spec.hookName,
    sae: TrainingSAE.create(spec.sae, { gpu, seed: 1 }),
    trainerConfig: trainerConfigFromRunner(r, {
      totalTrainingSamples: (nBatches + 2) * r.trainBatchSizeTokens,
    }),
  });
  const rng = new Mulberry32(3);
  using x = Tensor.from(
    Float32Array.from(
      { length: r.trainBatchSizeTokens * spec.sae.dIn },
      () => rng.nextFloat() - 0.5,
    ),
    [r.trainBatchSizeTokens, spec.sae.dIn],
    { gpu },
  );
  await unit.trainer.step(x);
  await gpu.sync();
  const [, stepSec] = await timed(async () => {
    for (let i = 0; i < nBatches; i++) await unit.trainer.step(x);
    await gpu.sync();
  });
  unit.trainer.dispose();
  (unit.trainer.sae as TrainingSAE).dispose();

  // End to end.
  const trained = nBatches * r.trainBatchSizeTokens;
  const [, e2eSec] = await timed(() =>
    new SAETrainingRunner(s.cfg, { model: s.model, gpu, log: { progress: false } }).run()
  );
  const rate = (n: number, sec: number) => Math.round(n / sec);
  const stages = {
    source_tokenize: rate(tokens, tokSec),
    hook: rate(tokens, hookSec),
    buffer: rate(trained, bufSec),
    sae_step: rate(trained, stepSec),
  };
  const slowest = Math.min(...Object.values(stages));
  // The GPU stages share one device (on llvmpipe, the same CPU cores): run one after another
  // they would reach this rate; overlap can only hide the CPU stages (source, tokenize).
  const gpuSerial = 1 / (1 / stages.hook + 1 / stages.buffer + 1 / stages.sae_step);
  const e2e = rate(trained, e2eSec);
  const busy = Object.fromEntries(
    Object.entries(stages).map(([k, v]) => [k, Number((trained / v / e2eSec).toFixed(3))]),
  );
  return [{
    name: s.name,
    value: e2e,
    unit: "tokens/s",
    stages_alone: stages,
    busy_share: busy,
    vs_slowest_stage: Number((e2e / slowest).toFixed(3)),
    vs_gpu_stages_serial: Number((e2e / gpuSerial).toFixed(3)),
    training_tokens: trained,
    e2e_seconds: Number(e2eSec.toFixed(2)),
    d_in: spec.sae.dIn,
    d_sae: spec.sae.dSae,
    tags: ["pipeline"],
  }];
}

async function demoSetup(gpu: Gpu, small: boolean): Promise<Setup> {
  const dict = await loadConfigFile(`${ROOT}examples/shakespeare.yaml`);
  const dir = await Deno.makeTempDir();
  const cfg = pipelineConfigFromDict({
    ...dict,
    model_name: `${ROOT}data/tiny-shakespeare-gpt2`,
    dataset_path: `${ROOT}data/tinyshakespeare.txt`,
    training_tokens: small ? 512 * 20 : 512 * 100,
    n_checkpoints: 0,
    checkpoint_path: null,
    output_path: `${dir}/out`,
  }, { runId: "bench" });
  const model = await HookedTransformer.fromPretrainedNoProcessing(cfg.runner.modelName, { gpu });
  return { name: "pipeline_demo", cfg, model };
}

async function gpt2Setup(gpu: Gpu, small: boolean): Promise<Setup> {
  const mcfg = gpt2SmallConfig(1);
  const model = await HookedTransformer.fromParams({ cfg: mcfg, params: randomParams(mcfg), gpu });
  const dir = await Deno.makeTempDir();
  const rng = new Mulberry32(9);
  const rows = Array.from(
    { length: 400 },
    () => JSON.stringify({ tokens: Array.from({ length: 128 }, () => rng.nextInt(mcfg.dVocab)) }),
  );
  await Deno.writeTextFile(`${dir}/tokens.jsonl`, rows.join("\n") + "\n");
  const batch = small ? 512 : 4096;
  const cfg = pipelineConfigFromDict({
    model_name: "gpt2-bench",
    hook_name: "blocks.0.hook_resid_post",
    dataset_path: `${dir}/tokens.jsonl`,
    context_size: 128,
    store_batch_size_prompts: small ? 4 : 8,
    n_batches_in_buffer: small ? 16 : 64,
    train_batch_size_tokens: batch,
    training_tokens: batch * (small ? 4 : 8),
    checkpoint_path: null,
    output_path: `${dir}/out`,
    logger: { log_to_wandb: false },
    sae: { architecture: "topk", d_in: 768, d_sae: small ? 1536 : 6144, k: 32 },
  }, { runId: "bench" });
  return { name: "pipeline_gpt2_1layer", cfg, model };
}

const small = Deno.args.includes("--small");

/** The bench cases (see the module doc). */
export const cases: {
  name: string;
  tags: string[];
  run: (gpu: Gpu) => Promise<Record<string, unknown>[]>;
}[] = [
  {
    name: "pipeline_demo",
    tags: ["pipeline"],
    run: async (gpu) => measure(gpu, await demoSetup(gpu, small)),
  },
  {
    name: "pipeline_gpt2_1layer",
    tags: ["pipeline"],
    run: async (gpu) => measure(gpu, await gpt2Setup(gpu, small)),
  },
];

if (import.meta.main) {
  const gpu = await getGpu();
  for (const c of cases) for (const r of await c.run(gpu)) console.log(JSON.stringify(r));
}
