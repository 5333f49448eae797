// runEvals on the shipped tiny GPT-2: the identity SAE holds exactly (ce_loss_score 1,
// kl_div_score 1, explained variance 1) at a residual hook, one head of hook_z and hook_z whole;
// "trained-ish" SAEs of several architectures equal the plain-TS reference of the same formulas
// (reference forward + reference SAE math, float64); every metric by hand on a toy model; config
// switches; and bad input (SAE not fitting the model, no tokens, bad configs) as EvalErrors.
import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { evalConfig, EvalError, getEvalEverythingConfig } from "../../evals/config.ts";
import { type EvalResult, runEvals } from "../../evals/run_evals.ts";
import { flattenMetrics as flattenAny } from "../../logging/events.ts";
import { runEvalsRef } from "../../evals/reference.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import type { HostTensor } from "../../util/host_tensor.ts";
import { SAE } from "../../sae/sae.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertRejects } from "../assert.ts";
import {
  BOS,
  identitySae,
  listSource,
  MODEL_DIR,
  noisyParams,
  refModel,
  refSae,
  tokenBatches,
} from "./_helpers.ts";

const gpu = await getGpu();
const flatten = (m: Record<string, Record<string, number>>) =>
  flattenAny(m) as Record<string, number>;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR, { gpu });
const B = 3, T = 24;
const RECON = tokenBatches(2, B, T, 11);
const SPARSE = tokenBatches(2, B, T, 12);
const EVERYTHING = getEvalEverythingConfig({
  batchSizePrompts: B,
  nEvalReconstructionBatches: 2,
  nEvalSparsityVarianceBatches: 2,
});

function source() {
  return listSource(gpu, [...RECON, ...SPARSE]);
}

const GROUP_KEYS = {
  model_behavior_preservation: ["kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"],
  model_performance_preservation: [
    "ce_loss_score",
    "ce_loss_with_ablation",
    "ce_loss_with_sae",
    "ce_loss_without_sae",
  ],
  reconstruction_quality: ["explained_variance", "explained_variance_legacy", "mse", "cossim"],
  shrinkage: ["l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"],
  sparsity: ["l0", "l1"],
  token_stats: ["total_tokens_eval_reconstruction", "total_tokens_eval_sparsity_variance"],
};

for (
  const [label, hook, head, d] of [
    ["resid_pre", "blocks.1.hook_resid_pre", null, 128],
    ["hook_z head 2", "blocks.2.attn.hook_z", 2, 32],
    ["hook_z all heads", "blocks.0.attn.hook_z", null, 128],
  ] as const
) {
  Deno.test(`identity SAE (${label}): ce_loss_score, kl_div_score, explained variance exactly 1`, async () => {
    using sae = await identitySae(gpu, d, hook, head);
    const src = source();
    const { metrics, featureMetrics } = await runEvals(sae, src, model, EVERYTHING);
    assertEquals(src.calls, 4, "2 reconstruction + 2 sparsity batches");
    assertEquals(Object.keys(metrics), Object.keys(GROUP_KEYS));
    for (const [g, keys] of Object.entries(GROUP_KEYS)) {
      assertEquals(Object.keys(metrics[g]).sort(), [...keys].sort(), g);
    }
    const m = flatten(metrics);
    assertEquals(m["model_performance_preservation/ce_loss_score"], 1);
    assertEquals(m["model_behavior_preservation/kl_div_score"], 1);
    assertEquals(m["model_behavior_preservation/kl_div_with_sae"], 0);
    assertEquals(
      m["model_performance_preservation/ce_loss_with_sae"],
      m["model_performance_preservation/ce_loss_without_sae"],
    );
    assert(
      m["model_performance_preservation/ce_loss_with_ablation"] >
        m["model_performance_preservation/ce_loss_without_sae"],
      "ablating the hook hurts",
    );
    assertEquals(m["reconstruction_quality/explained_variance"], 1);
    assertEquals(m["reconstruction_quality/explained_variance_legacy"], 1);
    assertEquals(m["reconstruction_quality/mse"], 0);
    assertClose(m["reconstruction_quality/cossim"], 1, 1e-6);
    assertClose(m["shrinkage/l2_ratio"], 1, 1e-6);
    assertClose(m["shrinkage/relative_reconstruction_bias"], 1, 1e-5);
    assertClose(m["shrinkage/l2_norm_in"], m["shrinkage/l2_norm_out"], 0, 1e-6);
    // relu(x), relu(−x): exactly one of each pair is non-zero per dimension.
    assertEquals(m["sparsity/l0"], d);
    assertEquals(m["token_stats/total_tokens_eval_reconstruction"], T * 2 * B);
    const F = 2 * d;
    for (const k of ["feature_density", "consistent_activation_heuristic"]) {
      assertEquals(featureMetrics[k].length, F, k);
    }
    // Dimension i fires as +i or −i on every token: the two densities add to 1.
    for (let i = 0; i < d; i++) {
      assertClose(
        featureMetrics.feature_density[i] + featureMetrics.feature_density[d + i],
        1,
        1e-12,
      );
    }
    assertAllClose(featureMetrics.encoder_norm, new Array(F).fill(1), 0);
    assertAllClose(featureMetrics.encoder_decoder_cosine_sim, new Array(F).fill(1), 0);
    assertAllClose(featureMetrics.encoder_bias, new Array(F).fill(0), 0);
  });
}

