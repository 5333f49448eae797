import { assert, assertEquals, assertThrows } from "../assert.ts";
import { runnerConfigFromDict, runnerConfigToDict } from "../../pipeline/runner_config.ts";
import { pipelineConfigFromDict } from "../../pipeline/config.ts";
import { tokensPerBuffer, totalTrainingSteps } from "../../config/derived.ts";
import { ConfigError, setConfigWarnHandler } from "../../config/errors.ts";

function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const warnings: string[] = [];
  const previous = setConfigWarnHandler((m) => warnings.push(m));
  try {
    return { result: fn(), warnings };
  } finally {
    setConfigWarnHandler(previous);
  }
}

const SAE = { architecture: "standard", d_in: 64, d_sae: 256 };

// §1.6: LanguageModelSAERunnerConfig.to_dict() keys of SAELens 6.18, in order.
const RUNNER_KEYS_6_18 = [
  "sae",
  "model_name",
  "model_class_name",
  "hook_name",
  "hook_eval",
  "hook_head_index",
  "dataset_path",
  "dataset_trust_remote_code",
  "streaming",
  "is_dataset_tokenized",
  "context_size",
  "use_cached_activations",
  "cached_activations_path",
  "from_pretrained_path",
  "n_batches_in_buffer",
  "training_tokens",
  "store_batch_size_prompts",
  "seqpos_slice",
  "disable_concat_sequences",
  "sequence_separator_token",
  "device",
  "act_store_device",
  "seed",
  "dtype",
  "prepend_bos",
  "autocast",
  "autocast_lm",
  "compile_llm",
  "llm_compilation_mode",
  "compile_sae",
  "sae_compilation_mode",
  "train_batch_size_tokens",
  "adam_beta1",
  "adam_beta2",
  "lr",
  "lr_scheduler_name",
  "lr_warm_up_steps",
  "lr_end",
  "lr_decay_steps",
  "n_restart_cycles",
  "dead_feature_window",
  "feature_sampling_window",
  "dead_feature_threshold",
  "n_eval_batches",
  "eval_batch_size_prompts",
  "logger",
  "n_checkpoints",
  "checkpoint_path",
  "save_final_checkpoint",
  "output_path",
  "resume_from_checkpoint",
  "verbose",
  "model_kwargs",
  "model_from_pretrained_kwargs",
  "sae_lens_version",
  "sae_lens_training_version",
  "exclude_special_tokens",
];
const LOGGER_KEYS_6_18 = [
  "log_to_wandb",
  "log_activations_store_to_wandb",
  "log_optimizer_state_to_wandb",
  "wandb_project",
  "wandb_id",
  "run_name",
  "wandb_entity",
  "wandb_log_frequency",
  "eval_every_n_wandb_logs",
];

Deno.test("runner defaults (6.18) and post-init derived values", () => {
  const cfg = runnerConfigFromDict({ sae: SAE }, { runId: "run12345" });
  assertEquals(cfg.modelName, "gelu-2l");
  assertEquals(cfg.modelClassName, "HookedTransformer");
  assertEquals(cfg.hookName, "blocks.0.hook_mlp_out");
  assertEquals(cfg.contextSize, 128);
  assertEquals(cfg.nBatchesInBuffer, 20);
  assertEquals(cfg.trainingTokens, 2_000_000);
  assertEquals(cfg.storeBatchSizePrompts, 32);
  assertEquals(cfg.seqposSlice, [null]);
  assertEquals(cfg.sequenceSeparatorToken, "bos");
  assertEquals(cfg.trainBatchSizeTokens, 4096);
  assertEquals([cfg.adamBeta1, cfg.adamBeta2, cfg.lr], [0.9, 0.999, 3e-4]);
  assertEquals(cfg.lrSchedulerName, "constant");
  assertEquals([cfg.deadFeatureWindow, cfg.featureSamplingWindow], [1000, 2000]);
  assertEquals(cfg.deadFeatureThreshold, 1e-8);
  assertEquals(cfg.nEvalBatches, 10);
  assertEquals(cfg.outputPath, "output");
  assertEquals(cfg.excludeSpecialTokens, false);
  assertEquals(cfg.saeLensVersion, "6.49.2");
  assertEquals(cfg.logger.logToWandb, true);
  assertEquals(cfg.logger.wandbProject, "sae_lens_training");
  assertEquals(cfg.logger.wandbLogFrequency, 10);
  assertEquals(cfg.logger.evalEveryNWandbLogs, 100);
  // post-init
  assertEquals(cfg.lrEnd, 3e-4 / 10);
  assertEquals(cfg.actStoreDevice, "cpu");
  assertEquals(cfg.modelFromPretrainedKwargs, { center_writing_weights: false });
  assertEquals(cfg.checkpointPath, "checkpoints/run12345");
  assertEquals(cfg.logger.runName, "standard-256-LR-0.0003-Tokens-2.000e+06");
  assertEquals(cfg.cachedActivationsPath, null);
  assertEquals(totalTrainingSteps(cfg), 488);
  assertEquals(tokensPerBuffer(cfg), 4096 * 128 * 20);
  // SAE nested config with its own training defaults
  assertEquals(cfg.sae.l1Coefficient, 1);
  assertEquals(cfg.sae.decoderInitNorm, 0.1);
});

