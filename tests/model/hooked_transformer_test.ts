// HookedTransformer on the shipped real model (data/tiny-shakespeare-gpt2): its documented
// reference values on the GPU forward, TL processing vs no processing (same log-probs), snake_case
// kwargs, runWithCache / runWithHooks / loss (tokens as number[][] or an i32 Tensor), tokenizer
// helpers, option errors.
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { disposeCache } from "../../model/hooks/gpu.ts";
import {
  lmCrossEntropyLoss,
  loadModelFromDir,
  logSoftmax,
  ModelError,
  referenceForward,
} from "../../model/mod.ts";
import { scale } from "../../gpu/kernels/elementwise.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertRejects } from "../assert.ts";

const DIR = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.";
const model = await HookedTransformer.fromPretrainedNoProcessing(DIR);
const tokens = model.toTokens(TEXT);

Deno.test("hooked transformer: the shipped model's reference values (CE, argmax, resid norm)", async () => {
  assertEquals(tokens[0].length, 61);
  assertEquals(tokens[0][0], 256, "BOS first");
  assertClose(await model.loss(tokens), 1.37111, 5e-5);
  const { logits, cache } = await model.runWithCache(tokens, {
    namesFilter: ["blocks.1.hook_resid_pre"],
  });
  const V = model.cfg.dVocab, D = model.cfg.dModel;
  const last = (await logits!.toArray()).subarray(60 * V, 61 * V);
  let arg = 0;
  for (let i = 1; i < V; i++) if (last[i] > last[arg]) arg = i;
  assertEquals(arg, 10);
  assertClose(last[arg], 12.638, 5e-4);
  const resid = await cache.get("blocks.1.hook_resid_pre")!.toArray();
  assertClose(Math.hypot(...resid.subarray(5 * D, 6 * D)), 8.3796, 5e-4);
  logits!.dispose();
  disposeCache(cache);
});

Deno.test("hooked transformer: fromPretrained (TL processing) and no processing give the same log-probs", async () => {
  using processed = await HookedTransformer.fromPretrained(DIR);
  assertEquals(processed.cfg.normalizationType, "LNPre");
  assertEquals(model.cfg.normalizationType, "LN");
  using a = await model.forward(tokens);
  using b = await processed.forward(tokens);
  const shape = [...a.shape];
  const la = logSoftmax({ data: await a.toArray() as Float32Array, shape });
  const lb = logSoftmax({ data: await b.toArray() as Float32Array, shape });
  assertAllClose(lb.data, la.data, 2e-4, 0, "log-probs");
  // center_unembed: processed logits are the raw logits minus their mean over the vocab.
  const raw = await a.toArray(), cen = await b.toArray(), V = model.cfg.dVocab;
  let mean = 0;
  for (let j = 0; j < V; j++) mean += raw[j];
  mean /= V;
  assertClose(cen[0], raw[0] - mean, 2e-4);
});

Deno.test("hooked transformer: snake_case kwargs (SAELens's center_writing_weights) reach processing", async () => {
  using centered = await HookedTransformer.fromPretrainedNoProcessing(DIR, {
    center_writing_weights: true,
  });
  assertEquals(centered.cfg.normalizationType, "LN", "no fold_ln");
  const name = "blocks.2.hook_resid_pre";
  const raw = await model.runWithCache(tokens, { namesFilter: [name], stopAtLayer: 3 });
  const cen = await centered.runWithCache(tokens, { namesFilter: [name], stopAtLayer: 3 });
  const r = await raw.cache.get(name)!.toArray(), c = await cen.cache.get(name)!.toArray();
  const D = model.cfg.dModel;
  // Centered weights: resid_pre = raw resid_pre minus its mean over d_model (spec §2.3).
  const want = new Float32Array(r.length);
  for (let p = 0; p < r.length / D; p++) {
    let m = 0;
    for (let j = 0; j < D; j++) m += r[p * D + j];
    m /= D;
    for (let j = 0; j < D; j++) want[p * D + j] = r[p * D + j] - m;
  }
  assertAllClose(c, want, 1e-4);
  for (const run of [raw, cen]) {
    assertEquals([...run.cache.keys()], [name]);
    assertEquals(run.logits, null);
    run.residual!.dispose();
    disposeCache(run.cache);
  }
});

Deno.test("hooked transformer: runWithCache with SAELens's harvesting call (names filter + stop)", async () => {
  const { cfg, params } = await loadModelFromDir(DIR);
  const ids = [tokens[0].slice(0, 16), tokens[0].slice(16, 32)];
  const want = referenceForward(cfg, params, ids, {
    namesFilter: ["blocks.0.hook_mlp_out"],
    stopAtLayer: 1,
  });
  const run = await model.runWithCache(ids, {
    namesFilter: ["blocks.0.hook_mlp_out"],
    stopAtLayer: 1,
  });
  assertEquals([...run.cache.keys()], ["blocks.0.hook_mlp_out"]);
  assertEquals([...run.cache.get("blocks.0.hook_mlp_out")!.shape], [2, 16, cfg.dModel]);
  assertAllClose(
    await run.cache.get("blocks.0.hook_mlp_out")!.toArray(),
    want.cache.get("blocks.0.hook_mlp_out")!.data,
    1e-4,
    1e-4,
  );
  assertAllClose(await run.residual!.toArray(), want.residual!.data, 1e-4, 1e-4);
  run.residual!.dispose();
  disposeCache(run.cache);
});

