/**
 * Matching Pursuit on the GPU: the pursuit kernels against their references, the training step
 * against `trainingStepRef` (losses, x̂, f, ∂W_dec, ∂b_dec, firing counts, recon sums and the
 * four metrics; tolerance 1e-4 of each tensor's largest value) small, windowed and at d_in 128 /
 * d_sae 2048, the `SAE` encode against `encodeRef`, and the export.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../../../assert.ts";
import { readAll, Tensor } from "../../../../gpu/tensor.ts";
import { matmul } from "../../../../gpu/kernels/matmul/mod.ts";
import { createTrainingConfig } from "../../../../sae/config.ts";
import { SAE } from "../../../../sae/sae.ts";
import { encodeRef } from "../../../../sae/reference/sae.ts";
import { TrainingSAE, TrainSaeError } from "../../../../sae/training/train_sae.ts";
import {
  pursuitBackStep,
  pursuitBackStepRef,
  pursuitStep,
  pursuitStepRef,
} from "../../../../sae/architectures/matching_pursuit/kernels.ts";
import { compareStep, getGpu, gpuStep, problem } from "../../training/_train_sae_helpers.ts";
import { createRng, randomArray } from "../../../gpu/_ops_helpers.ts";
import { setConfigWarnHandler } from "../../../../config/errors.ts";

/** Runs `fn` collecting config warnings (SAELens warns that decoder_init_norm becomes 1.0). */
function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const warnings: string[] = [];
  const previous = setConfigWarnHandler((m) => warnings.push(m));
  try {
    return { result: fn(), warnings };
  } finally {
    setConfigWarnHandler(previous);
  }
}

const gpu = await getGpu();

Deno.test("pursuitStep / pursuitBackStep vs their references", async () => {
  const rng = createRng(4), rows = 70, n = 33, d = 9, o = { gpu };
  const w = randomArray(rng, n * d, -0.5, 0.5), r0 = randomArray(rng, rows * d);
  const tw = Tensor.from(w, [n, d], o), tr = Tensor.from(r0, [rows, d], o);
  const acts = Tensor.zeros([rows, n], "f32", o), done = Tensor.zeros([rows], "u32", o);
  const scores = matmul(tr, tw, { transB: true });
  const hist = { idx: Tensor.zeros([2, rows], "u32", o), value: Tensor.zeros([2, rows], "f32", o) };
  const stats = Tensor.zeros([5, rows], "f32", o);
  const s = (await scores.toArray()) as Float32Array;
  pursuitStep(gpu, {
    scores,
    wDec: tw,
    residual: tr,
    acts,
    done,
    t: 1,
    history: { ...hist, stride: rows },
    rowStats: { tensor: stats, col: 4, rOff: 0, B: rows },
    record: true,
    residualThreshold: 0.5,
    stopOnDuplicateSupport: true,
  });
  const rRef = Float32Array.from(r0),
    aRef = new Float32Array(rows * n),
    dRef = new Uint32Array(rows);
  const h = pursuitStepRef(s, w, rRef, aRef, dRef, rows, n, d, 0.5, true);
  const [gr, ga, gd, gi, gv] = await readAll([tr, acts, done, hist.idx, hist.value]);
  assertAllClose(gr as Float32Array, rRef, 1e-5);
  assertAllClose(ga as Float32Array, aRef, 1e-5);
  assertEquals([...gd as Uint32Array], [...dRef]);
  assertEquals([...(gi as Uint32Array).subarray(rows)], [...h.idx]);
  assertAllClose((gv as Float32Array).subarray(rows), h.value, 1e-5);
  // The reverse step of the same iteration.
  const g = randomArray(rng, rows * d), gr0 = randomArray(rng, rows * d);
  const tg = Tensor.from(g, [rows, d], o), tgr = Tensor.from(gr0, [rows, d], o);
  const contribution = Tensor.zeros([rows, d], "f32", o),
    oneHot = Tensor.zeros([rows, n], "f32", o);
  const previous = Tensor.from(new Uint32Array(rows).fill(0xffffffff), [rows], o);
  pursuitBackStep(gpu, {
    wDec: tw,
    gradOut: tg,
    residual: tr,
    gradResidual: tgr,
    contribution,
    oneHot,
    previous,
    t: 1,
    history: { ...hist, stride: rows },
  });
  const grRef = Float32Array.from(gr0), rBack = Float32Array.from(rRef);
  const uRef = pursuitBackStepRef(w, g, rBack, grRef, h.idx, h.value, rows, d);
  const [gu, ggr, grb, gp] = await readAll([contribution, tgr, tr, oneHot]);
  assertAllClose(gu as Float32Array, uRef, 1e-5);
  assertAllClose(ggr as Float32Array, grRef, 1e-5);
  assertAllClose(grb as Float32Array, r0, 1e-5, 0, "the residual is rebuilt");
  for (let b = 0; b < rows; b++) assertEquals((gp as Float32Array)[b * n + h.idx[b]], 1);
  assertEquals((gp as Float32Array).reduce((a, v) => a + v, 0), rows);
  for (const t of [tw, tr, acts, done, scores, hist.idx, hist.value, stats, tg, tgr]) t.dispose();
  for (const t of [contribution, oneHot, previous]) t.dispose();
});

