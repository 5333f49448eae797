// SAE.fromPretrained / fromPretrainedWithCfgAndSparsity through the mock hub (tests/hub/mock_hub.ts,
// temp cache dir, explicit endpoint: env vars are process-wide and test files run in parallel):
// registry lookup, overrides into metadata, sparsity, weights equal to the served file, raw
// repo ids, norm-scaling-factor folding, options, and errors.
import { getGpu } from "../../gpu/device.ts";
import { serializeSafetensors } from "../../io/safetensors.ts";
import { HubError } from "../../hub/mod.ts";
import { foldActivationNormScalingFactorRef } from "../../sae/reference/mod.ts";
import { getPretrainedRelease, PretrainedLookupError } from "../../sae/pretrained.ts";
import { setConfigWarnHandler } from "../../config/errors.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeLoadError } from "../../sae/errors.ts";
import { type MockHub, startMockHub } from "../hub/mock_hub.ts";
import { assert, assertAllClose, assertEquals, assertRejects } from "../assert.ts";
import { randomInput } from "./_sae_helpers.ts";

await getGpu();

/** Tiny standard-SAE weights (dIn 4, dSae 8) as SAELens would store them. */
function weights(seed: number): Record<string, Float32Array> {
  return {
    W_enc: randomInput(32, 1, seed),
    b_enc: randomInput(8, 1, seed + 1, 0.1),
    W_dec: randomInput(32, 1, seed + 2),
    b_dec: randomInput(4, 1, seed + 3, 0.1),
  };
}

function st(tensors: Record<string, Float32Array>, shapes: Record<string, number[]>): Uint8Array {
  return serializeSafetensors(
    Object.fromEntries(
      Object.entries(tensors).map((
        [k, data],
      ) => [k, { dtype: "F32" as const, shape: shapes[k], data }]),
    ),
  );
}

const SHAPES = { W_enc: [4, 8], b_enc: [8], W_dec: [8, 4], b_dec: [4], sparsity: [8] };

/** gpt2-small-res-jb layer 0's cfg.json (pre-3.0 mats_sae_training layout), shrunk to d_in 4. */
const JB_CFG = {
  model_name: "gpt2-small",
  hook_point: "blocks.0.hook_resid_pre",
  hook_point_layer: 0,
  hook_point_head_index: null,
  dataset_path: "Skylion007/openwebtext",
  is_dataset_tokenized: false,
  context_size: 128,
  use_cached_activations: false,
  d_in: 4,
  n_batches_in_buffer: 128,
  total_training_tokens: 300000000,
  store_batch_size: 32,
  device: "mps",
  seed: 42,
  dtype: "torch.float32",
  b_dec_init_method: "geometric_median",
  expansion_factor: 2,
  from_pretrained_path: null,
  l1_coefficient: 8e-05,
  lr: 0.0004,
  lr_scheduler_name: null,
  lr_warm_up_steps: 5000,
  train_batch_size: 4096,
  use_ghost_grads: false,
  feature_sampling_window: 1000,
  feature_sampling_method: null,
  resample_batches: 1028,
  feature_reinit_scale: 0.2,
  dead_feature_window: 5000,
  dead_feature_estimation_method: "no_fire",
  dead_feature_threshold: 1e-08,
  d_sae: 8,
  tokens_per_buffer: 67108864,
  run_name: "8-L1-8e-05-LR-0.0004-Tokens-3.000e+08",
};

const JB = weights(100);
const SPARSITY = Float32Array.from([-1, -2.5, -10, -0.5, -3, -1.25, -4, -0.01]);

