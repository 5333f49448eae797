/**
 * Cached activations end to end on the shipped tiny GPT-2 and a small generated text dataset:
 * a cache made by `CacheActivationsRunner` is a datasets `save_to_disk` folder holding exactly
 * the live activations; training from it ends with the same SAE weights, bit for bit, as
 * training live; an interrupted cache run resumes to the same bytes; shuffling permutes rows
 * (and positions) without changing what is held; bad caches are refused by name.
 */

import { getGpu } from "../../gpu/device.ts";
import { readAll } from "../../gpu/tensor.ts";
import { harvest } from "../../stages/hook.ts";
import { startCursor } from "../../stages/types.ts";
import { DatasetError } from "../../io/dataset_error.ts";
import { openHfDataset } from "../../io/hf_dataset.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { cacheRunnerConfigFromDict } from "../../pipeline/cache_config.ts";
import {
  CACHE_RUNNER_CFG_FILE,
  CacheActivationsRunner,
  cacheWorkDir,
  runCacheCommand,
  SAEFLOW_CACHE_FILE,
} from "../../pipeline/cache_activations.ts";
import { ActivationsStore } from "../../pipeline/activations_store.ts";
import { pipelineConfigFromDict } from "../../pipeline/config.ts";
import { PretokenizeRunner } from "../../pipeline/pretokenize.ts";
import { pretokenizeConfigFromDict } from "../../pipeline/pretokenize_config.ts";
import { ParquetFile } from "../../io/parquet.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import { SAETrainingRunner } from "../../pipeline/runner.ts";
import { join } from "../../util/path.ts";
import { textDataset, TINY_MODEL } from "./_fixtures.ts";
import { assert, assertAllClose, assertEquals, assertRejects } from "../assert.ts";

const gpu = await getGpu();
const MODEL = TINY_MODEL;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });
const HOOKS = ["blocks.0.hook_resid_post", "blocks.2.hook_resid_pre"];
const HOOK = HOOKS[1];

/** The training settings shared by live and cached runs (tokenization, slice, exclusion). */
function runnerDict(dir: string, data: string, extra: Record<string, unknown> = {}) {
  return {
    model_name: MODEL,
    dataset_path: data,
    hook_name: HOOK,
    sae: { architecture: "topk", d_in: 128, d_sae: 256, k: 8 },
    context_size: 32,
    seqpos_slice: [1, null],
    exclude_special_tokens: true,
    store_batch_size_prompts: 8,
    n_batches_in_buffer: 24,
    train_batch_size_tokens: 256,
    training_tokens: 256 * 10,
    lr: 1e-3,
    seed: 7,
    checkpoint_path: null,
    output_path: join(dir, "out"),
    logger: { log_to_wandb: false },
    ...extra,
  };
}

/** A cache of both hooks: 31 positions × (128 + 128) floats per token, 4 LLM batches a shard. */
function cacheDict(data: string, path: string, extra: Record<string, unknown> = {}) {
  return {
    dataset_path: data,
    model_name: MODEL,
    model_batch_size: 8,
    hook_names: HOOKS,
    d_in: 128,
    training_tokens: 31 * 8 * 30,
    context_size: 32,
    seqpos_slice: [1, null],
    new_cached_activations_path: path,
    shuffle: false,
    buffer_size_gb: (32 * 31 * 256 * 4) / 1e9,
    ...extra,
  };
}

async function weights(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [k, t] of (await readSafetensors(join(dir, "sae_weights.safetensors"))).tensors) {
    out.set(k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return out;
}

function sameWeights(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.length !== v.length || !v.every((x, i) => x === w[i])) return false;
  }
  return true;
}

async function train(cfg: Record<string, unknown>) {
  const c = pipelineConfigFromDict(cfg, { runId: "r" });
  return await new SAETrainingRunner(c, { model, gpu, log: { progress: false } }).run();
}

async function cache(cfg: Record<string, unknown>, signal?: AbortSignal) {
  return await new CacheActivationsRunner(cacheRunnerConfigFromDict(cfg), {
    model,
    gpu,
    signal,
  }).run();
}

/** Rows of a cache as strings "token:activations" per position, for multiset comparisons. */
async function positions(dir: string): Promise<string[]> {
  using ds = await openHfDataset(dir);
  const acts = await ds.readArray2D(HOOK, 0, ds.numRows);
  const toks = await ds.readIntList("token_ids", 0, ds.numRows);
  return Array.from(toks, (t, i) => `${t}:${acts.subarray(i * 128, i * 128 + 128).join(",")}`);
}