Deno.test("runner post-init: explicit values win; other model classes; caching path; run id", () => {
  const cfg = runnerConfigFromDict({
    sae: { architecture: "topk", dIn: 64, dSae: 256, k: 8 },
    modelClassName: "AutoModelForCausalLM",
    modelName: "org/model",
    datasetPath: "org/data",
    hookName: "transformer.h.1",
    useCachedActivations: true,
    device: "gpu",
    actStoreDevice: "cpu",
    lr: 1e-4,
    lrEnd: 0,
    logger: { wandbId: "abcd1234", runName: "mine" },
  });
  assertEquals(cfg.modelFromPretrainedKwargs, {});
  assertEquals(cfg.actStoreDevice, "cpu");
  assertEquals(cfg.lrEnd, 0);
  assertEquals(cfg.logger.runName, "mine");
  assertEquals(cfg.checkpointPath, "checkpoints/abcd1234");
  assertEquals(cfg.cachedActivationsPath, "activations/org_data/org_model/transformer.h.1");
  const nocp = runnerConfigFromDict({ sae: SAE, checkpoint_path: null });
  assertEquals(nocp.checkpointPath, null);
  const random = runnerConfigFromDict({ sae: SAE });
  assert(
    /^checkpoints\/[0-9a-f]{8}$/.test(random.checkpointPath ?? ""),
    `${random.checkpointPath}`,
  );
});

Deno.test("snake_case and camelCase configs are equivalent", () => {
  const snake = runnerConfigFromDict({
    sae: { architecture: "jumprelu", d_in: 32, d_sae: 128, l0_coefficient: 5 },
    model_name: "tiny-stories-1M",
    context_size: 6,
    n_batches_in_buffer: 2,
    train_batch_size_tokens: 4,
    adam_beta1: 0,
    logger: { log_to_wandb: false },
  }, { runId: "x" });
  const camel = runnerConfigFromDict({
    sae: { architecture: "jumprelu", dIn: 32, dSae: 128, l0Coefficient: 5 },
    modelName: "tiny-stories-1M",
    contextSize: 6,
    nBatchesInBuffer: 2,
    trainBatchSizeTokens: 4,
    adamBeta1: 0,
    logger: { logToWandb: false },
  }, { runId: "x" });
  assertEquals(runnerConfigToDict(camel), runnerConfigToDict(snake));
  assertEquals(camel.sae.l0Coefficient, 5);
  assertThrows(
    () => runnerConfigFromDict({ sae: SAE, context_size: 6, contextSize: 8 }),
    ConfigError,
    "conflicting",
  );
});

Deno.test("runner_cfg.json: 6.18's keys and order plus the two newer keys saeflow applies; round trip via fromSaved", () => {
  const cfg = runnerConfigFromDict({ sae: SAE, seqpos_slice: [2, 8], context_size: 10 }, {
    runId: "r1",
  });
  const dict = runnerConfigToDict(cfg);
  // Newer SAELens keys that take effect in saeflow: activations_mixing_fraction after
  // sequence_separator_token, n_batches_for_norm_estimate last; saeflow's own dataset_* keys
  // only when set.
  const keys = [...RUNNER_KEYS_6_18];
  keys.splice(keys.indexOf("sequence_separator_token") + 1, 0, "activations_mixing_fraction");
  keys.push("n_batches_for_norm_estimate");
  assertEquals(Object.keys(dict), keys);
  const withSplit = runnerConfigToDict(
    runnerConfigFromDict({ sae: SAE, dataset_text_sample_by: "paragraph" }, { runId: "r1" }),
  );
  assertEquals(withSplit.dataset_text_sample_by, "paragraph");
  assertEquals("dataset_split" in withSplit, false);
  assertEquals(Object.keys(dict.logger as object), LOGGER_KEYS_6_18);
  assertEquals((dict.sae as Record<string, unknown>).architecture, "standard");
  assertEquals((dict.sae as Record<string, unknown>).l1_coefficient, 1);
  assertEquals(dict.seqpos_slice, [2, 8]);
  assertEquals(dict.checkpoint_path, "checkpoints/r1");
  const text = JSON.stringify(dict);
  const again = runnerConfigFromDict(JSON.parse(text), { fromSaved: true });
  assertEquals(JSON.stringify(runnerConfigToDict(again)), text);
  // Without fromSaved the run id would be appended once more, as SAELens' constructor does.
  assertEquals(
    runnerConfigFromDict(JSON.parse(text), { runId: "r2" }).checkpointPath,
    "checkpoints/r1/r2",
  );
});

