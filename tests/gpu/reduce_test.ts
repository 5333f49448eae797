import { getGpu, type Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { reduceAll, reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import {
  REDUCE_OPS,
  reduceAllRef,
  reduceColsRef,
  type ReduceOp,
  reduceRowsRef,
} from "../../gpu/kernels/reduce_ref.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

/** Reductions of one uploaded matrix, by the TS reference or a GPU path. */
interface Loaded {
  rows(op: ReduceOp): Promise<Float32Array>;
  cols(op: ReduceOp): Promise<Float32Array>;
  all(op: ReduceOp): Promise<Float32Array>;
  dispose(): void;
}

/** One implementation; `maxRows` skips structured cases taller than that (slow variants). */
interface Impl {
  name: string;
  load(x: Float32Array, m: number, n: number): Loaded;
  maxRows?: number;
}

const ref: Impl = {
  name: "ref",
  load: (x, m, n) => ({
    rows: (op) => Promise.resolve(reduceRowsRef(op, x, m, n)),
    cols: (op) => Promise.resolve(reduceColsRef(op, x, m, n)),
    all: (op) => Promise.resolve(reduceAllRef(op, x)),
    dispose: () => {},
  }),
};

function gpuImpl(
  name: string,
  device: Gpu,
  variant?: "workgroup" | "thread",
  maxRows = Infinity,
): Impl {
  return {
    name,
    maxRows,
    load(x, m, n) {
      const t = Tensor.from(x, [m, n], { gpu: device });
      const read = async (y: Tensor) => {
        using r = y;
        return await r.toArray() as Float32Array;
      };
      return {
        rows: (op) => read(reduceRows(op, t, { variant })),
        cols: (op) => read(reduceCols(op, t)),
        all: (op) => read(reduceAll(op, t.reshape([m * n]))),
        dispose: () => t.dispose(),
      };
    },
  };
}

// llvmpipe runs ~20k workgroups per second with barriers: the workgroup-per-row kernel gets
// shapes that keep the suite fast, plus one dedicated > 65535-row test below.
const IMPLS: Impl[] = [
  ref,
  gpuImpl("gpu", gpu),
  gpuImpl("gpu workgroup per row", gpu, "workgroup", 1000),
  gpuImpl("gpu thread per row", gpu, "thread"),
  gpuImpl("gpu 1 MiB windows", smallBindingGpu(gpu, 1 << 20)),
];

/** A structured case: x[i, j] = value(i, j) and closed-form expectations per op. */
interface Case {
  label: string;
  m: number;
  n: number;
  value: (i: number, j: number) => number;
  rows?: Record<ReduceOp, number[] | ((i: number) => number)>;
  cols?: Record<ReduceOp, number[] | ((j: number) => number)>;
  all?: Record<ReduceOp, number>;
}

const SMALL = [[1, 2, 3, 4], [-1, -2, -3, -4], [3, 0, 4, 0]];
const CASES: Case[] = [
  {
    label: "3×4 by hand",
    m: 3,
    n: 4,
    value: (i, j) => SMALL[i][j],
    rows: {
      sum: [10, -10, 7],
      mean: [2.5, -2.5, 1.75],
      sumsq: [30, 30, 25],
      l2: [5.4772256, 5.4772256, 5],
      max: [4, -1, 4],
    },
    cols: {
      sum: [3, 0, 4, 0],
      mean: [1, 0, 4 / 3, 0],
      sumsq: [11, 8, 34, 32],
      l2: [3.3166248, 2.8284271, 5.8309519, 5.6568542],
      max: [3, 2, 4, 4],
    },
    all: { sum: 7, mean: 7 / 12, sumsq: 85, l2: 9.2195445, max: 4 },
  },
  {
    // rows 131072 wide: per 8 columns the values -3.5..3.5 sum to 0 and their squares to 42
    label: "4×131072 wide rows",
    m: 4,
    n: 131072,
    value: (i, j) => (j % 8) - 3.5 + (j === 5 ? i : 0),
    rows: {
      sum: (i) => i,
      mean: (i) => i / 131072,
      sumsq: (i) => 42 * 16384 + (1.5 + i) ** 2 - 2.25,
      l2: (i) => Math.sqrt(42 * 16384 + (1.5 + i) ** 2 - 2.25),
      max: (i) => Math.max(3.5, 1.5 + i),
    },
  },
  {
    // 70000 rows (> 65535 workgroups): row i holds (i mod 5) − (j mod 2)
    label: "70000×64 tall",
    m: 70000,
    n: 64,
    value: (i, j) => (i % 5) - (j % 2),
    rows: {
      sum: (i) => 64 * (i % 5) - 32,
      mean: (i) => (i % 5) - 0.5,
      sumsq: (i) => 32 * (i % 5) ** 2 + 32 * ((i % 5) - 1) ** 2,
      l2: (i) => Math.sqrt(32 * (i % 5) ** 2 + 32 * ((i % 5) - 1) ** 2),
      max: (i) => i % 5,
    },
  },
  {
    // every 4th row is (1, 2, …, 5), the others 0: column j sums (j + 1) · 17500
    label: "70000×5 columns",
    m: 70000,
    n: 5,
    value: (i, j) => (i % 4 === 0 ? j + 1 : 0),
    cols: {
      sum: (j) => (j + 1) * 17500,
      mean: (j) => (j + 1) / 4,
      sumsq: (j) => (j + 1) ** 2 * 17500,
      l2: (j) => (j + 1) * Math.sqrt(17500),
      max: (j) => j + 1,
    },
    // sum 15 · 17500; squares 55 · 17500; mean 262500 / 350000
    all: { sum: 262500, mean: 0.75, sumsq: 962500, l2: Math.sqrt(962500), max: 5 },
  },
  {
    // 1e6 elements (i mod 10) − 4.5: sum 0, squares 82.5 per 10
    label: "1000000 elements",
    m: 1,
    n: 1_000_000,
    value: (_i, j) => (j % 10) - 4.5,
    all: { sum: 0, mean: 0, sumsq: 8_250_000, l2: Math.sqrt(8_250_000), max: 4.5 },
  },
];

function build(c: Case): Float32Array {
  const x = new Float32Array(c.m * c.n);
  for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) x[i * c.n + j] = c.value(i, j);
  return x;
}

function expand(e: number[] | ((i: number) => number), len: number): number[] {
  return Array.isArray(e) ? e : Array.from({ length: len }, (_, i) => e(i));
}

const TOL = { atol: 1e-5, rtol: 1e-6 };

for (const impl of IMPLS) {
  Deno.test(`reduce[${impl.name}]: structured cases with closed-form results`, async () => {
    for (const c of CASES) {
      if (c.m > (impl.maxRows ?? Infinity)) continue;
      const loaded = impl.load(build(c), c.m, c.n);
      try {
        for (const op of REDUCE_OPS) {
          const label = `${c.label} ${op}`;
          if (c.rows) {
            const got = await loaded.rows(op);
            assertAllClose(got, expand(c.rows[op], c.m), TOL.atol, TOL.rtol, `rows ${label}`);
          }
          if (c.cols) {
            const got = await loaded.cols(op);
            assertAllClose(got, expand(c.cols[op], c.n), TOL.atol, TOL.rtol, `cols ${label}`);
          }
          if (c.all) {
            assertAllClose(await loaded.all(op), [c.all[op]], 1e-3, 1e-6, `all ${label}`);
          }
        }
      } finally {
        loaded.dispose();
      }
    }
  });

  if (impl === ref) continue;
  Deno.test(`reduce[${impl.name}]: random matrices match the reference`, async () => {
    const rng = createRng(11);
    for (const [m, n] of [[5, 7], [33, 130], [1500, 17], [300, 1000], [1, 5000]]) {
      const x = randomArray(rng, m * n, -2, 2);
      const loaded = impl.load(x, m, n);
      for (const op of REDUCE_OPS) {
        const label = `${op} [${m}, ${n}]`;
        assertAllClose(await loaded.rows(op), reduceRowsRef(op, x, m, n), 1e-4, 1e-5, label);
        assertAllClose(await loaded.cols(op), reduceColsRef(op, x, m, n), 1e-4, 1e-5, label);
        assertAllClose(await loaded.all(op), reduceAllRef(op, x), 1e-3, 1e-5, label);
      }
      loaded.dispose();
    }
  });
}

Deno.test("reduce: workgroup per row over more than 65535 rows (folded grid)", async () => {
  const m = 65600, n = 4;
  const x = new Float32Array(m * n);
  for (let i = 0; i < m; i++) x[i * n + (i % n)] = i; // row i sums to i
  using t = Tensor.from(x, [m, n]);
  using y = reduceRows("sum", t, { variant: "workgroup" });
  assertEquals(await y.toArray(), Float32Array.from({ length: m }, (_, i) => i));
});

Deno.test("reduce: repeatable bit for bit; into an index of a larger tensor", async () => {
  const x = randomArray(createRng(3), 300_000);
  using t = Tensor.from(x);
  using slots = Tensor.zeros([4]);
  reduceAll("sumsq", t, { out: slots, outIndex: 2 });
  using again = reduceAll("sumsq", t);
  const [s, a] = [await slots.toArray(), await again.toArray()];
  assertEquals(s[0], 0);
  assertEquals(s[2], a[0]);
  assertAllClose([s[2]], reduceAllRef("sumsq", x), 0, 1e-5);
});

Deno.test("reduce: empty inputs and bad arguments", async () => {
  if (gpu.info.isFallbackAdapter) {
    // llvmpipe's loop budget: rows too wide for one invocation are refused, not truncated
    using wide = Tensor.from(new Float32Array(70001), [1, 70001]);
    assertThrows(() => reduceRows("sum", wide, { variant: "thread" }), GpuError, "too wide");
  }
  using e = Tensor.from(new Float32Array(0), [0]);
  using s = reduceAll("sum", e);
  assertEquals(await s.toArray(), new Float32Array([0]));
  using x = Tensor.from([1, 2, 3, 4], [2, 2]);
  using i = Tensor.from(new Int32Array(4), [2, 2]);
  assertThrows(() => reduceRows("sum", i), GpuError, "must be f32");
  assertThrows(() => reduceRows("median" as ReduceOp, x), GpuError, "unknown reduction");
  assertThrows(() => reduceAll("sum", x, { out: x }), GpuError, "must not share");
  using o = Tensor.empty([3]);
  assertThrows(() => reduceAll("sum", x, { out: o, outIndex: 3 }), GpuError, "outIndex 3");
  assertThrows(() => reduceCols("sum", x, { out: o }), GpuError, "expected [2]");
});