Deno.test("hooked transformer: runWithHooks edits flow on; hooks see TL shapes; loss per token", async () => {
  const { cfg, params } = await loadModelFromDir(DIR);
  const ids = [tokens[0].slice(0, 12)];
  const seen: number[][] = [];
  using hooked = await model.runWithHooks(ids, {
    fwdHooks: [["blocks.3.hook_mlp_out", (t) => {
      seen.push([...t.shape]);
      return scale(t, 0);
    }]],
  });
  assertEquals(seen, [[1, 12, cfg.dModel]]);
  const want = referenceForward(cfg, params, ids, {
    hooks: (n, v) =>
      n === "blocks.3.hook_mlp_out" ? { data: v.data.map(() => 0), shape: v.shape } : undefined,
  });
  assertAllClose(await hooked.toArray(), want.logits!.data, 1e-4, 1e-4);
  // Hooks are per call: the next forward is clean.
  using clean = await model.forward(ids);
  const plain = referenceForward(cfg, params, ids);
  assertAllClose(await clean.toArray(), plain.logits!.data, 1e-4, 1e-4);
  using perToken = await model.lossPerToken(ids);
  assertEquals([...perToken.shape], [1, 11]);
  assertAllClose(
    await perToken.toArray(),
    lmCrossEntropyLoss(plain.logits!, ids, true).data,
    1e-4,
    1e-4,
  );
  const both = await model.forwardWithLoss(TEXT.slice(0, 20));
  assertEquals([...both.lossPerToken.shape], [1, 20]);
  both.logits.dispose();
  both.lossPerToken.dispose();
});

Deno.test("hooked transformer: runWithCache / runWithHooks take an i32 Tensor [batch, pos] of tokens", async () => {
  // Two different rows, so a transposed or misread tensor would give other logits.
  const ids = [tokens[0].slice(0, 12), tokens[0].slice(12, 24)];
  using t = Tensor.from(Int32Array.from(ids.flat()), [2, 12], { gpu: model.gpu });
  const filter = ["blocks.1.hook_resid_pre"];
  const fromIds = await model.runWithCache(ids, { namesFilter: filter });
  const fromTensor = await model.runWithCache(t, { namesFilter: filter });
  assertEquals([...fromTensor.logits!.shape], [2, 12, model.cfg.dVocab]);
  const want = await fromIds.logits!.toArray() as Float32Array;
  assertAllClose(await fromTensor.logits!.toArray(), want, 0, 0, "runWithCache logits");
  assertEquals([...fromTensor.cache.keys()], filter);
  assertAllClose(
    await fromTensor.cache.get(filter[0])!.toArray(),
    await fromIds.cache.get(filter[0])!.toArray(),
    0,
    0,
    "cached resid_pre",
  );
  for (const r of [fromIds, fromTensor]) {
    r.logits!.dispose();
    disposeCache(r.cache);
  }
  // The rows really differ (the comparison above has teeth).
  const V = model.cfg.dVocab;
  assert(want.subarray(0, 12 * V).some((x, i) => x !== want[12 * V + i]), "rows differ");
  // runWithHooks: the same edit on either input gives the same logits.
  const zeroMlp = { fwdHooks: [["blocks.2.hook_mlp_out", (x: Tensor) => scale(x, 0)]] } as const;
  using hookedIds = await model.runWithHooks(ids, zeroMlp);
  using hookedTensor = await model.runWithHooks(t, zeroMlp);
  const hooked = await hookedIds.toArray() as Float32Array;
  assertAllClose(await hookedTensor.toArray(), hooked, 0, 0, "runWithHooks logits");
  assert(hooked.some((x, i) => x !== want[i]), "the hook changed the logits");
  // The caller's tensor is not consumed.
  assertEquals([...await t.toArray()], ids.flat());
  using f32 = Tensor.from(Float32Array.from(ids.flat()), [2, 12], { gpu: model.gpu });
  await assertRejects(() => model.runWithHooks(f32), ModelError, "i32 tensor [batch, pos]");
});

Deno.test("hooked transformer: toTokens / toString / toStrTokens / toSingleToken", () => {
  assertEquals(model.toTokens("Hi", { prependBos: false }), [[72, 105]]);
  assertEquals(model.toTokens(["Hi", "Hey"]), [[256, 72, 105, 256], [256, 72, 101, 121]]);
  assertEquals(model.toString([256, 72, 105]), "<|endoftext|>Hi");
  assertEquals(model.toString([[72, 105], [72]]), ["Hi", "H"]);
  assertEquals(model.toStrTokens("Hi"), ["<|endoftext|>", "H", "i"]);
  assertEquals(model.toSingleToken("H"), 72);
  assert(model.hookNames().includes("blocks.0.mlp.hook_in"));
});

Deno.test("hooked transformer: unknown options, unsupported dtype and bad tokens are clear errors", async () => {
  await assertRejects(
    () => HookedTransformer.fromPretrained(DIR, { fold_layer_norm: true }),
    ModelError,
    'unknown model option "fold_layer_norm"',
  );
  await assertRejects(
    () => HookedTransformer.fromPretrained(DIR, { dtype: "bfloat16" }),
    ModelError,
    "float32",
  );
  await assertRejects(() => model.forward([[1, 2], [3]]), ModelError, "same length");
  assertEquals(model.toTokens(""), [[256]], "an empty text is just BOS");
  await assertRejects(() => model.forward("", { prependBos: false }), ModelError, "empty");
});

Deno.test("hooked transformer: an error thrown by a hook propagates; the next run is clean", async () => {
  const ids = [tokens[0].slice(0, 8)];
  await assertRejects(
    () =>
      model.runWithCache(ids, {
        fwdHooks: [["blocks.2.hook_resid_pre", () => {
          throw new Error("hook failed");
        }]],
      }),
    Error,
    "hook failed",
  );
  const run = await model.runWithCache(ids, { namesFilter: ["blocks.2.hook_resid_pre"] });
  assertEquals([...run.cache.keys()], ["blocks.2.hook_resid_pre"]);
  run.logits!.dispose();
  disposeCache(run.cache);
});