Deno.test("flat v3–v5 runner config converts to the nested form", () => {
  const { result: cfg, warnings } = captureWarnings(() =>
    runnerConfigFromDict({
      architecture: "jumprelu",
      model_name: "gelu-1l",
      hook_name: "blocks.0.hook_mlp_out",
      hook_layer: 0,
      d_in: 512,
      expansion_factor: 8,
      d_sae: null,
      l1_coefficient: 5,
      l1_warm_up_steps: 100,
      jumprelu_bandwidth: 0.001,
      jumprelu_init_threshold: 0.001,
      lp_norm: 1,
      normalize_activations: true,
      use_ghost_grads: false,
      b_dec_init_method: "zeros",
      log_to_wandb: false,
      wandb_project: "old_project",
      run_name: "old-run",
      dtype: "torch.float32",
      device: "cpu",
      lr: 1e-4,
      adam_beta1: 0,
      training_tokens: 1000,
    }, { runId: "x" })
  );
  assertEquals(cfg.sae.architecture, "jumprelu");
  assertEquals(cfg.sae.dIn, 512);
  assertEquals(cfg.sae.dSae, 4096);
  assertEquals(cfg.sae.l0Coefficient, 5); // v5 JumpReLU used l1_coefficient
  assertEquals(cfg.sae.l0WarmUpSteps, 100);
  assertEquals(cfg.sae.jumpreluBandwidth, 0.001);
  assertEquals(cfg.sae.normalizeActivations, "expected_average_only_in");
  assertEquals(cfg.sae.dtype, "float32");
  assertEquals(cfg.dtype, "float32");
  assertEquals(cfg.logger.logToWandb, false);
  assertEquals(cfg.logger.wandbProject, "old_project");
  assertEquals(cfg.logger.runName, "old-run");
  assertEquals([cfg.lr, cfg.adamBeta1, cfg.trainingTokens], [1e-4, 0, 1000]);
  assertEquals(warnings.length, 1);
  for (
    const key of [
      "hook_layer",
      "expansion_factor",
      "use_ghost_grads",
      "b_dec_init_method",
      "lp_norm",
    ]
  ) {
    assert(warnings[0].includes(key), `${key} in ${warnings[0]}`);
  }
  const topk = captureWarnings(() =>
    runnerConfigFromDict({
      d_in: 16,
      d_sae: 64,
      activation_fn: "topk",
      activation_fn_kwargs: { k: 4 },
    })
  ).result;
  assertEquals([topk.sae.architecture, topk.sae.k], ["topk", 4]);
  const v5Default = captureWarnings(() => runnerConfigFromDict({ d_in: 16 })).result;
  assertEquals(v5Default.sae.dSae, 64); // expansion_factor defaulted to 4
  assertThrows(
    () => runnerConfigFromDict({ d_in: 16, d_sae: 100, expansion_factor: 4 }),
    ConfigError,
    "expansion_factor",
  );
});

Deno.test("pre-3.0 runner names are renamed", () => {
  const cfg = captureWarnings(() =>
    runnerConfigFromDict({
      hook_point: "blocks.0.hook_resid_pre",
      hook_point_head_index: null,
      total_training_tokens: 300_000_000,
      store_batch_size: 32,
      train_batch_size: 4096,
      lr_scheduler_name: null,
      d_in: 768,
      d_sae: 24576,
      l1_coefficient: 8e-5,
      lr: 0.0004,
    }, { runId: "x" })
  ).result;
  assertEquals(cfg.hookName, "blocks.0.hook_resid_pre");
  assertEquals(cfg.trainingTokens, 300_000_000);
  assertEquals(cfg.storeBatchSizePrompts, 32);
  assertEquals(cfg.trainBatchSizeTokens, 4096);
  assertEquals(cfg.lrSchedulerName, "constant");
  assertEquals(cfg.sae.l1Coefficient, 8e-5);
  assertEquals(cfg.logger.runName, "standard-24576-LR-0.0004-Tokens-3.000e+08");
});

