// Ground-truth metrics (synthetic/metrics.ts): the Hungarian matching against brute force, and
// every metric on cases small enough to compute by hand.

import { Mulberry32 } from "../../util/rng.ts";
import { SyntheticError } from "../../synthetic/errors.ts";
import {
  absCosineMatrix,
  bestMatches,
  featureUniqueness,
  linearSumAssignment,
  meanCorrelationCoefficient,
  meanMaxCosine,
  SyntheticMetrics,
} from "../../synthetic/metrics.ts";
import type { SparseCodes } from "../../synthetic/model.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../assert.ts";

/** The minimum total cost over all assignments of min(r, c) pairs, by enumeration. */
function bruteForce(cost: Float64Array, r: number, c: number): number {
  let best = Infinity;
  const usedCols = new Uint8Array(c), usedRows = new Uint8Array(r);
  const pairs = Math.min(r, c);
  // Assign the smaller side one by one to any unused element of the other side.
  const small = r <= c ? r : c, big = r <= c ? c : r;
  const at = (i: number, j: number) => r <= c ? cost[i * c + j] : cost[j * c + i];
  const used = r <= c ? usedCols : usedRows;
  const go = (i: number, acc: number) => {
    if (i === small) {
      best = Math.min(best, acc);
      return;
    }
    for (let j = 0; j < big; j++) {
      if (used[j]) continue;
      used[j] = 1;
      go(i + 1, acc + at(i, j));
      used[j] = 0;
    }
  };
  go(0, 0);
  assert(pairs === small);
  return best;
}

function totalCost(cost: Float64Array, c: number, a: Int32Array): number {
  let s = 0;
  a.forEach((j, i) => {
    if (j >= 0) s += cost[i * c + j];
  });
  return s;
}

Deno.test("linearSumAssignment: optimal against brute force on square and rectangular matrices", () => {
  const rng = new Mulberry32(5);
  for (const [r, c] of [[1, 1], [3, 3], [5, 5], [6, 6], [4, 7], [7, 4], [2, 6], [6, 2]]) {
    for (let trial = 0; trial < 8; trial++) {
      const cost = new Float64Array(r * c);
      // Integer costs with ties, and some negative ones.
      for (let i = 0; i < cost.length; i++) cost[i] = rng.nextInt(9) - 2;
      const a = linearSumAssignment(cost, r, c);
      assertEquals(a.length, r);
      const cols = [...a].filter((j) => j >= 0);
      assertEquals(cols.length, Math.min(r, c), `${r}×${c}: pairs`);
      assertEquals(new Set(cols).size, cols.length, `${r}×${c}: a column used twice`);
      assertEquals(totalCost(cost, c, a), bruteForce(cost, r, c), `${r}×${c} trial ${trial}`);
    }
  }
});

Deno.test("linearSumAssignment: the greedy trap, empty shapes, bad input", () => {
  // Greedy takes the 0 at (1, 1) and is left with 4 + 9 = 13; the optimum is 1 + 1 + 1 = 3.
  const cost = Float64Array.of(1, 4, 9, 9, 0, 1, 9, 1, 9);
  assertEquals([...linearSumAssignment(cost, 3, 3)], [0, 2, 1]);
  assertEquals([...linearSumAssignment(new Float64Array(0), 0, 3)], []);
  assertEquals([...linearSumAssignment(new Float64Array(0), 2, 0)], [-1, -1]);
  assertThrows(() => linearSumAssignment([1, 2, 3], 2, 2), SyntheticError, "3 costs");
  assertThrows(() => linearSumAssignment([1, NaN], 1, 2), SyntheticError, "cost 1 is NaN");
});

