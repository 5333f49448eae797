// The training-time evaluator (SAELens LLMSaeEvaluator): an identity training SAE scores exactly
// 1, the view over the training parameters gives the same numbers as its exported inference SAE,
// the BatchTopK family goes through its JumpReLU export, the histograms of log_histograms() come
// along, and the training parameters survive the eval untouched.
import { getGpu } from "../../gpu/device.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { SAEMetadata } from "../../sae/metadata.ts";
import { SAE } from "../../sae/sae.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { inferenceViewOf, makeTrainingEvaluator, weightHistograms } from "../../evals/training.ts";
import { EvalError } from "../../evals/config.ts";
import { runEvals } from "../../evals/run_evals.ts";
import { flattenMetrics as flattenAny } from "../../logging/events.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertThrows } from "../assert.ts";
import {
  BOS,
  identityParams,
  listSource,
  MODEL_DIR,
  noisyParams,
  tokenBatches,
} from "./_helpers.ts";

const gpu = await getGpu();
const flatten = (m: Record<string, Record<string, number>>) =>
  flattenAny(m) as Record<string, number>;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR, { gpu });
const B = 2, T = 20;
const BATCHES = tokenBatches(4, B, T, 5);
const HOOK = "blocks.1.hook_resid_pre";

function trainingSae(arch: string, params: Record<string, Float32Array>, extra = {}) {
  const cfg = createTrainingConfig({
    architecture: arch,
    dIn: 128,
    dSae: 256,
    ...extra,
    metadata: new SAEMetadata({ hookName: HOOK }),
  });
  return TrainingSAE.fromParams(cfg, params, { gpu });
}

function evaluator() {
  return makeTrainingEvaluator({
    model,
    tokens: listSource(gpu, BATCHES),
    nEvalBatches: 2,
    evalBatchSizePrompts: B,
    excludeSpecialTokens: [BOS],
  });
}

Deno.test("training evaluator: an identity training SAE scores exactly 1; keys as SAELens logs them", async () => {
  const train = trainingSae("standard", identityParams(128));
  try {
    const before = await train.stateDict();
    const values = await evaluator()({
      trainer: { sae: train, activationScaler: { scalingFactor: 2 } },
    });
    assertEquals(values["model_performance_preservation/ce_loss_score"], 1);
    assertEquals(values["reconstruction_quality/explained_variance"], 1);
    assertEquals(values["reconstruction_quality/mse"], 0);
    assertEquals(values["sparsity/l0"], 128);
    assertEquals(values["token_stats/total_tokens_eval_reconstruction"], T * 2 * B);
    assertEquals(Object.keys(values).sort(), [
      "model_performance_preservation/ce_loss_score",
      "model_performance_preservation/ce_loss_with_ablation",
      "model_performance_preservation/ce_loss_with_sae",
      "model_performance_preservation/ce_loss_without_sae",
      "reconstruction_quality/cossim",
      "reconstruction_quality/explained_variance",
      "reconstruction_quality/explained_variance_legacy",
      "reconstruction_quality/mse",
      "shrinkage/l2_norm_in",
      "shrinkage/l2_norm_out",
      "shrinkage/l2_ratio",
      "shrinkage/relative_reconstruction_bias",
      "sparsity/l0",
      "sparsity/l1",
      "token_stats/total_tokens_eval_reconstruction",
      "token_stats/total_tokens_eval_sparsity_variance",
      "weights/W_dec_norms",
      "weights/b_e",
    ]);
    assertAllClose(values["weights/W_dec_norms"] as number[], new Array(256).fill(1), 0);
    assertAllClose(values["weights/b_e"] as number[], new Array(256).fill(0), 0);
    // The view left the training parameters alive and unchanged.
    const after = await train.stateDict();
    for (const [k, v] of before) assertEquals(after.get(k), v, k);
  } finally {
    train.dispose();
  }
});

for (const arch of ["standard", "topk", "jumprelu", "gated"] as const) {
  Deno.test(`training evaluator (${arch}): the view over the training weights equals the exported SAE`, async () => {
    const noisy = noisyParams(128, arch, 9);
    const params = arch === "gated"
      ? {
        W_enc: noisy.W_enc,
        W_dec: noisy.W_dec,
        b_dec: noisy.b_dec,
        b_gate: noisy.b_enc,
        b_mag: noisy.b_enc.map((v) => v + 0.01),
        r_mag: new Float32Array(256).fill(0.1),
      }
      : noisy;
    const extra = arch === "topk" ? { k: 40, rescaleActsByDecoderNorm: true } : {};
    const train = trainingSae(arch, params, extra);
    try {
      const scaler = { scalingFactor: 1.25 };
      const values = await evaluator()({ trainer: { sae: train, activationScaler: scaler } });
      const { cfg, params: exported } = await train.exportInference();
      using sae = await SAE.fromParams(cfg, Object.fromEntries(exported), { gpu });
      const cfgEval = {
        batchSizePrompts: B,
        nEvalReconstructionBatches: 2,
        nEvalSparsityVarianceBatches: 2,
        computeCeLoss: true,
        computeL2Norms: true,
        computeSparsityMetrics: true,
        computeVarianceMetrics: true,
      };
      const want = flatten(
        (await runEvals(sae, listSource(gpu, BATCHES), model, cfgEval, {
          activationScaler: scaler,
          excludeSpecialTokens: [BOS],
        })).metrics,
      );
      for (const [k, v] of Object.entries(want)) {
        // TopK's export folds the decoder norms in: equal up to rounding.
        assertClose(values[k] as number, v, 1e-5, 1e-4, `${arch} ${k}`);
      }
      const hist = await weightHistograms(train);
      const expectKeys = arch === "standard"
        ? ["weights/W_dec_norms", "weights/b_e"]
        : arch === "gated"
        ? ["weights/W_dec_norms", "weights/b_gate", "weights/b_mag"]
        : ["weights/W_dec_norms"];
      assertEquals(Object.keys(hist), expectKeys);
      assertAllClose(values["weights/W_dec_norms"] as number[], hist["weights/W_dec_norms"], 0);
      assert((values["model_performance_preservation/ce_loss_score"] as number) < 1);
    } finally {
      train.dispose();
    }
  });
}

Deno.test("training evaluator: BatchTopK is evaluated as its JumpReLU export", async () => {
  const params = { ...noisyParams(128, "batchtopk", 4), topk_threshold: Float32Array.of(0.2) };
  const train = trainingSae("batchtopk", params, { k: 30 });
  try {
    using view = await inferenceViewOf(train);
    assertEquals(view.cfg.architecture, "jumprelu");
    assertAllClose(await view.threshold!.toArray(), new Array(256).fill(Math.fround(0.2)), 0);
    const values = await evaluator()({
      trainer: { sae: train, activationScaler: { scalingFactor: null } },
    });
    const l0 = values["sparsity/l0"] as number;
    assert(l0 > 0 && l0 < 256, `l0 ${l0}`);
    assertEquals(Object.keys(values).filter((k) => k.startsWith("weights/")), [
      "weights/W_dec_norms",
    ]);
  } finally {
    train.dispose();
  }
});

Deno.test("training evaluator: n_eval_batches must be at least 1", () => {
  assertThrows(
    () =>
      makeTrainingEvaluator({
        model,
        tokens: listSource(gpu, BATCHES),
        nEvalBatches: 0,
        evalBatchSizePrompts: B,
        excludeSpecialTokens: false,
      }),
    EvalError,
    "n_eval_batches",
  );
});
