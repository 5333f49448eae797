// The shipped real model data/tiny-shakespeare-gpt2 (README reference values), unprocessed and
// under TL processing.
import {
  hookNames,
  lmCrossEntropyLoss,
  loadModelFromDir,
  logSoftmax,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../../model/mod.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";

const DIR = "data/tiny-shakespeare-gpt2";
const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.";
const TOKENS = [256, ...new TextEncoder().encode(TEXT)];

const raw = await loadModelFromDir(DIR);
const rawRun = referenceForward(raw.cfg, raw.params, [TOKENS]);
const full = await loadModelFromDir(DIR, { processing: TL_DEFAULT_PROCESSING });
const fullRun = referenceForward(full.cfg, full.params, [TOKENS]);

function rowNorm(data: Float32Array, row: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += data[row * n + j] ** 2;
  return Math.sqrt(s);
}

Deno.test("shipped gpt2: config and parameter shapes", () => {
  const c = raw.cfg;
  assertEquals([c.nLayers, c.dModel, c.nHeads, c.dHead, c.dMlp, c.dVocab, c.nCtx], [
    4,
    128,
    4,
    32,
    512,
    257,
    256,
  ]);
  assertEquals(c.actFn, "gelu_new");
  assertEquals(raw.params.get("blocks.0.attn.W_Q")!.shape, [4, 128, 32]);
  assertEquals(raw.params.get("blocks.0.attn.W_O")!.shape, [4, 32, 128]);
  assertEquals(raw.params.get("unembed.W_U")!.shape, [128, 257]);
  // Tied: W_U is W_E transposed before processing.
  const WE = raw.params.get("embed.W_E")!.data, WU = raw.params.get("unembed.W_U")!.data;
  assertEquals(WU[5 * 257 + 100], WE[100 * 128 + 5]);
  assertEquals(full.cfg.normalizationType, "LNPre");
  assert(!full.params.has("blocks.0.ln1.w") && !full.params.has("ln_final.b"));
});

Deno.test("shipped gpt2: README reference values (unprocessed)", () => {
  assertEquals(TOKENS.length, 61);
  assertClose(lmCrossEntropyLoss(rawRun.logits!, [TOKENS]), 1.37111, 5e-6);
  const V = raw.cfg.dVocab, last = rawRun.logits!.data.subarray(60 * V, 61 * V);
  let best = 0;
  for (let i = 1; i < V; i++) if (last[i] > last[best]) best = i;
  assertEquals(best, 10);
  assertClose(last[best], 12.638, 5e-4);
  const r = rawRun.cache.get("blocks.1.hook_resid_pre")!;
  assertEquals(r.shape, [1, 61, 128]);
  assertClose(rowNorm(r.data, 5, 128), 8.3796, 5e-5);
});

Deno.test("shipped gpt2: cache holds every hook in TL order with TL shapes", () => {
  assertEquals([...rawRun.cache.keys()], hookNames(raw.cfg));
  const shape = (n: string) => rawRun.cache.get(n)!.shape;
  assertEquals(shape("hook_pos_embed"), [1, 61, 128]);
  assertEquals(shape("blocks.2.ln1.hook_scale"), [1, 61, 1]);
  assertEquals(shape("blocks.2.attn.hook_q"), [1, 61, 4, 32]);
  assertEquals(shape("blocks.2.attn.hook_z"), [1, 61, 4, 32]);
  assertEquals(shape("blocks.2.attn.hook_pattern"), [1, 4, 61, 61]);
  assertEquals(shape("blocks.2.mlp.hook_post"), [1, 61, 512]);
  const scores = rawRun.cache.get("blocks.0.attn.hook_attn_scores")!.data;
  assertEquals(scores[1], -Infinity); // query 0 cannot see key 1
  const pattern = rawRun.cache.get("blocks.0.attn.hook_pattern")!.data;
  let rowSum = 0;
  for (let j = 0; j < 61; j++) rowSum += pattern[30 * 61 + j];
  assertClose(rowSum, 1, 1e-6);
});

Deno.test("shipped gpt2: default processing keeps log-probs and loss; logits shift per position", () => {
  const V = raw.cfg.dVocab;
  assertAllClose(logSoftmax(fullRun.logits!).data, logSoftmax(rawRun.logits!).data, 2e-5);
  assertClose(
    lmCrossEntropyLoss(fullRun.logits!, [TOKENS]),
    lmCrossEntropyLoss(rawRun.logits!, [TOKENS]),
    2e-6,
  );
  for (const p of [0, 30, 60]) {
    const diff = Array.from(
      { length: V },
      (_, v) => fullRun.logits!.data[p * V + v] - rawRun.logits!.data[p * V + v],
    );
    const spread = Math.max(...diff) - Math.min(...diff);
    assert(spread < 1e-4, `position ${p}: logit shift not constant (spread ${spread})`);
  }
  // center_unembed: processed logits average to zero over the vocab.
  let mean = 0;
  for (let v = 0; v < V; v++) mean += fullRun.logits!.data[30 * V + v] / V;
  assertClose(mean, 0, 1e-5);
});

Deno.test("shipped gpt2: processed activations follow spec §2.3", () => {
  const D = 128;
  const rawR = rawRun.cache.get("blocks.1.hook_resid_pre")!.data;
  const centered = new Float32Array(rawR.length);
  for (let p = 0; p < 61; p++) {
    let m = 0;
    for (let j = 0; j < D; j++) m += rawR[p * D + j] / D;
    for (let j = 0; j < D; j++) centered[p * D + j] = rawR[p * D + j] - m;
  }
  assertAllClose(fullRun.cache.get("blocks.1.hook_resid_pre")!.data, centered, 2e-5);
  for (
    const name of ["blocks.1.ln1.hook_scale", "blocks.1.attn.hook_q", "blocks.3.attn.hook_pattern"]
  ) {
    assertAllClose(fullRun.cache.get(name)!.data, rawRun.cache.get(name)!.data, 5e-5, 0, name);
  }
  // hook_v shifts by a per-head constant (the folded value bias): the difference is the same at
  // every position.
  const vr = rawRun.cache.get("blocks.2.attn.hook_v")!.data;
  const vp = fullRun.cache.get("blocks.2.attn.hook_v")!.data;
  const shift0 = vp.subarray(0, 128).map((x, i) => x - vr[i]);
  const shift40 = vp.subarray(40 * 128, 41 * 128).map((x, i) => x - vr[40 * 128 + i]);
  assertAllClose(shift40, shift0, 5e-5);
  assert(Math.max(...shift0.map(Math.abs)) > 1e-3, "value bias fold should shift hook_v");
});

Deno.test("shipped gpt2: center_writing_weights alone gives the fully processed residuals", async () => {
  const cw = await loadModelFromDir(DIR, { processing: { centerWritingWeights: true } });
  assertEquals(cw.cfg.normalizationType, "LN");
  const run = referenceForward(cw.cfg, cw.params, [TOKENS], {
    namesFilter: (n) => n.endsWith("hook_resid_post") || n.endsWith("hook_resid_pre"),
  });
  for (const [name, t] of run.cache) {
    assertAllClose(t.data, fullRun.cache.get(name)!.data, 5e-5, 0, name);
  }
});
