/**
 * Evals during training (SAELens's LLMSaeEvaluator): `eval` events appear in the metrics stream
 * every `wandb_log_frequency × eval_every_n_wandb_logs` steps for every SAE, reach the JSONL
 * metrics file, and — drawing their tokens from a stream of their own — leave the trained
 * weights bit-for-bit what a run without evals gives. `n_eval_batches: 0` turns them off.
 */

import { getGpu } from "../../gpu/device.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { pipelineConfigFromDict } from "../../pipeline/config.ts";
import { SAETrainingRunner } from "../../pipeline/runner.ts";
import type { MetricsEvent } from "../../stages/types.ts";
import { join } from "../../util/path.ts";
import { textDataset, TINY_MODEL } from "./_fixtures.ts";
import { assert, assertEquals } from "../assert.ts";

const gpu = await getGpu();
const MODEL = TINY_MODEL;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });

function config(dir: string, data: string, nEvalBatches: number) {
  return pipelineConfigFromDict({
    model_name: MODEL,
    dataset_path: data,
    context_size: 32,
    store_batch_size_prompts: 4,
    n_batches_in_buffer: 16,
    train_batch_size_tokens: 128,
    training_tokens: 128 * 8,
    lr: 1e-3,
    seed: 3,
    saes: {
      a: { architecture: "standard", d_in: 128, d_sae: 256 },
      b: { architecture: "topk", d_in: 128, d_sae: 256, k: 8 },
    },
    hook_names: { a: "blocks.1.hook_resid_pre", b: "blocks.2.hook_mlp_out" },
    n_eval_batches: nEvalBatches,
    eval_batch_size_prompts: 2,
    exclude_special_tokens: true,
    checkpoint_path: join(dir, "ckpt"),
    output_path: join(dir, "out"),
    logger: { log_to_wandb: false, wandb_log_frequency: 2, eval_every_n_wandb_logs: 2 },
  }, { runId: "e" });
}

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of (await readSafetensors(join(dir, "sae_weights.safetensors"))).tensors) {
    out.set(k, t.data as Float32Array);
  }
  return out;
}

Deno.test("runner: eval events every 4 steps for every SAE, in the JSONL file, weights unchanged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, {
      rows: 150,
      seed: 5,
      words: ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"],
    });
    const events: MetricsEvent[] = [];
    await new SAETrainingRunner(config(join(dir, "with"), data, 2), {
      model,
      gpu,
      log: { progress: false, metricsFile: join(dir, "with", "metrics.jsonl") },
      onEvent: (e) => events.push(e),
    }).run();
    const evals = events.filter((e) => e.type === "eval");
    assertEquals(
      evals.map((e) => e.type === "eval" ? `${e.sae}@${e.step}` : ""),
      ["a@3", "b@3", "a@7", "b@7"],
    );
    for (const e of evals) {
      if (e.type !== "eval") continue;
      const v = e.values;
      const score = v["model_performance_preservation/ce_loss_score"] as number;
      assert(Number.isFinite(score), `${e.sae}: ce_loss_score ${score}`);
      assertEquals(v["token_stats/total_tokens_eval_reconstruction"], 32 * 2 * 2);
      assert(Number.isFinite(v["reconstruction_quality/explained_variance"] as number));
      assert(Number.isFinite(v["sparsity/l0"] as number));
      assertEquals((v["weights/W_dec_norms"] as number[]).length, 256);
      assert(!("model_behavior_preservation/kl_div_score" in v), "no KL during training");
      assertEquals("weights/b_e" in v, e.sae === "a", "b_e histogram for the standard SAE");
      assertEquals(e.tokens, (e.step + 1) * 128);
    }
    const lines = (await Deno.readTextFile(join(dir, "with", "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    assertEquals(lines.filter((l) => l.event === "eval").length, 4);

    const quiet: MetricsEvent[] = [];
    await new SAETrainingRunner(config(join(dir, "without"), data, 0), {
      model,
      gpu,
      log: { progress: false },
      onEvent: (e) => quiet.push(e),
    }).run();
    assertEquals(quiet.filter((e) => e.type === "eval").length, 0);
    for (const id of ["a", "b"]) {
      const w = await weights(join(dir, "with", "out", id));
      const wo = await weights(join(dir, "without", "out", id));
      for (const [k, v] of wo) assertEquals(w.get(k), v, `${id} ${k}: evals moved training`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
