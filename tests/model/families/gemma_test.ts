// Gemma 1 and 2: √D-scaled embedding, (1 + w) norms, MQA; Gemma 2's soft caps, sandwich norms
// and TL's global/local order; real configs convert as TL does.
import { modelConfigFromHf, referenceForward } from "../../../model/mod.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { checkFamily, flat, TOKENS } from "./_check.ts";
import { CONFIGS, naiveForward } from "./mod.ts";

Deno.test("gemma (1): MQA, √D-scaled embedding, (1+w) norms", async () => {
  const { cfg, raw, tensors } = await checkFamily("gemma", 9);
  assertEquals([cfg.nKeyValueHeads, cfg.actFn], [1, "gelu_new"]);
  const emb = tensors.get("model.embed_tokens.weight")!.data;
  assertClose(raw.params.get("embed.W_E")!.data[5], emb[5] * 4, 1e-6);
  assertClose(raw.params.get("unembed.W_U")!.data[5 * 23], emb[5], 0);
});

Deno.test("gemma2: soft caps, sandwich norms, TL's global/local order", async () => {
  const { cfg, raw, run, procRun, proc, hf, tensors } = await checkFamily("gemma2", 10);
  assertEquals(cfg.attnTypes, ["global", "local"]);
  assertClose(cfg.attnScale, Math.sqrt(6), 1e-12);
  assert(
    run.cache.has("blocks.0.ln1_post.hook_scale") &&
      run.cache.has("blocks.1.ln2_post.hook_normalized"),
  );
  assert(proc.notes.some((n) => n.includes("center_unembed")));
  // No centering for Gemma-2: processed logits equal the unprocessed ones.
  assertAllClose(procRun.logits!.data, run.logits!.data, 2e-5);
  assert(proc.params.has("blocks.0.ln1_post.w") && !proc.params.has("blocks.0.ln1.w"));
  // The final cap bounds the logits.
  assert(run.logits!.data.every((x) => Math.abs(x) < 2.5));
  // Each mechanism matters in this configuration.
  const V = cfg.dVocab, P = 8;
  const ours = run.logits!.data.subarray(0, P * V);
  const differs = (other: Float32Array, what: string) => {
    const m = Math.max(...other.map((x, i) => Math.abs(x - ours[i])));
    assert(m > 1e-3, `${what} made no difference (${m})`);
  };
  const hfOrder = naiveForward(hf, tensors, TOKENS[0]); // HF: layer 0 local
  differs(flat(hfOrder.logits), "the local/global order");
  const noScoreCap = referenceForward({ ...cfg, attnScoresSoftCap: -1 }, raw.params, [TOKENS[0]]);
  differs(noScoreCap.logits!.data, "the attention soft cap");
  const noWindow = referenceForward({ ...cfg, useLocalAttn: false }, raw.params, [TOKENS[0]]);
  differs(noWindow.logits!.data, "the sliding window");
  const scores = run.cache.get("blocks.0.attn.hook_attn_scores")!.data;
  assert(scores.every((s) => s === -Infinity || Math.abs(s) <= 1.5));
});

Deno.test("gemma2: Gemma-2-2b's and -27b's HF configs convert as TL does (spec §3)", () => {
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
});
