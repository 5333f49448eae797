// Conversion loaders (spec §2.8) through the mock hub and on disk: sparsify (W_dec kept as
// stored), llama_scope and llama_scope_r1_distill (transposed Linear weights, thresholds, norm
// factor fold), gemma_3 (SAE and affine-skip transcoder), gemma_2 (numpy npz, stored and
// deflated), the npz/npy reader, and the "not supported yet" error.
import { getGpu } from "../../gpu/device.ts";
import { serializeSafetensors } from "../../io/safetensors.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { foldActivationNormScalingFactorRef, forwardRef } from "../../sae/reference/mod.ts";
import { getPretrainedRelease } from "../../sae/pretrained.ts";
import { gemma2Loader, getSaeLoader, parseNpy, readNpz } from "../../sae/loaders/mod.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeLoadError } from "../../sae/errors.ts";
import { startMockHub } from "../hub/mock_hub.ts";
import { assertAllClose, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { randomInput, take, upload } from "./_sae_helpers.ts";
import { fromBase64, NPZ_DEFLATED, NPZ_ODD, NPZ_STORED } from "./_npz_fixtures.ts";

await getGpu();

const f32 = (n: number, seed: number, scale = 1) => randomInput(n, 1, seed, scale);
const st = (t: Record<string, [number[], Float32Array]>) =>
  serializeSafetensors(
    Object.fromEntries(
      Object.entries(t).map(([k, [shape, data]]) => [k, { dtype: "F32" as const, shape, data }]),
    ),
  );
/** Row-major transpose of a [r, c] matrix. */
const tr = (a: Float32Array, r: number, c: number) =>
  Float32Array.from({ length: r * c }, (_, k) => a[(k % r) * c + Math.floor(k / r)]);

async function withCache(fn: (cacheDir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_loaders_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// sparsify: encoder.weight [8, 4] (Linear), W_dec [8, 4] as stored, k 2, normalize_decoder.
const SP = { enc: f32(32, 1), encB: f32(8, 2, 0.1), dec: f32(32, 3), decB: f32(4, 4, 0.1) };
const SP_CFG = { d_in: 4, num_latents: 8, k: 2, signed: false, normalize_decoder: true };
const SP_WEIGHTS = st({
  "encoder.weight": [[8, 4], SP.enc],
  "encoder.bias": [[8], SP.encB],
  W_dec: [[8, 4], SP.dec],
  b_dec: [[4], SP.decB],
});

async function checkSparsify(sae: SAE, modelName: string) {
  assertEquals(sae.cfg.architecture, "topk");
  assertEquals([sae.cfg.k, sae.cfg.applyBDecToInput, sae.cfg.dtype], [2, false, "bfloat16"]);
  assertEquals(sae.cfg.metadata.hookName, "blocks.5.hook_resid_post");
  assertEquals(sae.cfg.metadata.modelName, modelName);
  const s = await sae.stateDict();
  assertAllClose(s.W_enc.data, tr(SP.enc, 8, 4), 0);
  assertAllClose(s.W_dec.data, SP.dec, 0, 0, "W_dec kept as stored (no transpose)");
  assertEquals(s.W_dec.shape, [8, 4]);
  assertAllClose(s.b_enc.data, SP.encB, 0);
}

Deno.test("loaders: sparsify from the hub and from disk", async () => {
  await using hub = await startMockHub({
    "EleutherAI/sae-tiny": {
      files: {
        "config.json": JSON.stringify({
          model: "EleutherAI/pythia-70m",
          dataset: "d",
          ctx_len: 64,
        }),
        "layers.5/cfg.json": JSON.stringify(SP_CFG),
        "layers.5/sae.safetensors": SP_WEIGHTS,
      },
    },
  });
  await withCache(async (cacheDir) => {
    const opts = { endpoint: hub.url, cacheDir, token: null, converter: "sparsify" };
    const sae = await SAE.fromPretrained("EleutherAI/sae-tiny", "layers.5", opts);
    await checkSparsify(sae, "EleutherAI/pythia-70m");
    assertEquals(sae.cfg.metadata.contextSize, 64);
    sae.dispose();
    const dir = `${cacheDir}/local/layers_5`;
    await writeJsonAtomic(`${dir}/cfg.json`, SP_CFG);
    await writeFileAtomic(`${dir}/sae.safetensors`, SP_WEIGHTS);
    const disk = await SAE.loadFromDisk(dir, { converter: "sparsify" });
    await checkSparsify(disk, "local");
    disk.dispose();
    await writeJsonAtomic(`${dir}/cfg.json`, { ...SP_CFG, signed: true });
    await assertRejects(
      () => SAE.loadFromDisk(dir, { converter: "sparsify" }),
      SaeLoadError,
      "signed",
    );
  });
});

Deno.test("loaders: llama_scope_r1_distill and llama_scope (thresholds, transposes, factor fold)", async () => {
  const enc = f32(32, 5), encB = f32(8, 6, 0.1), dec = f32(32, 7), decB = f32(4, 8, 0.1);
  const logT = f32(8, 9, 0.3);
  const linear = {
    "encoder.weight": [[8, 4], enc] as [number[], Float32Array],
    "encoder.bias": [[8], encB] as [number[], Float32Array],
    "decoder.weight": [[4, 8], dec] as [number[], Float32Array],
    "decoder.bias": [[4], decB] as [number[], Float32Array],
  };
  await using hub = await startMockHub({
    "fnlp/Llama-Scope-R1-Distill": {
      files: {
        "800M-Slimpajama-0-OpenR1-Math-220k/L0R/config.json": JSON.stringify({
          d_model: 4,
          expansion_factor: 2,
          hook_point_in: "blocks.0.hook_resid_post",
        }),
        "800M-Slimpajama-0-OpenR1-Math-220k/L0R/sae_weights.safetensors": st({
          ...linear,
          log_jumprelu_threshold: [[8], logT],
        }),
      },
    },
    "fnlp/Llama3_1-8B-Base-LXR-8x": {
      files: {
        "Llama3_1-8B-Base-L0R-8x/hyperparams.json": JSON.stringify({
          d_model: 4,
          d_sae: 8,
          hook_point_in: "blocks.0.hook_resid_post",
          jump_relu_threshold: 0.5,
          dataset_average_activation_norm: { in: 3 },
        }),
        "Llama3_1-8B-Base-L0R-8x/checkpoints/final.safetensors": st(linear),
      },
    },
  });
  await withCache(async (cacheDir) => {
    const opts = { endpoint: hub.url, cacheDir, token: null };
    const base = { W_enc: tr(enc, 8, 4), b_enc: encB, W_dec: tr(dec, 4, 8), b_dec: decB };
    const r1 = await SAE.fromPretrained("llama_scope_r1_distill", "l0r_800m_slimpajama", opts);
    const s1 =
      getPretrainedRelease("llama_scope_r1_distill")!.normScalingFactor.l0r_800m_slimpajama;
    assertEquals([r1.cfg.architecture, r1.cfg.normalizeActivations], ["jumprelu", "none"]);
    assertEquals(
      r1.cfg.metadata.neuronpediaId,
      "deepseek-r1-distill-llama-8b/0-llamascope-slimpj-res-32k",
    );
    const want1 = foldActivationNormScalingFactorRef(
      { ...base, threshold: logT.map(Math.exp) },
      s1,
    );
    const got1 = await r1.stateDict();
    for (const k of Object.keys(want1)) assertAllClose(got1[k].data, want1[k], 1e-6, 1e-6, k);
    r1.dispose();
    const ls = await SAE.fromPretrained("llama_scope_lxr_8x", "l0r_8x", opts);
    assertEquals([ls.cfg.dtype, ls.cfg.normalizeActivations], ["bfloat16", "none"]);
    // threshold = 0.5 · √4 / 3 for every latent (scaled like the folded weights).
    assertAllClose(await ls.threshold!.toArray(), new Float32Array(8).fill(1 / 3), 1e-7);
    ls.dispose();
  });
});

Deno.test("loaders: gemma_3 SAE and affine-skip transcoder from params.safetensors", async () => {
  const wEnc = f32(32, 11), wDec = f32(32, 12), bEnc = f32(8, 13, 0.1), bDec = f32(4, 14, 0.1);
  const th = f32(8, 15, 0.1).map((v) => Math.abs(v)), skip = f32(16, 16, 0.3);
  const params = {
    w_enc: [[4, 8], wEnc] as [number[], Float32Array],
    w_dec: [[8, 4], wDec] as [number[], Float32Array],
    b_enc: [[8], bEnc] as [number[], Float32Array],
    b_dec: [[4], bDec] as [number[], Float32Array],
    threshold: [[8], th] as [number[], Float32Array],
  };
  await using hub = await startMockHub({
    "google/gemma-scope-2-1b-pt": {
      files: {
        "resid_post/layer_7_width_16k_l0_small/params.safetensors": st(params),
        "transcoder_all/layer_2_width_16k_l0_big_affine/params.safetensors": st({
          ...params,
          affine_skip_connection: [[4, 4], skip],
        }),
      },
    },
  });
  await withCache(async (cacheDir) => {
    const opts = { endpoint: hub.url, cacheDir, token: null, converter: "gemma_3" };
    const sae = await SAE.fromPretrained(
      "google/gemma-scope-2-1b-pt",
      "resid_post/layer_7_width_16k_l0_small",
      opts,
    );
    assertEquals([sae.cfg.architecture, sae.cfg.applyBDecToInput], ["jumprelu", false]);
    assertEquals([sae.cfg.metadata.hookName, sae.cfg.metadata.modelName], [
      "blocks.7.hook_resid_post",
      "google/gemma-3-1b-pt",
    ]);
    sae.dispose();
    const tc = await SAE.fromPretrained(
      "google/gemma-scope-2-1b-pt",
      "transcoder_all/layer_2_width_16k_l0_big_affine",
      opts,
    );
    assertEquals([tc.cfg.architecture, tc.cfg.dOut], ["jumprelu_skip_transcoder", 4]);
    assertEquals([tc.cfg.metadata.hookName, tc.cfg.metadata.hookNameOut], [
      "blocks.2.ln2.hook_normalized",
      "blocks.2.hook_mlp_out",
    ]);
    const x = randomInput(3, 4, 17);
    using xt = upload(x, [3, 4]);
    const p = { W_enc: wEnc, W_dec: wDec, b_enc: bEnc, b_dec: bDec, threshold: th, W_skip: skip };
    assertAllClose(await take(tc.forward(xt)), forwardRef(tc.cfg, p, x, 3).output, 1e-4, 1e-4);
    tc.dispose();
  });
});

Deno.test("loaders: npz reader on numpy files (stored, deflated, Fortran order, >f8, f2)", async () => {
  await withCache(async (dir) => {
    const want = {
      w_enc: Float32Array.from({ length: 32 }, (_, i) => 0.1 * i - 1),
      w_dec: Float32Array.from({ length: 32 }, (_, i) => 0.05 * i - 0.8),
      b_enc: Float32Array.from({ length: 8 }, (_, i) => 0.01 * i),
      b_dec: Float32Array.from({ length: 4 }, (_, i) => 0.1 * i + 0.2),
      threshold: Float32Array.from({ length: 8 }, (_, i) => 0.02 * i + 0.1),
    };
    for (const [name, b64] of [["stored", NPZ_STORED], ["deflated", NPZ_DEFLATED]]) {
      await Deno.writeFile(`${dir}/${name}.npz`, fromBase64(b64));
      const got = await readNpz(`${dir}/${name}.npz`);
      assertEquals(Object.keys(got).sort(), Object.keys(want).sort());
      assertEquals(got.w_enc.shape, [4, 8]);
      for (const [k, v] of Object.entries(want)) {
        assertAllClose(got[k].data, v, 1e-6, 0, `${name} ${k}`);
      }
    }
    await Deno.writeFile(`${dir}/odd.npz`, fromBase64(NPZ_ODD));
    const odd = await readNpz(`${dir}/odd.npz`);
    assertEquals(odd.fortran.shape, [2, 3]);
    assertAllClose(odd.fortran.data, [-1, -0.9, -0.8, -0.7, -0.6, -0.5], 1e-6);
    assertAllClose(odd.be64.data, [-1, -0.9, -0.8], 1e-6);
    assertAllClose(odd.f16.data, [-1, -0.9, -0.8], 1e-3);
    await Deno.writeFile(`${dir}/bad.npz`, new Uint8Array(100));
    await assertRejects(() => readNpz(`${dir}/bad.npz`), SaeLoadError, "not a zip file");
    assertThrows(
      () => parseNpy(new Uint8Array(12), "x.npy"),
      SaeLoadError,
      "x.npy: not a .npy array",
    );
  });
});

Deno.test("loaders: gemma_2 (Gemma Scope 1 params.npz) via the hub, shrunk through overrides", async () => {
  await using hub = await startMockHub({
    "google/gemma-scope-2b-pt-res": {
      files: { "layer_3/width_16k/average_l0_50/params.npz": fromBase64(NPZ_DEFLATED) },
    },
  });
  await withCache(async (cacheDir) => {
    // The real widths/d_in (2304 × 16384) are too large for a test: shrink them via overrides.
    const sae = await SAE.fromPretrained(
      "google/gemma-scope-2b-pt-res",
      "layer_3/width_16k/average_l0_50",
      {
        endpoint: hub.url,
        cacheDir,
        token: null,
        converter: (ctx) => gemma2Loader({ ...ctx, cfgOverrides: { d_in: 4, d_sae: 8 } }),
      },
    );
    assertEquals([sae.cfg.architecture, sae.cfg.applyBDecToInput], ["jumprelu", false]);
    assertEquals([sae.cfg.metadata.hookName, sae.cfg.metadata.modelName], [
      "blocks.3.hook_resid_post",
      "gemma-2-2b",
    ]);
    assertAllClose(
      await sae.W_enc.toArray(),
      Float32Array.from({ length: 32 }, (_, i) => 0.1 * i - 1),
      1e-6,
    );
    sae.dispose();
  });
});

Deno.test("loaders: unsupported and unknown conversions are clear errors", () => {
  assertThrows(
    () => getSaeLoader("dictionary_learning_1"),
    SaeLoadError,
    "conversion dictionary_learning_1 not supported yet",
  );
  assertThrows(() => getSaeLoader("nope"), SaeLoadError, 'unknown conversion "nope"');
});
