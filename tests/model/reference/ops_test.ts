// Unit checks: HF config conversion for real model configs, clear errors, numerics (erf,
// activations, rotary tables), the loss, parameter validation.
import {
  activation,
  defineModelConfig,
  erf,
  lmCrossEntropyLoss,
  loadModelFromDir,
  modelConfigFromHf,
  ModelError,
  processWeights,
  rotaryTables,
  TL_DEFAULT_PROCESSING,
  validateParams,
} from "../../model/mod.ts";
import {
  assert,
  assertAllClose,
  assertClose,
  assertEquals,
  assertRejects,
  assertThrows,
} from "../assert.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "./_fixtures.ts";

Deno.test("HF configs of real models convert as TL does (spec §3)", () => {
  const medium = modelConfigFromHf({
    model_type: "gpt2",
    n_layer: 24,
    n_embd: 1024,
    n_head: 16,
    vocab_size: 50257,
    n_positions: 1024,
    n_ctx: 1024,
  });
  assertEquals([medium.nLayers, medium.dHead, medium.dMlp, medium.attnScale], [24, 64, 4096, 8]);
  const pythia = modelConfigFromHf({
    architectures: ["GPTNeoXForCausalLM"],
    model_type: "gpt_neox",
    hidden_size: 512,
    num_attention_heads: 8,
    intermediate_size: 2048,
    num_hidden_layers: 6,
    max_position_embeddings: 2048,
    vocab_size: 50304,
    rotary_pct: 0.25,
    rotary_emb_base: 10000,
    layer_norm_eps: 1e-5,
    hidden_act: "gelu",
    use_parallel_residual: true,
  }, { modelName: "pythia-70m-deduped" });
  assertEquals([pythia.rotaryDim, pythia.parallelAttnMlp, pythia.actFn, pythia.modelName], [
    16,
    true,
    "gelu",
    "pythia-70m-deduped",
  ]);
  const g2 = modelConfigFromHf({
    model_type: "gemma2",
    hidden_size: 2304,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    max_position_embeddings: 8192,
    vocab_size: 256000,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    query_pre_attn_scalar: 256,
    attn_logit_softcapping: 50,
    final_logit_softcapping: 30,
    sliding_window: 4096,
    hidden_activation: "gelu_pytorch_tanh",
  });
  assertEquals([
    g2.attnScale,
    g2.windowSize,
    g2.nKeyValueHeads,
    g2.attnScoresSoftCap,
    g2.outputLogitsSoftCap,
  ], [16, 4096, 4, 50, 30]);
  assertEquals(g2.attnTypes!.slice(0, 3), ["global", "local", "global"]);
  const g27 = modelConfigFromHf({ ...CONFIGS.gemma2, query_pre_attn_scalar: 144 });
  assertEquals(g27.attnScale, 12);
  const l32 = modelConfigFromHf({
    model_type: "llama",
    hidden_size: 2048,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    max_position_embeddings: 131072,
    vocab_size: 128256,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
    hidden_act: "silu",
    rope_scaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  }, { nCtx: 2048 });
  assertEquals([
    l32.nKeyValueHeads,
    l32.rotaryBase,
    l32.ntkByPartsRope!.factor,
    l32.nCtx,
    l32.tieWordEmbeddings,
  ], [8, 500000, 32, 2048, true]);
});

Deno.test("unsupported architectures and malformed configs give clear errors", () => {
  assertThrows(
    () => modelConfigFromHf({ model_type: "bloom", architectures: ["BloomForCausalLM"] }),
    ModelError,
    /unsupported model_type "bloom".*supported: gpt2/,
  );
  assertThrows(
    () => modelConfigFromHf({ model_type: "gpt2", n_embd: 16, n_head: 4 }),
    ModelError,
    `field "n_layer" missing`,
  );
  assertThrows(
    () => modelConfigFromHf({ ...CONFIGS.llama, rope_scaling: { rope_type: "yarn", factor: 4 } }),
    ModelError,
    "unsupported rope_scaling",
  );
  assertThrows(
    () => modelConfigFromHf({ ...CONFIGS.gpt2, activation_function: "quick_gelu" }),
    ModelError,
    "unsupported activation",
  );
  assertThrows(
    () =>
      defineModelConfig({
        nLayers: 1,
        dModel: 8,
        nHeads: 4,
        dVocab: 5,
        nCtx: 4,
        actFn: "relu",
        nKeyValueHeads: 3,
      }),
    ModelError,
    "nKeyValueHeads",
  );
});