Deno.test("runner validation errors name the field and what was expected", () => {
  const run = (extra: Record<string, unknown>) => runnerConfigFromDict({ sae: SAE, ...extra });
  assertThrows(() => run({ context_size: -1 }), ConfigError, "context_size is -1");
  assertThrows(() => run({ lr: "fast" }), ConfigError, 'lr is "fast"');
  assertThrows(() => run({ training_tokens: 1.5 }), ConfigError, "training_tokens is 1.5");
  assertThrows(() => run({ seqpos_slice: [null, 10, -1] }), ConfigError, "greater than 1");
  assertThrows(() => run({ seqpos_slice: [6, 3], context_size: 10 }), ConfigError, "no position");
  assertThrows(
    () => run({ exclude_special_tokens: [1, "a"] }),
    ConfigError,
    "exclude_special_tokens",
  );
  assertThrows(
    () => run({ sequence_separator_token: "pad" }),
    ConfigError,
    "sequence_separator_token",
  );
  const sched = assertThrows(() => run({ lr_scheduler_name: "linear" }), ConfigError, "linear");
  assert(sched.message.includes("cosineannealingwarmrestarts"));
  assertEquals(run({ lr_scheduler_name: "CosineAnnealing" }).lrSchedulerName, "CosineAnnealing");
  assertEquals(run({ exclude_special_tokens: [50256] }).excludeSpecialTokens, [50256]);
  assertEquals(run({ sequence_separator_token: 7 }).sequenceSeparatorToken, 7);
  assertThrows(() => run({ model_kwargs: [1] }), ConfigError, "model_kwargs");
  const unknown = assertThrows(() => run({ learning_rate: 1 }), ConfigError, "learning_rate");
  assert(unknown.message.includes("unknown"));
  assertThrows(() => run({ log_to_wandb: false }), ConfigError, "logger");
  assertThrows(() => run({ logger: { wandb_projekt: "x" } }), ConfigError, "wandb_projekt");
  assertThrows(
    () => runnerConfigFromDict({ sae: { d_in: 4, d_sae: 8 } }),
    ConfigError,
    "architecture",
  );
  assertThrows(() => runnerConfigFromDict({ sae: "standard" }), ConfigError, "sae is");
  assertThrows(() => run({ sae: { ...SAE, d_sae: -4 } }), ConfigError, "d_sae is -4");
});

Deno.test("runner warnings: hook_eval, newer SAELens keys, unknown sae keys", () => {
  const { warnings } = captureWarnings(() =>
    runnerConfigFromDict({
      sae: { ...SAE, jumprelu_ste_to_input: false },
      hook_eval: "blocks.0.hook_resid_pre",
      llm_device: "cuda:1",
      logger: { log_weights_to_wandb: true },
    })
  );
  assertEquals(warnings.length, 4);
  assert(warnings.some((w) => w.includes("hook_eval")));
  assert(warnings.some((w) => w.includes("llm_device")));
  assert(warnings.some((w) => w.includes("log_weights_to_wandb")));
  assert(warnings.some((w) => w.includes("jumprelu_ste_to_input")));
});

Deno.test("pipeline config: a transcoder needs metadata.hook_name_out; an SAE has none", () => {
  const sae = {
    architecture: "transcoder",
    d_in: 4,
    d_sae: 8,
    d_out: 3,
    apply_b_dec_to_input: false,
  };
  assertThrows(
    () => pipelineConfigFromDict({ sae, hook_name: "blocks.0.mlp.hook_in" }, { runId: "x" }),
    ConfigError,
    "a transcoder needs metadata.hook_name_out",
  );
  const ok = pipelineConfigFromDict({
    saes: {
      tc: { ...sae, metadata: { hook_name_out: "blocks.0.hook_mlp_out" } },
      s: { architecture: "standard", d_in: 4, d_sae: 8 },
    },
    hook_names: "blocks.0.mlp.hook_in",
  }, { runId: "x" });
  assertEquals(ok.saes.map((s) => s.hookNameOut), ["blocks.0.hook_mlp_out", null]);
});
