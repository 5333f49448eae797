/**
 * The per-row, dense-activation and per-latent training kernels against their plain-TS
 * references (`rows_ref.ts`, `dense_acts_ref.ts`, `latent_ref.ts`): hand-computed cases checked
 * against both implementations, and random cases GPU vs reference (tolerance 1e-5 relative to
 * each tensor's largest value; counts exact).
 */
import { assertAllClose, assertEquals } from "../../assert.ts";
import { getGpu, type Gpu } from "../../../gpu/device.ts";
import { reduceCols } from "../../../gpu/kernels/reduce.ts";
import { readAll, Tensor } from "../../../gpu/tensor.ts";
import {
  bDecGrad,
  bDecGradRef,
  decoderNormGrad,
  decoderNormGradRef,
  type DenseBackwardArgs,
  type DenseBackwardRefArgs,
  type DenseForwardArgs,
  type DenseForwardRefParams,
  ghostRows,
  ghostRowsRef,
  latentFinalize,
  latentFinalizeRef,
  levelScalars,
  levelScalarsRef,
  lpNormRows,
  lpNormRowsRef,
  prepRows,
  prepRowsRef,
  residualRows,
  residualRowsRef,
  stepScalars,
  stepScalarsRef,
} from "../../../sae/training/kernels/mod.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { closeScaled } from "./_train_sae_helpers.ts";
import { standardKernels, standardLatent } from "../../../sae/architectures/standard/training.ts";
import { jumpreluKernels, jumpreluLatent } from "../../../sae/architectures/jumprelu/training.ts";
import { gatedKernels, gatedLatent } from "../../../sae/architectures/gated/training.ts";

// Each dense architecture's fused kernels and finalisation live in its folder; these helpers
// reach them by name, as the tests did when one module held all three.
type DenseArch = "standard" | "jumprelu" | "gated";
const KERNELS = { standard: standardKernels, jumprelu: jumpreluKernels, gated: gatedKernels };
const LATENT = { standard: standardLatent, jumprelu: jumpreluLatent, gated: gatedLatent };
const DENSE_Q = { standard: standardKernels.q, jumprelu: jumpreluKernels.q, gated: gatedKernels.q };
const denseForward = (gpu: Gpu, arch: DenseArch, a: DenseForwardArgs) =>
  KERNELS[arch].forward(gpu, a);
const denseBackward = (gpu: Gpu, arch: DenseArch, a: DenseBackwardArgs) =>
  KERNELS[arch].backward(gpu, a);
const denseForwardRef = (
  arch: DenseArch,
  h: Float32Array,
  rows: number,
  n: number,
  p: DenseForwardRefParams,
) => KERNELS[arch].forwardRef(h, rows, n, p);
const denseBackwardRef = (arch: DenseArch, a: DenseBackwardRefArgs) => KERNELS[arch].backwardRef(a);

const f32 = (gpu: Gpu, a: ArrayLike<number>, shape?: number[]) =>
  Tensor.from(Float32Array.from(a), shape ?? [a.length], { gpu });

Deno.test("prepRows: hand case and random modes vs prepRowsRef", async () => {
  const gpu = await getGpu();
  // x = [3, 4], b_dec = [1, 1], constant_norm_rescale: c = √2/5, x̃ = x·c − 1, s = 5/√2.
  const hand = prepRowsRef(
    Float32Array.of(3, 4),
    1,
    2,
    Float32Array.of(1, 1),
    Float32Array.of(3, 4),
    "constant_norm_rescale",
    true,
  );
  const c = Math.SQRT2 / 5;
  assertAllClose(hand.xt, [3 * c - 1, 4 * c - 1], 1e-6);
  assertAllClose(hand.rowNorm, [5 / Math.SQRT2, 0], 1e-5);
  const rng = createRng(3);
  for (const mode of ["none", "constant_norm_rescale", "layer_norm"]) {
    for (const apply of [true, false]) {
      const B = mode === "none" ? 1 : 5, d = mode === "none" ? 2 : 6;
      const x = mode === "none" ? Float32Array.of(3, 4) : randomArray(rng, B * d);
      const bDec = mode === "none" ? Float32Array.of(1, 1) : randomArray(rng, d);
      const xbar = randomArray(rng, d);
      const ref = prepRowsRef(x, B, d, bDec, xbar, mode, apply);
      const [tx, tb, tm, xt, rn, rd] = [
        f32(gpu, x, [B, d]),
        f32(gpu, bDec),
        f32(gpu, xbar),
        Tensor.zeros([B, d], "f32", { gpu }),
        Tensor.zeros([2, B], "f32", { gpu }),
        Tensor.zeros([4, B], "f32", { gpu }),
      ];
      prepRows(gpu, tx, tb, tm, xt, rn, rd, mode, apply);
      const [gxt, grn, grd] = (await readAll([xt, rn, rd])) as Float32Array[];
      closeScaled(gxt, ref.xt, 1e-5, `${mode} xt`);
      closeScaled(grn, ref.rowNorm, 1e-5, `${mode} rowNorm`);
      closeScaled(grd.subarray(B, 2 * B), ref.variance, 1e-5, `${mode} variance`);
      if (mode === "none") assertAllClose(gxt, apply ? [2, 3] : [3, 4], 0, 0, "none: x − b_dec");
      for (const t of [tx, tb, tm, xt, rn, rd]) t.dispose();
    }
  }
});