Deno.test("identity SAE with an activation scaler (s = 4) is still exact", async () => {
  using sae = await identitySae(gpu, 128, "blocks.3.hook_resid_post");
  const { metrics } = await runEvals(sae, source(), model, EVERYTHING, {
    activationScaler: { scalingFactor: 4 },
  });
  assertEquals(metrics.model_performance_preservation.ce_loss_score, 1);
  assertEquals(metrics.reconstruction_quality.explained_variance, 1);
});

/** Compares every metric of `got` with the reference. */
function assertMatches(got: EvalResult, want: EvalResult, nTokens: number, label: string) {
  assertEquals(Object.keys(got.metrics), Object.keys(want.metrics), label);
  const g = flatten(got.metrics), w = flatten(want.metrics);
  assertEquals(Object.keys(g).sort(), Object.keys(w).sort(), label);
  for (const [k, v] of Object.entries(w)) {
    // Counts may differ by a latent flipping at its threshold (f32 vs f64).
    const atol = k.endsWith("/l0") ? 2 / nTokens : k.includes("kl_div_with") ? 2e-5 : 1e-4;
    assertClose(g[k], v, atol, 2e-3, `${label} ${k}`);
  }
  assertEquals(Object.keys(got.featureMetrics).sort(), Object.keys(want.featureMetrics).sort());
  for (const [k, v] of Object.entries(want.featureMetrics)) {
    const atol = k === "feature_density"
      ? 2 / nTokens
      : k === "consistent_activation_heuristic"
      ? 0.5
      : 1e-5;
    assertAllClose(
      got.featureMetrics[k].map((x) => (Number.isNaN(x) ? -1 : x)),
      v.map((x) => (Number.isNaN(x) ? -1 : x)),
      atol,
      1e-4,
      `${label} ${k}`,
    );
  }
}

const CASES = [
  {
    arch: "standard",
    fields: {},
    hook: "blocks.1.hook_resid_pre",
    head: null,
    d: 128,
    noise: 0.015,
  },
  {
    arch: "topk",
    fields: { k: 40, rescale_acts_by_decoder_norm: true },
    hook: "blocks.2.hook_mlp_out",
    head: null,
    d: 128,
    noise: 0.04,
  },
  { arch: "jumprelu", fields: {}, hook: "blocks.1.attn.hook_z", head: 1, d: 32, noise: 0.04 },
] as const;

