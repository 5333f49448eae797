/**
 * The training runner end to end on the shipped tiny GPT-2 and a small generated text dataset:
 * SAELens's output layout and metadata, and several SAEs trained from one forward ending with
 * exactly the weights each gets when trained alone.
 */

import { getGpu } from "../../gpu/device.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { pipelineConfigFromDict } from "../../pipeline/config.ts";
import { SAETrainingRunner } from "../../pipeline/runner.ts";
import { SAE } from "../../sae/sae.ts";
import { join } from "../../util/path.ts";
import { textDataset, TINY_MODEL } from "./_fixtures.ts";
import { assert, assertEquals } from "../assert.ts";

const gpu = await getGpu();
const MODEL = TINY_MODEL;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });

function base(dir: string, data: string): Record<string, unknown> {
  return {
    model_name: MODEL,
    dataset_path: data,
    context_size: 32,
    store_batch_size_prompts: 8,
    n_batches_in_buffer: 24,
    train_batch_size_tokens: 256,
    training_tokens: 256 * 10,
    lr: 1e-3,
    seed: 7,
    checkpoint_path: join(dir, "ckpt"),
    output_path: join(dir, "out"),
    logger: { log_to_wandb: false, wandb_log_frequency: 5 },
  };
}

async function weights(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [k, t] of (await readSafetensors(join(dir, "sae_weights.safetensors"))).tensors) {
    out.set(k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return out;
}

Deno.test("runner: one SAE on the tiny model writes SAELens's output folder with its metadata", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 200, seed: 4 });
    const cfg = pipelineConfigFromDict({
      ...base(dir, data),
      hook_name: "blocks.1.hook_resid_post",
      sae: { architecture: "topk", d_in: 128, d_sae: 256, k: 8 },
      n_checkpoints: 2,
    }, { runId: "r" });
    const events: string[] = [];
    const r = await new SAETrainingRunner(cfg, {
      model,
      gpu,
      log: { progress: false },
      onEvent: (e) => events.push(e.type),
    }).run();
    assertEquals(r.tokens, 2560);
    assertEquals(r.interrupted, false);
    assertEquals(r.checkpoints.length, 2);
    const out = join(dir, "out");
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assertEquals(names, [
      "cfg.json",
      "runner_cfg.json",
      "sae_weights.safetensors",
      "sparsity.safetensors",
    ]);
    const saved = JSON.parse(await Deno.readTextFile(join(out, "cfg.json")));
    assertEquals(saved.architecture, "topk");
    assertEquals(saved.metadata.model_name, MODEL);
    assertEquals(saved.metadata.hook_name, "blocks.1.hook_resid_post");
    assertEquals(saved.metadata.context_size, 32);
    assertEquals(saved.metadata.prepend_bos, true);
    assertEquals(saved.metadata.dataset_path, data);
    const runnerCfg = JSON.parse(await Deno.readTextFile(join(out, "runner_cfg.json")));
    assertEquals(runnerCfg.training_tokens, 2560);
    const ck = r.checkpoints[0];
    for (
      const f of [
        "cfg.json",
        "runner_cfg.json",
        "pipeline_state.safetensors",
        "activations_store_state.safetensors",
        "trainer_state.json",
      ]
    ) {
      assert((await Deno.stat(join(ck, f))).isFile, `${f} in ${ck}`);
    }
    assert(events.includes("log") && events.includes("end") && events.includes("checkpoint"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runner: several SAEs from one forward end with the weights each gets alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 200, seed: 4 });
    const a = { architecture: "topk", d_in: 128, d_sae: 256, k: 8 };
    const b = { architecture: "standard", d_in: 128, d_sae: 192, l1_coefficient: 2 };
    const hooks = { a: "blocks.0.hook_resid_post", b: "blocks.2.hook_resid_pre" };
    const multi = pipelineConfigFromDict({
      ...base(join(dir, "multi"), data),
      saes: { a, b },
      hook_names: hooks,
    }, { runId: "m" });
    const r = await new SAETrainingRunner(multi, { model, gpu, log: { progress: false } }).run();
    assertEquals([...r.saes.keys()], ["a", "b"]);
    for (const [name, sae] of [["a", a], ["b", b]] as const) {
      const single = pipelineConfigFromDict({
        ...base(join(dir, name), data),
        hook_name: hooks[name],
        sae,
      }, { runId: "s" });
      await new SAETrainingRunner(single, { model, gpu, log: { progress: false } }).run();
      const together = await weights(join(dir, "multi", "out", name));
      const alone = await weights(join(dir, name, "out"));
      assertEquals([...together.keys()].sort(), [...alone.keys()].sort());
      for (const [k, v] of alone) assertEquals(together.get(k), v, `${name} ${k}`);
    }
    assert((await Deno.stat(join(dir, "multi", "out", "runner_cfg.json"))).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runner: a transcoder trains from blocks.1.mlp.hook_in to blocks.1.hook_mlp_out (one forward)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 200, seed: 4 });
    const cfg = pipelineConfigFromDict({
      ...base(dir, data),
      lr: 1e-2,
      training_tokens: 256 * 30,
      hook_name: "blocks.1.mlp.hook_in",
      sae: {
        architecture: "skip_transcoder",
        d_in: 128,
        d_sae: 256,
        d_out: 128,
        apply_b_dec_to_input: false,
        l1_coefficient: 0.1,
        metadata: { hook_name_out: "blocks.1.hook_mlp_out" },
      },
    }, { runId: "t" });
    assertEquals(cfg.saes[0].hookNameOut, "blocks.1.hook_mlp_out");
    const mse: number[] = [];
    const r = await new SAETrainingRunner(cfg, {
      model,
      gpu,
      log: { progress: false },
      onEvent: (e) => {
        if (e.type === "log" && typeof e.values["losses/mse_loss"] === "number") {
          mse.push(e.values["losses/mse_loss"] as number);
        }
      },
    }).run();
    assertEquals(r.tokens, 256 * 30);
    assert(mse.length >= 3 && mse.at(-1)! < 0.5 * mse[0], `mse ${mse[0]} → ${mse.at(-1)}`);
    // The exported transcoder predicts the MLP output from the MLP input of the same tokens.
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "out", "cfg.json")));
    assertEquals(saved.architecture, "skip_transcoder");
    assertEquals(saved.metadata.hook_name, "blocks.1.mlp.hook_in");
    assertEquals(saved.metadata.hook_name_out, "blocks.1.hook_mlp_out");
    const sae = await SAE.loadFromDisk(join(dir, "out"));
    const names = ["blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out"];
    const { cache } = await model.runWithCache(
      model.toTokens("the king and queen of rome shall speak"),
      {
        namesFilter: names,
      },
    );
    const x = cache.get(names[0])!, y = cache.get(names[1])!;
    const yHat = await sae.forward(x).toArray(), yv = await y.toArray();
    let err = 0, varY = 0, mean = 0;
    for (const v of yv) mean += v / yv.length;
    for (let k = 0; k < yv.length; k++) {
      err += (yHat[k] - yv[k]) ** 2;
      varY += (yv[k] - mean) ** 2;
    }
    assert(err / varY < 0.5, `fraction of variance unexplained ${err / varY}`);
    for (const t of cache.values()) t.dispose();
    sae.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
