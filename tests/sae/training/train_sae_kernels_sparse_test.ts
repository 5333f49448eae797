/**
 * The TopK-family selection and sparse kernels against their plain-TS references
 * (`select_ref.ts`, `sparse_ref.ts`): hand cases checked against both, random cases GPU vs
 * reference. Entries are compared per token as sets (the GPU emits TopK entries in heap order);
 * values with tolerance 1e-5 relative to each tensor's largest value, indices and counts exact.
 */
import { assertAllClose, assertEquals } from "../../assert.ts";
import { getGpu, type Gpu } from "../../../gpu/device.ts";
import { kthLargest } from "../../../gpu/kernels/kth_largest.ts";
import { readAll, Tensor } from "../../../gpu/tensor.ts";
import {
  auxSelect,
  auxSelectRef,
  batchRowCount,
  batchRowWrite,
  batchTopKSelectRef,
  cumulativeLevels,
  cumulativeLevelsRef,
  decodeRows,
  decodeRowsRef,
  entryDots,
  INVALID,
  latentGather,
  scanU32,
  scanU32Ref,
  sortChunks,
  sortEntries,
  sparseBackwardRef,
  topkSelect,
  topkSelectRef,
} from "../../../sae/training/kernels/mod.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { closeScaled } from "./_train_sae_helpers.ts";

const o = (gpu: Gpu) => ({ gpu });
type Sel = { idx: number; coef: number }[][];

/** Entries `[count, 4]` (u32 words) → per-row sorted (idx, coef) lists for slots [lo, hi) of each row. */
function rowsOf(words: Uint32Array, rows: number, slot: (t: number) => [number, number]): Sel {
  const f = new Float32Array(words.buffer);
  return Array.from({ length: rows }, (_, t) => {
    const [lo, hi] = slot(t);
    const out = [];
    for (let e = lo; e < hi; e++) {
      if (words[4 * e] !== INVALID) out.push({ idx: words[4 * e], coef: f[4 * e + 2] });
    }
    return out.sort((a, b) => a.idx - b.idx);
  });
}

function sameSel(a: Sel, b: Sel, msg: string) {
  assertEquals(a.map((r) => r.map((e) => e.idx)), b.map((r) => r.map((e) => e.idx)), msg);
  closeScaled(a.flat().map((e) => e.coef), b.flat().map((e) => e.coef), 1e-6, msg);
}

Deno.test("topkSelect and auxSelect vs references (hand case, rescale, dead counts)", async () => {
  const gpu = await getGpu();
  // Hand case: [3, -1, 2, 5], k = 2 → latents 0 and 3.
  assertEquals(
    topkSelectRef(Float32Array.of(3, -1, 2, 5), Float32Array.of(1, 1, 1, 1), 1, 4, 2, false)
      .map((r) => r.map((e) => e.idx)),
    [[0, 3]],
  );
  const rng = createRng(4);
  for (const [n, rescale] of [[12, true], [11, false]] as const) {
    const rows = 9, k = 4, kAux = 3;
    const h = randomArray(rng, rows * n), norms = randomArray(rng, n, 0.5, 2);
    h[5] = h[7]; // a tie inside a row
    const hs = rescale ? Float32Array.from(h, (v, i) => v * norms[i % n]) : h;
    const th = Tensor.from(hs, [rows, n], o(gpu)), tn = Tensor.from(norms, [n], o(gpu));
    const ent = Tensor.zeros([rows * (k + kAux), 4], "u32", o(gpu));
    const rp = Tensor.zeros([rows + 1], "u32", o(gpu)), auxN = Tensor.zeros([rows], "u32", o(gpu));
    topkSelect(gpu, th, tn, ent, rp, k, 0, rows, rescale);
    for (const dead of [[], [1, 4], [0, 2, 3, 5, 8, 9]]) {
      const mask = Uint32Array.from({ length: n }, (_, i) => (dead.includes(i) ? 1 : 0));
      const td = Tensor.from(mask, [n], o(gpu)),
        sc = Tensor.from([dead.length, 0, 0, 0], [4], o(gpu));
      auxSelect(gpu, th, tn, td, sc, ent, auxN, kAux, rows * k, 0, rescale, 0);
      const [w, p, an] = (await readAll([ent, rp, auxN])) as Uint32Array[];
      assertEquals([...p], Array.from({ length: rows + 1 }, (_, t) => t * k), "row offsets");
      sameSel(
        rowsOf(w, rows, (t) => [t * k, (t + 1) * k]),
        topkSelectRef(h, norms, rows, n, k, rescale),
        "topk",
      );
      const expAux = auxSelectRef(h, norms, mask, rows, n, kAux, rescale);
      assertEquals([...an], expAux.map((r) => r.length), "aux counts");
      sameSel(
        rowsOf(w, rows, (t) => [rows * k + t * kAux, rows * k + t * kAux + an[t]]),
        expAux,
        "aux",
      );
      td.dispose();
      sc.dispose();
    }
    for (const t of [th, tn, ent, rp, auxN]) t.dispose();
  }
});

