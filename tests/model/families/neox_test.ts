// GPT-NeoX (Pythia): parallel attention and MLP, partial rotary, the erf GELU, keys with and
// without the gpt_neox. prefix; a real config converts as TL does.
import { modelConfigFromHf } from "../../../model/mod.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { checkFamily, testKeyPrefix } from "./_check.ts";

testKeyPrefix("gpt_neox", "gpt_neox.", 22);

Deno.test("gpt_neox (Pythia layout): parallel attn/mlp, partial rotary, erf GELU", async () => {
  const { cfg, run, procRun } = await checkFamily("gpt_neox", 3);
  assertEquals([cfg.parallelAttnMlp, cfg.rotaryDim, cfg.actFn], [true, 4, "gelu"]);
  assert(!run.cache.has("blocks.0.hook_resid_mid"));
  // Components beyond rotaryDim pass through the rotation unchanged; position 0 is unrotated.
  const q = run.cache.get("blocks.0.attn.hook_q")!.data,
    rq = run.cache.get("blocks.0.attn.hook_rot_q")!.data;
  const d = 8, H = 2;
  const at = (p: number, h: number, c: number) => (p * H + h) * d + c;
  assertEquals(rq[at(5, 1, 6)], q[at(5, 1, 6)]);
  assertEquals(rq[at(0, 1, 2)], q[at(0, 1, 2)]);
  assert(Math.abs(rq[at(5, 1, 2)] - q[at(5, 1, 2)]) > 1e-6);
  // Processing (LN): hook_q and patterns unchanged, residuals centered.
  assertAllClose(
    procRun.cache.get("blocks.1.attn.hook_pattern")!.data,
    run.cache.get("blocks.1.attn.hook_pattern")!.data,
    1e-5,
  );
  const r = procRun.cache.get("blocks.1.hook_resid_pre")!.data;
  assertClose(r.subarray(0, 16).reduce((a, b) => a + b, 0), 0, 1e-5);
});

Deno.test("gpt_neox: Pythia-70m's HF config converts as TL does (spec §3)", () => {
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
});