Deno.test("residualRows / lpNormRows / ghostRows vs references", async () => {
  const gpu = await getGpu();
  const rng = createRng(5);
  const B = 6, d = 5, o = { gpu };
  const pred = randomArray(rng, B * d), x = randomArray(rng, B * d), xh = randomArray(rng, B * d);
  const scale = randomArray(rng, B, 0.5, 2), shift = randomArray(rng, B);
  const variance = randomArray(rng, B, 1, 3);
  for (const [denorm, minus, w] of [[true, false, -1], [false, true, 1]] as const) {
    const tp = f32(gpu, pred, [B, d]), tx = f32(gpu, x, [B, d]), txh = f32(gpu, xh, [B, d]);
    const g = Tensor.zeros([B, d], "f32", o), rn = f32(gpu, [...scale, ...shift], [2, B]);
    const rd = f32(gpu, [...new Float32Array(B), ...variance, ...new Float32Array(3 * B)], [5, B]);
    const sc = f32(gpu, [0, 0.7, 0, 0]);
    residualRows(gpu, {
      pred: tp,
      pOff: 0,
      x: tx,
      xOff: 0,
      xhat: minus ? txh : undefined,
      g,
      gOff: 0,
      rowNorm: rn,
      rowData: rd,
      scalars: sc,
      rows: B,
      rOff: 0,
      B,
      denorm,
      recon: denorm,
      col: denorm ? 0 : 4,
      gscale: 2 / B,
      wIdx: w,
    });
    const ref = residualRowsRef({
      pred,
      x,
      xhat: minus ? xh : undefined,
      scale,
      shift,
      rows: B,
      d,
      denorm,
      gscale: 2 / B,
      w: w < 0 ? 1 : 0.7,
      variance: denorm ? variance : undefined,
    });
    const [gp, gg, grd] = (await readAll([tp, g, rd])) as Float32Array[];
    closeScaled(gp, ref.pred, 1e-5, "pred");
    closeScaled(gg, ref.g, 1e-5, "g");
    const col = denorm ? 0 : 4;
    closeScaled(grd.subarray(col * B, (col + 1) * B), ref.sq, 1e-5, "sq");
    if (denorm) closeScaled(grd.subarray(2 * B, 3 * B), ref.legacy!, 1e-5, "legacy");
    for (const t of [tp, tx, txh, g, rn, rd, sc]) t.dispose();
  }
  // lp-norm: hand case f = [3, 4], n = [1, 1], p = 2 → 5.
  assertAllClose(lpNormRowsRef(Float32Array.of(3, 4), Float32Array.of(1, 1), 1, 2, 2), [5], 1e-6);
  const n = 7, f = randomArray(rng, B * n, 0, 2), norms = randomArray(rng, n, 0.5, 1.5);
  const tf = f32(gpu, f, [B, n]), tn = f32(gpu, norms), rd = Tensor.zeros([5, B], "f32", o);
  lpNormRows(gpu, tf, tn, rd, 0, B, 4, 1.5);
  const [lp] = (await readAll([rd])) as Float32Array[];
  closeScaled(lp.subarray(4 * B), lpNormRowsRef(f, norms, B, n, 1.5), 1e-5, "lp");
  // ghost rows with and without dead latents.
  for (const nDead of [0, 3]) {
    const raw = randomArray(rng, B * d), traw = f32(gpu, raw, [B, d]);
    const tx = f32(gpu, x, [B, d]), txh = f32(gpu, xh, [B, d]), sc = f32(gpu, [nDead, 0, 0, 0]);
    const rd2 = Tensor.zeros([6, B], "f32", o);
    ghostRows(gpu, tx, txh, traw, rd2, sc, 0, B, 5, 0);
    const ref = ghostRowsRef(x, xh, raw, B, d, B, nDead);
    const [gr, grd] = (await readAll([traw, rd2])) as Float32Array[];
    closeScaled(gr, ref.gRaw, 1e-5, "gRaw");
    closeScaled(grd.subarray(5 * B), ref.loss, 1e-5, "ghost loss");
    for (const t of [traw, tx, txh, sc, rd2]) t.dispose();
  }
  for (const t of [tf, tn, rd]) t.dispose();
});