Deno.test("cache: training from an unshuffled cache gives exactly the live SAE; a shuffled one does not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const path = join(dir, "acts");
    const r = await cache(cacheDict(data, path));
    assertEquals(r.interrupted, false);
    assertEquals(r.rows, 256);
    assertEquals(r.files.length, 8);
    assertEquals(r.files[0], "data-00000-of-00008.arrow");
    const names = [...Deno.readDirSync(path)].map((e) => e.name).sort();
    assertEquals(
      names,
      [
        CACHE_RUNNER_CFG_FILE,
        ...r.files,
        "dataset_info.json",
        SAEFLOW_CACHE_FILE,
        "state.json",
      ].sort(),
    );
    assertEquals(
      (await Array.fromAsync(Deno.readDir(dir))).some((e) => e.name.includes("partial")),
      false,
    );
    const info = JSON.parse(await Deno.readTextFile(join(path, "dataset_info.json")));
    assertEquals(info.features[HOOK], { shape: [31, 128], dtype: "float32", _type: "Array2D" });
    assertEquals(info.features.token_ids._type, "Sequence");
    const saelensCfg = JSON.parse(await Deno.readTextFile(join(path, CACHE_RUNNER_CFG_FILE)));
    assertEquals(saelensCfg.hook_name, HOOKS[0]);
    assertEquals(saelensCfg.context_size, 32);
    assertEquals(Object.keys(saelensCfg).length, 28);

    // Row 37 holds the activations of its own tokens (BOS in front, position 0 sliced off),
    // and row 37 of a hook column pairs with row 37 of the other hook's.
    {
      using ds = await openHfDataset(path);
      const toks = await ds.readIntList("token_ids", 37, 1);
      const tokens = Int32Array.from([256, ...toks]);
      const direct = await harvest(model, {
        tokens,
        nSeq: 1,
        contextSize: 32,
        cursor: startCursor(),
      }, { hooks: HOOKS.map((hookName) => ({ hookName })), seqposSlice: [1, null] });
      for (const h of HOOKS) {
        const [want] = await readAll([direct.acts.get(h)!]);
        direct.acts.get(h)!.dispose();
        assertAllClose(await ds.readArray2D(h, 37, 1), want as Float32Array, 1e-5, 1e-5, h);
      }
    }

    await train(runnerDict(join(dir, "live"), data));
    const live = await weights(join(dir, "live", "out"));
    await train(runnerDict(join(dir, "cached"), data, {
      use_cached_activations: true,
      cached_activations_path: path,
      dataset_path: "",
      n_eval_batches: 0,
    }));
    const fromCache = await weights(join(dir, "cached", "out"));
    assertEquals([...fromCache.keys()].sort(), [...live.keys()].sort());
    for (const [k, v] of live) assertEquals(fromCache.get(k), v, k);

    // SAELens's ActivationsStore API serves the same batches from the cache as live.
    const storeOptions = {
      model,
      dataset: data,
      hookName: HOOK,
      contextSize: 32,
      dIn: 128,
      seqposSlice: [1, null],
      excludeSpecialTokens: true,
      storeBatchSizePrompts: 8,
      nBatchesInBuffer: 24,
      trainBatchSizeTokens: 256,
      seed: 3,
    };
    const liveStore = new ActivationsStore(storeOptions);
    const cachedStore = new ActivationsStore({ ...storeOptions, cachedActivationsPath: path });
    try {
      for (let i = 0; i < 3; i++) {
        const [a, b] = [await liveStore.nextBatch(), await cachedStore.nextBatch()];
        const [x, y] = await readAll([a, b]);
        a.dispose();
        b.dispose();
        assertEquals(y, x, `store batch ${i}`);
      }
    } finally {
      await liveStore.close();
      await cachedStore.close();
    }

    // Shuffled (sequences across the cache, positions within shards): same positions held,
    // other order — and other weights, so the comparison above can fail.
    const mixed = join(dir, "mixed");
    await cache(cacheDict(data, mixed, { shuffle: true, shuffle_across_sequences: true }));
    const a = await positions(path), b = await positions(mixed);
    assertEquals([...b].sort(), [...a].sort());
    assert(b.some((x, i) => x !== a[i]), "shuffling changed nothing");
    await train(runnerDict(join(dir, "mixed-run"), data, {
      use_cached_activations: true,
      cached_activations_path: mixed,
    }));
    assert(!sameWeights(await weights(join(dir, "mixed-run", "out")), live));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: an interrupted run resumes after its last complete shard to the same bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const whole = join(dir, "whole");
    await cache(cacheDict(data, whole));
    const path = join(dir, "acts");
    const controller = new AbortController();
    let batches = 0;
    const first = await new CacheActivationsRunner(
      cacheRunnerConfigFromDict(cacheDict(data, path)),
      {
        model,
        gpu,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === "harvest" && ++batches === 10) controller.abort();
        },
      },
    ).run();
    assertEquals(first.interrupted, true);
    assertEquals(await Deno.stat(path).catch(() => null), null); // nothing under the final name
    const work = cacheWorkDir(path);
    const shards = [...Deno.readDirSync(join(work, "harvest"))].map((e) => e.name).sort();
    assertEquals(shards, [
      "shard_00000.arrow",
      "shard_00000.json",
      "shard_00001.arrow",
      "shard_00001.json",
    ]);
    // Another config over the partial cache is refused, naming what differs.
    await assertRejects(
      () => cache(cacheDict(data, path, { seed: 1 })),
      PipelineError,
      /other settings .*seed \(partial: 42, now: 1\)/,
    );
    const second = await cache(cacheDict(data, path));
    assertEquals(second.resumedShards, 2);
    assertEquals(second.interrupted, false);
    for (const f of second.files) {
      assertEquals(await Deno.readFile(join(path, f)), await Deno.readFile(join(whole, f)), f);
    }
    const state = (p: string) => Deno.readTextFile(join(p, "state.json")).then(JSON.parse);
    assertEquals((await state(path))._data_files, (await state(whole))._data_files);
    // The target must be empty: a second run into the finished folder is refused.
    await assertRejects(() => cache(cacheDict(data, path)), PipelineError, /not empty/);

    // Stopped while writing the shuffled files: the rerun writes the same files.
    const mix = { shuffle: true, shuffle_across_sequences: true, training_tokens: 31 * 8 * 12 };
    const wholeMixed = await cache(cacheDict(data, join(dir, "whole-mixed"), mix));
    const stop = new AbortController();
    const partial = await new CacheActivationsRunner(
      cacheRunnerConfigFromDict(cacheDict(data, join(dir, "mixed"), mix)),
      {
        model,
        gpu,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.phase === "shuffle") stop.abort();
        },
      },
    ).run();
    assertEquals(partial.interrupted, true);
    const finished = await cache(cacheDict(data, join(dir, "mixed"), mix));
    assertEquals(finished.resumedShards, 3);
    assertEquals(finished.files, wholeMixed.files);
    for (const f of finished.files) {
      assertEquals(
        await Deno.readFile(join(finished.path, f)),
        await Deno.readFile(join(wholeMixed.path, f)),
        f,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: training from a cache stopped at a checkpoint resumes to the uninterrupted weights", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const path = join(dir, "acts");
    await cache(cacheDict(data, path, { hook_names: [HOOK], shuffle: true }));
    const cached = { use_cached_activations: true, cached_activations_path: path };
    await train(runnerDict(join(dir, "whole"), data, cached));
    const whole = await weights(join(dir, "whole", "out"));
    const controller = new AbortController();
    let steps = 0;
    const first = await new SAETrainingRunner(
      pipelineConfigFromDict(
        runnerDict(join(dir, "part"), data, { ...cached, checkpoint_path: join(dir, "ck") }),
        { runId: "r" },
      ),
      {
        model,
        gpu,
        log: { progress: false },
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === "step" && ++steps === 4) controller.abort();
        },
      },
    ).run();
    assertEquals(first.interrupted, true);
    assert(first.tokens > 0 && first.tokens < 2560, `stopped after ${first.tokens} tokens`);
    assert(first.checkpoints.length > 0);
    await train(runnerDict(join(dir, "resumed"), data, {
      ...cached,
      resume_from_checkpoint: first.checkpoints.at(-1),
    }));
    const resumed = await weights(join(dir, "resumed", "out"));
    for (const [k, v] of whole) assertEquals(resumed.get(k), v, k);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: the cache command reads a YAML config with --key value overrides", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const cfgPath = join(dir, "cache.yaml");
    const d = cacheDict(data, join(dir, "ignored"), { training_tokens: 31 * 8 * 4 });
    await Deno.writeTextFile(
      cfgPath,
      Object.entries(d).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n",
    );
    const r = await runCacheCommand(
      [cfgPath, "--new_cached_activations_path", join(dir, "cmd"), "--model_batch_size=4"],
      { model, gpu, quiet: true },
    );
    assertEquals(r.path, join(dir, "cmd"));
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "cmd", CACHE_RUNNER_CFG_FILE)));
    assertEquals(saved.model_batch_size, 4);
    assertEquals(r.rows % 4, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: context_size -1 takes a pretokenized dataset's row length (pretokenize → cache)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const pretok = await new PretokenizeRunner(
      pretokenizeConfigFromDict({
        tokenizer_name: MODEL,
        dataset_path: data,
        context_size: 24,
        shuffle: false,
        num_proc: 1,
        save_path: join(dir, "pretok"),
      }),
      { tokenizer: model.tokenizer! },
    ).run();
    const r = await cache(cacheDict(pretok.path, join(dir, "acts"), {
      context_size: -1,
      seqpos_slice: [null],
      training_tokens: 24 * 8 * 4,
      hook_names: [HOOK],
    }));
    using ds = await openHfDataset(r.path);
    assertEquals(ds.features.get(HOOK), { type: "Array2D", shape: [24, 128], dtype: "float32" });
    const saved = JSON.parse(await Deno.readTextFile(join(r.path, CACHE_RUNNER_CFG_FILE)));
    assertEquals(saved.context_size, 24);
    // The rows are the pretokenized rows, in order.
    using pq = await ParquetFile.open(join(pretok.path, pretok.files[0]));
    const first = (await pq.readRange("input_ids", 0, 2)) as number[][];
    assertEquals([...await ds.readIntList("token_ids", 0, 2)], [...first[0], ...first[1]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: caches made for another hook, context, width or packing are refused by name; damaged caches name the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await textDataset(dir, { rows: 300, seed: 4 });
    const path = join(dir, "acts");
    const made = await cache(
      cacheDict(data, path, {
        training_tokens: 31 * 8 * 4,
        hook_names: [HOOK],
        buffer_size_gb: (16 * 31 * 128 * 4) / 1e9,
      }),
    );
    assertEquals(made.files.length, 2);
    const run = (extra: Record<string, unknown>) =>
      train(runnerDict(join(dir, "run"), data, {
        use_cached_activations: true,
        cached_activations_path: path,
        ...extra,
      }));
    await assertRejects(
      () => run({ hook_name: "blocks.1.hook_resid_post" }),
      PipelineError,
      /made at hook\(s\) \["blocks\.2\.hook_resid_pre"\], but .*"blocks\.1\.hook_resid_post"/,
    );
    await assertRejects(
      () => run({ context_size: 16 }),
      PipelineError,
      /context_size = 32, but this run has context_size = 16/,
    );
    await assertRejects(
      () => run({ sae: { architecture: "topk", d_in: 64, d_sae: 256, k: 8 } }),
      PipelineError,
      /d_in 128 at blocks\.2\.hook_resid_pre, but SAE .* has d_in 64/,
    );
    await assertRejects(
      () => run({ disable_concat_sequences: true }),
      PipelineError,
      /disable_concat_sequences = false, but this run has disable_concat_sequences = true/,
    );
    await assertRejects(
      () => run({ sequence_separator_token: "eos" }),
      PipelineError,
      /sequence_separator_token = "bos", but this run has sequence_separator_token = "eos"/,
    );
    await assertRejects(
      () => run({ hook_head_index: 1 }),
      PipelineError,
      /hook_head_index 1 cannot be read from cached activations/,
    );

    // A cache SAELens made has no saeflow_cache.json: its shapes are still checked.
    await Deno.rename(join(path, SAEFLOW_CACHE_FILE), join(dir, "meta.json"));
    await assertRejects(
      () => run({ context_size: 16 }),
      PipelineError,
      /rows have 31 positions .* this run's context is 15 positions/,
    );
    await assertRejects(
      () => run({ hook_name: "blocks.1.hook_resid_post" }),
      PipelineError,
      /holds activations of \["blocks\.2\.hook_resid_pre"\], not of "blocks\.1\.hook_resid_post"/,
    );
    await Deno.rename(join(dir, "meta.json"), join(path, SAEFLOW_CACHE_FILE));

    // Damaged: a truncated data file, a missing one, a missing state.json.
    const file = join(path, "data-00001-of-00002.arrow");
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.subarray(0, bytes.length - 100));
    await assertRejects(() => run({}), DatasetError, /data-00001-of-00002\.arrow is truncated/);
    await Deno.remove(file);
    await assertRejects(() => run({}), DatasetError, /cannot open .*data-00001-of-00002\.arrow/);
    await Deno.writeFile(file, bytes);
    await Deno.remove(join(path, "state.json"));
    await assertRejects(() => run({}), DatasetError, /has no state\.json/);
    await assertRejects(
      () => run({ cached_activations_path: join(dir, "nowhere") }),
      DatasetError,
      /no such folder/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
