// The Llama family: Llama (GQA, sharded checkpoint, keys with and without the model. prefix),
// Llama-3.1 rope scaling, Mistral's sliding window, Qwen2's biases, Qwen3's q/k norms; a real
// config converts as TL does.
import { modelConfigFromHf } from "../../../model/mod.ts";
import { assert, assertAllClose, assertEquals } from "../../assert.ts";
import { checkFamily, testKeyPrefix } from "./_check.ts";

testKeyPrefix("llama", "model.", 21);

Deno.test("llama: GQA (4 query heads, 2 kv heads) sharded checkpoint, untied head", async () => {
  const { cfg, proc } = await checkFamily("llama", 4, { sharded: true });
  assertEquals([cfg.nKeyValueHeads, cfg.normalizationType, cfg.gatedMlp], [2, "RMS", true]);
  assertEquals(proc.cfg.normalizationType, "RMSPre");
  assert(proc.params.has("blocks.0.attn._W_K") && !proc.params.has("blocks.0.ln1.w"));
});

Deno.test("llama 3.1-style NTK-by-parts rope scaling, tied embeddings", async () => {
  const { cfg } = await checkFamily("llama3", 5);
  assertEquals(cfg.ntkByPartsRope?.factor, 8);
  assertEquals(cfg.nKeyValueHeads, null);
});

Deno.test("mistral: sliding window on every layer (MQA)", async () => {
  const { cfg } = await checkFamily("mistral", 6);
  assertEquals(cfg.attnTypes, ["local", "local"]);
  assertEquals(cfg.nKeyValueHeads, 1);
});

Deno.test("qwen2: q/k/v biases (bf16 weights); fold_value_biases shifts hook_v", async () => {
  const { cfg, run, procRun, proc } = await checkFamily("qwen2", 7, { bf16: true });
  assertEquals(cfg.defaultPrependBos, false);
  assert(
    run.cache.get("blocks.0.attn.hook_v")!.data.some((x, i) =>
      Math.abs(x - procRun.cache.get("blocks.0.attn.hook_v")!.data[i]) > 1e-3
    ),
  );
  assert(proc.params.get("blocks.0.attn._b_V")!.data.every((x) => x === 0));
  // RMS model: residual stream untouched by processing.
  assertAllClose(
    procRun.cache.get("blocks.1.hook_resid_pre")!.data,
    run.cache.get("blocks.1.hook_resid_pre")!.data,
    2e-5,
  );
});

Deno.test("qwen3: per-head q/k RMSNorm with head_dim ≠ d_model / n_heads", async () => {
  const { cfg, run, proc } = await checkFamily("qwen3", 8);
  assertEquals([cfg.useQkNorm, cfg.dHead], [true, 8]);
  assertEquals(run.cache.get("blocks.0.attn.q_norm.hook_scale")!.shape, [2 * 8 * 4, 1]);
  assertEquals(run.cache.get("blocks.0.attn.k_norm.hook_normalized")!.shape, [2 * 8 * 2, 8]);
  assert(proc.params.has("blocks.0.attn.q_norm.w"), "fold_ln must keep the q/k norm weights");
});

Deno.test("llama: Llama-3.2-1B's HF config (rope scaling, n_ctx cap) converts as TL does (spec §3)", () => {
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
