// A SAELens runner config (snake_case YAML) trains through `pipeline.ts` with `model_name` and
// `dataset_path` served by the mock hub: the child process finds the hub through HF_ENDPOINT and
// caches under HF_HUB_CACHE, as a user's run would with the real hub.

import { join } from "../../util/path.ts";
import { assert, assertEquals } from "../assert.ts";
import { type MockFileData, startMockHub } from "../hub/mock_hub.ts";
import { parquetBytes } from "../io/dataset_fixtures.ts";
import { CORPUS, MODEL, runCli } from "./_cli_helpers.ts";

async function filesOf(dir: string): Promise<Record<string, MockFileData>> {
  const out: Record<string, MockFileData> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && !e.name.endsWith(".md")) out[e.name] = await Deno.readFile(join(dir, e.name));
  }
  return out;
}

const CONFIG = (dir: string) =>
  `# a SAELens LanguageModelSAERunnerConfig, as SAELens users write it
model_name: gpt2
hook_name: blocks.1.hook_resid_pre
dataset_path: org/tiny-corpus
context_size: 32
store_batch_size_prompts: 8
n_batches_in_buffer: 16
train_batch_size_tokens: 256
training_tokens: 3072
lr: 0.002
n_checkpoints: 1
checkpoint_path: ${JSON.stringify(join(dir, "checkpoints"))}
output_path: ${JSON.stringify(join(dir, "sae"))}
sae:
  architecture: topk
  d_in: 128
  d_sae: 256
  k: 8
logger:
  log_to_wandb: false
  wandb_log_frequency: 4
`;

Deno.test("mock hub: pipeline.ts trains a snake_case YAML config whose model and dataset come from the hub (HF_ENDPOINT)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_cli_hub_" });
  try {
    const lines = (await Deno.readTextFile(CORPUS)).split("\n").filter((l) => l.trim());
    const shard = (i: number) =>
      parquetBytes([{ name: "text", kind: "string", data: lines.slice(300 * i, 300 * i + 300) }]);
    await using hub = await startMockHub({
      "gpt2": { files: await filesOf(MODEL) },
      "org/tiny-corpus": {
        type: "dataset",
        files: {
          "data/train-00000-of-00002.parquet": shard(0),
          "data/train-00001-of-00002.parquet": shard(1),
          "README.md": "a tiny corpus",
        },
      },
    });
    const cfgPath = join(dir, "sae_lens_config.yaml");
    await Deno.writeTextFile(cfgPath, CONFIG(dir));
    const r = await runCli(["train", cfgPath, "--run-id", "hub"], {
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: join(dir, "hf-cache"),
      HF_TOKEN: "",
      HF_HUB_OFFLINE: "0",
    });
    assertEquals(r.code, 0, r.output);
    assert(
      hub.count({ route: "resolve", repoId: "gpt2", path: "model.safetensors", method: "GET" }) >=
        1,
      "the model was not fetched from the mock hub",
    );
    assert(
      hub.count({ route: "resolve", repoId: "org/tiny-corpus", method: "GET" }) >= 1,
      "the dataset was not fetched from the mock hub",
    );
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "sae", "cfg.json")));
    assertEquals(cfg.architecture, "topk");
    assertEquals(cfg.metadata.model_name, "gpt2");
    assertEquals(cfg.metadata.dataset_path, "org/tiny-corpus");
    assertEquals(cfg.metadata.hook_name, "blocks.1.hook_resid_pre");
    await Deno.stat(join(dir, "sae", "sae_weights.safetensors"));
    await Deno.stat(join(dir, "checkpoints", "hub", "completed.json"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