Deno.test("MCC: 1 for a permuted, sign-flipped, rescaled dictionary; hand-computed mixtures", () => {
  const truth = Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1);
  const learned = Float32Array.of(0, 0, -3, 2, 0, 0, 0, 0.5, 0); // e3, e1, e2 (scaled, signed)
  const r = meanCorrelationCoefficient(learned, truth, 3);
  assertClose(r.mcc, 1, 1e-12);
  assertEquals([...r.matching], [2, 0, 1]);
  // A latent halfway between e1 and e2 plus e2: optimum (0.7071 + 1) / 2.
  const h = meanCorrelationCoefficient(Float32Array.of(1, 1, 0, 0, 1, 0), truth, 3);
  assertClose(h.mcc, (Math.SQRT1_2 + 1) / 2, 1e-12);
  // More latents than features: only min(4, 2) = 2 pairs are averaged.
  const more = meanCorrelationCoefficient(
    Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0),
    Float32Array.of(1, 0, 0, 1),
    2,
  );
  assertClose(more.mcc, 1, 1e-12);
  assertEquals([...more.matching].filter((j) => j >= 0).length, 2);
  // A zero decoder row has |cos| 0 with everything (SAELens clamps the norm at 1e-8).
  const zero = meanCorrelationCoefficient(
    Float32Array.of(0, 0, 1, 0),
    Float32Array.of(1, 0, 0, 1),
    2,
  );
  assertClose(zero.mcc, 0.5, 1e-12);
  assertThrows(() => meanCorrelationCoefficient([1, 2, 3], [1, 2], 2), SyntheticError, "width");
});

Deno.test("absCosineMatrix, bestMatches, uniqueness and MMCS by hand", () => {
  const learned = Float32Array.of(3, 4, 0, 1, 1, 0);
  const truth = Float32Array.of(1, 0, 0, 1);
  const cos = absCosineMatrix(learned, truth, 2);
  assertEquals([...cos].map((v) => Math.round(v * 1e6) / 1e6), [0.6, 0.8, 0, 1, 1, 0]);
  assertEquals([...bestMatches(learned, truth, 2)], [1, 1, 0]);
  assertClose(featureUniqueness(learned, truth, 2), 2 / 3, 1e-12);
  // Best |cos| per true feature: e1 → 1 (latent 2), e2 → 1 (latent 1).
  assertClose(meanMaxCosine(learned, truth, 2), 1, 1e-12);
  assertClose(meanMaxCosine(Float32Array.of(3, 4), truth, 2), 0.7, 1e-12);
});

function codesOf(rows: number[][]): SparseCodes {
  const rowPtr = new Uint32Array(rows.length + 1);
  const index: number[] = [];
  rows.forEach((r, i) => {
    index.push(...r);
    rowPtr[i + 1] = index.length;
  });
  return {
    rows: rows.length,
    rowPtr,
    index: Uint32Array.from(index),
    value: new Float32Array(index.length).fill(1),
    block: 0,
    stream: 0,
    noiseKey: 0,
  };
}

Deno.test("SyntheticMetrics: classification counts, L0, dead latents by hand", () => {
  // Features e1, e2 in 2 dims; latents: 0 ≈ e1, 1 ≈ e2, 2 ≈ e1 too (a duplicate), 3 dead.
  const truth = Float32Array.of(1, 0, 0, 1);
  const decoder = Float32Array.of(1, 0.1, 0.1, 1, 1, -0.2, 0.3, 1);
  const m = new SyntheticMetrics({ decoder, truth, dIn: 2 });
  // 4 samples. Feature firing: {0}, {1}, {0, 1}, {}.
  const codes = codesOf([[0], [1], [0, 1], []]);
  // Latent activity per sample (latents 0..3).
  const latents = Float32Array.of(
    1,
    0,
    0,
    0, // sample 0: latent 0 (TP for 0)
    0,
    1,
    1,
    0, // sample 1: latent 1 (TP), latent 2 (FP: its feature 0 is off)
    0,
    1,
    0,
    0, // sample 2: latent 1 (TP); latent 0 misses feature 0 (FN), latent 2 too (FN)
    1,
    0,
    0,
    0, // sample 3: latent 0 fires on nothing (FP)
  );
  const x = Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0);
  m.add({ x, xHat: x, latents, codes });
  const r = m.result();
  // Latent 0: TP 1, FP 1, FN 1 → P 1/2, R 1/2, F1 1/2, accuracy 2/4.
  // Latent 1: TP 2, FP 0, FN 0 → 1, 1, 1, accuracy 1.
  // Latent 2 (matched to feature 0): TP 0, FP 1, FN 2 → 0, 0, 0, accuracy 1/4.
  // Latent 3 (matched to feature 1, |cos| 0.96): never fires, FN 2 → 0, 0, 0, accuracy 2/4.
  assertEquals([...r.perLatent.match], [0, 1, 0, 1]);
  assertEquals([...r.perLatent.precision], [0.5, 1, 0, 0]);
  assertEquals([...r.perLatent.recall], [0.5, 1, 0, 0]);
  assertEquals([...r.perLatent.f1], [0.5, 1, 0, 0]);
  assertClose(r.classification.precision, 1.5 / 4, 1e-12);
  assertClose(r.classification.f1, 1.5 / 4, 1e-12);
  assertClose(r.classification.accuracy, (0.5 + 1 + 0.25 + 0.5) / 4, 1e-12);
  assertEquals(r.deadLatents, 1);
  assertClose(r.saeL0, 5 / 4, 1e-12);
  assertClose(r.trueL0, 4 / 4, 1e-12);
  assertEquals(r.samples, 4);
  assertClose(r.uniqueness, 2 / 4, 1e-12);
});

