/**
 * A stage graph written by hand: two SAEs on two hooks of the shipped tiny GPT-2, trained from
 * one forward, with a stage of our own that drops the activations at newline tokens, and a logger
 * of our own that keeps the last mse of each SAE. Everything else is saeflow's stages.
 *
 * ```sh
 * deno run -A examples/custom_graph.ts
 * ```
 *
 * The graph:
 *
 * ```
 * source → tokenize → hook (2 hooks) → drop newlines (ours) → buffer → saeStep → log (our sink)
 * ```
 * @module
 */

import { getGpu } from "../gpu/device.ts";
import { gatherRows } from "../gpu/kernels/gather.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LogSink, MetricsEvent } from "../logging/types.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import { graph } from "../pipeline/graph.ts";
import { createTrainingConfig } from "../sae/config.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";
import { createTrainerConfig } from "../sae/training/trainer_config.ts";
import { ActivationBuffer } from "../stages/buffer.ts";
import { hook } from "../stages/hook.ts";
import { logStage } from "../stages/log.ts";
import { createStepUnit, saeStep } from "../stages/sae_step.ts";
import { source } from "../stages/source.ts";
import { encoderFor, tokenize } from "../stages/tokenize.ts";
import type { ActivationBlock } from "../stages/types.ts";

const MODEL = new URL("../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const CORPUS = new URL("../data/tinyshakespeare.txt", import.meta.url).pathname;
const HOOKS = ["blocks.1.hook_resid_post", "blocks.3.hook_mlp_out"];
const NEWLINE = 10; // the byte-level tokenizer's "\n"

/** Our own stage: drops every activation row read at a newline token, for every hook. */
export function dropNewlines(): TransformStream<ActivationBlock, ActivationBlock> {
  return new TransformStream({
    transform(block, controller) {
      const keep: number[] = [];
      block.tokenIds.forEach((t, i) => {
        if (t !== NEWLINE) keep.push(i);
      });
      const idx = Int32Array.from(keep);
      const acts = new Map<string, Tensor>();
      for (const [key, t] of block.acts) {
        acts.set(key, gatherRows(t, idx));
        t.dispose();
      }
      controller.enqueue({
        acts,
        tokenIds: Int32Array.from(keep, (i) => block.tokenIds[i]),
        rows: keep.length,
        cursor: block.cursor,
      });
    },
  });
}

/** Our own logger: remembers the newest mse of each SAE and counts the log events. */
class LastMse implements LogSink {
  readonly name = "last-mse";
  readonly mse = new Map<string, number>();
  logs = 0;
  write(e: MetricsEvent): void {
    if (e.type !== "log") return;
    this.logs++;
    const v = e.values["losses/mse_loss"];
    if (typeof v === "number") this.mse.set(e.sae, v);
  }
  async close(): Promise<void> {}
}

/** Runs the graph; returns the newest mse per hook and the chunks each stage passed. */
export async function runCustomGraph(steps = 30): Promise<{
  mse: Map<string, number>;
  logs: number;
  stats: Map<string, number>;
}> {
  const gpu = await getGpu();
  const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });
  const tok = model.tokenizer!;
  const context = 64, prompts = 8, batch = 256;
  const units = HOOKS.map((hookName, i) =>
    createStepUnit({
      id: hookName,
      hookName,
      sae: TrainingSAE.create(
        createTrainingConfig({
          architecture: i === 0 ? "topk" : "standard",
          dIn: 128,
          dSae: 512,
          k: 16,
        }),
        { gpu, seed: i },
      ),
      trainerConfig: createTrainerConfig({
        totalTrainingSamples: steps * batch,
        trainBatchSizeSamples: batch,
        lr: 1e-3,
        logEvery: 10,
      }),
    })
  );
  const buffer = new ActivationBuffer({
    bufferSize: 16 * context,
    batchSize: batch,
    widths: new Map(units.map((u) => [u.key, u.dIn])),
    blockRows: prompts * context,
    gpu,
  });
  const sink = new LastMse();
  const stats = await graph("source", source({ datasetPath: CORPUS, textSampleBy: "paragraph" }))
    .through(
      "tokenize",
      tokenize({
        contextSize: context,
        blockSize: prompts,
        encode: encoderFor(tok),
        beginBatchTokenId: tok.bosTokenId,
        sequenceSeparatorTokenId: tok.bosTokenId,
      }),
    )
    .through("hook", hook(model, { hooks: HOOKS.map((hookName) => ({ hookName })) }))
    .through("drop newlines", dropNewlines())
    .through("buffer", buffer)
    .through("step", saeStep({ units, checkpoints: false }))
    .through("log", logStage({ progress: false, sinks: [sink] }))
    .run();
  for (const u of units) {
    u.trainer.dispose();
    (u.trainer.sae as TrainingSAE).dispose();
  }
  model.dispose();
  return { mse: sink.mse, logs: sink.logs, stats };
}

if (import.meta.main) {
  const { mse, stats } = await runCustomGraph();
  for (const [hookName, v] of mse) console.log(`${hookName}: mse ${v.toFixed(3)}`);
  console.log("chunks per stage:", Object.fromEntries(stats));
}
