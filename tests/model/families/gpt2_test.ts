// Tiny random models per family, written in HF layout and loaded back: the reference forward
// must match an independent naive HF-semantics forward (logits and every resid_pre), TL
// processing must keep log-probs, and hooks must have TL's names and shapes.
import {
  hookNames,
  lmCrossEntropyLoss,
  loadModelFromDir,
  logSoftmax,
  type ModelConfig,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../model/mod.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../io/dtypes.ts";
import { readSafetensorsHeader } from "../../io/safetensors.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../assert.ts";
import {
  CONFIGS,
  type HfT,
  type Json,
  randomHfTensors,
  writeHfModel,
  type WriteHfOptions,
} from "./_fixtures.ts";
import { naiveForward, type NaiveOptions } from "./_hf_naive.ts";

const TOKENS = [[3, 17, 5, 9, 22, 1, 0, 14], [7, 7, 12, 2, 19, 4, 11, 6]];

/** TL's local-layer rule (differs from HF for Gemma-2: TL is global on even layers). */
function tlLocal(cfg: ModelConfig): NaiveOptions["isLocal"] {
  return (l) => cfg.useLocalAttn && cfg.attnTypes![l] === "local";
}

function flat(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

async function checkFamily(
  family: string,
  seed: number,
  write: WriteHfOptions = {},
) {
  const hf: Json = CONFIGS[family];
  let tensors = randomHfTensors(hf, seed);
  const dir = await writeHfModel(hf, tensors, write);
  try {
    if (write.bf16 || write.f16) {
      // The naive forward must see the bf16/f16-rounded weights the loader widens.
      const round = (x: Float32Array) =>
        write.bf16 ? bf16ToF32(f32ToBf16(x)) : f16ToF32(f32ToF16(x));
      const rounded = new Map<string, HfT>();
      for (const [n, t] of tensors) rounded.set(n, { data: round(t.data), shape: t.shape });
      tensors = rounded;
    }
    const raw = await loadModelFromDir(dir);
    const cfg = raw.cfg;
    const run = referenceForward(cfg, raw.params, TOKENS);
    const B = TOKENS.length, P = TOKENS[0].length, V = cfg.dVocab;
    for (let b = 0; b < B; b++) {
      const naive = naiveForward(hf, tensors, TOKENS[b], { isLocal: tlLocal(cfg) });
      const ours = run.logits!.data.subarray(b * P * V, (b + 1) * P * V);
      const nl = flat(naive.logits);
      // Observed max error ~2e-6 (float32 storage vs float64).
      assertAllClose(ours, nl, 1e-5, 1e-5, `${family} logits batch ${b}`);
      for (let l = 0; l <= cfg.nLayers; l++) {
        const name = l < cfg.nLayers
          ? `blocks.${l}.hook_resid_pre`
          : `blocks.${l - 1}.hook_resid_post`;
        const r = run.cache.get(name)!;
        const D = cfg.dModel;
        assertAllClose(
          r.data.subarray(b * P * D, (b + 1) * P * D),
          flat(naive.hidden[l]),
          2e-4,
          1e-4,
          `${family} ${name}`,
        );
      }
    }
    // Cache: TL order and shapes.
    assertEquals([...run.cache.keys()], hookNames(cfg), `${family} hook order`);
    const H = cfg.nHeads, Hkv = cfg.nKeyValueHeads ?? H, d = cfg.dHead;
    const shape = (n: string) => run.cache.get(`blocks.${cfg.nLayers - 1}.${n}`)?.shape;
    assertEquals(shape("attn.hook_q"), [B, P, H, d]);
    assertEquals(shape("attn.hook_k"), [B, P, Hkv, d]);
    assertEquals(shape("attn.hook_v"), [B, P, Hkv, d]);
    assertEquals(shape("attn.hook_z"), [B, P, H, d]);
    assertEquals(shape("attn.hook_pattern"), [B, H, P, P]);
    assertEquals(shape("mlp.hook_post"), [B, P, cfg.dMlp]);
    if (cfg.positionalEmbeddingType === "rotary") {
      assertEquals(shape("attn.hook_rot_k"), [B, P, Hkv, d]);
      assert(!run.cache.has("hook_pos_embed"));
    }

    // Default TL processing keeps log-probs and the loss.
    const proc = await loadModelFromDir(dir, { processing: TL_DEFAULT_PROCESSING });
    const procRun = referenceForward(proc.cfg, proc.params, TOKENS);
    assertAllClose(
      logSoftmax(procRun.logits!).data,
      logSoftmax(run.logits!).data,
      2e-4,
      0,
      `${family} processed`,
    );
    assertClose(
      lmCrossEntropyLoss(procRun.logits!, TOKENS),
      lmCrossEntropyLoss(run.logits!, TOKENS),
      2e-5,
    );
    const header = await readSafetensorsHeader(
      `${dir}/${write.sharded ? "model-00001-of-00002.safetensors" : "model.safetensors"}`,
    );
    return { cfg, raw, proc, run, procRun, hf, tensors, header };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gpt2 (keys without the transformer. prefix) matches the naive HF forward", async () => {
  const { cfg, proc } = await checkFamily("gpt2", 1, { stripPrefix: "transformer." });
  assertEquals(cfg.normalizationType, "LN");
  assertEquals(proc.cfg.normalizationType, "LNPre");
});

Deno.test("gpt2 with F16 safetensors: widened exactly, matches the naive HF forward", async () => {
  const { raw, tensors, header } = await checkFamily("gpt2", 11, { f16: true });
  assert([...header.tensors.values()].every((t) => t.dtype === "F16"), "written as F16");
  // `tensors` are the f16-rounded weights: the loader's W_E is exactly them, and the rounding
  // is real (so a loader that read the bits as bf16 or as f32 halves would fail above).
  const wte = tensors.get("transformer.wte.weight")!.data;
  assertAllClose(raw.params.get("embed.W_E")!.data, wte, 0, 0, "W_E = f16 wte");
  const exact = randomHfTensors(CONFIGS.gpt2, 11).get("transformer.wte.weight")!.data;
  assert(exact.some((x, i) => x !== wte[i]), "f16 rounding changed some weights");
});

/** The unembedding lives outside the model prefix in HF checkpoints. */
const HEADS = new Set(["lm_head.weight", "embed_out.weight"]);

/** Keys of a written checkpoint, other than the head, that do not start with `prefix`. */
function unprefixed(header: { tensors: Map<string, unknown> }, prefix: string): string[] {
  return [...header.tensors.keys()].filter((k) => !k.startsWith(prefix) && !HEADS.has(k));
}

for (
  const [family, prefix, seed] of [["llama", "model.", 21], ["gpt_neox", "gpt_neox.", 22]] as const
) {
  Deno.test(`${family}: keys with and without the ${prefix} prefix load to the same parameters`, async () => {
    const withPrefix = await checkFamily(family, seed);
    assertEquals(unprefixed(withPrefix.header, prefix), [], `every key carries ${prefix}`);
    const stripped = await checkFamily(family, seed, { stripPrefix: prefix });
    const keys = [...stripped.header.tensors.keys()];
    assert(keys.every((k) => !k.startsWith(prefix)), `no key carries ${prefix}`);
    assert(keys.some((k) => k.includes("layers.0.")), "the layer keys are there, bare");
    assertEquals([...stripped.raw.params.keys()].sort(), [...withPrefix.raw.params.keys()].sort());
    for (const [name, t] of withPrefix.raw.params) {
      assertAllClose(stripped.raw.params.get(name)!.data, t.data, 0, 0, `${family} ${name}`);
    }
  });
}

Deno.test("gpt_neo: local attention on odd layers, no 1/sqrt(d) scale", async () => {
  const { cfg, hf, tensors, run } = await checkFamily("gpt_neo", 2);
  assertEquals(cfg.attnTypes, ["global", "local"]);
  assertEquals(cfg.useAttnScale, false);
  // The window matters: treating layer 1 as global changes the logits.
  const global = naiveForward(hf, tensors, TOKENS[0], { isLocal: () => false });
  const V = cfg.dVocab, P = 8;
  const ours = run.logits!.data.subarray(0, P * V);
  const maxDiff = Math.max(...flat(global.logits).map((x, i) => Math.abs(x - ours[i])));
  assert(maxDiff > 1e-3, `local window made no difference (${maxDiff})`);
  // Local layer pattern: keys ≥ window (3) back get zero weight.
  const pat = run.cache.get("blocks.1.attn.hook_pattern")!.data;
  assertEquals(pat[7 * P + 4], 0);
  assert(pat[7 * P + 5] > 0);
});

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
