// SAE folders: save → load round trips (outputs identical, exact cfg.json key sets, tensor names,
// shapes and dtypes per spec §2.3), sparsity files, hand-written SAELens v5/v6 cfg.json files,
// legacy tensors (log_threshold, scaling_factor), other float dtypes, load options, and errors
// that name the file, the tensor and the shapes.
import { getGpu } from "../../gpu/device.ts";
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from "../../io/safetensors.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../io/dtypes.ts";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { SAE } from "../../sae/sae.ts";
import { SAEFLOW_VERSION } from "../../util/version.ts";
import { SaeLoadError } from "../../sae/errors.ts";
import { assertAllClose, assertEquals, assertRejects } from "../assert.ts";
import { ARCH_CASES, randomInput, randomSae, take, upload } from "./_sae_helpers.ts";

await getGpu();

const BASE_KEYS = [
  "d_in",
  "d_sae",
  "dtype",
  "device",
  "apply_b_dec_to_input",
  "normalize_activations",
  "reshape_activations",
  "metadata",
];
const EXTRA_KEYS: Record<string, string[]> = {
  topk: ["k", "rescale_acts_by_decoder_norm"],
  transcoder: ["d_out"],
  skip_transcoder: ["d_out"],
  jumprelu_transcoder: ["d_out"],
};
const TENSORS: Record<string, string[]> = {
  standard: ["W_dec", "W_enc", "b_dec", "b_enc"],
  gated: ["W_dec", "W_enc", "b_dec", "b_gate", "b_mag", "r_mag"],
  jumprelu: ["W_dec", "W_enc", "b_dec", "b_enc", "threshold"],
  topk: ["W_dec", "W_enc", "b_dec", "b_enc"],
  transcoder: ["W_dec", "W_enc", "b_dec", "b_enc"],
  skip_transcoder: ["W_dec", "W_enc", "W_skip", "b_dec", "b_enc"],
  jumprelu_transcoder: ["W_dec", "W_enc", "b_dec", "b_enc", "threshold"],
};

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "saeflow_sae_io_" });
}