for (const c of CASES) {
  Deno.test(`${c.arch} at ${c.hook}${c.head === null ? "" : ` head ${c.head}`}: runEvals equals the reference`, async () => {
    const params = noisyParams(c.d, c.arch, 7, c.noise);
    using sae = await SAE.fromParams(
      {
        architecture: c.arch,
        dIn: c.d,
        dSae: 2 * c.d,
        ...c.fields,
        metadata: { hookName: c.hook, hookHeadIndex: c.head },
      },
      params,
      { gpu },
    );
    const opts = {
      activationScaler: { scalingFactor: 1.5 },
      excludeSpecialTokens: [BOS, 101],
    };
    const got = await runEvals(sae, source(), model, EVERYTHING, opts);
    const want = runEvalsRef(await refSae(sae), refModel(c.hook), RECON, SPARSE, EVERYTHING, {
      headIndex: c.head,
      activationScalingFactor: 1.5,
      ignore: [BOS, 101],
    });
    const nTokens = SPARSE.flat(2).filter((t) => t !== BOS && t !== 101).length;
    assertMatches(got, want, nTokens, c.arch);
    // Not a degenerate case: the SAE changes the model's output and some latents stay off.
    const m = got.metrics;
    assert(m.model_performance_preservation.ce_loss_score < 0.9999, "imperfect reconstruction");
    assert(m.model_performance_preservation.ce_loss_score > 0.5, "but a decent one");
    assert(m.sparsity.l0 < c.d * 1.5 && m.sparsity.l0 > 1, `l0 ${m.sparsity.l0}`);
  });
}

Deno.test("exclude_special_tokens: true ignores the tokenizer's specials, false nothing", async () => {
  const params = noisyParams(128, "standard", 3);
  using sae = await SAE.fromParams(
    {
      architecture: "standard",
      dIn: 128,
      dSae: 256,
      metadata: { hookName: "blocks.0.hook_resid_post" },
    },
    params,
    { gpu },
  );
  const cfg = evalConfig({
    batchSizePrompts: B,
    nEvalReconstructionBatches: 2,
    nEvalSparsityVarianceBatches: 2,
    computeCeLoss: true,
    computeVarianceMetrics: true,
  });
  const ref = await refSae(sae);
  for (const [ex, ignore] of [[true, [BOS]], [false, []]] as const) {
    const got = await runEvals(sae, source(), model, cfg, { excludeSpecialTokens: ex });
    const want = runEvalsRef(ref, refModel("blocks.0.hook_resid_post"), RECON, SPARSE, cfg, {
      ignore,
    });
    assertMatches(got, want, 1e9, `exclude ${ex}`);
  }
});

Deno.test("the default config computes nothing but token_stats; switches pick groups", async () => {
  using sae = await identitySae(gpu, 128, "blocks.1.hook_resid_pre");
  const src = source();
  const none = await runEvals(sae, src, model, { batchSizePrompts: B });
  assertEquals(src.calls, 0, "no batch drawn");
  assertEquals(none.metrics, {
    token_stats: {
      total_tokens_eval_reconstruction: T * 10 * B,
      total_tokens_eval_sparsity_variance: T * 1 * B,
    },
  });
  assertEquals(none.featureMetrics, {});
  const kl = await runEvals(sae, source(), model, {
    compute_kl: true,
    batch_size_prompts: B,
    n_eval_reconstruction_batches: 1,
  });
  assertEquals(Object.keys(kl.metrics), ["model_behavior_preservation", "token_stats"]);
  const weights = await runEvals(sae, source(), model, {
    computeFeaturewiseWeightBasedMetrics: true,
    batchSizePrompts: B,
  });
  assertEquals(Object.keys(weights.featureMetrics), [
    "encoder_norm",
    "encoder_decoder_cosine_sim",
    "encoder_bias",
  ]);
  // The batch size defaults to the source's storeBatchSizePrompts.
  const l2 = await runEvals(sae, source(), model, { computeL2Norms: true });
  assertClose(l2.metrics.shrinkage.l2_ratio, 1, 1e-6);
});

