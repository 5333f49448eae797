import { getGpu } from "../gpu/device.ts";
import { runShakespeareDemo } from "../demo_shakespeare.ts";
import { assert, assertClose, assertEquals } from "./assert.ts";

Deno.test("demo: streams the shipped GPT-2's activations into a TopK SAE that reconstructs held-out text", async () => {
  const gpu = await getGpu();
  const outDir = await Deno.makeTempDir();
  const lines: string[] = [];
  const result = await runShakespeareDemo(gpu, { steps: 30, outDir, log: (l) => lines.push(l) });
  assertClose(result.crossEntropy, 1.37111, 1e-3);
  // A random SAE explains ~nothing; 30 steps of training already explain most of the variance.
  assert(result.explainedVariance > 0.6, `explained variance ${result.explainedVariance}`);
  assertClose(result.l0, 16, 1e-9, 0, "TopK with k 16 keeps 16 features per token");
  assert(result.aliveFraction > 0.1, `alive fraction ${result.aliveFraction}`);
  for (const name of ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors"]) {
    await Deno.stat(`${outDir}/${name}`);
  }
  // model_name is the model's name (its folder's), not this machine's path to it.
  const cfg = JSON.parse(await Deno.readTextFile(`${outDir}/cfg.json`));
  assertEquals(cfg.metadata.model_name, "tiny-shakespeare-gpt2");
  assert(
    !JSON.stringify(cfg).includes(new URL("../data", import.meta.url).pathname),
    "no local path in cfg.json",
  );
  assert(lines.some((l) => l.startsWith("  feature ")), "features are listed");
  await Deno.remove(outDir, { recursive: true });
});