async function withHub(fn: (hub: MockHub, cacheDir: string) => Promise<void>): Promise<void> {
  const gemma = weights(200);
  await using hub = await startMockHub({
    "jbloom/GPT2-Small-SAEs-Reformatted": {
      files: {
        "blocks.0.hook_resid_pre/cfg.json": JSON.stringify(JB_CFG),
        "blocks.0.hook_resid_pre/sae_weights.safetensors": st(JB, SHAPES),
        "blocks.0.hook_resid_pre/sparsity.safetensors": st({ sparsity: SPARSITY }, SHAPES),
        "blocks.1.hook_resid_pre/cfg.json": JSON.stringify({ ...JB_CFG, d_sae: 6 }),
      },
    },
    "someone/my-saes": {
      files: {
        "layer_3/cfg.json": JSON.stringify({
          d_in: 4,
          d_sae: 8,
          dtype: "float32",
          device: "cpu",
          apply_b_dec_to_input: true,
          normalize_activations: "none",
          reshape_activations: "none",
          metadata: {
            sae_lens_version: "6.18.0",
            model_name: "gpt2",
            hook_name: "blocks.3.hook_resid_pre",
          },
          architecture: "standard",
        }),
        "layer_3/sae_weights.safetensors": st(weights(300), SHAPES),
      },
    },
    // gemma-2b-res-jb blocks.12.hook_resid_post has norm_scaling_factor 0.2138… in the registry.
    "jbloom/Gemma-2b-Residual-Stream-SAEs": {
      files: {
        "gemma_2b_blocks.12.hook_resid_post_16384/cfg.json": JSON.stringify({
          ...JB_CFG,
          model_name: "gemma-2b",
          hook_point: "blocks.12.hook_resid_post",
          normalize_activations: true,
        }),
        "gemma_2b_blocks.12.hook_resid_post_16384/sae_weights.safetensors": st(gemma, SHAPES),
      },
    },
  });
  const cacheDir = await Deno.makeTempDir({ prefix: "saeflow_hub_cache_" });
  try {
    await fn(hub, cacheDir);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
}

Deno.test("SAE.fromPretrainedWithCfgAndSparsity: gpt2-small-res-jb layer 0 through the mock hub", async () => {
  await withHub(async (hub, cacheDir) => {
    const opts = { endpoint: hub.url, cacheDir, token: null };
    const { sae, cfgDict, sparsity } = await SAE.fromPretrainedWithCfgAndSparsity(
      "gpt2-small-res-jb",
      "blocks.0.hook_resid_pre",
      opts,
    );
    const m = sae.cfg.metadata;
    assertEquals(m.neuronpediaId, "gpt2-small/0-res-jb");
    assertEquals(m.hookName, "blocks.0.hook_resid_pre");
    assertEquals(m.modelName, "gpt2-small");
    assertEquals(m.contextSize, 128);
    assertEquals(m.modelFromPretrainedKwargs, { center_writing_weights: true });
    assertEquals([sae.cfg.architecture, sae.cfg.dtype, sae.cfg.device], [
      "standard",
      "float32",
      "mps",
    ]);
    assertEquals(
      (cfgDict.metadata as Record<string, unknown>).neuronpedia_id,
      "gpt2-small/0-res-jb",
    );
    assertEquals(cfgDict.d_sae, 8);
    assert(sparsity !== null);
    assertEquals(sparsity.length, 8);
    assert(Math.max(...sparsity) < 0, "log sparsity is negative");
    assertAllClose(sparsity, SPARSITY, 0);
    const state = await sae.stateDict();
    for (const k of ["W_enc", "b_enc", "W_dec", "b_dec"]) {
      assertAllClose(state[k].data, JB[k], 0, 0, k);
    }
    sae.dispose();
    // Cached: a second load downloads no file again; forceDownload does.
    const gets = () => hub.count({ route: "resolve", method: "GET" });
    const before = gets();
    (await SAE.fromPretrained("gpt2-small-res-jb", "blocks.0.hook_resid_pre", {
      ...opts,
      device: "cpu",
    }))
      .dispose();
    assertEquals(gets(), before);
    const forced = await SAE.fromPretrained("gpt2-small-res-jb", "blocks.0.hook_resid_pre", {
      ...opts,
      forceDownload: true,
      device: "cpu",
      foldWDecNorm: true,
    });
    assert(gets() > before, "forceDownload downloads again");
    assertEquals(forced.cfg.device, "cpu");
    const wDec = await forced.W_dec.toArray();
    assertAllClose([Math.hypot(...wDec.subarray(0, 4))], [1], 1e-6);
    forced.dispose();
  });
});

Deno.test("SAE.fromPretrained: a raw repo id loads its folder; no sparsity file → null", async () => {
  await withHub(async (hub, cacheDir) => {
    const r = await SAE.fromPretrainedWithCfgAndSparsity("someone/my-saes", "layer_3", {
      endpoint: hub.url,
      cacheDir,
      token: null,
    });
    assertEquals(r.sparsity, null);
    assertEquals(r.sae.cfg.metadata.hookName, "blocks.3.hook_resid_pre");
    assertEquals(r.sae.cfg.metadata.neuronpediaId, null);
    assertAllClose(await r.sae.W_enc.toArray(), weights(300).W_enc, 0);
    r.sae.dispose();
  });
});

Deno.test("SAE.fromPretrained: the registry's norm_scaling_factor is folded (expected_average_only_in)", async () => {
  await withHub(async (hub, cacheDir) => {
    const sae = await SAE.fromPretrained("gemma-2b-res-jb", "blocks.12.hook_resid_post", {
      endpoint: hub.url,
      cacheDir,
      token: null,
    });
    assertEquals(sae.cfg.normalizeActivations, "none");
    assertEquals(sae.cfg.metadata.neuronpediaId, "gemma-2b/12-res-jb");
    const s =
      getPretrainedRelease("gemma-2b-res-jb")!.normScalingFactor["blocks.12.hook_resid_post"];
    assertAllClose([s], [0.2138], 1e-4);
    const want = foldActivationNormScalingFactorRef(weights(200), s);
    const got = await sae.stateDict();
    for (const k of ["W_enc", "b_enc", "W_dec", "b_dec"]) {
      assertAllClose(got[k].data, want[k], 1e-6, 1e-6, k);
    }
    sae.dispose();
  });
});

Deno.test("SAE.fromPretrained: unknown release / id, missing and inconsistent files are clear errors", async () => {
  await withHub(async (hub, cacheDir) => {
    const opts = { endpoint: hub.url, cacheDir, token: null };
    await assertRejects(
      () => SAE.fromPretrained("not-a-release", "x", opts),
      PretrainedLookupError,
      'release "not-a-release" is not in the pretrained SAE registry',
    );
    await assertRejects(
      () => SAE.fromPretrained("gpt2-small-res-jb", "blocks.99.hook_resid_pre", opts),
      PretrainedLookupError,
      "Valid ids (13) include: blocks.0.hook_resid_pre",
    );
    await assertRejects(
      () => SAE.fromPretrained("someone/my-saes", "layer_9", opts),
      HubError,
      "layer_9/cfg.json",
    );
    // Layer 1's config says d_sae 6 but serves no weights: the weights file is missing.
    await assertRejects(
      () => SAE.fromPretrained("gpt2-small-res-jb", "blocks.1.hook_resid_pre", opts),
      HubError,
      "blocks.1.hook_resid_pre/sae_weights.safetensors",
    );
    await assertRejects(
      () => SAE.fromPretrained("gpt2-small-hook-z-kk", "blocks.0.hook_z", opts),
      SaeLoadError,
      "conversion connor_rob_hook_z not supported yet",
    );
    await hub.setRepo("someone/bad", {
      files: {
        "cfg.json": JSON.stringify({ ...JB_CFG, d_sae: 6 }),
        "sae_weights.safetensors": st(weights(1), SHAPES),
      },
    });
    await assertRejects(
      () => SAE.fromPretrained("someone/bad", "", opts),
      SaeLoadError,
      "someone/bad/sae_weights.safetensors: tensor W_enc has shape [4, 8], expected [4, 6]",
    );
  });
});

// Silence the expected "no norm_scaling_factor" style warnings of other tests in this file.
setConfigWarnHandler(() => {});
