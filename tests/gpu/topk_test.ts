/**
 * Per-row top-k (`topkRows`), the batch K-th largest (`kthLargest`) and the BatchTopK mask, GPU
 * and plain-TS reference, through one case table each. Every case is checked against an
 * independent expectation: hand-computed values, or the naive oracles below (repeated linear
 * argmax / a count of better entries), which share no code with the references. Top-k results
 * are copies of input entries, so all comparisons are exact.
 */

import { getGpu, GpuError } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import { orderKey, type TopkOptions, topkRows, topkRowsRef } from "../../gpu/kernels/topk.ts";
import {
  batchTopKMask,
  batchTopKMaskRef,
  decodeKth,
  kthLargest,
  kthLargestRef,
  type KthOptions,
} from "../../gpu/kernels/kth_largest.ts";
import { assertEquals, assertThrows } from "../assert.ts";
import { mulberry32 as rng } from "../../util/rng.ts";

await getGpu();

/** Naive oracle: k times, the best unused allowed entry (NaN lowest, then lower index). */
function oracle(
  x: Float32Array,
  rows: number,
  n: number,
  k: number,
  relu = false,
  mask?: number[],
) {
  const values: number[] = [];
  const indices: number[] = [];
  const better = (a: number, b: number) => (Number.isNaN(b) ? !Number.isNaN(a) : a > b);
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let best = -1;
      for (let j = 0; j < n; j++) {
        if (used.has(j) || (mask && !mask[j])) continue;
        if (best < 0 || better(x[r * n + j], x[r * n + best])) best = j;
      }
      if (best < 0) {
        values.push(0);
        indices.push(-1);
        continue;
      }
      used.add(best);
      const v = x[r * n + best];
      values.push(relu && !(v > 0) ? 0 : v);
      indices.push(best);
    }
  }
  return { values: new Float32Array(values), indices: new Int32Array(indices) };
}

interface TopkCase {
  name: string;
  shape: number[];
  k: number;
  x: Float32Array;
  relu?: boolean;
  mask?: number[];
  /** Hand-computed result; else the naive oracle's. */
  expect?: { values: number[]; indices: number[] };
  /** Internal GPU options forcing a path (windows, fallback, sort). */
  gpu?: Pick<TopkOptions, "windowRows" | "capacity" | "sort" | "groups">;
}

function randomX(count: number, seed: number, quantize = 0): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = r() * 2 - 1;
    x[i] = quantize ? Math.round(v * quantize) / quantize : v;
  }
  return x;
}

const f = (...v: number[]) => new Float32Array(v);
const CASES: TopkCase[] = [
  {
    name: "ties: lower index first",
    shape: [1, 4],
    k: 3,
    x: f(1, 3, 3, -2),
    expect: { values: [3, 3, 1], indices: [1, 2, 0] },
  },
  {
    name: "k = n sorts the row",
    shape: [2, 3],
    k: 3,
    x: f(0.5, -1, 2, 4, 4, 4),
    expect: { values: [2, 0.5, -1, 4, 4, 4], indices: [2, 0, 1, 0, 1, 2] },
  },
  {
    name: "k = 1 on negatives",
    shape: [1, 3],
    k: 1,
    x: f(-5, -3, -4),
    expect: { values: [-3], indices: [1] },
  },
  {
    name: "relu after selection keeps the indices of negatives",
    shape: [1, 4],
    k: 3,
    x: f(-1, -2, 0.5, -0.1),
    relu: true,
    expect: { values: [0.5, 0, 0], indices: [2, 3, 0] },
  },
  {
    name: "mask excludes entries",
    shape: [1, 5],
    k: 2,
    x: f(5, 4, 3, 2, 1),
    mask: [0, 1, 0, 1, 1],
    expect: { values: [4, 2], indices: [1, 3] },
  },
  {
    name: "mask with fewer allowed entries than k fills (0, -1)",
    shape: [2, 5],
    k: 3,
    x: f(5, 4, 3, 2, 1, -1, -2, -3, -4, -5),
    mask: [0, 0, 1, 0, 0],
    expect: { values: [3, 0, 0, -3, 0, 0], indices: [2, -1, -1, 2, -1, -1] },
  },
  {
    name: "NaN ranks below -Infinity",
    shape: [1, 4],
    k: 4,
    x: f(NaN, 1, -Infinity, 2),
    expect: { values: [2, 1, -Infinity, NaN], indices: [3, 1, 2, 0] },
  },
  {
    name: "-0 equals +0 (index order), values kept bit for bit",
    shape: [1, 3],
    k: 2,
    x: f(-0, 0, -0),
    expect: { values: [-0, 0], indices: [0, 1] },
  },
  {
    name: "leading dims are rows",
    shape: [2, 2, 3],
    k: 1,
    x: f(1, 2, 3, 6, 5, 4, 0, 0, 1, 9, 9, 9),
    expect: { values: [3, 6, 1, 9], indices: [2, 0, 2, 0] },
  },
  {
    name: "all-equal rows overflow the candidates (exact fallback)",
    shape: [3, 50],
    k: 5,
    x: new Float32Array(150).fill(7),
    expect: { values: Array(15).fill(7), indices: [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4] },
    gpu: { capacity: 6 },
  },
  { name: "random 37x1000 k=32", shape: [37, 1000], k: 32, x: randomX(37000, 1) },
  { name: "random k=300 (merge sort)", shape: [5, 3000], k: 300, x: randomX(15000, 2) },
  {
    name: "random k=40, merge sort forced, capacity = k+1",
    shape: [4, 3000],
    k: 40,
    x: randomX(12000, 3),
    gpu: { sort: "merge", capacity: 41 },
  },
  {
    name: "quantized ties with a tiny capacity (fallback)",
    shape: [7, 5000],
    k: 7,
    x: randomX(35000, 4, 50),
    gpu: { capacity: 8 },
  },
  {
    name: "n = 131072 with ties: fallback over several radix chunks",
    shape: [2, 131072],
    k: 20,
    x: randomX(262144, 5, 1000),
    gpu: { capacity: 24 },
  },
  {
    name: "the limits together: k = 256 in rows 131072 wide",
    shape: [2, 131072],
    k: 256,
    x: randomX(262144, 10),
  },
  {
    name: "row windows",
    shape: [10, 256],
    k: 16,
    x: randomX(2560, 6, 20),
    relu: true,
    gpu: { windowRows: 4 },
  },
  {
    name: "aux-k shape: k=384 among a sparse mask",
    shape: [3, 1000],
    k: 384,
    x: randomX(3000, 7),
    mask: Array.from({ length: 1000 }, (_, j) => (j * 7919) % 10 < 3 ? 1 : 0),
    relu: true,
  },
  {
    name: "k=384, mask allowing more than k",
    shape: [2, 1000],
    k: 384,
    x: randomX(2000, 8),
    mask: Array.from({ length: 1000 }, (_, j) => (j * 7919) % 10 < 6 ? 1 : 0),
  },
  { name: "small groups", shape: [3, 300], k: 9, x: randomX(900, 9), gpu: { groups: 2 } },
];

