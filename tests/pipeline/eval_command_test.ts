/**
 * `pipeline.ts eval` (SAELens's batch eval CLI): one SAE folder, a folder of SAE folders, and a
 * registry release served by the mock hub (SAE and model through the hub); the JSON and CSV files
 * SAELens writes, with the numbers runEvals gives; a failing SAE does not lose the others'
 * results; bad arguments are EvalErrors.
 */

import { getGpu } from "../../gpu/device.ts";
import { serializeSafetensors } from "../../io/safetensors.ts";
import { EvalError } from "../../evals/config.ts";
import { getEvalEverythingConfig } from "../../evals/config.ts";
import { runEvals } from "../../evals/run_evals.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { ActivationsStore } from "../../pipeline/activations_store.ts";
import {
  parseEvalArgs,
  resultFileName,
  resultsToCsv,
  runEvalCommand,
} from "../../pipeline/eval_command.ts";
import { SAE } from "../../sae/sae.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { startMockHub } from "../hub/mock_hub.ts";
import { identityParams, MODEL_DIR, noisyParams } from "../evals/_helpers.ts";

const gpu = await getGpu();
const TEXT = new URL("../../data/tinyshakespeare.txt", import.meta.url).pathname;
const FAST = ["--batch-size-prompts", "2", "--n-eval-reconstruction-batches", "1"];

async function saveSae(dir: string, hookName: string, seed: number, dIn = 128): Promise<SAE> {
  const sae = await SAE.fromParams(
    {
      architecture: "standard",
      dIn,
      dSae: 2 * dIn,
      metadata: { modelName: MODEL_DIR, hookName, contextSize: 32, prependBos: true },
    },
    noisyParams(dIn, "standard", seed),
    { gpu },
  );
  await sae.saveModel(dir);
  return sae;
}

function quiet() {
  const lines: string[] = [];
  return { lines, write: (t: string) => void lines.push(t) };
}

