/**
 * The demo's main run: a real, trained (tiny) GPT-2 on the GPU, an SAE trained on its
 * activations, and the features it found.
 *
 * 1. Loads `data/tiny-shakespeare-gpt2` (unprocessed, as SAELens loads models) and checks its
 *    cross-entropy on a reference sentence against the value its README gives.
 * 2. Streams activations of `blocks.2.hook_resid_pre` from random 64-byte windows of the
 *    training part of the corpus (no file of activations is written).
 * 3. Trains a TopK SAE on them with `SAETrainer` (one GPU submit per step).
 * 4. Exports it in SAELens's format, loads it back with `SAE.loadFromDisk`, loads the model its
 *    `cfg.json` names (`model_name` "tiny-shakespeare-gpt2", the folder's name, found in `data/`
 *    by `HookedSAETransformer.fromPretrainedForSae`, as SAELens's evals load it),
 *    measures explained variance and L0 on held-out text, and prints the contexts that activate
 *    a few features most.
 * @module
 */

import type { Gpu } from "./gpu/device.ts";
import { readAll, type Tensor } from "./gpu/tensor.ts";
import { HookedTransformer } from "./model/hooked_transformer.ts";
import { HookedSAETransformer } from "./model/hooked_sae_transformer.ts";
import { disposeCache } from "./model/mod.ts";
import { createTrainingConfig } from "./sae/config.ts";
import { SAEMetadata } from "./sae/metadata.ts";
import { SAE } from "./sae/sae.ts";
import {
  createTrainerConfig,
  SAETrainer,
  saveInferenceModel,
  TrainingSAE,
} from "./sae/training/mod.ts";
import { Mulberry32 } from "./training/rng.ts";

const DATA_DIR = new URL("./data", import.meta.url).pathname;
/** The shipped model's name: its folder's name in `data/`, what cfg.json records as model_name. */
const MODEL_NAME = "tiny-shakespeare-gpt2";
const MODEL_DIR = `${DATA_DIR}/${MODEL_NAME}`;
const CORPUS = new URL("./data/tinyshakespeare.txt", import.meta.url).pathname;
const HOOK = "blocks.2.hook_resid_pre";
const BOS = 256;
const CONTEXT = 64;
const SEQS_PER_BATCH = 8;
const BATCH_TOKENS = CONTEXT * SEQS_PER_BATCH;
const REFERENCE_CE = 1.37111;

/** Options of {@link runShakespeareDemo}. */
export interface ShakespeareDemoOptions {
  /** Training steps of `BATCH_TOKENS` tokens each. */
  steps?: number;
  /** Where the trained SAE is written. */
  outDir?: string;
  /** Print progress and results. */
  log?: (line: string) => void;
}

/** What the run measured. */
export interface ShakespeareDemoResult {
  crossEntropy: number;
  explainedVariance: number;
  l0: number;
  aliveFraction: number;
}

function windows(bytes: Uint8Array, starts: number[]): number[][] {
  return starts.map((s) => [BOS, ...bytes.subarray(s, s + CONTEXT - 1)]);
}

async function harvest(model: HookedTransformer, tokens: number[][]): Promise<Tensor> {
  const { cache, residual, logits } = await model.runWithCache(tokens, {
    namesFilter: [HOOK],
    stopAtLayer: 3,
  });
  residual?.dispose();
  logits?.dispose();
  const acts = cache.get(HOOK)!;
  cache.delete(HOOK);
  disposeCache(cache);
  return acts.reshape([tokens.length * CONTEXT, -1]);
}

function show(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => (b === BOS ? "⟨bos⟩" : b === 10 ? "⏎" : String.fromCharCode(b)))
    .join("");
}