function expected(c: TopkCase) {
  if (c.expect) {
    return { values: new Float32Array(c.expect.values), indices: new Int32Array(c.expect.indices) };
  }
  const n = c.shape[c.shape.length - 1];
  return oracle(c.x, c.x.length / n, n, c.k, c.relu, c.mask);
}

for (const c of CASES) {
  const n = c.shape[c.shape.length - 1];
  const rows = c.x.length / n;
  Deno.test(`topkRowsRef: ${c.name}`, () => {
    const got = topkRowsRef(c.x, rows, n, c.k, { relu: c.relu, mask: c.mask });
    const want = expected(c);
    assertEquals(got.values, want.values, "values");
    assertEquals(got.indices, want.indices, "indices");
  });
  Deno.test(`topkRows (GPU): ${c.name}`, async () => {
    using x = Tensor.from(c.x, c.shape);
    using mask = c.mask ? Tensor.from(new Uint32Array(c.mask)) : null;
    const got = topkRows(x, c.k, { relu: c.relu, mask: mask ?? undefined, ...c.gpu });
    const [values, indices] = await readAll([got.values, got.indices]);
    assertEquals(got.values.shape, [...c.shape.slice(0, -1), c.k]);
    got.values.dispose();
    got.indices.dispose();
    const want = expected(c);
    assertEquals(values, want.values, "values");
    assertEquals(indices, want.indices, "indices");
  });
}

Deno.test("topkRows: i32 masks, out tensors and bad arguments", async () => {
  using x = Tensor.from(f(1, 2, 3, 4), [1, 4]);
  using mask = Tensor.from(new Int32Array([1, 1, 0, 1]));
  using values = Tensor.empty([1, 2], "f32");
  using indices = Tensor.empty([1, 2], "i32");
  topkRows(x, 2, { mask, out: { values, indices } });
  assertEquals(await indices.toArray(), new Int32Array([3, 1]));
  assertThrows(() => topkRows(x, 5), GpuError, "k is 5");
  assertThrows(() => topkRows(x, 0), GpuError, "k is 0");
  using bad = Tensor.from(new Uint32Array(3));
  assertThrows(() => topkRows(x, 2, { mask: bad }), GpuError, "mask has shape [3]");
  using xi = Tensor.from(new Int32Array(4), [1, 4]);
  assertThrows(() => topkRows(xi, 2), GpuError, "x must be f32");
});

// ---- batch level: kthLargest, batchTopKMask, per-row lists under a batch threshold ----

/** Independent oracle: flat indices sorted by value (NaN lowest, -0 = +0), then index. */
function batchOrder(x: Float32Array): number[] {
  const rank = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  return Array.from(x, (_, i) => i).sort((a, b) => {
    const va = x[a], vb = x[b];
    if (Number.isNaN(va) !== Number.isNaN(vb)) return Number.isNaN(va) ? 1 : -1;
    return rank(vb) - rank(va) || a - b;
  });
}