Deno.test("denseForward / denseBackward (chunked partials) vs references", async () => {
  const gpu = await getGpu();
  const rng = createRng(9);
  const rows = 70, n = 9, B = 80, o = { gpu };
  for (const arch of ["standard", "jumprelu", "gated"] as const) {
    const h = randomArray(rng, rows * n, -1, 1), norms = randomArray(rng, n, 0.5, 1.5);
    const dead = Uint32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const thr = randomArray(rng, n, -0.1, 0.4), bg = randomArray(rng, n, -0.3, 0.3);
    const rm = randomArray(rng, n, -0.3, 0.3), bm = randomArray(rng, n, -0.3, 0.3);
    const stack = arch === "gated" ? 2 : 1;
    const gf = randomArray(rng, stack * rows * n);
    const th = f32(gpu, h, [rows, n]), tn = f32(gpu, norms), tdead = Tensor.from(dead, [n], o);
    const params = arch === "jumprelu"
      ? [f32(gpu, thr)]
      : arch === "gated"
      ? [f32(gpu, bg), f32(gpu, rm), f32(gpu, bm)]
      : [];
    // Forward.
    const fOut = Tensor.zeros([stack * rows, n], "f32", o), ed = Tensor.zeros([rows, n], "f32", o);
    denseForward(gpu, arch, { h: th, out: fOut, params, dead: tdead, expDead: ed });
    const fRef = denseForwardRef(arch, h, rows, n, {
      dead,
      threshold: thr,
      b_gate: bg,
      r_mag: rm,
      b_mag: bm,
    });
    const [gfo, ged] = (await readAll([fOut, ed])) as Float32Array[];
    closeScaled(gfo, fRef[0], 1e-5, `${arch} forward`);
    if (arch === "standard") closeScaled(ged, fRef[1], 1e-5, "expDead");
    // Backward, rows in chunks of 32 (3 partial rows) then a column reduction.
    const acts = arch === "standard" ? f32(gpu, fRef[0], [rows, n]) : th;
    const tgf = f32(gpu, gf, [stack * rows, n]), q = DENSE_Q[arch];
    const part = Tensor.zeros([3, q * n], "f32", o), coef = f32(gpu, [0.7]);
    const sc = f32(gpu, [dead.reduce((s, v) => s + v, 0), 0, 0, 0]);
    const tok = randomArray(rng, rows, 1, 2),
      rd = f32(gpu, [...new Float32Array(4 * B), ...tok, ...new Float32Array(B - rows)], [5, B]);
    denseBackward(gpu, arch, {
      acts,
      gf: tgf,
      norms: tn,
      coef,
      params,
      rowData: rd,
      dead: tdead,
      scalars: sc,
      partials: part,
      chunkRows: 32,
      chunkOff: 0,
      rOff: 0,
      B,
      lp: 1.5,
      lpCol: 4,
      eps: 0.3,
      tanhScale: 2,
      preCoef: 0.4,
      tanh: true,
      ste: true,
      preAct: true,
      nDeadIdx: 0,
    });
    const sums = reduceCols("sum", part);
    const ref = denseBackwardRef(arch, {
      rows,
      n,
      B,
      acts: arch === "standard" ? fRef[0] : h,
      gf,
      norms,
      coef: 0.7,
      lp: 1.5,
      tokenNorm: tok,
      threshold: thr,
      eps: 0.3,
      tanhScale: 2,
      tanh: true,
      ste: true,
      preCoef: 0.4,
      dead,
      b_gate: bg,
      r_mag: rm,
      b_mag: bm,
    });
    const [ggh, gs] = (await readAll([tgf, sums])) as Float32Array[];
    closeScaled(ggh.subarray(0, rows * n), ref.gh, 1e-5, `${arch} gh`);
    closeScaled(gs.subarray(0, n), ref.sums.subarray(0, n), 0, `${arch} fired`);
    closeScaled(gs, ref.sums, 1e-5, `${arch} sums`);
    for (const t of [th, tn, tdead, ...params, fOut, ed, tgf, part, coef, sc, rd, sums]) {
      t.dispose();
    }
    if (acts !== th) acts.dispose();
  }
});

