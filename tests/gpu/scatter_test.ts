/**
 * Sparse decode / backward kernels (`gatherRowsWeighted`, `sparseDot`, `CountingSort`,
 * `scatterAddRows`, `scatterAddValues`), GPU and plain-TS reference, through one case table.
 * Every case is checked against a naive float64 oracle in this file (bucket lists for the sort).
 * Tolerance for float results: |Δ| ≤ 1e-4 + 1e-4·|expected| (f32 sums of up to 72000 terms of
 * size ≤ 200, whose rounding stays far below it); the sort is compared exactly.
 */

import { getGpu, GpuError } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import {
  CountingSort,
  countingSortRef,
  exclusiveScanU32,
} from "../../gpu/kernels/counting_sort.ts";
import {
  gatherRowsWeighted,
  gatherRowsWeightedRef,
  scatterAddRows,
  scatterAddRowsRef,
  scatterAddValues,
  scatterAddValuesRef,
  sparseDot,
  sparseDotRef,
} from "../../gpu/kernels/scatter.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { mulberry32 as rng } from "../../util/rng.ts";

await getGpu();
const ATOL = 1e-4, RTOL = 1e-4;

interface Case {
  name: string;
  rows: number;
  k: number;
  d: number;
  dSae: number;
  idx: Int32Array;
  vals: Float32Array;
  W: Float32Array;
  /** [rows, d]: the gradient for sparseDot and the rows scattered by scatterAddRows. */
  X: Float32Array;
  bias?: Float32Array;
  /** Hand-computed results (checked in addition to the oracle). */
  hand?: {
    gather: number[];
    dot: number[];
    offsets: number[];
    order: number[];
    rows: number[];
    values: number[];
  };
  gpu?: { windowRows?: number; blocks?: number; distinctPerRow?: boolean };
}

function randomCase(
  name: string,
  rows: number,
  k: number,
  d: number,
  dSae: number,
  seed: number,
  opts: { distinct?: boolean; bias?: boolean; gpu?: Case["gpu"]; invalid?: boolean } = {},
): Case {
  const r = rng(seed);
  const idx = new Int32Array(rows * k);
  for (let i = 0; i < rows; i++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j = Math.floor(r() * dSae);
      while (opts.distinct && used.has(j)) j = (j + 1) % dSae;
      used.add(j);
      idx[i * k + s] = opts.invalid && r() < 0.1 ? (r() < 0.5 ? -1 : dSae + 3) : j;
    }
  }
  const f = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  return {
    name,
    rows,
    k,
    d,
    dSae,
    idx,
    vals: f(rows * k),
    W: f(dSae * d),
    X: f(rows * d),
    bias: opts.bias ? f(d) : undefined,
    gpu: { distinctPerRow: opts.distinct, ...opts.gpu },
  };
}

const CASES: Case[] = [
  {
    name: "hand: 3 latents, a skipped slot",
    rows: 2,
    k: 2,
    d: 2,
    dSae: 3,
    idx: new Int32Array([2, 0, 1, -1]),
    vals: new Float32Array([1, 2, 3, 5]),
    W: new Float32Array([1, 2, 10, 20, 100, 200]),
    X: new Float32Array([1, 2, 3, 4]),
    bias: new Float32Array([0.5, -0.5]),
    hand: {
      gather: [102.5, 203.5, 30.5, 59.5],
      dot: [500, 5, 110, 0],
      offsets: [0, 1, 2, 3],
      order: [1, 2, 0],
      rows: [2, 4, 9, 12, 1, 2],
      values: [2, 3, 1],
    },
  },
  {
    name: "hand: duplicates in a row, unused latents, out-of-range ids",
    rows: 2,
    k: 3,
    d: 1,
    dSae: 5,
    idx: new Int32Array([1, 1, 3, 1, 7, 3]),
    vals: new Float32Array([1, 2, 3, 4, 5, 6]),
    W: new Float32Array([10, 20, 30, 40, 50]),
    X: new Float32Array([1, -1]),
    hand: {
      gather: [1 * 20 + 2 * 20 + 3 * 40, 4 * 20 + 6 * 40],
      dot: [20, 20, 40, -20, 0, -40],
      offsets: [0, 0, 3, 3, 5, 5],
      order: [0, 1, 3, 2, 5],
      rows: [0, 1 + 2 - 4, 0, 3 - 6, 0],
      values: [0, 7, 0, 9, 0],
    },
  },
  {
    name: "no valid entries",
    rows: 3,
    k: 2,
    d: 4,
    dSae: 6,
    idx: new Int32Array(6).fill(-1),
    vals: new Float32Array(6).fill(1),
    W: new Float32Array(24).fill(1),
    X: new Float32Array(12).fill(1),
    bias: new Float32Array([1, 2, 3, 4]),
  },
  randomCase("random top-k shape (d = 24: vec4, 2 units per invocation)", 64, 8, 24, 100, 1, {
    distinct: true,
    bias: true,
  }),
  randomCase("odd width (scalar path), invalid ids", 33, 5, 7, 50, 2, { invalid: true }),
  randomCase("multi-chunk scan (dSae 3000)", 40, 16, 8, 3000, 3, { distinct: true }),
  randomCase("windows over rows and latents", 20, 16, 16, 40, 4, {
    bias: true,
    gpu: { windowRows: 4 },
  }),
  randomCase("3 row blocks", 50, 4, 12, 20, 5, { gpu: { blocks: 3 } }),
  randomCase("one block per row", 9, 6, 4, 10, 6, { gpu: { blocks: 9 } }),
  {
    ...randomCase("a latent with 72000 entries (llvmpipe rounds)", 80000, 1, 4, 3, 7),
    idx: new Int32Array(80000).map((_, i) => (i % 10 === 0 ? 2 : 0)),
  },
];