const cases: { name: string; fields: Record<string, unknown>; windows?: number }[] = [
  { name: "defaults", fields: {} },
  { name: "b_dec on the input", fields: { applyBDecToInput: true } },
  {
    name: "layer_norm, b_dec, windows of 8",
    fields: { normalizeActivations: "layer_norm", applyBDecToInput: true },
    windows: 8,
  },
  { name: "3 iterations", fields: { maxIterations: 3 } },
  {
    name: "no duplicate stop, residual threshold 1",
    fields: { stopOnDuplicateSupport: false, residualThreshold: 1, maxIterations: 10 },
  },
];

for (const c of cases) {
  Deno.test(`matching_pursuit step vs reference: ${c.name}`, async () => {
    const pb = captureWarnings(() =>
      problem({ architecture: "matching_pursuit", applyBDecToInput: false, ...c.fields }, 20, 23)
    ).result;
    const g = await gpuStep(gpu, pb, [], null, { maxWindowRows: c.windows });
    compareStep(pb, g, {}, null);
    assertEquals(g.sae.lossKeys, ["mse_loss"]);
    g.sae.dispose();
  });
}

Deno.test("matching_pursuit step vs reference at d_in 128, d_sae 2048, batch 128 (32 iterations)", async () => {
  const pb = captureWarnings(() =>
    problem(
      {
        architecture: "matching_pursuit",
        dIn: 128,
        dSae: 2048,
        maxIterations: 32,
        applyBDecToInput: true,
      },
      128,
      5,
    )
  ).result;
  // Unit-norm decoder rows, as SAELens trains them.
  const w = pb.params.W_dec;
  for (let i = 0; i < 2048; i++) {
    const row = w.subarray(i * 128, (i + 1) * 128), len = Math.hypot(...row);
    for (let j = 0; j < 128; j++) row[j] /= len;
  }
  const g = await gpuStep(gpu, pb, [], null, { maxWindowRows: 48 });
  compareStep(pb, g, {}, null);
  assert(g.l0Sum > 128, `the pursuit selected latents (Σ L0 ${g.l0Sum})`);
  g.sae.dispose();
});

Deno.test("matching_pursuit: SAE encode equals encodeRef; init, export and refusals", async () => {
  const { result: cfg, warnings } = captureWarnings(() =>
    createTrainingConfig({ architecture: "matching_pursuit", dIn: 8, dSae: 16, maxIterations: 6 })
  );
  assert(warnings.some((w) => w.includes("decoder_init_norm must be 1.0")), warnings.join());
  assertEquals(cfg.decoderInitNorm, 1);
  const sae = TrainingSAE.create(cfg, { gpu, seed: 3 });
  assertEquals([...sae.params.keys()], ["W_dec", "b_dec"]);
  const st = await sae.stateDict();
  assert(Math.abs(Math.hypot(...st.get("W_dec")!.subarray(0, 8)) - 1) < 1e-6, "unit rows");
  const { cfg: inf, params } = await sae.exportInference();
  assertEquals([inf.architecture, (inf as { maxIterations?: number }).maxIterations], [
    "matching_pursuit",
    6,
  ]);
  const model = await SAE.fromParams(inf, Object.fromEntries(params));
  const x = randomArray(createRng(2), 5 * 8);
  using tx = Tensor.from(x, [5, 8], { gpu });
  const f = await model.encode(tx).toArray();
  const p = Object.fromEntries(params);
  assertAllClose(f, encodeRef(inf as never, p, x, 5).featureActs, 1e-5);
  assertThrows(() => model.foldWDecNorm(), Error, "not safe");
  model.dispose();
  sae.dispose();
  const scaled = captureWarnings(() =>
    createTrainingConfig({
      architecture: "matching_pursuit",
      dIn: 8,
      dSae: 16,
      normalizeActivations: "expected_average_only_in",
    })
  ).result;
  assertThrows(
    () => TrainingSAE.create(scaled, { gpu }),
    TrainSaeError,
    "expected_average_only_in",
  );
});

Deno.test("matching_pursuit: SAE encode equals encodeRef at d_in 128, d_sae 2048 (32 iterations)", async () => {
  const rng = createRng(12), dIn = 128, dSae = 2048, n = 64;
  const w = randomArray(rng, dSae * dIn);
  for (let i = 0; i < dSae; i++) {
    const row = w.subarray(i * dIn, (i + 1) * dIn), len = Math.hypot(...row);
    for (let j = 0; j < dIn; j++) row[j] /= len;
  }
  const cfg = { architecture: "matching_pursuit", dIn, dSae, maxIterations: 32 };
  const p = { W_dec: w, b_dec: randomArray(rng, dIn, -0.1, 0.1) };
  const model = await SAE.fromParams(cfg, p);
  const x = randomArray(rng, n * dIn);
  using tx = Tensor.from(x, [n, dIn], { gpu });
  const f = await model.encode(tx).toArray() as Float32Array;
  const ref = encodeRef({ ...model.cfg } as never, p, x, n).featureActs;
  let worst = 0, m = 0;
  for (let k = 0; k < f.length; k++) {
    worst = Math.max(worst, Math.abs(f[k] - ref[k]));
    m = Math.max(m, Math.abs(ref[k]));
  }
  assert(worst <= 1e-4 * m, `worst |Δf| ${worst} of max ${m}`);
  assert(ref.filter((v) => v !== 0).length > n, "several latents per token");
  model.dispose();
});