Deno.test("every metric by hand on a toy model (the reference formulas)", () => {
  // Model: vocabulary 2, the hook value at a position is (token + 1, 1); logits are (0, h₀).
  // SAE: f = relu(x)·(1, ½ on dim 2) … simply x̂ = x / 2 with f = x (d_sae = d_in = 2).
  const model = {
    hookValue: (t: number[][]) => ({
      data: Float32Array.from(t.flat().flatMap((v) => [v + 1, 1])),
      shape: [t.length, t[0].length, 2],
    }),
    logits(t: number[][], replace?: (v: HostTensor) => HostTensor) {
      let h: Float32Array = model.hookValue(t).data;
      if (replace) h = replace(model.hookValue(t)).data;
      return {
        data: Float32Array.from({ length: h.length }, (_, i) => (i % 2 ? h[i - 1] : 0)),
        shape: [t.length, t[0].length, 2],
      };
    },
  };
  const sae = {
    dIn: 2,
    dSae: 2,
    W_enc: [1, 0, 0, 1],
    W_dec: [0.5, 0, 0, 0.5],
    b_enc: [0, -1],
    encode: (x: Float32Array) => x.map((v, i) => Math.max(v + (i % 2 ? -1 : 0), 0)),
    decode: (f: Float32Array) => f.map((v) => v / 2),
  };
  const tokens = [[0, 1]]; // hook values x = (1, 1), (2, 1); f = (1, 0), (2, 0); x̂ = (½, 0), (1, 0)
  const r = runEvalsRef(
    sae,
    model,
    [tokens],
    [tokens],
    getEvalEverythingConfig({
      nEvalReconstructionBatches: 1,
    }),
    {},
  );
  const m = flatten(r.metrics);
  const sp = (z: number) => Math.log(1 + Math.exp(-z)); // −log softmax(0, z)[1]
  // CE at position 0 (predicting token 1): clean h₀ = 1, SAE h₀ = ½, ablated h₀ = 0.
  assertClose(m["model_performance_preservation/ce_loss_without_sae"], sp(1), 1e-6);
  assertClose(m["model_performance_preservation/ce_loss_with_sae"], sp(0.5), 1e-6);
  assertClose(m["model_performance_preservation/ce_loss_with_ablation"], Math.log(2), 1e-6);
  assertClose(
    m["model_performance_preservation/ce_loss_score"],
    (Math.log(2) - sp(0.5)) / (Math.log(2) - sp(1)),
    1e-6,
  );
  // KL(softmax(0, a) ‖ softmax(0, b)) per position, averaged over both positions.
  const kl = (a: number, b: number) => {
    const pa = 1 / (1 + Math.exp(-a)), pb = 1 / (1 + Math.exp(-b));
    return (1 - pa) * Math.log((1 - pa) / (1 - pb)) + pa * Math.log(pa / pb);
  };
  const klSae = (kl(1, 0.5) + kl(2, 1)) / 2, klAbl = (kl(1, 0) + kl(2, 0)) / 2;
  assertClose(m["model_behavior_preservation/kl_div_with_sae"], klSae, 1e-6);
  assertClose(m["model_behavior_preservation/kl_div_with_ablation"], klAbl, 1e-6);
  assertClose(m["model_behavior_preservation/kl_div_score"], (klAbl - klSae) / klAbl, 1e-6);
  // x = (1,1), (2,1); x̂ = (½,0), (1,0); residuals (½,1), (1,1).
  assertClose(m["reconstruction_quality/mse"], (1.25 + 2) / 2, 1e-12);
  // E‖x‖² = (2 + 5)/2, ‖E x‖² = 1.5² + 1 = 3.25: Var = 0.25.
  assertClose(m["reconstruction_quality/explained_variance"], 1 - 1.625 / 0.25, 1e-12);
  // x̄ = (1.5, 1): ‖x − x̄‖² = 0.25 each.
  assertClose(
    m["reconstruction_quality/explained_variance_legacy"],
    ((1 - 1.25 / 0.25) + (1 - 2 / 0.25)) / 2,
    1e-12,
  );
  assertClose(m["reconstruction_quality/cossim"], (1 / Math.SQRT2 + 2 / Math.sqrt(5)) / 2, 1e-12);
  assertClose(m["shrinkage/l2_norm_in"], (Math.SQRT2 + Math.sqrt(5)) / 2, 1e-12);
  assertClose(m["shrinkage/l2_norm_out"], (0.5 + 1) / 2, 1e-12);
  assertClose(m["shrinkage/l2_ratio"], (0.5 / Math.SQRT2 + 1 / Math.sqrt(5)) / 2, 1e-12);
  // E‖x̂‖² / E⟨x, x̂⟩ = (¼ + 1) / (½ + 2).
  assertClose(m["shrinkage/relative_reconstruction_bias"], 1.25 / 2.5, 1e-12);
  assertEquals(m["sparsity/l0"], 1);
  assertEquals(m["sparsity/l1"], 1.5);
  assertEquals(r.featureMetrics.feature_density, [1, 0]);
  assertEquals(r.featureMetrics.consistent_activation_heuristic, [2, NaN]);
  assertEquals(r.featureMetrics.encoder_norm, [1, 1]);
  assertEquals(r.featureMetrics.encoder_decoder_cosine_sim, [1, 1]);
  assertEquals(r.featureMetrics.encoder_bias, [0, -1]);
  assertEquals(m["token_stats/total_tokens_eval_reconstruction"], 2);
});