/** Naive float64 oracle of every op. */
function oracle(c: Case) {
  const ok = (j: number) => j >= 0 && j < c.dSae;
  const gather = new Float64Array(c.rows * c.d);
  const dot = new Float64Array(c.rows * c.k);
  const rows = new Float64Array(c.dSae * c.d);
  const values = new Float64Array(c.dSae);
  const buckets: number[][] = Array.from({ length: c.dSae }, () => []);
  for (let r = 0; r < c.rows; r++) {
    for (let t = 0; t < c.d; t++) gather[r * c.d + t] = c.bias ? c.bias[t] : 0;
    for (let s = 0; s < c.k; s++) {
      const p = r * c.k + s, j = c.idx[p];
      if (!ok(j)) continue;
      buckets[j].push(p);
      values[j] += c.vals[p];
      for (let t = 0; t < c.d; t++) {
        gather[r * c.d + t] += c.vals[p] * c.W[j * c.d + t];
        dot[p] += c.X[r * c.d + t] * c.W[j * c.d + t];
        rows[j * c.d + t] += c.vals[p] * c.X[r * c.d + t];
      }
    }
  }
  const offsets = [0];
  for (const b of buckets) offsets.push(offsets[offsets.length - 1] + b.length);
  return { gather, dot, rows, values, offsets, order: buckets.flat() };
}

function checkHand(c: Case, got: Record<string, ArrayLike<number>>): void {
  if (!c.hand) return;
  for (const [key, want] of Object.entries(c.hand)) {
    assertAllClose(got[key], want, ATOL, RTOL, `hand ${key}`);
  }
}

for (const c of CASES) {
  const want = oracle(c);
  Deno.test(`scatter refs: ${c.name}`, () => {
    const gather = gatherRowsWeightedRef(c.W, c.dSae, c.d, c.idx, c.vals, c.rows, c.k, c.bias);
    const dot = sparseDotRef(c.X, c.W, c.idx, c.rows, c.k, c.d, c.dSae);
    const sort = countingSortRef(c.idx, c.rows, c.k, c.dSae);
    const rows = scatterAddRowsRef(c.idx, c.vals, c.X, c.rows, c.k, c.d, c.dSae);
    const values = scatterAddValuesRef(c.idx, c.vals, c.rows, c.k, c.dSae);
    assertAllClose(gather, want.gather, ATOL, RTOL, "gather");
    assertAllClose(dot, want.dot, ATOL, RTOL, "dot");
    assertEquals(Array.from(sort.offsets), want.offsets, "offsets");
    assertEquals(Array.from(sort.order), want.order, "order");
    assertAllClose(rows, want.rows, ATOL, RTOL, "rows");
    assertAllClose(values, want.values, ATOL, RTOL, "values");
    checkHand(c, { gather, dot, rows, values, offsets: sort.offsets, order: sort.order });
  });
  Deno.test(`scatter GPU: ${c.name}`, async () => {
    using W = Tensor.from(c.W, [c.dSae, c.d]);
    using X = Tensor.from(c.X, [c.rows, c.d]);
    using idx = Tensor.from(c.idx, [c.rows, c.k]);
    using vals = Tensor.from(c.vals, [c.rows, c.k]);
    using bias = c.bias ? Tensor.from(c.bias) : null;
    const o = { windowRows: c.gpu?.windowRows };
    using g = gatherRowsWeighted(W, idx, vals, { bias: bias ?? undefined, ...o });
    using dt = sparseDot(X, W, idx, o);
    using sort = new CountingSort(idx, c.dSae, c.gpu);
    using rows = scatterAddRows(sort, vals, X, o);
    using values = scatterAddValues(sort, vals);
    const [gr, dr, off, ord, cnt, rr, vr] = await readAll([
      g,
      dt,
      sort.offsets,
      sort.order,
      sort.counts,
      rows,
      values,
    ]);
    assertAllClose(gr, want.gather, ATOL, RTOL, "gather");
    assertAllClose(dr, want.dot, ATOL, RTOL, "dot");
    assertEquals(Array.from(off), want.offsets, "offsets");
    assertEquals(Array.from(ord.slice(0, want.order.length)), want.order, "order");
    assertEquals(
      Array.from(cnt),
      want.offsets.slice(1).map((v, j) => v - want.offsets[j]),
      "counts",
    );
    assertAllClose(rr, want.rows, ATOL, RTOL, "rows");
    assertAllClose(vr, want.values, ATOL, RTOL, "values");
    const order = ord.slice(0, want.order.length);
    checkHand(c, { gather: gr, dot: dr, rows: rr, values: vr, offsets: off, order });
  });
}