for (const arch of ARCH_CASES) {
  Deno.test(`SAE ${arch.name}: saveModel → loadFromDisk gives identical outputs and files per §2.3`, async () => {
    const dir = await tempDir();
    const { sae } = await randomSae({
      ...arch.fields,
      metadata: { model_name: "test_model", hook_name: "test_hook_name" },
    }, 31);
    try {
      const paths = await sae.saveModel(dir);
      assertEquals(paths, {
        weightsPath: `${dir}/sae_weights.safetensors`,
        cfgPath: `${dir}/cfg.json`,
      });
      const cfg = JSON.parse(await Deno.readTextFile(paths.cfgPath));
      const a = sae.cfg.architecture;
      assertEquals(Object.keys(cfg), [...BASE_KEYS, ...(EXTRA_KEYS[a] ?? []), "architecture"]);
      assertEquals(cfg.architecture, a);
      assertEquals(cfg.d_in, 6);
      assertEquals(cfg.metadata.hook_name, "test_hook_name");
      assertEquals(cfg.metadata.sae_lens_version, "6.49.2");
      assertEquals(cfg.metadata.saeflow_version, SAEFLOW_VERSION);
      const header = await readSafetensorsHeader(paths.weightsPath);
      assertEquals([...header.tensors.keys()].sort(), TENSORS[a]);
      const dOut = a.includes("transcoder") ? 4 : 6;
      const shapes: Record<string, number[]> = {
        W_enc: [6, 8],
        W_dec: [8, dOut],
        b_enc: [8],
        b_dec: [dOut],
        threshold: [8],
        b_gate: [8],
        r_mag: [8],
        b_mag: [8],
        W_skip: [dOut, 6],
      };
      for (const [name, info] of header.tensors) {
        assertEquals(info.dtype, "F32", name);
        assertEquals(info.shape, shapes[name], name);
      }
      const loaded = await SAE.loadFromDisk(dir);
      assertEquals(loaded.cfg.architecture, a);
      assertEquals(loaded.getName(), "sae_test_model_test_hook_name_8");
      const reloaded = JSON.parse(await Deno.readTextFile(paths.cfgPath));
      await loaded.saveModel(`${dir}/again`);
      assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/again/cfg.json`)), reloaded);
      using x = upload(randomInput(3, 6, 2), [3, 6]);
      assertAllClose(await take(loaded.forward(x)), await take(sae.forward(x)), 0);
      loaded.dispose();
    } finally {
      sae.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("SAE saveModel: sparsity file, bfloat16 dtype, getName", async () => {
  const dir = await tempDir();
  const { sae, params } = await randomSae({ architecture: "standard", dtype: "bfloat16" }, 3);
  const frac = [0, 0.5, 1, 0.1, 0.01, 0, 0.2, 0.3];
  const paths = await sae.saveModel(dir, { featureFiringFraction: frac });
  assertEquals(paths.sparsityPath, `${dir}/sparsity.safetensors`);
  const sp = (await readSafetensors(paths.sparsityPath!)).tensors.get("sparsity")!;
  assertEquals([sp.dtype, sp.shape], ["F32", [8]]);
  assertAllClose(sp.data as Float32Array, frac.map((f) => Math.log10(f + 1e-10)), 1e-6);
  assertEquals((sp.data as Float32Array)[0] < 0 && (sp.data as Float32Array)[0] === -10, true);
  const w = (await readSafetensors(paths.weightsPath)).tensors.get("W_enc")!;
  assertEquals(w.dtype, "BF16");
  const loaded = await SAE.loadFromDisk(dir);
  assertEquals(loaded.cfg.dtype, "bfloat16");
  assertAllClose(await loaded.W_enc.toArray(), bf16ToF32(f32ToBf16(params.W_enc)), 0);
  loaded.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** Writes `cfg` and standard-SAE weights (dIn 4, dSae 6) in the given dtype. */
async function writeFolder(
  dir: string,
  cfg: Record<string, unknown>,
  dtype: "F32" | "F16" | "F64" = "F32",
  extra: Record<string, Float32Array> = {},
) {
  const t = (shape: number[], seed: number) => {
    const data = randomInput(shape.reduce((a, b) => a * b, 1), 1, seed);
    return { shape, data };
  };
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {
    W_enc: t([4, 6], 1),
    b_enc: t([6], 2),
    W_dec: t([6, 4], 3),
    b_dec: t([4], 4),
  };
  for (const [k, v] of Object.entries(extra)) tensors[k] = { shape: [v.length], data: v };
  const stored = Object.fromEntries(
    Object.entries(tensors).map(([k, v]) => [k, {
      dtype,
      shape: v.shape,
      data: dtype === "F16"
        ? f32ToF16(v.data)
        : dtype === "F64"
        ? Float64Array.from(v.data)
        : v.data,
    }]),
  );
  await writeSafetensors(`${dir}/sae_weights.safetensors`, stored);
  await writeJsonAtomic(`${dir}/cfg.json`, cfg);
  return tensors;
}

const V6_CFG = {
  d_in: 4,
  d_sae: 6,
  dtype: "float32",
  device: "cuda",
  apply_b_dec_to_input: true,
  normalize_activations: "none",
  reshape_activations: "none",
  metadata: {
    sae_lens_version: "6.18.0",
    sae_lens_training_version: "6.18.0",
    model_name: "gpt2",
    hook_name: "blocks.3.hook_resid_pre",
    hook_head_index: null,
    context_size: 128,
    prepend_bos: true,
    seqpos_slice: [null],
    model_from_pretrained_kwargs: { center_writing_weights: false },
    dataset_path: "Skylion007/openwebtext",
    model_class_name: "HookedTransformer",
    exclude_special_tokens: false,
    sequence_separator_token: "bos",
    disable_concat_sequences: false,
  },
  architecture: "standard",
};

Deno.test("SAE loadFromDisk: hand-written SAELens v6 cfg.json; device/dtype/fold options", async () => {
  const dir = await tempDir();
  const w = await writeFolder(dir, V6_CFG);
  const sae = await SAE.loadFromDisk(dir, {
    device: "cpu",
    dtype: "torch.float16",
    foldWDecNorm: true,
  });
  assertEquals([sae.cfg.device, sae.cfg.dtype], ["cpu", "float16"]);
  assertEquals(sae.cfg.metadata.toDict(), V6_CFG.metadata);
  const wDec = await sae.W_dec.toArray();
  for (let i = 0; i < 6; i++) {
    assertAllClose([Math.hypot(...wDec.subarray(i * 4, i * 4 + 4))], [1], 1e-6);
  }
  const n0 = Math.hypot(...w.W_dec.data.subarray(0, 4));
  assertAllClose([(await sae.W_enc.toArray())[0]], [w.W_enc.data[0] * n0], 1e-6, 1e-6);
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SAE loadFromDisk: hand-written SAELens v5 cfg.json (flat, legacy keys), F16 weights", async () => {
  const dir = await tempDir();
  const w = await writeFolder(dir, {
    architecture: "standard",
    d_in: 4,
    d_sae: 6,
    dtype: "torch.float32",
    device: "cuda",
    model_name: "pythia-70m-deduped",
    hook_name: "blocks.2.hook_resid_post",
    hook_layer: 2,
    hook_head_index: null,
    activation_fn_str: "relu",
    activation_fn_kwargs: {},
    apply_b_dec_to_input: false,
    finetuning_scaling_factor: false,
    sae_lens_training_version: "5.9.1",
    prepend_bos: true,
    dataset_path: "monology/pile-uncopyrighted",
    dataset_trust_remote_code: true,
    context_size: 512,
    normalize_activations: false,
    neuronpedia_id: "pythia-70m-deduped/2-res-sm",
    model_from_pretrained_kwargs: {},
    seqpos_slice: [null],
  }, "F16");
  const sae = await SAE.loadFromDisk(dir);
  assertEquals(sae.cfg.architecture, "standard");
  assertEquals([sae.cfg.dtype, sae.cfg.normalizeActivations, sae.cfg.applyBDecToInput], [
    "float32",
    "none",
    false,
  ]);
  assertEquals(sae.cfg.metadata.hookName, "blocks.2.hook_resid_post");
  assertEquals(sae.cfg.metadata.neuronpediaId, "pythia-70m-deduped/2-res-sm");
  assertEquals(sae.cfg.metadata.contextSize, 512);
  assertAllClose(await sae.W_enc.toArray(), f16ToF32(f32ToF16(w.W_enc.data)), 0);
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SAE loadFromDisk: legacy log_threshold and scaling_factor tensors; F64 weights", async () => {
  const dir = await tempDir();
  const cfg = { ...V6_CFG, architecture: "jumprelu" };
  const lt = Float32Array.from([-1, -2, 0, 0.5, -3, -0.5]);
  await writeFolder(dir, cfg, "F64", { log_threshold: lt });
  const jr = await SAE.loadFromDisk(dir);
  assertAllClose(await jr.threshold!.toArray(), lt.map(Math.exp), 1e-6, 1e-6);
  jr.dispose();
  // scaling_factor all ones: dropped.
  await writeFolder(dir, V6_CFG, "F32", { scaling_factor: new Float32Array(6).fill(1) });
  (await SAE.loadFromDisk(dir)).dispose();
  // Not all ones and finetuning_scaling_factor false: SAELens' error.
  const s = Float32Array.from([1, 2, 3, 1, 1, 0.5]);
  await writeFolder(dir, { ...V6_CFG, finetuning_scaling_factor: false }, "F32", {
    scaling_factor: s,
  });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    "finetuning_scaling_factor is false",
  );
  // With the flag: folded into W_dec's rows (v5 decoded (f·s)·W_dec).
  const w = await writeFolder(dir, { ...V6_CFG, finetuning_scaling_factor: true }, "F32", {
    scaling_factor: s,
  });
  const sae = await SAE.loadFromDisk(dir);
  assertAllClose(
    await sae.W_dec.toArray(),
    w.W_dec.data.map((v, i) => v * s[Math.floor(i / 4)]),
    1e-7,
  );
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SAE loadFromDisk: errors name the file, the tensor and the shapes", async () => {
  const dir = await tempDir();
  await assertRejects(
    () => SAE.loadFromDisk(`${dir}/nope`),
    SaeLoadError,
    `${dir}/nope/cfg.json: file not found`,
  );
  await writeJsonAtomic(`${dir}/cfg.json`, V6_CFG);
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    `${dir}/sae_weights.safetensors: file not found`,
  );
  await writeFolder(dir, { ...V6_CFG, d_sae: 5 });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    `${dir}/sae_weights.safetensors: tensor W_enc has shape [4, 6], expected [4, 5] from the config (standard)`,
  );
  await writeFolder(dir, { ...V6_CFG, architecture: "gated" });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    "tensor b_gate is missing (expected shape [6]",
  );
  await writeFolder(dir, V6_CFG, "F32", { threshold: new Float32Array(6) });
  await assertRejects(() => SAE.loadFromDisk(dir), SaeLoadError, "unexpected tensor(s) threshold");
  await writeFolder(dir, { ...V6_CFG, architecture: "my_unknown_arch" });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    'architecture is "my_unknown_arch", expected one of',
  );
  await writeFolder(dir, { ...V6_CFG, architecture: "transcoder", d_out: 4 });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    "apply_b_dec_to_input is true, expected false",
  );
  await writeFolder(dir, { ...V6_CFG, architecture: "topk", k: 9 });
  await assertRejects(
    () => SAE.loadFromDisk(dir),
    SaeLoadError,
    "k is 9, expected at most d_sae (6)",
  );
  await Deno.writeTextFile(`${dir}/cfg.json`, "{not json");
  await assertRejects(() => SAE.loadFromDisk(dir), SaeLoadError, `${dir}/cfg.json: not valid JSON`);
  await Deno.remove(dir, { recursive: true });
});