Deno.test("SyntheticMetrics: explained variance about the mean, shrinkage, across batches", () => {
  const truth = Float32Array.of(1, 0, 0, 1);
  const m = new SyntheticMetrics({ decoder: truth, truth, dIn: 2 });
  // x = (1,1), (3,1), (0,0) over two batches; x̂ = x/2 except the zero row.
  // E‖x‖² = (2 + 10 + 0)/3 = 4; E x = (4/3, 2/3), ‖E x‖² = 20/9; variance = 16/9.
  // E‖x − x̂‖² = (0.5 + 2.5 + 0)/3 = 1; EV = 1 − 1 / (16/9) = 7/16.
  // Shrinkage: mean of 0.5 over the two non-zero rows (the zero row is skipped).
  m.add({
    x: Float32Array.of(1, 1, 3, 1),
    xHat: Float32Array.of(0.5, 0.5, 1.5, 0.5),
    latents: new Float32Array(4),
    codes: codesOf([[], []]),
  });
  m.add({
    x: Float32Array.of(0, 0),
    xHat: Float32Array.of(0, 0),
    latents: new Float32Array(2),
    codes: codesOf([[]]),
  });
  const r = m.result();
  assertClose(r.explainedVariance, 7 / 16, 1e-12);
  assertClose(r.shrinkage, 0.5, 1e-12);
  assertEquals(r.deadLatents, 2);
  assertEquals(r.samples, 3);
  // A constant input has no variance: EV is 1 only for a perfect reconstruction.
  const c = new SyntheticMetrics({ decoder: truth, truth, dIn: 2 });
  c.add({
    x: Float32Array.of(1, 2),
    xHat: Float32Array.of(1, 2),
    latents: new Float32Array(2),
    codes: codesOf([[]]),
  });
  assertEquals(c.result().explainedVariance, 1);
});

Deno.test("SyntheticMetrics: refuses batches of the wrong size and unknown features", () => {
  const truth = Float32Array.of(1, 0, 0, 1);
  const m = new SyntheticMetrics({ decoder: truth, truth, dIn: 2 });
  assertThrows(
    () =>
      m.add({
        x: new Float32Array(2),
        xHat: new Float32Array(2),
        latents: new Float32Array(1),
        codes: codesOf([[]]),
      }),
    SyntheticError,
    "latents of 1×2",
  );
  assertThrows(
    () =>
      m.add({
        x: new Float32Array(2),
        xHat: new Float32Array(2),
        latents: new Float32Array(2),
        codes: codesOf([[5]]),
      }),
    SyntheticError,
    "feature 5",
  );
  assertThrows(() => new SyntheticMetrics({ decoder: [1, 2, 3], truth, dIn: 2 }), SyntheticError);
});
