// Bad input through `pipeline.ts train`: each case ends with exit code 1 (2 for a bad command
// line) and one error line naming what was wrong and what was expected, and what was already
// written survives (an earlier SAE in output_path, earlier checkpoints). Most cases run `main`
// in this process; one runs the real process to check stderr holds one line and no stack.

import { main } from "../../pipeline/cli.ts";
import { listCheckpoints } from "../../pipeline/run_folder.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { writeSafetensors } from "../../io/safetensors_write.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals } from "../assert.ts";
import { startMockHub } from "../hub/mock_hub.ts";
import { jsonl, zstd } from "../io/dataset_fixtures.ts";
import { CORPUS, MODEL, runCli, smallConfig, writeConfig } from "./_cli_helpers.ts";

/** In-process runs keep the GPU device and Workers alive between tests. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

const OLD_SAE = new TextEncoder().encode("an SAE written by an earlier run");

/** A temp folder with an earlier run's SAE in `out/` (which no failure may touch). */
async function setup(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_bad_" });
  await Deno.mkdir(join(dir, "out"));
  await Deno.writeFile(join(dir, "out", "sae_weights.safetensors"), OLD_SAE);
  return dir;
}

async function assertOldSaeKept(dir: string): Promise<void> {
  const now = await Deno.readFile(join(dir, "out", "sae_weights.safetensors"));
  assertEquals(now, OLD_SAE, "the earlier SAE in output_path was changed");
}

/** Runs `main(["train", config, ...args])` in process; returns the exit code and its lines. */
async function train(
  dir: string,
  cfg: Record<string, unknown>,
  args: string[] = [],
  hub?: { endpoint: string; cacheDir: string; token: null; offline: false },
): Promise<{ code: number; errors: string[]; lines: string[] }> {
  const path = await writeConfig(dir, "run.yaml", cfg);
  const lines: string[] = [], errors: string[] = [];
  const code = await main(["train", path, ...args], {
    io: { out: (l) => lines.push(l), err: (l) => errors.push(l) },
    signals: false,
    progress: false,
    runner: hub ? { hub } : {},
  });
  return { code, errors, lines: [...lines, ...errors] };
}

function assertOneError(r: { code: number; errors: string[] }, code: number, ...parts: string[]) {
  assertEquals(r.code, code, r.errors.join("\n"));
  assertEquals(r.errors.length, 1, `expected one error line, got:\n${r.errors.join("\n")}`);
  const line = r.errors[0];
  assert(line.startsWith("error: "), line);
  for (const p of parts) assert(line.includes(p), `${JSON.stringify(p)} missing in: ${line}`);
}