async function batchSelect(
  gpu: Gpu,
  hs: Float32Array,
  norms: Float32Array,
  rows: number,
  n: number,
  k: number,
  rescale: boolean,
) {
  const K = Math.trunc(k * rows);
  const g = o(gpu);
  const th = Tensor.from(hs, [rows, n], g), tn = Tensor.from(norms, [n], g);
  const cnt = Tensor.zeros([rows], "u32", g), rp = Tensor.zeros([rows + 1], "u32", g);
  const ent = Tensor.zeros([Math.max(K, 1), 4], "u32", g), rmin = Tensor.zeros([rows], "f32", g);
  const kth = kthLargest(th, Math.min(K, rows * n));
  batchRowCount(gpu, th, kth, cnt, 0);
  scanU32(gpu, cnt, null, rp, rows);
  batchRowWrite(gpu, th, tn, kth, rp, ent, rmin, 0, rescale);
  const [w, p, m] = await readAll([ent, rp, rmin]);
  for (const t of [th, tn, cnt, rp, ent, rmin, kth]) t.dispose();
  return {
    sel: rowsOf(w as Uint32Array, rows, (t) => [p[t], p[t + 1]]),
    rowMin: m as Float32Array,
  };
}

Deno.test("BatchTopK selection (kthLargest, ties in flat order) vs batchTopKSelectRef", async () => {
  const gpu = await getGpu();
  const rng = createRng(8);
  // Hand case: two rows, k = 1.5 → 3 largest of ReLU: 8, 6, 3.
  const hand = await batchSelect(
    gpu,
    Float32Array.of(1, -2, 3, -4, -5, 6, -7, 8),
    Float32Array.of(1, 1, 1, 1),
    2,
    4,
    1.5,
    false,
  );
  assertEquals(hand.sel.map((r) => r.map((e) => e.idx)), [[2], [1, 3]]);
  assertAllClose(hand.rowMin, [3, 6], 0);
  const cases: [number, number, number, boolean][] = [[10, 12, 2.5, true], [7, 9, 3, false], [
    6,
    8,
    20,
    false,
  ]];
  for (const [rows, n, k, rescale] of cases) {
    const h = randomArray(rng, rows * n), norms = randomArray(rng, n, 0.5, 2);
    if (rows === 7) { for (let t = 1; t < rows; t++) h.copyWithin(t * n, 0, n); // ties everywhere
     }
    const hs = rescale ? Float32Array.from(h, (v, i) => v * norms[i % n]) : h;
    const got = await batchSelect(gpu, hs, norms, rows, n, k, rescale);
    const exp = batchTopKSelectRef(h, norms, rows, n, k, rescale);
    sameSel(got.sel, exp.entries, `rows ${rows} k ${k}`);
    assertAllClose(
      got.rowMin,
      exp.rowMin.map((v) => (v === Infinity ? Infinity : v)),
      1e-6,
      0,
      "rowMin",
    );
  }
});

Deno.test("scanU32, cumulativeLevels, decodeRows (levels, aux counts) vs references", async () => {
  const gpu = await getGpu();
  const g = o(gpu);
  assertEquals([...scanU32Ref([3, 1, 2])], [0, 3, 4, 6]);
  const a = Uint32Array.from({ length: 1000 }, (_, i) => (i * 7) % 5),
    b = Uint32Array.from({ length: 1000 }, (_, i) => i % 3);
  const ta = Tensor.from(a, [1000], g),
    tb = Tensor.from(b, [1000], g),
    out = Tensor.zeros([1001], "u32", g);
  scanU32(gpu, ta, tb, out, 1000);
  assertEquals([...await out.toArray()], [...scanU32Ref(a, b)]);
  const rng = createRng(2);
  const gl = randomArray(rng, 3 * 10), tg = Tensor.from(gl, [30], g);
  cumulativeLevels(gpu, tg, 3, 10);
  closeScaled(await tg.toArray(), cumulativeLevelsRef(gl, 3, 10), 1e-6, "cumulative");
  for (const d of [8, 6]) {
    const n = 10, B = 4, stride = 3;
    const rows = [[{ idx: 1, coef: 0.5 }, { idx: 4, coef: -1 }, { idx: 9, coef: 2 }], [], [{
      idx: 0,
      coef: 1,
    }], [
      { idx: 5, coef: 3 },
      { idx: 7, coef: 0.25 },
    ]];
    const words = new Uint32Array(B * stride * 4), fw = new Float32Array(words.buffer);
    const counts = rows.map((r) => r.length);
    rows.forEach((r, t) =>
      r.forEach((e, s) => {
        words[(t * stride + s) * 4] = e.idx;
        words[(t * stride + s) * 4 + 1] = t;
        fw[(t * stride + s) * 4 + 2] = e.coef;
      })
    );
    const rp = Uint32Array.from(scanU32Ref(counts).map((_, t) => t * stride)); // CSR over padded rows
    const wDec = randomArray(rng, n * d), bias = randomArray(rng, d);
    const ent = Tensor.from(words, [B * stride, 4], g), tw = Tensor.from(wDec, [n, d], g);
    const tbias = Tensor.from(bias, [d], g);
    // CSR form with row padding: invalid slots marked INVALID.
    const padded = new Uint32Array(words);
    rows.forEach((r, t) => {
      for (let s = r.length; s < stride; s++) padded[(t * stride + s) * 4] = INVALID;
    });
    const tpad = Tensor.from(padded, [B * stride, 4], g), trp = Tensor.from(rp, [B + 1], g);
    const levels = [2, 6, n], outL = Tensor.zeros([3 * B, d], "f32", g);
    decodeRows(gpu, { ent: tpad, rowPtr: trp, wDec: tw, bias: tbias, out: outL, B, levels });
    closeScaled(
      await outL.toArray(),
      decodeRowsRef(rows, wDec, bias, levels, d),
      1e-6,
      `levels d ${d}`,
    );
    const tc = Tensor.from(Uint32Array.from(counts), [B], g), outA = Tensor.zeros([B, d], "f32", g);
    decodeRows(gpu, {
      ent,
      rowPtr: tc,
      stride,
      base: 0,
      wDec: tw,
      bias: null,
      out: outA,
      B,
      levels: [n],
    });
    closeScaled(await outA.toArray(), decodeRowsRef(rows, wDec, null, [n], d), 1e-6, `aux d ${d}`);
    for (const t of [ent, tw, tbias, tpad, trp, outL, tc, outA]) t.dispose();
  }
  for (const t of [ta, tb, out, tg]) t.dispose();
});