Deno.test("scatter GPU: accumulate adds into out; results are bit-identical run to run", async () => {
  const c = randomCase("acc", 30, 6, 8, 25, 9, { bias: true });
  using W = Tensor.from(c.W, [c.dSae, c.d]);
  using X = Tensor.from(c.X, [c.rows, c.d]);
  using idx = Tensor.from(c.idx, [c.rows, c.k]);
  using vals = Tensor.from(c.vals, [c.rows, c.k]);
  using sort = new CountingSort(idx, c.dSae);
  using base = Tensor.from(new Float32Array(c.dSae * c.d).fill(1), [c.dSae, c.d]);
  scatterAddRows(sort, vals, X, { out: base, accumulate: true });
  using vbase = Tensor.from(new Float32Array(c.dSae).fill(-2));
  scatterAddValues(sort, vals, { out: vbase, accumulate: true });
  using gbase = Tensor.from(new Float32Array(c.rows * c.d).fill(3), [c.rows, c.d]);
  gatherRowsWeighted(W, idx, vals, { out: gbase, accumulate: true });
  using r1 = scatterAddRows(sort, vals, X);
  using r2 = scatterAddRows(sort, vals, X);
  const [b, vb, gb, a1, a2] = await readAll([base, vbase, gbase, r1, r2]);
  const want = oracle(c);
  assertAllClose(b, want.rows.map((v) => v + 1), ATOL, RTOL, "rows + 1");
  assertAllClose(vb, want.values.map((v) => v - 2), ATOL, RTOL, "values - 2");
  assertAllClose(
    gb,
    oracle({ ...c, bias: undefined }).gather.map((v) => v + 3),
    ATOL,
    RTOL,
    "gather + 3",
  );
  assertEquals(a1, a2, "deterministic");
});

Deno.test("scatter GPU: shape and dtype errors name the argument", () => {
  using W = Tensor.from(new Float32Array(8), [4, 2]);
  using idx = Tensor.from(new Int32Array(6), [3, 2]);
  using vals = Tensor.from(new Float32Array(4), [2, 2]);
  assertThrows(() => gatherRowsWeighted(W, idx, vals), GpuError, "vals has shape [2, 2]");
  using fidx = Tensor.from(new Float32Array(6), [3, 2]);
  assertThrows(() => new CountingSort(fidx, 4), GpuError, "idx must be i32");
  using G = Tensor.from(new Float32Array(9), [3, 3]);
  assertThrows(() => sparseDot(G, W, idx), GpuError, "G has shape [3, 3]");
  using sort = new CountingSort(idx, 4);
  using X = Tensor.from(new Float32Array(4), [2, 2]);
  using coeff = Tensor.from(new Float32Array(6), [3, 2]);
  assertThrows(() => scatterAddRows(sort, coeff, X), GpuError, "X has shape [2, 2]");
  assert(sort.maxSegment === 6, "maxSegment without distinctPerRow is rows·k");
});

Deno.test("exclusiveScanU32: three levels (1.1 M entries) match a host prefix sum", async () => {
  const n = 1_100_000;
  const r = rng(17);
  const host = Uint32Array.from({ length: n }, () => Math.floor(r() * 4));
  using input = Tensor.from(host);
  using out = Tensor.empty([n + 1], "u32");
  exclusiveScanU32(input, n, out);
  const got = await out.toArray();
  let run = 0, bad = -1;
  for (let i = 0; i <= n; i++) {
    if (got[i] !== run && bad < 0) bad = i;
    if (i < n) run += host[i];
  }
  assertEquals(bad, -1, "first mismatch");
  assertEquals(got[n], run, "total");
});