test("bad input: a missing dataset file names the path and what a dataset may be", async () => {
  const dir = await setup();
  const missing = join(dir, "nowhere.jsonl");
  const r = await train(dir, smallConfig(dir, { dataset_path: missing }));
  assertOneError(r, 1, missing, "expected a local data file");
  await assertOldSaeKept(dir);
  assertEquals(await listCheckpoints(join(dir, "ck")), []);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: a dataset with no known column lists the columns found", async () => {
  const dir = await setup();
  const file = join(dir, "data.jsonl");
  await Deno.writeTextFile(file, jsonl("body", ["some text", "more text"]));
  const r = await train(dir, smallConfig(dir, { dataset_path: file }));
  assertOneError(r, 1, file, '["body","meta"]', '"text"', '"tokens"');
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: every document shorter than context_size with disable_concat_sequences", async () => {
  const dir = await setup();
  const file = join(dir, "short.txt");
  await Deno.writeTextFile(file, "a short line\nanother one\nand a third\n".repeat(20));
  const r = await train(
    dir,
    smallConfig(dir, { dataset_path: file, disable_concat_sequences: true }),
  );
  assertOneError(r, 1, "32 tokens", "disable_concat_sequences");
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: a hook the model lacks is named with the closest hooks", async () => {
  const dir = await setup();
  const r = await train(dir, smallConfig(dir), ["--hook_name", "blocks.1.hook_resid_pree"]);
  assertOneError(r, 1, '"blocks.1.hook_resid_pree"', "blocks.1.hook_resid_pre,");
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: d_in that disagrees with the hook's width names both", async () => {
  const dir = await setup();
  const r = await train(dir, smallConfig(dir), ["--sae.d_in", "96"]);
  assertOneError(r, 1, "d_in is 96", "width 128");
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: an unwritable output folder is refused before any training", async () => {
  const dir = await setup();
  await Deno.writeTextFile(join(dir, "a_file"), "x");
  const bad = join(dir, "a_file", "sae");
  let steps = 0;
  const path = await writeConfig(dir, "run.yaml", smallConfig(dir, { output_path: bad }));
  const errors: string[] = [];
  const code = await main(["train", path], {
    io: { out: () => {}, err: (l) => errors.push(l) },
    signals: false,
    progress: false,
    runner: { onEvent: (e) => void (e.type === "step" && steps++) },
  });
  assertOneError({ code, errors }, 1, "output_path", bad, "not writable", "nothing was trained");
  assertEquals(steps, 0);
  assertEquals(await listCheckpoints(join(dir, "ck")), []);
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: unknown fields and bad values on the command line are one line, exit 2 / 1", async () => {
  const dir = await setup();
  const cfg = smallConfig(dir);
  assertOneError(await train(dir, cfg, ["--lrr", "1e-3"]), 2, "--lrr", "did you mean --lr");
  assertOneError(await train(dir, cfg, ["--k", "16"]), 2, "did you mean --sae.k");
  assertOneError(
    await train(dir, cfg, ["--sae.l1_coefficient", "2"]),
    2,
    "not a field of a topk SAE",
  );
  assertOneError(
    await train(dir, cfg, ["--logger.wandb_log_freq", "5"]),
    2,
    "did you mean --logger.wandb_log_frequency",
  );
  assertOneError(await train(dir, cfg, ["--lr", "fast"]), 1, 'lr is "fast"', "a number > 0");
  assertOneError(await train(dir, { ...cfg, learning_rate: 1 }), 1, "unknown field learning_rate");
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

/** The shipped model with the embedding of `~` (byte 126) set to NaN, in a temp folder. */
async function nanModel(dir: string): Promise<string> {
  const out = join(dir, "nan-model");
  await Deno.mkdir(out);
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(join(MODEL, f), join(out, f));
  }
  const { tensors } = await readSafetensors(join(MODEL, "model.safetensors"));
  const wte = tensors.get("transformer.wte.weight")!;
  const data = Float32Array.from(wte.data as Float32Array);
  data.fill(NaN, 126 * 128, 127 * 128);
  tensors.set("transformer.wte.weight", { ...wte, data });
  await writeSafetensors(join(out, "model.safetensors"), tensors);
  return out;
}

test("bad input: NaN activations stop the run naming the step; earlier checkpoints stay intact", async () => {
  const dir = await setup();
  // Lines of the corpus; from line 150 on, each carries a '~' (whose embedding is NaN).
  const lines = (await Deno.readTextFile(CORPUS)).split("\n").filter((l) => l.trim()).slice(0, 400);
  const file = join(dir, "data.jsonl");
  await Deno.writeTextFile(file, jsonl("text", lines.map((l, i) => (i < 150 ? l : `${l} ~`))));
  const r = await train(
    dir,
    smallConfig(dir, { model_name: await nanModel(dir), dataset_path: file }),
    [
      "--run-id",
      "nan",
    ],
  );
  assertOneError(r, 1, "the input batch contains NaN", "latest checkpoint is intact");
  const step = Number(/training step (\d+)/.exec(r.errors[0])?.[1]);
  assert(step > 6, `the bad step (${step}) comes after the first checkpoint: ${r.errors[0]}`);
  const kept = await listCheckpoints(join(dir, "ck", "nan"));
  assert(kept.length > 0, "no checkpoint before the NaN");
  assert(r.errors[0].includes(kept.at(-1)!.path), r.errors[0]);
  for (const c of kept) {
    assert(c.samples <= step * 256, `checkpoint ${c.name} written after the bad step ${step}`);
    const { tensors } = await readSafetensors(join(c.path, "sae_weights.safetensors"));
    for (const [name, t] of tensors) {
      assert((t.data as Float32Array).every(Number.isFinite), `${c.name}/${name} is not finite`);
    }
  }
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

test("bad input: an interrupted hub download mid-dataset names the shard; the checkpoints before it resume", async () => {
  const dir = await setup();
  const lines = (await Deno.readTextFile(CORPUS)).split("\n").filter((l) => l.trim());
  // Three shards of ~6k tokens each: the run (6144 tokens, checkpoints from 1792) reaches the
  // third shard only after its checkpoints.
  const files: Record<string, Uint8Array> = {};
  for (let s = 0; s < 3; s++) {
    files[`data/train-0000${s}.jsonl.zst`] = zstd(
      jsonl("text", lines.slice(200 * s, 200 * s + 200)),
    );
  }
  const cacheDir = join(dir, "hf");
  const cfg = smallConfig(dir, { dataset_path: "org/corpus", training_tokens: 256 * 60 });
  {
    await using hub = await startMockHub({ "org/corpus": { type: "dataset", files } });
    hub.breakFile("org/corpus", "data/train-00002.jsonl.zst", "dataset");
    const r = await train(dir, cfg, ["--run-id", "dl"], hub.options(cacheDir));
    assertOneError(r, 1, "shard 3 of 3", "train-00002.jsonl.zst", "interrupted");
    assert((await listCheckpoints(join(dir, "ck", "dl"))).length > 0, r.errors[0]);
  }
  // The hub is back: the run continues from its latest checkpoint.
  await using hub2 = await startMockHub({ "org/corpus": { type: "dataset", files } });
  const lines2: string[] = [];
  const code = await main(["resume", join(dir, "ck", "dl"), "--output_path", join(dir, "out2")], {
    io: { out: (l) => lines2.push(l), err: (l) => lines2.push(l) },
    signals: false,
    progress: false,
    runner: { hub: hub2.options(cacheDir) },
  });
  assertEquals(code, 0, lines2.join("\n"));
  await Deno.stat(join(dir, "out2", "sae_weights.safetensors"));
  await assertOldSaeKept(dir);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad input (process): one line on stderr, no stack trace, exit 1; --debug adds the stack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_bad_proc_" });
  try {
    const path = await writeConfig(
      dir,
      "run.yaml",
      smallConfig(dir, { dataset_path: join(dir, "x.txt") }),
    );
    const r = await runCli(["train", path]);
    assertEquals(r.code, 1, r.output);
    assertEquals(r.stderr.filter((l) => l.trim()).length, 1, r.output);
    assert(r.stderr[0].startsWith("error: no such file or folder: "), r.output);
    const d = await runCli(["train", path, "--debug"]);
    assertEquals(d.code, 1, d.output);
    assert(d.stderr.some((l) => /^\s+at /.test(l)), d.output);
    const u = await runCli(["trian", path]);
    assertEquals(u.code, 2, u.output);
    assertEquals(u.stderr.length, 1, u.output);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