Deno.test("stepScalars, latentFinalize, decoderNormGrad, bDecGrad vs references", async () => {
  const gpu = await getGpu();
  const rng = createRng(12), o = { gpu };
  // Hand case: 3 of 4 dead, kAux 4, coefficient 2 → weight 1.5.
  const dead = Uint32Array.of(1, 0, 1, 1);
  assertEquals([...stepScalarsRef(dead, 2, 4)], [3, 1.5, 0, 0]);
  const sc = Tensor.zeros([4], "f32", o), td = Tensor.from(dead, [4], o);
  stepScalars(gpu, td, sc, 2, 4);
  assertEquals([...await sc.toArray()], [3, 1.5, 0, 0]);
  stepScalars(gpu, null, sc, 2, 4);
  assertEquals([...await sc.toArray()], [0, 0, 0, 0]);
  // Per level (Matryoshka's per-level aux-k): levels [0, 1), [1, 4) of the same mask.
  const lsc = Tensor.zeros([8], "f32", o);
  levelScalars(gpu, td, lsc, 2, 4, [1, 4]);
  assertEquals([...levelScalarsRef(dead, 2, 4, [1, 4])], [1, 0.5, 2, 1]);
  assertEquals([...(await lsc.toArray()).subarray(4)], [1, 0.5, 2, 1]);
  lsc.dispose();
  const n = 6, d = 5, B = 10;
  for (const arch of ["standard", "jumprelu", "gated"] as const) {
    const q = DENSE_Q[arch], sums = randomArray(rng, q * n), norms = randomArray(rng, n, 0.5, 2);
    const thr = randomArray(rng, n, -0.2, 0.5);
    const L = arch === "standard" ? 4 : arch === "jumprelu" ? 6 : 7;
    const lo = Tensor.zeros([L, n], "f32", o), coef = f32(gpu, [0.3]);
    const ts = f32(gpu, sums), tn = f32(gpu, norms), tt = f32(gpu, thr);
    const scal = f32(gpu, [2, 0, 0, 0]);
    latentFinalize(
      gpu,
      LATENT[arch],
      ts,
      tn,
      coef,
      scal,
      arch === "jumprelu" ? tt : null,
      lo,
      B,
      arch === "jumprelu" ? 0.9 : 1,
      1,
    );
    const ref = latentFinalizeRef(
      LATENT[arch],
      sums,
      norms,
      0.3,
      B,
      arch === "jumprelu" ? 0.9 : 1,
      1,
      2,
      thr,
    );
    closeScaled(await lo.toArray(), ref, 1e-5, `${arch} finalize`);
    for (const t of [lo, coef, ts, tn, tt, scal]) t.dispose();
  }
  const gw = randomArray(rng, n * d), w = randomArray(rng, n * d), gN = randomArray(rng, n);
  const norms = Float32Array.from({ length: n }, (_, i) => (i === 2 ? 0 : 1 + i / 10));
  gN[4] = 0;
  const tgw = f32(gpu, gw, [n, d]),
    tw = f32(gpu, w, [n, d]),
    lo = f32(gpu, [...new Float32Array(n), ...gN], [2, n]);
  const tn = f32(gpu, norms);
  decoderNormGrad(gpu, tgw, tw, lo, 1, tn);
  closeScaled(await tgw.toArray(), decoderNormGradRef(gw, w, gN, norms, n, d), 1e-6, "decnorm");
  for (const transposed of [false, true]) {
    const wEnc = randomArray(rng, d * n), csg = randomArray(rng, d);
    const twe = f32(gpu, wEnc, transposed ? [n, d] : [d, n]), tc = f32(gpu, csg);
    const out = Tensor.zeros([d], "f32", o);
    bDecGrad(gpu, twe, transposed, lo, 1, tc, out, true);
    closeScaled(await out.toArray(), bDecGradRef(wEnc, transposed, gN, csg, true), 1e-5, "bdec");
    bDecGrad(gpu, twe, transposed, lo, 1, tc, out, false);
    assertAllClose(await out.toArray(), csg, 0, 0, "bdec without apply");
    for (const t of [twe, tc, out]) t.dispose();
  }
  for (const t of [sc, td, tgw, tw, lo, tn]) t.dispose();
});