Deno.test("a missing tensor names the key and the file; untied models need lm_head", async () => {
  const t = randomHfTensors(CONFIGS.gpt2, 31);
  t.delete("transformer.h.1.mlp.c_fc.bias");
  const dir = await writeHfModel(CONFIGS.gpt2, t);
  try {
    const err = await assertRejects(
      () => loadModelFromDir(dir),
      ModelError,
      `missing tensor "transformer.h.1.mlp.c_fc.bias"`,
    );
    assert(err.message.includes(`${dir}/model.safetensors`), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const l = randomHfTensors(CONFIGS.llama, 32);
  l.delete("lm_head.weight");
  const dir2 = await writeHfModel(CONFIGS.llama, l);
  try {
    await assertRejects(
      () => loadModelFromDir(dir2),
      ModelError,
      `missing tensor "lm_head.weight"`,
    );
  } finally {
    await Deno.remove(dir2, { recursive: true });
  }
});

Deno.test("validateParams catches missing, extra and misshapen parameters", async () => {
  const dir = await writeHfModel(CONFIGS.gpt2, randomHfTensors(CONFIGS.gpt2, 33));
  try {
    const { cfg, params } = await loadModelFromDir(dir);
    validateParams(cfg, params);
    const proc = processWeights(cfg, params, TL_DEFAULT_PROCESSING);
    validateParams(proc.cfg, proc.params);
    assertThrows(() => validateParams(proc.cfg, params), ModelError, "unexpected parameter");
    const bad = new Map(params);
    bad.set("blocks.0.attn.W_Q", { data: new Float32Array(16 * 16), shape: [16, 16] });
    assertThrows(() => validateParams(cfg, bad), ModelError, "blocks.0.attn.W_Q");
    // RMS models: center_writing_weights is skipped with TL's reason.
    const notes =
      processWeights(modelConfigFromHf(CONFIGS.llama), new Map(), { centerWritingWeights: true })
        .notes;
    assert(notes[0].includes("does not use LayerNorm"), notes[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("erf and activations match known values", () => {
  assertClose(erf(0.5), 0.5204998778130465, 1e-15);
  assertClose(erf(1), 0.8427007929497149, 1e-15);
  assertClose(erf(-2), -0.9953222650189527, 1e-15);
  assertClose(erf(3), 0.9999779095030014, 1e-15);
  assertClose(1 - erf(4), 1.541725790028002e-8, 1e-16); // erfc(4), up to double spacing at 1
  assertClose(activation("gelu")(1), 0.8413447460685429, 1e-15);
  assertClose(activation("gelu_new")(1), 0.8411919906082768, 1e-15);
  assertClose(activation("gelu_pytorch_tanh")(-0.5), activation("gelu_new")(-0.5), 0);
  assertClose(activation("silu")(1), 0.7310585786300049, 1e-15);
  assertEquals(activation("relu")(-2), 0);
});

Deno.test("rotary tables: NeoX and GPT-J layouts, float32 angles", () => {
  const cfg = defineModelConfig({
    nLayers: 1,
    dModel: 16,
    nHeads: 2,
    dVocab: 5,
    nCtx: 8,
    actFn: "silu",
    positionalEmbeddingType: "rotary",
    rotaryDim: 4,
  });
  const t = rotaryTables(cfg, 3000);
  // Row p, column j: angle p / base^(i / (rd/2)), i = j mod 2 (NeoX half-split).
  assertClose(t.sin[1 * 4 + 0], Math.sin(1), 1e-7);
  assertClose(t.cos[2 * 4 + 3], Math.cos(2 / 100), 1e-7);
  assertEquals(t.sin[2999 * 4 + 1], t.sin[2999 * 4 + 3]);
  // The angle is rounded to float32 first (as torch computes it): visible at large positions.
  const f32Angle = Math.fround(2999 / Math.fround(100));
  assertClose(t.sin[2999 * 4 + 1], Math.sin(f32Angle), 1e-7);
  const gptj = rotaryTables({ ...cfg, rotaryAdjacentPairs: true }, 4);
  assertEquals(gptj.sin[3 * 4 + 0], gptj.sin[3 * 4 + 1]);
  assertClose(gptj.sin[3 * 4 + 2], Math.sin(0.03), 1e-7);
});

Deno.test("lmCrossEntropyLoss: per-token [B, P−1], mean, attention mask", () => {
  // logits favour token 1 strongly at every position.
  const V = 3, B = 2, P = 3;
  const data = new Float32Array(B * P * V);
  for (let i = 0; i < B * P; i++) data.set([0, 2, 0], i * V);
  const logits = { data, shape: [B, P, V] };
  const tokens = [[0, 1, 1], [2, 0, 1]];
  const per = lmCrossEntropyLoss(logits, tokens, true);
  assertEquals(per.shape, [2, 2]);
  const lse = Math.log(2 + Math.exp(2));
  assertAllClose(per.data, [lse - 2, lse - 2, lse, lse - 2], 1e-6);
  assertClose(lmCrossEntropyLoss(logits, tokens), (3 * (lse - 2) + lse) / 4, 1e-12);
  // Mask: row 1 position 0 padded → its prediction (p=0) is dropped.
  const masked = lmCrossEntropyLoss(logits, tokens, false, {
    attentionMask: [[1, 1, 1], [0, 1, 1]],
  });
  assertClose(masked, lse - 2, 1e-12);
});
