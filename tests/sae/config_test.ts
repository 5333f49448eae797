import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  createSAEConfig,
  createTrainingConfig,
  inferenceConfigOf,
  saeConfigFromDict,
  saeConfigToDict,
  trainingConfigFromDict,
  trainingConfigToDict,
} from "../../sae/config.ts";
import { compareVersions, isPre6Config } from "../../sae/config_legacy.ts";
import { SAEMetadata } from "../../sae/metadata.ts";
import { SAE_LENS_VERSION, SAEFLOW_VERSION } from "../../util/version.ts";
import { applyConfigOverrides } from "../../sae/pretrained.ts";
import { getArchitecture, listArchitectures, registerArchitecture } from "../../sae/registry.ts";
import { ConfigError, setConfigWarnHandler } from "../../config/errors.ts";

/** Key order matters (cfg.json is compared as text by users); compare it explicitly. */
function assertSameJson(actual: unknown, expected: unknown, msg?: string): void {
  assertEquals(JSON.stringify(actual), JSON.stringify(expected), msg);
}

function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const warnings: string[] = [];
  const previous = setConfigWarnHandler((m) => warnings.push(m));
  try {
    return { result: fn(), warnings };
  } finally {
    setConfigWarnHandler(previous);
  }
}

// §2.2: a v6 inference export of a standard SAE, as SAELens 6.18 writes it.
const V6_STANDARD = {
  d_in: 768,
  d_sae: 16384,
  dtype: "float32",
  device: "cuda",
  apply_b_dec_to_input: true,
  normalize_activations: "none",
  reshape_activations: "none",
  metadata: {
    sae_lens_version: "6.18.0",
    sae_lens_training_version: "6.18.0",
    model_name: "gpt2-small",
    hook_name: "blocks.8.hook_resid_pre",
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

Deno.test("v6 standard cfg.json: dict → cfg → dict is the identity (keys and order)", () => {
  const cfg = saeConfigFromDict(structuredClone(V6_STANDARD));
  assertEquals(cfg.architecture, "standard");
  assertEquals(cfg.dIn, 768);
  assertEquals(cfg.dSae, 16384);
  assertEquals(cfg.device, "cuda");
  assertEquals(cfg.metadata.hookName, "blocks.8.hook_resid_pre");
  assertEquals(cfg.metadata.modelFromPretrainedKwargs, { center_writing_weights: false });
  assertEquals(cfg.metadata.sequenceSeparatorToken, "bos");
  assertSameJson(saeConfigToDict(cfg), V6_STANDARD);
});

Deno.test("v6 topk and jumprelu cfg.json round trips; architecture fields before `architecture`", () => {
  const { architecture: _, ...head } = structuredClone(V6_STANDARD);
  const topk = { ...head, k: 32, rescale_acts_by_decoder_norm: true, architecture: "topk" };
  const cfg = saeConfigFromDict(topk);
  assertEquals(cfg.k, 32);
  assertEquals(cfg.rescaleActsByDecoderNorm, true);
  assertSameJson(saeConfigToDict(cfg), topk);

  const jumprelu = { ...structuredClone(V6_STANDARD), architecture: "jumprelu" };
  jumprelu.apply_b_dec_to_input = false;
  jumprelu.metadata.hook_name = "blocks.12.hook_resid_post";
  (jumprelu.metadata as Record<string, unknown>).neuronpedia_id =
    "gemma-2-2b/12-gemmascope-res-16k";
  (jumprelu.metadata as Record<string, unknown>).custom_note = { keep: ["verbatim"] };
  const jcfg = saeConfigFromDict(jumprelu);
  assertEquals(jcfg.metadata.neuronpediaId, "gemma-2-2b/12-gemmascope-res-16k");
  assertEquals(jcfg.metadata.get("custom_note"), { keep: ["verbatim"] });
  assertSameJson(saeConfigToDict(jcfg), jumprelu);
});

Deno.test("v6 transcoder: d_out, hook_name_out; apply_b_dec_to_input must be false", () => {
  const dict = {
    d_in: 2304,
    d_sae: 16384,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: false,
    normalize_activations: "none",
    reshape_activations: "none",
    metadata: {
      sae_lens_version: "6.18.0",
      sae_lens_training_version: "6.18.0",
      hook_name: "blocks.0.ln2.hook_normalized",
      hook_name_out: "blocks.0.hook_mlp_out",
    },
    d_out: 2304,
    architecture: "jumprelu_transcoder",
  };
  const cfg = saeConfigFromDict(dict);
  assertEquals(cfg.dOut, 2304);
  assertEquals(cfg.metadata.hookNameOut, "blocks.0.hook_mlp_out");
  assertSameJson(saeConfigToDict(cfg), dict);
  const err = assertThrows(
    () => saeConfigFromDict({ ...dict, apply_b_dec_to_input: true }),
    ConfigError,
    "apply_b_dec_to_input",
  );
  assert(err.message.includes("jumprelu_transcoder") && err.message.includes("false"));
  // Not given at all → SAEConfig default true → rejected, as in SAELens.
  const { apply_b_dec_to_input: _, ...without } = dict;
  assertThrows(() => saeConfigFromDict(without), ConfigError, "apply_b_dec_to_input");
});

Deno.test("legacy v5 cfg.json (flat SAEConfig) converts to v6", () => {
  const v5 = {
    architecture: "standard",
    d_in: 512,
    d_sae: 2048,
    dtype: "float32",
    device: "cuda",
    model_name: "gelu-1l",
    hook_name: "blocks.0.hook_mlp_out",
    hook_layer: 0,
    hook_head_index: null,
    activation_fn_str: "relu",
    activation_fn_kwargs: {},
    apply_b_dec_to_input: true,
    finetuning_scaling_factor: false,
    sae_lens_training_version: "5.9.0",
    prepend_bos: true,
    dataset_path: "NeelNanda/c4-tokenized-2b",
    dataset_trust_remote_code: true,
    context_size: 1024,
    normalize_activations: "none",
    neuronpedia_id: null,
    model_from_pretrained_kwargs: {},
    seqpos_slice: [null],
  };
  assert(isPre6Config(v5));
  const dict = saeConfigToDict(saeConfigFromDict(v5));
  assertSameJson(dict, {
    d_in: 512,
    d_sae: 2048,
    dtype: "float32",
    device: "cuda",
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    reshape_activations: "none",
    metadata: {
      // Converted by saeflow: stamped with the SAELens version it follows and its own.
      sae_lens_version: SAE_LENS_VERSION,
      sae_lens_training_version: "5.9.0",
      saeflow_version: SAEFLOW_VERSION,
      model_name: "gelu-1l",
      hook_name: "blocks.0.hook_mlp_out",
      hook_head_index: null,
      prepend_bos: true,
      dataset_path: "NeelNanda/c4-tokenized-2b",
      context_size: 1024,
      neuronpedia_id: null,
      model_from_pretrained_kwargs: {},
      seqpos_slice: [null],
    },
    architecture: "standard",
  });
});

Deno.test("pre-3.0 gpt2-small-res-jb layer 0 cfg.json (+ YAML overrides) loads like SAELens", () => {
  // §2.2, as downloaded (before overrides).
  const pre3 = {
    model_name: "gpt2-small",
    hook_point: "blocks.0.hook_resid_pre",
    hook_point_layer: 0,
    hook_point_head_index: null,
    dataset_path: "Skylion007/openwebtext",
    is_dataset_tokenized: false,
    context_size: 128,
    use_cached_activations: false,
    cached_activations_path:
      "activations/Skylion007_openwebtext/gpt2-small/blocks.0.hook_resid_pre",
    d_in: 768,
    n_batches_in_buffer: 128,
    total_training_tokens: 300000000,
    store_batch_size: 32,
    device: "mps",
    seed: 42,
    dtype: "torch.float32",
    b_dec_init_method: "geometric_median",
    expansion_factor: 32,
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
    log_to_wandb: true,
    wandb_project: "mats_sae_training_gpt2_small_resid_pre_5",
    wandb_entity: null,
    wandb_log_frequency: 100,
    n_checkpoints: 10,
    checkpoint_path: "checkpoints/y1t51byy",
    d_sae: 24576,
    tokens_per_buffer: 67108864,
    run_name: "24576-L1-8e-05-LR-0.0004-Tokens-3.000e+08",
  };
  const overrides = {
    model_from_pretrained_kwargs: { center_writing_weights: true },
    neuronpedia_id: "gpt2-small/0-res-jb",
  };
  const cfg = saeConfigFromDict(applyConfigOverrides(pre3, overrides, "cpu"));
  assertEquals(cfg.architecture, "standard");
  assertEquals(cfg.dtype, "float32"); // "torch.float32" normalised
  assertEquals(cfg.device, "cpu");
  assertEquals(cfg.metadata.hookName, "blocks.0.hook_resid_pre"); // hook_point → hook_name
  assertEquals(cfg.metadata.neuronpediaId, "gpt2-small/0-res-jb");
  assertSameJson(saeConfigToDict(cfg), {
    d_in: 768,
    d_sae: 24576,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    reshape_activations: "none",
    metadata: {
      sae_lens_version: SAE_LENS_VERSION,
      sae_lens_training_version: null,
      saeflow_version: SAEFLOW_VERSION,
      model_name: "gpt2-small",
      hook_name: "blocks.0.hook_resid_pre",
      hook_head_index: null,
      dataset_path: "Skylion007/openwebtext",
      context_size: 128,
      model_from_pretrained_kwargs: { center_writing_weights: true },
      neuronpedia_id: "gpt2-small/0-res-jb",
      prepend_bos: true,
    },
    architecture: "standard",
  });
});

Deno.test("legacy defaulting: topk from activation_fn, boolean normalize, hook_z reshape", () => {
  const oai = saeConfigFromDict({
    d_in: 768,
    d_sae: 32768,
    dtype: "float32",
    hook_name: "blocks.0.hook_resid_post",
    activation_fn_str: "topk",
    activation_fn_kwargs: { k: 32 },
    normalize_activations: "layer_norm",
    prepend_bos: false,
    context_size: 64,
  });
  assertEquals(oai.architecture, "topk");
  assertEquals(oai.k, 32);
  assertEquals(oai.rescaleActsByDecoderNorm, false);
  assertEquals(oai.normalizeActivations, "layer_norm");
  assertEquals(oai.device, "cpu");
  assertEquals(oai.metadata.prependBos, false);

  const v30 = saeConfigFromDict({ d_in: 4, d_sae: 8, normalize_activations: true });
  assertEquals(v30.normalizeActivations, "expected_average_only_in");
  assertEquals(
    saeConfigFromDict({ d_in: 4, d_sae: 8, normalize_activations: false })
      .normalizeActivations,
    "none",
  );
  assertEquals(
    saeConfigFromDict({ d_in: 4, d_sae: 8, normalize_activations: null })
      .normalizeActivations,
    "none",
  );

  const hookZ = saeConfigFromDict({ d_in: 768, d_sae: 24576, hook_name: "blocks.3.attn.hook_z" });
  assertEquals(hookZ.reshapeActivations, "hook_z");
  // A v6 config keeps its own value (no defaulting once sae_lens_version ≥ 6).
  const v6 = saeConfigFromDict({
    ...structuredClone(V6_STANDARD),
    metadata: { sae_lens_version: "6.0.0", hook_name: "blocks.3.attn.hook_z" },
  });
  assertEquals(v6.reshapeActivations, "none");
});

Deno.test("version check: missing or < 6.0.0-rc.0 is legacy; top level or metadata", () => {
  assert(compareVersions("6.0.0-rc.0", "6.0.0") < 0);
  assert(compareVersions("6.0.0rc1", "6.0.0-rc.0") > 0);
  assert(compareVersions("5.11.0", "6.0.0-rc.0") < 0);
  assert(compareVersions("6.18.0", "6.2.0") > 0);
  assertEquals(compareVersions("6.18", "6.18.0"), 0);
  assert(isPre6Config({ d_in: 1 }));
  assert(isPre6Config({ sae_lens_version: "" }));
  assert(isPre6Config({ sae_lens_version: "5.9.0" }));
  assert(!isPre6Config({ sae_lens_version: "6.0.0-rc.0" }));
  assert(!isPre6Config({ metadata: { sae_lens_version: "6.18.0" } }));
  assertThrows(() => isPre6Config({ sae_lens_version: "six" }), ConfigError, "six");
});

Deno.test("validation errors name the field, the value and what was expected", () => {
  const base = structuredClone(V6_STANDARD) as Record<string, unknown>;
  let err = assertThrows(() => saeConfigFromDict({ ...base, architecture: "relu2" }), ConfigError);
  assert(err.message.includes('"relu2"'), err.message);
  for (const arch of ["standard", "gated", "jumprelu", "topk", "transcoder"]) {
    assert(err.message.includes(arch), `lists ${arch}: ${err.message}`);
  }
  const { d_in: _, ...noDIn } = base;
  assertThrows(() => saeConfigFromDict(noDIn), ConfigError, "d_in is missing");
  err = assertThrows(() => saeConfigFromDict({ ...base, d_sae: 0 }), ConfigError, "d_sae is 0");
  assert(err.message.includes("positive integer"));
  assertThrows(() => saeConfigFromDict({ ...base, d_in: 7.5 }), ConfigError, "d_in is 7.5");
  err = assertThrows(
    () => saeConfigFromDict({ ...base, normalize_activations: "batch_norm" }),
    ConfigError,
    "normalize_activations",
  );
  assert(err.message.includes("batch_norm") && err.message.includes("layer_norm"));
  // v6 configs do not convert booleans (only legacy ones do).
  assertThrows(() => saeConfigFromDict({ ...base, normalize_activations: true }), ConfigError);
  assertThrows(() => saeConfigFromDict({ ...base, dtype: "int8" }), ConfigError, "int8");
  assertThrows(
    () => saeConfigFromDict({ ...base, architecture: "topk", k: 20000 }),
    ConfigError,
    "at most d_sae",
  );
  err = assertThrows(
    () => saeConfigFromDict({ ...base, architecture: "batchtopk" }),
    ConfigError,
    "training-only",
  );
  assert(err.message.includes("jumprelu") && err.message.includes("trainingConfigFromDict"));
  assertThrows(() => saeConfigFromDict({ ...base, architecture: undefined }), ConfigError);
  // Transcoders train now (saeflow); an inference-only architecture still has no training config.
  registerArchitecture("test_inference_only_arch", { inferenceFields: [], trainingFields: null });
  assertThrows(
    () => trainingConfigFromDict({ architecture: "test_inference_only_arch", d_in: 4, d_sae: 8 }),
    ConfigError,
    "inference-only",
  );
  const tc = trainingConfigFromDict({
    architecture: "transcoder",
    d_in: 4,
    d_sae: 8,
    d_out: 3,
    apply_b_dec_to_input: false,
  });
  assertEquals([tc.dOut, tc.l1Coefficient], [3, 1]);
  assertThrows(() => saeConfigFromDict({ ...base, d_in: 4, dIn: 5 }), ConfigError, "conflicting");
});

Deno.test("camelCase input with a v6 version is read like snake_case", () => {
  const cfg = saeConfigFromDict({
    architecture: "standard",
    dIn: 768,
    dSae: 16384,
    applyBDecToInput: false,
    metadata: { saeLensVersion: "6.18.0", hookName: "blocks.1.hook_resid_pre", myKey: 1 },
  });
  assertEquals(cfg.applyBDecToInput, false);
  assertEquals(cfg.metadata.hookName, "blocks.1.hook_resid_pre");
  const dict = saeConfigToDict(cfg);
  assertEquals(dict.apply_b_dec_to_input, false);
  assertEquals(dict.metadata, {
    sae_lens_version: "6.18.0",
    sae_lens_training_version: SAE_LENS_VERSION,
    hook_name: "blocks.1.hook_resid_pre",
    myKey: 1,
  });
});

Deno.test("training configs: §1.5 defaults per architecture", () => {
  const make = (architecture: string, extra: Record<string, unknown> = {}) =>
    createTrainingConfig({ architecture, dIn: 16, dSae: 256, ...extra });
  const std = make("standard");
  assertEquals([std.l1Coefficient, std.lpNorm, std.l1WarmUpSteps, std.decoderInitNorm], [
    1,
    1,
    0,
    0.1,
  ]);
  const gated = make("gated");
  assertEquals([gated.l1Coefficient, gated.l1WarmUpSteps, gated.lpNorm], [1, 0, undefined]);
  const jr = make("jumprelu");
  assertEquals(
    [
      jr.jumpreluInitThreshold,
      jr.jumpreluBandwidth,
      jr.jumpreluSparsityLossMode,
      jr.l0Coefficient,
      jr.l0WarmUpSteps,
      jr.preActLossCoefficient,
      jr.jumpreluTanhScale,
    ],
    [0.01, 0.05, "step", 1, 0, null, 4],
  );
  const topk = make("topk");
  assertEquals(
    [topk.k, topk.useSparseActivations, topk.auxLossCoefficient, topk.rescaleActsByDecoderNorm],
    [100, false, 1, true],
  );
  const btk = make("batchtopk", { k: 1.5 });
  assertEquals([btk.k, btk.topkThresholdLr, btk.rescaleActsByDecoderNorm], [1.5, 0.01, true]);
  assertThrows(() => make("topk", { k: 1.5 }), ConfigError, "k is 1.5");
  assertThrows(() => make("jumprelu", { jumpreluSparsityLossMode: "cubic" }), ConfigError, "cubic");
  const noInit = make("standard", { decoderInitNorm: null });
  assertEquals(noInit.decoderInitNorm, null);
});

Deno.test("training cfg.json: exact key order, round trip, unknown keys reported", () => {
  const cfg = createTrainingConfig({
    architecture: "jumprelu",
    dIn: 16,
    dSae: 64,
    l0Coefficient: 2,
  });
  const dict = trainingConfigToDict(cfg);
  assertEquals(Object.keys(dict), [
    "d_in",
    "d_sae",
    "dtype",
    "device",
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "metadata",
    "decoder_init_norm",
    "jumprelu_init_threshold",
    "jumprelu_bandwidth",
    "jumprelu_sparsity_loss_mode",
    "l0_coefficient",
    "l0_warm_up_steps",
    "pre_act_loss_coefficient",
    "jumprelu_tanh_scale",
    "architecture",
  ]);
  assertEquals(dict.l0_coefficient, 2);
  assertSameJson(trainingConfigToDict(trainingConfigFromDict(dict)), dict);
  const unknown: string[] = [];
  trainingConfigFromDict({ ...dict, lr: 1, l1_coefficient: 3 }, {
    onUnknown: (k) => unknown.push(...k),
  });
  assertEquals(unknown, ["lr", "l1_coefficient"]);
  // The inference reader drops training fields (a checkpoint cfg.json loads as an SAE).
  const inf = saeConfigFromDict(dict);
  assertEquals(Object.keys(saeConfigToDict(inf)).includes("l0_coefficient"), false);
});

Deno.test("inferenceConfigOf: batchtopk/matryoshka → jumprelu without k; topk keeps k", () => {
  const btk = createTrainingConfig({ architecture: "batchtopk", dIn: 4, dSae: 8, k: 2 });
  const inf = inferenceConfigOf(btk);
  assertEquals(inf.architecture, "jumprelu");
  assertEquals("k" in inf, false);
  assertEquals(Object.keys(saeConfigToDict(inf)), [
    "d_in",
    "d_sae",
    "dtype",
    "device",
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "metadata",
    "architecture",
  ]);
  const topk = inferenceConfigOf(
    createTrainingConfig({ architecture: "topk", dIn: 4, dSae: 8, k: 3 }),
  );
  assertEquals([topk.architecture, topk.k, topk.rescaleActsByDecoderNorm], ["topk", 3, true]);
  const std = createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  std.metadata.hookName = "blocks.0.hook_mlp_out";
  const stdInf = inferenceConfigOf(std);
  assertEquals(stdInf.metadata.hookName, "blocks.0.hook_mlp_out");
  assertEquals("l1Coefficient" in stdInf, false);
  stdInf.metadata.hookName = "changed"; // a copy, not shared
  assertEquals(std.metadata.hookName, "blocks.0.hook_mlp_out");
  assertThrows(() => saeConfigToDict(btk), ConfigError, "inferenceConfigOf");
});

Deno.test("matryoshka widths: d_sae appended with a warning, strictly increasing, ≥ k", () => {
  const make = (widths: number[], k = 2) =>
    createTrainingConfig({
      architecture: "matryoshka_batchtopk",
      dIn: 4,
      dSae: 64,
      k,
      matryoshkaWidths: widths,
    });
  const { result, warnings } = captureWarnings(() => make([8, 16]));
  assertEquals(result.matryoshkaWidths, [8, 16, 64]);
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("d_sae"));
  assertEquals(captureWarnings(() => make([8, 16, 64])).warnings, []);
  assertEquals(captureWarnings(() => make([])).result.matryoshkaWidths, [64]);
  assertThrows(() => captureWarnings(() => make([16, 8])), ConfigError, "strictly increasing");
  assertThrows(() => captureWarnings(() => make([8, 128])), ConfigError, "strictly increasing");
  assertThrows(() => make([8, 64], 16), ConfigError, "at least k");
  const dict = trainingConfigToDict(make([8, 64]));
  assertEquals(Object.keys(dict).slice(-3), [
    "topk_threshold_lr",
    "matryoshka_widths",
    "architecture",
  ]);
});

Deno.test("architecture registry: builtins, duplicates throw, custom architectures work", () => {
  assertEquals(listArchitectures().slice(0, 9), [
    "standard",
    "gated",
    "jumprelu",
    "topk",
    "batchtopk",
    "matryoshka_batchtopk",
    "transcoder",
    "skip_transcoder",
    "jumprelu_transcoder",
  ]);
  assertEquals(getArchitecture("batchtopk").exportsAs, "jumprelu");
  assertThrows(
    () => registerArchitecture("topk", { inferenceFields: [], trainingFields: [] }),
    ConfigError,
    "already registered",
  );
  assertThrows(
    () => registerArchitecture("x_only_training", { inferenceFields: null, trainingFields: [] }),
    ConfigError,
    "exportsAs",
  );
  registerArchitecture("test_abs_topk", {
    inferenceFields: [{ name: "k", kind: { type: "int", min: 1 }, default: 7 }],
    trainingFields: [{ name: "signed_scale", kind: { type: "number" }, default: 0.5 }],
  });
  const cfg = createSAEConfig({ architecture: "test_abs_topk", dIn: 4, dSae: 8 });
  assertEquals(cfg.k, 7);
  const t = createTrainingConfig({
    architecture: "test_abs_topk",
    dIn: 4,
    dSae: 8,
    signedScale: 2,
  });
  assertEquals((t as unknown as Record<string, unknown>).signedScale, 2);
  assertEquals(trainingConfigToDict(t).signed_scale, 2);
});

Deno.test("SAEMetadata: None for unset, explicit `has`, verbatim unknown keys, copies", () => {
  const m = new SAEMetadata({ modelName: "gpt2", hook_name: "h", extraThing: { a_b: 1 } });
  assertEquals(m.keys(), [
    "sae_lens_version",
    "sae_lens_training_version",
    "saeflow_version",
    "model_name",
    "hook_name",
    "extraThing",
  ]);
  assertEquals(m.contextSize, null);
  assertEquals(m.has("context_size"), false);
  m.contextSize = 128;
  assertEquals(m.has("contextSize") && m.has("context_size"), true);
  m.hookHeadIndex = null;
  assertEquals(m.has("hook_head_index"), true);
  assertEquals(m.toDict().extraThing, { a_b: 1 });
  const explicit = new SAEMetadata({ sae_lens_version: "5.0.0", sae_lens_training_version: null });
  assertEquals(explicit.saeLensVersion, "5.0.0");
  assertEquals(explicit.saeLensTrainingVersion, null);
  const c = m.clone();
  c.modelName = "other";
  assertEquals(m.modelName, "gpt2");
  assert(!m.equals(c));
  c.modelName = "gpt2";
  assert(m.equals(c));
  m.delete("extraThing");
  assertEquals(m.get("extraThing"), null);
  assertThrows(
    () => new SAEMetadata({ model_name: "a", modelName: "b" }),
    ConfigError,
    "conflicting",
  );
  assertThrows(() => SAEMetadata.fromDict([] as unknown as Record<string, unknown>), ConfigError);
});
