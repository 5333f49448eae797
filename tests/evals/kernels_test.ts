// The eval kernels against their plain-TS references: hand-computed cases, random cases at
// realistic shapes (GPT-2's vocabulary, d_in 768, d_sae 3072), both row layouts, and tensors
// split into binding windows (a device view reporting a tiny maxStorageBufferBindingSize).
import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import {
  encDecDot,
  encDecDotRef,
  klDivRows,
  klDivRowsRef,
  nonzeroMask,
  nonzeroMaskRef,
  ROW_STATS,
  ROW_STATS_WIDTH,
  rowStats,
  rowStatsRef,
} from "../../evals/kernels.ts";
import { EvalError } from "../../evals/config.ts";
import { assert, assertAllClose, assertClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "../gpu/_ops_helpers.ts";

const gpu = await getGpu();
const small = smallBindingGpu(gpu, 131072);

async function read(t: Tensor): Promise<Float32Array> {
  const a = await t.toArray() as Float32Array;
  t.dispose();
  return a;
}

Deno.test("klDivRows: hand cases, identical rows give exactly 0", async () => {
  // p = softmax(0, 0) = (½, ½), q = softmax(0, ln 3) = (¼, ¾):
  // KL = ½ ln(½/¼) + ½ ln(½/¾) = ½ ln(4/3).
  const want = 0.5 * Math.log(4 / 3);
  assertClose(klDivRowsRef([0, 0], [0, Math.log(3)], 1, 2)[0], want, 1e-7);
  for (const variant of ["thread", "workgroup"] as const) {
    using p = Tensor.from([0, 0, 5, -1, 2, 2], [2, 3]);
    using q = Tensor.from([0, Math.log(3), 0, -1, 2, 2], [2, 3]);
    // Row 0 has 3 logits: p = (½·, ½·, …) — compare against the reference instead of by hand.
    const got = await read(klDivRows(p, q, { variant }));
    assertAllClose(got, klDivRowsRef(await p.toArray(), await q.toArray(), 2, 3), 1e-6);
    assertEquals(got[1], 0, `${variant}: identical rows`);
    using a = Tensor.from([0, 0], [1, 2]);
    using b = Tensor.from([0, Math.log(3)], [1, 2]);
    assertClose((await read(klDivRows(a, b, { variant })))[0], want, 1e-6, 0, variant);
  }
});

Deno.test("klDivRows: GPT-2 vocabulary rows, both layouts and binding windows", async () => {
  const rng = createRng(1);
  for (const [m, n, g] of [[6, 50257, gpu], [9, 257, gpu], [300, 257, small]] as const) {
    const p = randomArray(rng, m * n, -8, 8), q = randomArray(rng, m * n, -8, 8);
    const want = klDivRowsRef(p, q, m, n);
    const variants = n * 3 > 65535 ? ["workgroup"] as const : ["thread", "workgroup"] as const;
    for (const variant of variants) {
      using pt = Tensor.from(p, [m, n], { gpu: g });
      using qt = Tensor.from(q, [m, n], { gpu: g });
      const got = await read(klDivRows(pt, qt, { variant }));
      assertAllClose(got, want, 2e-5, 2e-5, `[${m}, ${n}] ${variant}`);
      assert(got.every((v) => v >= -1e-6), "KL is non-negative");
    }
  }
});

Deno.test("klDivRows: mismatched shapes are an EvalError", () => {
  using p = Tensor.from([0, 0], [1, 2]);
  using q = Tensor.from([0, 0, 0], [1, 3]);
  assertThrows(() => klDivRows(p, q), EvalError, "same shape");
});

Deno.test("rowStats: a hand-computed row", async () => {
  // x = (3, 4), x̂ = (3, 0), a second row x = (1, 0) = x̂ makes x̄ = (2, 2).
  const x = [3, 4, 1, 0], h = [3, 0, 1, 0], colSum = [4, 4];
  const want = {
    l2_norm_in: 5,
    l2_norm_out: 3,
    l2_ratio: 0.6,
    x_hat_norm_squared: 9,
    x_dot_x_hat: 9,
    resid_sum_of_squares: 16,
    explained_variance_legacy: 1 - 16 / 5, // ‖x − x̄‖² = 1 + 4
    cossim: 0.6,
    x_norm_squared: 25,
  };
  for (const variant of ["thread", "workgroup"] as const) {
    using xt = Tensor.from(x, [2, 2]);
    using ht = Tensor.from(h, [2, 2]);
    using ct = Tensor.from(colSum);
    const got = await read(rowStats(xt, ht, ct, 2, { variant }));
    const ref = rowStatsRef(x, h, colSum, 2, 2, 2);
    for (const [k, v] of Object.entries(want)) {
      const i = ROW_STATS.indexOf(k as (typeof ROW_STATS)[number]);
      assertClose(got[i], v, 1e-6, 0, `${variant} ${k}`);
      assertClose(ref[i], v, 1e-6, 0, `ref ${k}`);
    }
    // Row 1 reconstructs exactly; its norm 1 is above the 1e-4 floor.
    assertClose(got[ROW_STATS_WIDTH + ROW_STATS.indexOf("l2_ratio")], 1, 1e-7);
  }
  // ‖x‖ < 1e-4 divides by 1 instead.
  const tiny = rowStatsRef([1e-5, 0], [2, 0], [1e-5, 0], 1, 2, 1);
  assertClose(tiny[ROW_STATS.indexOf("l2_ratio")], 2, 1e-7);
});

Deno.test("rowStats: d_in 768 and binding windows against the reference", async () => {
  const rng = createRng(2);
  for (const [n, d, g] of [[300, 768, gpu], [300, 128, small]] as const) {
    const x = randomArray(rng, n * d, -3, 3);
    const h = x.map((v) => v * 0.8 + rng.uniform(-0.2, 0.2));
    const colSum = new Float32Array(d);
    for (let r = 0; r < n; r++) for (let k = 0; k < d; k++) colSum[k] += x[r * d + k];
    const want = rowStatsRef(x, h, colSum, n, d, n);
    for (const variant of ["thread", "workgroup"] as const) {
      using xt = Tensor.from(x, [n, d], { gpu: g });
      using ht = Tensor.from(h, [n, d], { gpu: g });
      using ct = Tensor.from(colSum, [d], { gpu: g });
      const got = await read(rowStats(xt, ht, ct, n, { variant }));
      assertAllClose(got, want, 1e-3, 1e-4, `[${n}, ${d}] ${variant}`);
    }
  }
});

Deno.test("nonzeroMask: signed values and NaN count, zeros don't", async () => {
  const v = [0, -0, 1e-30, -2, NaN, 3, 0];
  using t = Tensor.from(v);
  const got = await read(nonzeroMask(t));
  assertEquals(Array.from(got), [0, 0, 1, 1, 1, 1, 0]);
  assertEquals(Array.from(nonzeroMaskRef(v)), [0, 0, 1, 1, 1, 1, 0]);
  const rng = createRng(3);
  const big = Float32Array.from({ length: 40000 }, () => (rng.uniform(0, 1) < 0.9 ? 0 : 1));
  using bt = Tensor.from(big, [200, 200], { gpu: small }); // 160 KB: two windows
  assertEquals(await read(nonzeroMask(bt)), nonzeroMaskRef(big));
});

Deno.test("encDecDot: hand case, d_sae 3072 and (feature × d) windows", async () => {
  assertEquals(Array.from(encDecDotRef([1, 0, 2, 1], [3, 4, 5, 6], 2, 2)), [11, 6]);
  const rng = createRng(4);
  for (const [d, F, g] of [[768, 3072, gpu], [192, 256, small], [64, 600, small]] as const) {
    const e = randomArray(rng, d * F), w = randomArray(rng, d * F);
    using et = Tensor.from(e, [d, F], { gpu: g });
    using wt = Tensor.from(w, [F, d], { gpu: g });
    const got = await read(encDecDot(et, wt));
    assertAllClose(got, encDecDotRef(e, w, d, F), 1e-4, 1e-5, `d ${d}, F ${F}`);
  }
  using et = Tensor.from(new Float32Array(6), [2, 3]);
  using wt = Tensor.from(new Float32Array(6), [2, 3]);
  assertThrows(() => encDecDot(et, wt), EvalError, "expected [3, 2]");
});
