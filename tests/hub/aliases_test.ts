import { HubError, MODEL_ALIASES, OFFICIAL_MODEL_NAMES, resolveModelName } from "../../hub/mod.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const repo = (n: string) => resolveModelName(n).repoId;

Deno.test("TransformerLens aliases resolve case-insensitively", () => {
  const cases: [string, string][] = [
    ["gpt2-small", "gpt2"],
    ["GPT2-Small", "gpt2"],
    ["gpt2", "gpt2"],
    ["gpt2-xl", "gpt2-xl"],
    ["distil-gpt2", "distilgpt2"],
    ["pythia-70m-deduped", "EleutherAI/pythia-70m-deduped"],
    ["pythia", "EleutherAI/pythia-70m"],
    ["pythia-19m", "EleutherAI/pythia-70m"],
    ["EleutherAI/pythia-125m-deduped-v0", "EleutherAI/pythia-160m-deduped-v0"],
    ["pythia-13b", "EleutherAI/pythia-12b"],
    ["pythia-160m-seed2", "EleutherAI/pythia-160m-seed2"],
    ["pythia-14m", "EleutherAI/pythia-14m"],
    ["neo", "EleutherAI/gpt-neo-125M"],
    ["gptj", "EleutherAI/gpt-j-6B"],
    ["tiny-stories-33M", "roneneldan/TinyStories-33M"],
    ["tiny-stories-instruct-1L-21M", "roneneldan/TinyStories-Instuct-1Layer-21M"],
    ["gemma-2-2b", "google/gemma-2-2b"],
    ["gemma-2b-it", "google/gemma-2b-it"],
    ["gemma-3-1b-pt", "google/gemma-3-1b-pt"],
    ["Llama-2-7b", "meta-llama/Llama-2-7b-hf"],
    ["meta-llama/llama-3.2-1b", "meta-llama/Llama-3.2-1B"],
    ["CodeLlamallama-2-7b", "codellama/CodeLlama-7b-hf"],
    ["qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"],
    ["qwen-1.8b", "Qwen/Qwen-1_8B"],
    ["qwen-32b-preview", "Qwen/QwQ-32B-Preview"],
    ["qwen3-4b", "Qwen/Qwen3-4B"],
    ["mixtral", "mistralai/Mixtral-8x7B-v0.1"],
    ["opt", "facebook/opt-125m"],
    ["phi-3", "microsoft/Phi-3-mini-4k-instruct"],
    ["bloom-560m", "bigscience/bloom-560m"],
    ["othello-gpt", "Baidicoot/Othello-GPT-Transformer-Lens"],
    ["solu-1l", "NeelNanda/SoLU_1L512W_C4_Code"],
    ["gelu-2l", "NeelNanda/GELU_2L512W_C4_Code"],
    ["attn-only-demo", "NeelNanda/Attn-Only-2L512W-Shortformer-6B-big-lr"],
    ["solu-8l-old", "NeelNanda/SoLU_8L_v21_old"],
    ["stanford-gpt2-medium-c", "stanford-crfm/celebrimbor-gpt2-medium-x81"],
  ];
  for (const [alias, expected] of cases) assertEquals(repo(alias), expected, alias);
  assertEquals(resolveModelName("gemma-2-2b"), {
    repoId: "google/gemma-2-2b",
    tlName: "gemma-2-2b",
    official: true,
    local: false,
  });
  assertEquals(resolveModelName("gpt2-small").tlName, "gpt2");
});

Deno.test("alias table: every alias maps to exactly one official name", () => {
  const seen = new Map<string, string>();
  for (const official of OFFICIAL_MODEL_NAMES) {
    for (const a of [official, ...MODEL_ALIASES[official]]) {
      const prev = seen.get(a.toLowerCase());
      assert(prev === undefined || prev === official, `${a} → ${prev} and ${official}`);
      seen.set(a.toLowerCase(), official);
    }
  }
  assert(OFFICIAL_MODEL_NAMES.length > 200, `${OFFICIAL_MODEL_NAMES.length} official names`);
});

Deno.test("repo ids and local directories pass through; unknown names fail clearly", async () => {
  assertEquals(resolveModelName("my-org/my-model"), {
    repoId: "my-org/my-model",
    tlName: "my-model",
    official: false,
    local: false,
  });
  const dir = await Deno.makeTempDir({ prefix: "saeflow-model-" });
  const local = resolveModelName(dir);
  assertEquals([local.repoId, local.local, local.official], [dir, true, false]);
  assert(local.tlName.startsWith("saeflow-model-"));
  assertThrows(() => resolveModelName("./definitely/not/here"), HubError, "does not exist");
  const e = assertThrows(() => resolveModelName("gpt2-smal"), HubError, "unknown model name");
  assert(e.message.includes("gpt2"), e.message);
});