/** Runs the demo; throws when a check fails. */
export async function runShakespeareDemo(
  gpu: Gpu,
  options: ShakespeareDemoOptions = {},
): Promise<ShakespeareDemoResult> {
  const log = options.log ?? console.log;
  const steps = options.steps ?? 300;
  const outDir = options.outDir ?? "out/demo_sae";

  const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR, { gpu });
  const sentence = "First Citizen:\nBefore we proceed any further, hear me speak.";
  const crossEntropy = await model.loss(model.toTokens(sentence));
  log(`  tiny-shakespeare GPT-2: CE ${crossEntropy.toFixed(5)} nats (README: ${REFERENCE_CE})`);
  if (Math.abs(crossEntropy - REFERENCE_CE) > 1e-3) {
    throw new Error(`model CE ${crossEntropy} differs from the reference ${REFERENCE_CE}`);
  }

  const bytes = await Deno.readFile(CORPUS);
  const trainEnd = Math.floor(bytes.length * 0.9);
  const rng = new Mulberry32(1234);
  const randomStarts = (lo: number, hi: number) =>
    Array.from({ length: SEQS_PER_BATCH }, () => lo + rng.nextInt(hi - lo - CONTEXT));
  async function* activations(): AsyncGenerator<Tensor> {
    for (let i = 0; i < steps; i++) {
      yield await harvest(model, windows(bytes, randomStarts(0, trainEnd)));
    }
  }

  const dIn = model.cfg.dModel;
  const sae = TrainingSAE.create(
    createTrainingConfig({
      architecture: "topk",
      dIn,
      dSae: 4 * dIn,
      k: 16,
      // What SAELens's runner records: the model and how it was loaded, the hook, the context.
      metadata: new SAEMetadata({
        modelName: MODEL_NAME, // a name, as SAELens records it; not this machine's path
        modelFromPretrainedKwargs: {},
        hookName: HOOK,
        contextSize: CONTEXT,
        prependBos: true,
      }),
    }),
    { gpu, seed: 1 },
  );
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: steps * BATCH_TOKENS,
      trainBatchSizeSamples: BATCH_TOKENS,
      lr: 2e-3,
      logEvery: 50,
    }),
    sae,
    activations(),
    {
      logger: (step, dict) => {
        const num = (key: string) => Number(dict[key]);
        log(
          `  step ${String(step + 1).padStart(4)}: mse ${
            num("losses/mse_loss").toFixed(3)
          }, explained variance ${num("metrics/explained_variance").toFixed(3)}, L0 ${
            num("metrics/l0").toFixed(1)
          }`,
        );
      },
    },
  );
  const t0 = performance.now();
  await trainer.fit();
  await trainer.flushLogs();
  const seconds = (performance.now() - t0) / 1000;
  log(
    `  trained a TopK SAE (d_sae ${4 * dIn}, k 16) on ${steps * BATCH_TOKENS} tokens in ${
      seconds.toFixed(1)
    } s`,
  );
  await saveInferenceModel(sae, outDir, { logSparsity: await trainer.logFeatureSparsity() });
  trainer.dispose();
  sae.dispose();
  model.dispose();

  // Evaluate from the files alone: the SAE from SAELens-format files, the model its cfg.json
  // names (loaded without processing, plus its model_from_pretrained_kwargs).
  const loaded = await SAE.loadFromDisk(outDir, { gpu });
  log(`  saved and reloaded ${outDir}/{cfg.json,sae_weights.safetensors,sparsity.safetensors}`);
  const evalModel = await HookedSAETransformer.fromPretrainedForSae(loaded, {
    gpu,
    modelDirs: [DATA_DIR],
  });
  log(
    `  loaded the model its cfg.json names (${loaded.cfg.metadata.modelName}, from data/), at ${loaded.cfg.metadata.hookName}`,
  );
  const evalStarts = Array.from(
    { length: 4 * SEQS_PER_BATCH },
    (_, i) => trainEnd + i * CONTEXT * 7,
  );
  const evalTokens = windows(bytes, evalStarts);
  using x = await harvest(evalModel, evalTokens);
  using f = loaded.encode(x);
  using xHat = loaded.decode(f);
  const [xs, fs, xhs] = (await readAll([x, f, xHat])) as Float32Array[];
  const nTok = x.shape[0], dSae = loaded.cfg.dSae;
  const mean = new Float64Array(dIn);
  for (let t = 0; t < nTok; t++) for (let d = 0; d < dIn; d++) mean[d] += xs[t * dIn + d] / nTok;
  let err = 0, variance = 0, nonzero = 0;
  for (let t = 0; t < nTok; t++) {
    for (let d = 0; d < dIn; d++) {
      err += (xs[t * dIn + d] - xhs[t * dIn + d]) ** 2;
      variance += (xs[t * dIn + d] - mean[d]) ** 2;
    }
  }
  const fired = new Uint8Array(dSae);
  for (let i = 0; i < fs.length; i++) {
    if (fs[i] !== 0) {
      nonzero++;
      fired[i % dSae] = 1;
    }
  }
  const result: ShakespeareDemoResult = {
    crossEntropy,
    explainedVariance: 1 - err / variance,
    l0: nonzero / nTok,
    aliveFraction: fired.reduce((a, b) => a + b, 0) / dSae,
  };
  log(
    `  held-out: explained variance ${result.explainedVariance.toFixed(3)}, L0 ${
      result.l0.toFixed(1)
    }, ${(100 * result.aliveFraction).toFixed(0)} % of features fire`,
  );

  // The features with the largest activations, each with its top contexts. The first positions
  // of a window (next to BOS, whose residual norm is large) are skipped: they say little.
  const shown = [...Array(nTok).keys()].filter((p) => p % CONTEXT >= 4);
  const maxAct = new Float32Array(dSae);
  for (const p of shown) {
    for (let j = 0; j < dSae; j++) maxAct[j] = Math.max(maxAct[j], fs[p * dSae + j]);
  }
  const top = [...maxAct.keys()].sort((a, b) => maxAct[b] - maxAct[a]).slice(0, 5);
  const flat = evalTokens.flat();
  for (const feature of top) {
    const positions = [...shown]
      .sort((a, b) => fs[b * dSae + feature] - fs[a * dSae + feature])
      .slice(0, 3);
    log(`  feature ${feature} (max ${maxAct[feature].toFixed(2)}):`);
    for (const p of positions) {
      const start = Math.max(p - 24, p - (p % CONTEXT));
      log(
        `      …${show(flat.slice(start, p))}[${show([flat[p]])}]  ${
          fs[p * dSae + feature].toFixed(2)
        }`,
      );
    }
  }
  loaded.dispose();
  evalModel.dispose();
  return result;
}
