// The trainer's own kernels (sae/training/trainer_kernels.ts, trainer_optim.ts): one table of cases per kernel,
// run against the TS reference and the GPU, each checked against hand-computed expectations.

import { getGpu, type Gpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import {
  checkAndScaleInput,
  checkAndScaleInputRef,
  checkLoss,
  deadMask,
  deadMaskRef,
  firingUpdate,
  firingUpdateRef,
  NO_BAD_STEP,
  passesStats,
  passesStatsRef,
} from "../../../sae/training/trainer_kernels.ts";
import { adamSkipRef, TrainerOptimizer } from "../../../sae/training/trainer_optim.ts";
import { clipGradNormRef } from "../../../gpu/kernels/clip.ts";
import { assert, assertAllClose, assertEquals } from "../../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "../../gpu/_ops_helpers.ts";

const gpu = await getGpu();

/** A params buffer whose word 2 holds `step`, and a fresh flag buffer. */
function stepAndFlag(device: Gpu, step: number) {
  const params = Tensor.from(Uint32Array.of(0, 0, step, 0), [4], { gpu: device });
  const flag = Tensor.from(Uint32Array.of(NO_BAD_STEP, NO_BAD_STEP), [2], { gpu: device });
  return { params, flag, word: { params: params.binding(), word: 2 } };
}

const inputCases: {
  name: string;
  x: number[];
  scale: number | null;
  out: number[];
  bad: boolean;
}[] = [
  { name: "finite, no scale", x: [1, -2, 0.5], scale: null, out: [1, -2, 0.5], bad: false },
  { name: "finite, scale 2", x: [1, -2, 0.5], scale: 2, out: [2, -4, 1], bad: false },
  { name: "NaN", x: [1, NaN, 3], scale: 0.5, out: [0.5, NaN, 1.5], bad: true },
  { name: "+Inf", x: [Infinity, 0], scale: null, out: [Infinity, 0], bad: true },
  { name: "-Inf", x: [0, -Infinity], scale: 1, out: [0, -Infinity], bad: true },
  // f32 rounding of the product: 0.1f * 3 rounds once in f32
  {
    name: "f32 product",
    x: [Math.fround(0.1)],
    scale: 3,
    out: [Math.fround(Math.fround(0.1) * 3)],
    bad: false,
  },
];

for (const c of inputCases) {
  Deno.test(`checkAndScaleInput ref: ${c.name}`, () => {
    const r = checkAndScaleInputRef(Float32Array.from(c.x), c.scale);
    assertEquals([...r.out], c.out);
    assertEquals(r.nonFinite, c.bad);
  });
  Deno.test(`checkAndScaleInput gpu: ${c.name}`, async () => {
    const { params, flag, word } = stepAndFlag(gpu, 7);
    using x = Tensor.from(Float32Array.from(c.x), [c.x.length], { gpu });
    using out = Tensor.zeros([c.x.length], "f32", { gpu });
    checkAndScaleInput(x, c.scale === null ? null : out, c.scale ?? 1, word, flag);
    const f = await flag.toArray();
    assertEquals([...f], [c.bad ? 7 : NO_BAD_STEP, NO_BAD_STEP]);
    if (c.scale !== null) assertEquals([...await out.toArray()], c.out);
    else assertEquals([...await out.toArray()], c.x.map(() => 0), "check-only writes nothing");
    params.dispose();
    flag.dispose();
  });
}

Deno.test("checkAndScaleInput keeps the first bad step (atomicMin) and windows large inputs", async () => {
  const small = smallBindingGpu(gpu, 256); // 64 floats per binding window
  const { params, flag, word } = stepAndFlag(gpu, 5);
  const data = randomArray(createRng(3), 1000);
  data[999] = NaN; // only in the last window
  using x = Tensor.from(data, [10, 100], { gpu });
  using out = Tensor.zeros([10, 100], "f32", { gpu });
  const xs = new Tensor(small, x.buffer, x.shape, "f32");
  const outs = new Tensor(small, out.buffer, out.shape, "f32");
  checkAndScaleInput(xs, outs, 0.25, word, flag);
  assertEquals((await flag.toArray())[0], 5);
  const got = await out.toArray();
  const want = checkAndScaleInputRef(data, 0.25).out;
  assertEquals(got.subarray(0, 999), want.subarray(0, 999));
  // A later bad step does not overwrite the earlier one.
  gpu.write(params.buffer, 8, Uint32Array.of(9));
  checkAndScaleInput(x, null, 1, word, flag);
  assertEquals([...await flag.toArray()], [5, NO_BAD_STEP]);
  // An earlier one does.
  gpu.write(params.buffer, 8, Uint32Array.of(2));
  checkAndScaleInput(x, null, 1, word, flag);
  assertEquals([...await flag.toArray()], [2, NO_BAD_STEP]);
  params.dispose();
  flag.dispose();
});

const maskCases = [
  { passes: [0, 3, 4, 5, 1000], window: 4, mask: [0, 0, 0, 1, 1] },
  { passes: [0, 1, 2], window: 0, mask: [0, 1, 1] },
];
for (const [i, c] of maskCases.entries()) {
  Deno.test(`deadMask case ${i}: ref and gpu`, async () => {
    assertEquals([...deadMaskRef(Float32Array.from(c.passes), c.window)], c.mask);
    using p = Tensor.from(Float32Array.from(c.passes), undefined, { gpu });
    using m = Tensor.zeros([c.passes.length], "u32", { gpu });
    deadMask(p, c.window, m);
    assertEquals([...await m.toArray()], c.mask);
  });
}

const firingCases = [
  {
    counts: [0, 2, 0, 1],
    passes: [3, 3, 0, 7],
    freq: [1, 1, 0, 0.5],
    passesOut: [4, 0, 1, 0],
    freqOut: [1, 3, 0, 1.5],
  },
  { counts: [0], passes: [0], freq: [0], passesOut: [1], freqOut: [0] },
];
for (const [i, c] of firingCases.entries()) {
  Deno.test(`firingUpdate case ${i}: ref and gpu`, async () => {
    const p = Float32Array.from(c.passes), f = Float32Array.from(c.freq);
    firingUpdateRef(Float32Array.from(c.counts), p, f);
    assertEquals([...p], c.passesOut);
    assertEquals([...f], c.freqOut);
    using counts = Tensor.from(Float32Array.from(c.counts), undefined, { gpu });
    using passes = Tensor.from(Float32Array.from(c.passes), undefined, { gpu });
    using freq = Tensor.from(Float32Array.from(c.freq), undefined, { gpu });
    firingUpdate(counts, passes, freq);
    assertEquals([...await passes.toArray()], c.passesOut);
    assertEquals([...await freq.toArray()], c.freqOut);
  });
}

Deno.test("checkLoss flags only a non-finite overall loss", async () => {
  for (const [loss, want] of [[1.5, NO_BAD_STEP], [NaN, 4], [-Infinity, 4]] as const) {
    const { params, flag, word } = stepAndFlag(gpu, 4);
    using losses = Tensor.from(Float32Array.of(loss, NaN), undefined, { gpu }); // only [0] counts
    checkLoss(losses, word, flag);
    assertEquals([...await flag.toArray()], [NO_BAD_STEP, want]);
    params.dispose();
    flag.dispose();
  }
});

Deno.test("passesStats: ref and gpu on a hand case and a random case", async () => {
  assertEquals(passesStatsRef(Float32Array.of(0, 2, 5, 6), 5), [13, 1]);
  const cases = [
    Float32Array.of(0, 2, 5, 6),
    Float32Array.from({ length: 1000 }, (_, i) => i % 37),
  ];
  for (const passes of cases) {
    using p = Tensor.from(passes, undefined, { gpu });
    using out = Tensor.zeros([5], "f32", { gpu });
    passesStats(p, 5, out, 2);
    const got = await out.toArray();
    const [sum, dead] = passesStatsRef(passes, 5);
    assertEquals([...got], [0, 0, sum, dead, 0]);
  }
});

// --- clipped, flag-aware Adam (trainer_optim.ts) ---

Deno.test("adamSkipRef: first step moves each weight by lr against the gradient's sign; a flag skips", () => {
  const p = Float32Array.of(1, 1, 1), m = new Float32Array(3), v = new Float32Array(3);
  const g = Float32Array.of(2, -0.5, 0);
  adamSkipRef(p, g, m, v, { lr: 0.1, step: 1 }, 1, true);
  assertEquals([...p, ...m, ...v], [1, 1, 1, 0, 0, 0, 0, 0, 0]);
  adamSkipRef(p, g, m, v, { lr: 0.1, step: 1 }, 1, false);
  assertAllClose(p, [0.9, 1.1, 1], 1e-6);
  assertAllClose(m, [0.2, -0.05, 0], 1e-7);
  assertAllClose(v, [0.004, 0.00025, 0], 1e-9);
});

Deno.test("TrainerOptimizer: GPU clip + Adam equals the references; a set flag skips the update", async () => {
  const rng = createRng(9);
  const shapes: Record<string, number[]> = { W: [7, 5], b: [5] };
  const host = Object.fromEntries(
    Object.entries(shapes).map(([k, s]) => [k, randomArray(rng, s[0] * (s[1] ?? 1))]),
  );
  const params = new Map(
    Object.entries(shapes).map(([k, s]) => [k, Tensor.from(host[k], s, { gpu })]),
  );
  const opt = new TrainerOptimizer(gpu, params, { beta1: 0.8, beta2: 0.95 });
  const { params: stepParams, flag } = stepAndFlag(gpu, 0);
  const adamBuf = Tensor.zeros([64], "f32", { gpu });
  const m = Object.fromEntries(
    Object.keys(shapes).map((k) => [k, new Float32Array(host[k].length)]),
  );
  const v = Object.fromEntries(
    Object.keys(shapes).map((k) => [k, new Float32Array(host[k].length)]),
  );
  for (let t = 0; t < 3; t++) {
    const g = Object.fromEntries(
      Object.keys(shapes).map((k) => [k, randomArray(rng, host[k].length, -3, 3)]),
    );
    const grads = new Map(
      Object.entries(shapes).map(([k, s]) => [k, Tensor.from(g[k], s, { gpu })]),
    );
    gpu.write(adamBuf.buffer, 16, opt.scalars(0.05)); // the Adam region at word 4
    opt.record(grads, adamBuf.binding(), 4, flag);
    opt.step++;
    const clip = clipGradNormRef(Object.keys(shapes).map((k) => g[k]), 1).factor;
    assert(clip < 1, "the case must exercise clipping");
    const scalars = { lr: 0.05, step: t + 1, beta1: 0.8, beta2: 0.95 };
    for (const k of Object.keys(shapes)) {
      adamSkipRef(host[k], g[k], m[k], v[k], scalars, Math.fround(clip), false);
    }
    for (const k of Object.keys(shapes)) {
      assertAllClose(await params.get(k)!.toArray(), host[k], 1e-6, 1e-5, `step ${t} ${k}`);
    }
    for (const t of grads.values()) t.dispose();
  }
  const state = await opt.state();
  assertAllClose(state.expAvg.get("W")!, m.W, 1e-6, 1e-5);
  assertAllClose(state.expAvgSq.get("b")!, v.b, 1e-6, 1e-5);
  // Flag set (a bad step), NaN gradients: parameters and moments stay as they are.
  gpu.write(flag.buffer, 0, Uint32Array.of(3, NO_BAD_STEP));
  const before = await params.get("W")!.toArray();
  const grads = new Map(
    Object.entries(shapes).map((
      [k, s],
    ) => [k, Tensor.from(new Float32Array(host[k].length).fill(NaN), s, { gpu })]),
  );
  opt.record(grads, adamBuf.binding(), 4, flag);
  assertEquals(await params.get("W")!.toArray(), before);
  assertEquals((await opt.state()).expAvg.get("W"), state.expAvg.get("W"));
  for (const t of [...grads.values(), ...params.values(), adamBuf, stepParams, flag]) t.dispose();
  opt.dispose();
});
