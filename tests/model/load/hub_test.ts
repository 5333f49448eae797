// Loading models by name through the mock hub (never the real one): a TL alias resolved to its
// repo (the shipped tiny GPT-2 served as "gpt2", checked against its reference values), a sharded
// checkpoint, cache reuse without file GETs, a missing weights file and an unreachable hub.
import { HookedTransformer } from "../../../model/hooked_transformer.ts";
import {
  loadModelFromDir,
  processWeights,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../../model/mod.ts";
import { HubError } from "../../../hub/mod.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertRejects } from "../../assert.ts";
import { closedPort, type MockFileData, startMockHub } from "../../hub/mock_hub.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "../families/mod.ts";
import { TOKENS } from "../gpu/_helpers.ts";

const SHIPPED = new URL("../../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;

async function filesOf(dir: string): Promise<Record<string, MockFileData>> {
  const out: Record<string, MockFileData> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && !e.name.endsWith(".md")) out[e.name] = await Deno.readFile(`${dir}/${e.name}`);
  }
  return out;
}

const shardedDir = await writeHfModel(CONFIGS.llama, randomHfTensors(CONFIGS.llama, 77), {
  sharded: true,
});
const repos = {
  "gpt2": { files: await filesOf(SHIPPED) },
  "org/tiny-llama": { files: await filesOf(shardedDir) },
  "org/no-weights": { files: { "config.json": JSON.stringify(CONFIGS.gpt2) } },
};
const shardedRaw = await loadModelFromDir(shardedDir);
await Deno.remove(shardedDir, { recursive: true });

Deno.test("hub load: a TL alias (gpt2-small) through the hub gives the shipped model's values", async () => {
  await using hub = await startMockHub(repos);
  const cacheDir = await Deno.makeTempDir();
  using model = await HookedTransformer.fromPretrainedNoProcessing("gpt2-small", {
    ...hub.options(cacheDir),
  });
  assertEquals(model.cfg.modelName, "gpt2");
  assert(model.tokenizer !== null, "tokenizer from the hub");
  const tokens = model.toTokens("First Citizen:\nBefore we proceed any further, hear me speak.");
  assertClose(await model.loss(tokens), 1.37111, 5e-5);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("hub load: a sharded checkpoint loads and matches the reference; the cache is reused", async () => {
  await using hub = await startMockHub(repos);
  const cacheDir = await Deno.makeTempDir();
  const opts = { ...hub.options(cacheDir), tokenizer: null };
  using first = await HookedTransformer.fromPretrained("org/tiny-llama", opts);
  for (const shard of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) {
    assertEquals(hub.count({ route: "resolve", path: shard, method: "GET", range: false }), 1);
  }
  const { cfg, params } = processWeights(shardedRaw.cfg, shardedRaw.params, TL_DEFAULT_PROCESSING);
  const want = referenceForward(cfg, params, TOKENS);
  using logits = await first.forward(TOKENS);
  assertAllClose(await logits.toArray(), want.logits!.data, 2e-5, 1e-4);

  const gets = hub.count({ route: "resolve", method: "GET" });
  using second = await HookedTransformer.fromPretrained("org/tiny-llama", opts);
  assertEquals(hub.count({ route: "resolve", method: "GET" }), gets, "no file GET the 2nd time");
  using again = await second.forward(TOKENS);
  assertAllClose(await again.toArray(), await logits.toArray(), 0);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("hub load: missing weights and an unreachable hub are clear errors", async () => {
  await using hub = await startMockHub(repos);
  const cacheDir = await Deno.makeTempDir();
  const missing = await assertRejects(
    () => HookedTransformer.fromPretrained("org/no-weights", hub.options(cacheDir)),
    HubError,
  );
  assert(
    missing.message.includes("org/no-weights") && missing.message.includes("model.safetensors"),
    missing.message,
  );
  const dead = `http://127.0.0.1:${closedPort()}`;
  const unreachable = await assertRejects(
    () => HookedTransformer.fromPretrained("org/tiny-llama", { endpoint: dead, cacheDir }),
    HubError,
  );
  assertEquals((unreachable as HubError).kind, "unreachable");
  assert(unreachable.message.includes(dead), unreachable.message);
  await Deno.remove(cacheDir, { recursive: true });
});