Deno.test("gated split mode (aux gate on its own input): denseForward / denseBackward vs references", async () => {
  const gpu = await getGpu();
  // Hand case, one latent: z = 0.5 (main), z_aux = −1, b_gate = 0.2, r_mag = 0, b_mag = 0:
  // f = 0.5 (π_gate 0.7 > 0, π_mag 0.5), aux gate ReLU(−0.8) = 0, so ∂L/∂z_aux = 0 and
  // ∂L/∂z = g_main·exp(0) (the aux gradient no longer adds to the main path).
  const hp = { b_gate: Float32Array.of(0.2), r_mag: Float32Array.of(0), b_mag: Float32Array.of(0) };
  const [hf] = denseForwardRef("gated", Float32Array.of(0.5), 1, 1, {
    ...hp,
    hAux: Float32Array.of(-1),
  });
  assertAllClose(hf, [0.5, 0], 1e-7);
  const hb = denseBackwardRef("gated", {
    rows: 1,
    n: 1,
    B: 1,
    acts: Float32Array.of(0.5),
    actsAux: Float32Array.of(-1),
    gf: Float32Array.of(0.3, 0.9),
    norms: Float32Array.of(1),
    coef: 0.7,
    ...hp,
  });
  assertAllClose(hb.gh, [0.3, 0], 1e-7);
  // sums: fired 1, Σ ReLU(π_gate_aux) 0, ∂b_mag 0.3, ∂r_mag 0.3·0.5, ∂b_gate 0, Σ ∂z 0.3.
  assertAllClose(hb.sums, [1, 0, 0.3, 0.15, 0, 0.3], 1e-7);

  const rng = createRng(19);
  const rows = 70, n = 9, B = 80, o = { gpu };
  const z = randomArray(rng, 2 * rows * n, -1, 1);
  const bg = randomArray(rng, n, -0.3, 0.3), rm = randomArray(rng, n, -0.3, 0.3);
  const bm = randomArray(rng, n, -0.3, 0.3), norms = randomArray(rng, n, 0.5, 1.5);
  const gf = randomArray(rng, 2 * rows * n);
  const tz = f32(gpu, z, [2 * rows, n]), tn = f32(gpu, norms);
  const params = [f32(gpu, bg), f32(gpu, rm), f32(gpu, bm)];
  const fOut = Tensor.zeros([2 * rows, n], "f32", o);
  denseForward(gpu, "gated", { h: tz, split: true, out: fOut, params });
  const p = { b_gate: bg, r_mag: rm, b_mag: bm };
  const main = z.subarray(0, rows * n), aux = z.subarray(rows * n);
  const [fRef] = denseForwardRef("gated", main, rows, n, { ...p, hAux: aux });
  const tgf = f32(gpu, gf, [2 * rows, n]), part = Tensor.zeros([3, 6 * n], "f32", o);
  const coef = f32(gpu, [0.7]);
  denseBackward(gpu, "gated", {
    acts: tz,
    split: true,
    gf: tgf,
    norms: tn,
    coef,
    params,
    partials: part,
    chunkRows: 32,
    chunkOff: 0,
    rOff: 0,
    B,
  });
  const sums = reduceCols("sum", part);
  const ref = denseBackwardRef("gated", {
    rows,
    n,
    B,
    acts: main,
    actsAux: aux,
    gf,
    norms,
    coef: 0.7,
    ...p,
  });
  const [gfo, ggh, gs] = (await readAll([fOut, tgf, sums])) as Float32Array[];
  closeScaled(gfo, fRef, 1e-5, "split forward");
  closeScaled(ggh, ref.gh, 1e-5, "split ∂z, ∂z_aux");
  closeScaled(gs.subarray(0, n), ref.sums.subarray(0, n), 0, "split fired");
  closeScaled(gs, ref.sums, 1e-5, "split sums");
  for (const t of [tz, tn, ...params, fOut, tgf, part, coef, sums]) t.dispose();
});