Deno.test("eval: one SAE folder writes SAELens's files with runEvals's numbers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using sae = await saveSae(join(dir, "saes", "layer1"), "blocks.1.hook_resid_pre", 1);
    const out = join(dir, "results");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "keep.txt"), "mine");
    const q = quiet();
    const r = await runEvalCommand(
      [
        join(dir, "saes", "layer1"),
        "--dataset",
        TEXT,
        "--context-size",
        "32",
        ...FAST,
        "--output-dir",
        out,
      ],
      { gpu, write: q.write },
    );
    assert(r !== null);
    assertEquals(r.results.length, 1);
    const res = r.results[0] as Record<string, Record<string, unknown>>;
    assertEquals(Object.keys(res), [
      "unique_id",
      "sae_set",
      "sae_id",
      "eval_cfg",
      "metrics",
      "feature_metrics",
      "sae_cfg",
    ]);
    assertEquals(res.unique_id as unknown, "saes-layer1");
    assertEquals(res.eval_cfg.context_size, 32);
    assertEquals(res.eval_cfg.dataset, TEXT);
    assertEquals(res.eval_cfg.compute_kl, true);
    assertEquals(res.eval_cfg.batch_size_prompts, 2);
    assertEquals(res.sae_cfg.d_in, 128);
    const name = `saes-layer1_32_${TEXT.replaceAll("/", "_")}.json`;
    assertEquals(resultFileName("saes-layer1", 32, TEXT), name);
    assertEquals(
      [...Deno.readDirSync(out)].map((e) => e.name).sort(),
      [name, "all_eval_results.csv", "all_eval_results.json", "keep.txt"].sort(),
    );
    const single = JSON.parse(await Deno.readTextFile(join(out, name)));
    assertEquals(single, JSON.parse(JSON.stringify(res)));
    assertEquals(JSON.parse(await Deno.readTextFile(join(out, "all_eval_results.json"))), [single]);
    assertEquals(await Deno.readTextFile(join(out, "keep.txt")), "mine");
    // The same numbers as runEvals over the store SAELens's CLI builds.
    const model = await HookedTransformer.fromPretrainedForSae(sae, { gpu });
    const store = ActivationsStore.fromSae({ model, sae, dataset: TEXT, storeBatchSizePrompts: 2 });
    const direct = await runEvals(
      sae,
      store,
      model,
      getEvalEverythingConfig({
        batchSizePrompts: 2,
        nEvalReconstructionBatches: 1,
      }),
    );
    await store.close();
    model.dispose();
    assertEquals(single.metrics, direct.metrics);
    assertEquals(single.feature_metrics.feature_density, direct.featureMetrics.feature_density);
    // consistent_activation_heuristic of a feature that never fired is NaN, written as -1.
    const cah = direct.featureMetrics.consistent_activation_heuristic;
    assertEquals(
      single.feature_metrics.consistent_activation_heuristic,
      cah.map((v) => (Number.isNaN(v) ? -1 : v)),
    );
    // CSV: one row; nested keys joined with "."; lists as Python lists.
    const csv = (await Deno.readTextFile(join(out, "all_eval_results.csv"))).trimEnd().split("\n");
    assertEquals(csv.length, 2);
    const header = csv[0].split(",");
    for (
      const col of [
        "unique_id",
        "eval_cfg.context_size",
        "metrics.model_performance_preservation.ce_loss_score",
        "metrics.reconstruction_quality.explained_variance",
        "feature_metrics.feature_density",
        "sae_cfg.metadata.hook_name",
      ]
    ) assert(header.includes(col), `column ${col}`);
    assert(csv[1].startsWith("saes-layer1,saes,layer1,32,"), csv[1].slice(0, 60));
    assert(q.lines.join("").includes("Evaluation complete"), q.lines.join(""));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval: a folder of SAE folders, --sae-regex, and a failing SAE keeps the others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    (await saveSae(join(dir, "saes", "a_layer1"), "blocks.1.hook_resid_pre", 2)).dispose();
    (await saveSae(join(dir, "saes", "b_layer2"), "blocks.2.hook_resid_pre", 3)).dispose();
    (await saveSae(join(dir, "saes", "c_bad"), "blocks.2.hook_resid_pre", 4, 64)).dispose();
    const base = [join(dir, "saes"), "--dataset", TEXT, "--ctx_lens", "16", ...FAST];
    const some = await runEvalCommand(
      [...base, "--sae-regex", "[ab]_.*", "--output-dir", join(dir, "ab")],
      { gpu, write: quiet().write },
    );
    assertEquals(some!.results.map((r) => r.unique_id), ["saes-a_layer1", "saes-b_layer2"]);
    const all = JSON.parse(await Deno.readTextFile(join(dir, "ab", "all_eval_results.json")));
    assertEquals(all.length, 2);
    const csv = (await Deno.readTextFile(join(dir, "ab", "all_eval_results.csv"))).trimEnd();
    assertEquals(csv.split("\n").length, 3);
    // c_bad's d_in (64) does not fit the model: the command fails naming it, after writing the
    // results of the other two.
    const q = quiet();
    await assertRejects(
      () => runEvalCommand([...base, "--output-dir", join(dir, "all")], { gpu, write: q.write }),
      EvalError,
      "1 of 3 SAEs failed",
    );
    assert(q.lines.join("").includes("saes/c_bad failed"), q.lines.join(""));
    const written = JSON.parse(await Deno.readTextFile(join(dir, "all", "all_eval_results.json")));
    assertEquals(written.map((r: { sae_id: string }) => r.sae_id), ["a_layer1", "b_layer2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval: registry releases through the mock hub (SAEs and the model)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const jb = (hook: string) => ({
      model_name: "gpt2-small",
      hook_point: hook,
      hook_point_layer: Number(hook.split(".")[1]),
      hook_point_head_index: null,
      dataset_path: "Skylion007/openwebtext",
      context_size: 128,
      d_in: 128,
      d_sae: 256,
      dtype: "torch.float32",
      device: "cpu",
      prepend_bos: true,
    });
    const weights = (seed: number) =>
      serializeSafetensors(
        Object.fromEntries(
          Object.entries(seed < 0 ? identityParams(128) : noisyParams(128, "standard", seed)).map((
            [k, data],
          ) => [
            k,
            {
              dtype: "F32" as const,
              shape: k === "W_enc" ? [128, 256] : k === "W_dec" ? [256, 128] : [data.length],
              data,
            },
          ]),
        ),
      );
    const modelFiles: Record<string, Uint8Array> = {};
    for (
      const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    ) {
      modelFiles[f] = await Deno.readFile(join(MODEL_DIR, f));
    }
    await using hub = await startMockHub({
      "jbloom/GPT2-Small-SAEs-Reformatted": {
        files: {
          "blocks.0.hook_resid_pre/cfg.json": JSON.stringify(jb("blocks.0.hook_resid_pre")),
          "blocks.0.hook_resid_pre/sae_weights.safetensors": weights(-1),
          "blocks.1.hook_resid_pre/cfg.json": JSON.stringify(jb("blocks.1.hook_resid_pre")),
          "blocks.1.hook_resid_pre/sae_weights.safetensors": weights(5),
        },
      },
      "gpt2": { files: modelFiles },
    });
    const hubOpts = { endpoint: hub.url, cacheDir: join(dir, "hf"), token: null };
    const q = quiet();
    const r = await runEvalCommand([
      "--release-regex",
      "gpt2-small-res-jb",
      "--sae-regex",
      "blocks\\.[01]\\.hook_resid_pre",
      "--datasets",
      TEXT,
      "--context-size",
      "16",
      ...FAST,
      "--output-dir",
      join(dir, "out"),
      "--verbose",
    ], { gpu, hub: hubOpts, write: q.write });
    assertEquals(r!.results.map((x) => x.unique_id), [
      "gpt2-small-res-jb-blocks.0.hook_resid_pre",
      "gpt2-small-res-jb-blocks.1.hook_resid_pre",
    ]);
    const first = r!.results[0] as Record<string, Record<string, Record<string, unknown>>>;
    // The identity SAE at layer 0 scores exactly 1, through the hub-loaded model.
    assertEquals(first.metrics.model_performance_preservation.ce_loss_score, 1);
    assertEquals(first.metrics.reconstruction_quality.explained_variance, 1);
    assertEquals(first.sae_cfg.metadata.neuronpedia_id, "gpt2-small/0-res-jb");
    assertEquals(first.sae_set as unknown, "gpt2-small-res-jb");
    assert(hub.count({ path: "model.safetensors" }) > 0, "the model came from the hub");
    assert(q.lines.join("").includes("reconstruction 1/1"), "verbose progress");
    const files = [...Deno.readDirSync(join(dir, "out"))].map((e) => e.name).sort();
    assertEquals(files, [
      "all_eval_results.csv",
      "all_eval_results.json",
      `gpt2-small-res-jb-blocks.0.hook_resid_pre_16_${TEXT.replaceAll("/", "_")}.json`,
      `gpt2-small-res-jb-blocks.1.hook_resid_pre_16_${TEXT.replaceAll("/", "_")}.json`,
    ]);
    // A release named as a target, filtered by --sae-regex.
    const one = await runEvalCommand([
      "gpt2-small-res-jb",
      "--sae-regex",
      "blocks\\.1\\.hook_resid_pre",
      "--dataset",
      TEXT,
      "--context-size",
      "16",
      ...FAST,
      "--output-dir",
      join(dir, "one"),
    ], { gpu, hub: hubOpts, write: quiet().write });
    assertEquals(one!.results.map((x) => x.sae_id), ["blocks.1.hook_resid_pre"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval: arguments (SAELens spellings, usage, errors)", async () => {
  const a = parseEvalArgs([
    "x",
    "--batch_size_prompts=4",
    "--datasets",
    "d1",
    "d2",
    "--compute_kl",
    "--output_dir",
    "o",
  ]);
  assertEquals(a.batchSizePrompts, 4);
  assertEquals(a.datasets, ["d1", "d2"]);
  assertEquals(a.ignoredSwitches, ["--compute-kl"]);
  assertEquals([a.targets, a.outputDir, a.contextSizes], [["x"], "o", [128]]);
  assertEquals(parseEvalArgs([]).datasets, ["Skylion007/openwebtext"]);
  assertThrows(() => parseEvalArgs(["--batch-sise-prompts", "2"]), EvalError, "did you mean");
  assertThrows(() => parseEvalArgs(["--context-size", "0"]), EvalError, "whole number >= 1");
  assertThrows(() => parseEvalArgs(["--dataset"]), EvalError, "expected a value");
  const q = quiet();
  assertEquals(await runEvalCommand(["--help"], { write: q.write }), null);
  assert(q.lines.join("").startsWith("usage: pipeline.ts eval"));
  await assertRejects(() => runEvalCommand([], { write: q.write }), EvalError, "no SAEs given");
  await assertRejects(
    () => runEvalCommand(["gpt2-small-res-j"], { write: q.write }),
    EvalError,
    "did you mean gpt2-small-res-jb",
  );
  await assertRejects(
    () => runEvalCommand(["--release-regex", "(", "--sae-regex", "x"], { write: q.write }),
    EvalError,
    "not a valid regular expression",
  );
  await assertRejects(
    () => runEvalCommand(["--release-regex", "no-such-release.*"], { write: q.write }),
    EvalError,
    "no SAEs matched",
  );
  assertEquals(resultFileName("../x", 8, "a/b"), "__x_8_a_b.json");
  assertEquals(
    resultsToCsv([{ a: { b: 1, c: [1, 2] }, s: "x,y" }, { a: { b: true }, t: null }]),
    'a.b,a.c,s,t\n1,"[1, 2]","x,y",\nTrue,,,\n',
  );
});