Deno.test("an SAE whose d_in or hook does not fit the model is an EvalError naming both", async () => {
  const cfg = { computeCeLoss: true, batchSizePrompts: B, nEvalReconstructionBatches: 1 };
  {
    using sae = await identitySae(gpu, 64, "blocks.1.hook_resid_pre");
    await assertRejects(
      () => runEvals(sae, source(), model, cfg),
      EvalError,
      "d_in is 64, but blocks.1.hook_resid_pre",
    );
  }
  {
    using sae = await identitySae(gpu, 128, "blocks.1.hook_resid_prer");
    await assertRejects(
      () => runEvals(sae, source(), model, cfg),
      EvalError,
      "did you mean blocks.1.hook_resid_pre",
    );
  }
  {
    using sae = await identitySae(gpu, 32, "blocks.1.attn.hook_z", 4);
    await assertRejects(() => runEvals(sae, source(), model, cfg), EvalError, "has 4 heads");
  }
  {
    using sae = await identitySae(gpu, 32, "blocks.1.hook_resid_pre", 0);
    await assertRejects(() => runEvals(sae, source(), model, cfg), EvalError, "no head dimension");
  }
  {
    using sae = await identitySae(gpu, 128, "blocks.9.hook_resid_pre");
    await assertRejects(() => runEvals(sae, source(), model, cfg), EvalError, "does not have");
  }
});

Deno.test("no tokens, bad tokens and bad configs are EvalErrors", async () => {
  using sae = await identitySae(gpu, 128, "blocks.1.hook_resid_pre");
  const empty = { getBatchTokens: () => Promise.reject(new Error("the dataset ended")) };
  await assertRejects(
    () => runEvals(sae, empty, model, { computeCeLoss: true, batchSizePrompts: 2 }),
    EvalError,
    "reconstruction batch 1 of 10 (2 prompts): the token source gave no tokens (the dataset ended)",
  );
  const outside = {
    getBatchTokens: (n: number) =>
      Promise.resolve(Tensor.from(new Int32Array(n * 4).fill(300), [n, 4], { gpu })),
  };
  await assertRejects(
    () => runEvals(sae, outside, model, { computeL2Norms: true, batchSizePrompts: 2 }),
    EvalError,
    "token 300 at [0, 0], outside the vocabulary [0, 257)",
  );
  const wrongShape = {
    getBatchTokens: (n: number) =>
      Promise.resolve(Tensor.from(new Int32Array(n * 4), [n * 4], { gpu })),
  };
  await assertRejects(
    () => runEvals(sae, wrongShape, model, { computeL2Norms: true, batchSizePrompts: 2 }),
    EvalError,
    "expected an i32 tensor [batch, context]",
  );
  await assertRejects(
    () => runEvals(sae, source(), model, { computeKl: true, nEvalReconstructionBatches: 0 }),
    EvalError,
    "nEvalReconstructionBatches must be > 0",
  );
  await assertRejects(
    () => runEvals(sae, source(), model, { compute_l1: true }),
    EvalError,
    'unknown key "compute_l1"',
  );
  await assertRejects(
    () => runEvals(sae, { getBatchTokens: empty.getBatchTokens }, model, { computeKl: true }),
    EvalError,
    "no batch size",
  );
});