interface KthCase {
  name: string;
  x: Float32Array;
  K: number;
  relu?: boolean;
  /** Hand-computed K-th entry and mask; else from the oracle. */
  expect?: { index: number; mask: number[] };
  gpu?: Omit<KthOptions, "out">;
}

const KTH_CASES: KthCase[] = [
  {
    name: "ties: lower flat index first",
    x: f(1, 5, 3, 5),
    K: 2,
    expect: { index: 3, mask: [0, 5, 0, 5] },
  },
  { name: "K = 1", x: f(-1, -1), K: 1, expect: { index: 0, mask: [-1, 0] } },
  { name: "K = size", x: f(3, -2, 7), K: 3, expect: { index: 1, mask: [3, -2, 7] } },
  { name: "NaN lowest", x: f(NaN, 1, NaN), K: 2, expect: { index: 0, mask: [NaN, 1, 0] } },
  {
    name: "relu after selection",
    x: f(-3, -1, -2),
    K: 2,
    relu: true,
    expect: { index: 2, mask: [0, 0, 0] },
  },
  {
    name: "all equal: overflow → whole-tensor select",
    x: new Float32Array(50000).fill(0.25),
    K: 777,
    gpu: { capacity: 100 },
  },
  { name: "random 100000, K=3200", x: randomX(100000, 11), K: 3200 },
  { name: "quantized ties", x: randomX(100000, 12, 20), K: 3200 },
  { name: "windows", x: randomX(70000, 13), K: 5000, gpu: { windowElems: 16384 } },
  {
    name: "windows + fallback",
    x: randomX(70000, 14, 50),
    K: 5000,
    relu: true,
    gpu: { windowElems: 16384, capacity: 10 },
  },
  { name: "large groups", x: randomX(20000, 15), K: 9, gpu: { groupSize: 2048 } },
];

function kthExpected(c: KthCase): { index: number; mask: Float32Array } {
  if (c.expect) return { index: c.expect.index, mask: new Float32Array(c.expect.mask) };
  const order = batchOrder(c.x);
  const mask = new Float32Array(c.x.length);
  for (const i of order.slice(0, c.K)) mask[i] = c.relu && !(c.x[i] > 0) ? 0 : c.x[i];
  return { index: order[c.K - 1], mask };
}

for (const c of KTH_CASES) {
  Deno.test(`kthLargestRef + batchTopKMaskRef: ${c.name}`, () => {
    const want = kthExpected(c);
    const kth = kthLargestRef(c.x, c.K);
    assertEquals(kth.index, want.index, "index");
    assertEquals(kth.value, c.x[want.index], "value");
    assertEquals(batchTopKMaskRef(c.x, kth, c.relu), want.mask, "mask");
  });
  Deno.test(`kthLargest + batchTopKMask (GPU): ${c.name}`, async () => {
    const want = kthExpected(c);
    using x = Tensor.from(c.x);
    using kth = kthLargest(x, c.K, c.gpu);
    using y = batchTopKMask(x, kth, { relu: c.relu });
    const [kr, yr] = await readAll([kth, y]);
    const got = decodeKth(kr as Uint32Array);
    assertEquals(got.index, want.index, "index");
    assertEquals(got.value, c.x[want.index], "value");
    assertEquals(got.key, orderKey(c.x[want.index]), "key");
    assertEquals(yr, want.mask, "mask");
  });
}

Deno.test("topkRows with a batch threshold: per-row lists of the BatchTopK selection", async () => {
  const rows = 12, n = 300, K = 200, kMax = 40;
  const xs = randomX(rows * n, 21, 30);
  const order = batchOrder(xs);
  const kept = new Set(order.slice(0, K));
  const want = {
    values: new Float32Array(rows * kMax),
    indices: new Int32Array(rows * kMax).fill(-1),
  };
  const fill = new Array(rows).fill(0);
  for (const i of order.slice(0, K)) {
    const r = Math.floor(i / n);
    if (fill[r] < kMax) {
      want.values[r * kMax + fill[r]] = xs[i];
      want.indices[r * kMax + fill[r]++] = i % n;
    }
  }
  assertEquals(kept.size, K);
  using x = Tensor.from(xs, [rows, n]);
  using kth = kthLargest(x, K);
  for (const windowRows of [undefined, 4]) {
    const got = topkRows(x, kMax, { threshold: kth, windowRows });
    const [values, indices] = await readAll([got.values, got.indices]);
    got.values.dispose();
    got.indices.dispose();
    assertEquals(values, want.values, "values");
    assertEquals(indices, want.indices, "indices");
  }
});

Deno.test("kthLargest / batchTopKMask: bad arguments", () => {
  using x = Tensor.from(f(1, 2, 3));
  assertThrows(() => kthLargest(x, 4), GpuError, "K is 4");
  assertThrows(() => kthLargest(x, 0), GpuError, "K is 0");
  using t = Tensor.from(new Uint32Array(3));
  assertThrows(() => batchTopKMask(x, t), GpuError, "kth.size is 3");
});
