// runEvals with SAELens's token source, the ActivationsStore (built from the SAE's metadata, over
// the shipped Shakespeare text), and on an empty dataset.
import { getGpu } from "../../gpu/device.ts";
import { EvalError, getEvalEverythingConfig } from "../../evals/config.ts";
import { runEvals } from "../../evals/run_evals.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { ActivationsStore } from "../../pipeline/activations_store.ts";
import { SAE } from "../../sae/sae.ts";
import { assertEquals, assertRejects } from "../assert.ts";
import { identityParams, MODEL_DIR } from "./_helpers.ts";

const gpu = await getGpu();
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR, { gpu });
const TEXT = new URL("../../data/tinyshakespeare.txt", import.meta.url).pathname;

async function sae() {
  return await SAE.fromParams(
    {
      architecture: "standard",
      dIn: 128,
      dSae: 256,
      metadata: { hookName: "blocks.2.hook_resid_pre", contextSize: 32, prependBos: true },
    },
    identityParams(128),
    { gpu },
  );
}

Deno.test("runEvals over an ActivationsStore.fromSae: exact identity, token_stats from the store", async () => {
  using s = await sae();
  const store = ActivationsStore.fromSae({
    model,
    sae: s,
    dataset: TEXT,
    storeBatchSizePrompts: 3,
  });
  try {
    const { metrics, featureMetrics } = await runEvals(
      s,
      store,
      model,
      getEvalEverythingConfig({ nEvalReconstructionBatches: 2, nEvalSparsityVarianceBatches: 1 }),
    );
    assertEquals(metrics.model_performance_preservation.ce_loss_score, 1);
    assertEquals(metrics.model_behavior_preservation.kl_div_score, 1);
    assertEquals(metrics.reconstruction_quality.explained_variance, 1);
    assertEquals(metrics.token_stats, {
      total_tokens_eval_reconstruction: 32 * 2 * 3,
      total_tokens_eval_sparsity_variance: 32 * 1 * 3,
    });
    assertEquals(featureMetrics.feature_density.length, 256);
  } finally {
    await store.close();
  }
});

Deno.test("runEvals on an empty dataset is an EvalError naming the file", async () => {
  using s = await sae();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty.txt`, "");
    const store = ActivationsStore.fromSae({ model, sae: s, dataset: `${dir}/empty.txt` });
    await assertRejects(
      () => runEvals(s, store, model, { computeCeLoss: true, nEvalReconstructionBatches: 1 }),
      EvalError,
      "empty.txt is empty",
    );
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