Deno.test("entryDots + sortEntries + latentGather vs sparseBackwardRef", async () => {
  const gpu = await getGpu();
  const g = o(gpu), rng = createRng(6);
  for (const d of [8, 6]) {
    const B = 5, n = 7, k = 3, kAux = 2, levels = [3, n], m = levels.length;
    const count = B * k + B * kAux;
    const words = new Uint32Array(count * 4), fw = new Float32Array(words.buffer);
    const entries = [];
    const auxN = Uint32Array.from({ length: B }, (_, t) => t % 3);
    for (let t = 0; t < B; t++) {
      const main = [0, 2, 5, 6, 1].slice(t % 2, t % 2 + k).sort((a, b) => a - b);
      main.forEach((i, s) => {
        const e = t * k + s, bad = t === 3 && s === 1;
        words[4 * e] = bad ? INVALID : i;
        words[4 * e + 1] = t;
        fw[4 * e + 2] = rng.uniform(-1, 1);
        if (!bad) {
          entries.push({
            idx: i,
            row: t,
            coef: fw[4 * e + 2],
            src: (i < 3 ? 0 : 1) * B + t,
            aux: false,
          });
        }
      });
      for (let s = 0; s < kAux; s++) {
        const e = B * k + t * kAux + s, i = (t + 2 * s) % n;
        words[4 * e] = i;
        words[4 * e + 1] = t;
        fw[4 * e + 2] = rng.uniform(-1, 1);
        if (s < auxN[t]) {
          entries.push({ idx: i, row: t, coef: fw[4 * e + 2], src: m * B + t, aux: true });
        }
      }
    }
    const ups = randomArray(rng, (m + 1) * B * d),
      xt = randomArray(rng, B * d),
      wDec = randomArray(rng, n * d);
    const ent = Tensor.from(words, [count, 4], g);
    const rp = Tensor.from(Uint32Array.from({ length: B + 1 }, (_, t) => t * k), [B + 1], g);
    const args = {
      ent,
      rowPtr: rp,
      ups: Tensor.from(ups, [(m + 1) * B, d], g),
      wDec: Tensor.from(wDec, [n, d], g),
      B,
      d,
      n,
      auxBase: B * k,
      kAux,
      auxN: Tensor.from(auxN, [B], g),
      count,
      levels,
    };
    const { chunks } = sortChunks(count);
    const sort = {
      cnt: Tensor.zeros([chunks, n], "u32", g),
      tot: Tensor.zeros([n], "u32", g),
      start: Tensor.zeros([n + 1], "u32", g),
      list: Tensor.zeros([count], "u32", g),
    };
    const gWDec = Tensor.zeros([n, d], "f32", g), gWEnc = Tensor.zeros([d, n], "f32", g);
    const lat = Tensor.zeros([2, n], "f32", g), txt = Tensor.from(xt, [B, d], g);
    entryDots(gpu, args);
    sortEntries(gpu, args, sort);
    latentGather(gpu, args, sort, txt, gWDec, gWEnc, lat);
    const ref = sparseBackwardRef(entries, ups, xt, wDec, n, d);
    const [gd, ge, gl] = (await readAll([gWDec, gWEnc, lat])) as Float32Array[];
    closeScaled(gd, ref.gWDec, 1e-5, `gWDec d ${d}`);
    closeScaled(ge, ref.gWEnc, 1e-5, `gWEnc d ${d}`);
    closeScaled(gl.subarray(0, n), ref.bEnc, 1e-5, "bEnc");
    assertAllClose(gl.subarray(n), ref.fired, 0, 0, "fired");
    for (
      const t of [
        ent,
        rp,
        args.ups,
        args.wDec,
        args.auxN,
        ...Object.values(sort),
        gWDec,
        gWEnc,
        lat,
        txt,
      ]
    ) {
      t.dispose();
    }
  }
});
