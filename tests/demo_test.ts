/**
 * The demo (`deno task demo`), shortened: trains through the command line on the shipped model
 * and corpus, evaluates the SAE from its files and lists features.
 */

import { runDemo } from "../demo.ts";
import { assert, assertEquals } from "./assert.ts";

Deno.test("demo: pipeline.ts train on examples/shakespeare.yaml, then evals and features from the files", async () => {
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  try {
    const r = await runDemo([
      "--training_tokens",
      String(512 * 30),
      "--lr_warm_up_steps",
      "3",
      "--n_checkpoints",
      "1",
      "--output_path",
      `${out}/sae`,
      "--checkpoint_path",
      `${out}/ckpt`,
    ], (l) => lines.push(l));
    assertEquals(r.trainExitCode, 0);
    assertEquals(r.outputPath, `${out}/sae`);
    assert(r.metrics["reconstruction_quality/explained_variance"] > 0.3, JSON.stringify(r.metrics));
    assertEquals(r.metrics["sparsity/l0"], 16);
    assert(r.features.length > 0 && r.features[0].startsWith("feature "), r.features.join("\n"));
    assert((await Deno.stat(`${out}/sae/eval_results.json`)).isFile);
    for (
      const f of ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "runner_cfg.json"]
    ) {
      assert((await Deno.stat(`${out}/sae/${f}`)).isFile, f);
    }
    const cfg = JSON.parse(await Deno.readTextFile(`${out}/sae/cfg.json`));
    assertEquals(cfg.metadata.model_name, "data/tiny-shakespeare-gpt2"); // as the config names it
    void cfg;
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  void lines;
});
