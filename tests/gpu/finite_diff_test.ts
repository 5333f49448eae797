import { centralDifference, centralDifferenceAsync, checkGradient } from "../../gpu/finite_diff.ts";
import { SaeflowError } from "../../util/errors.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng } from "./_ops_helpers.ts";

type Fn = (x: Float64Array) => number;

/** The synchronous and asynchronous central differences run the same table. */
const IMPLS: {
  name: string;
  run(f: Fn, x: Float64Array, eps: number, idx?: number[]): Promise<Float64Array>;
}[] = [
  {
    name: "sync",
    run: (f, x, eps, indices) => Promise.resolve(centralDifference(f, x, eps, { indices })),
  },
  {
    name: "async",
    run: (f, x, eps, indices) =>
      centralDifferenceAsync((y) => Promise.resolve(f(y)), x, eps, { indices }),
  },
];

// Hand-computed: ((x + e)³ − (x − e)³) / 2e = 3x² + e²; a bilinear f is differenced exactly;
// (e^0.01 − e^−0.01) / 0.02 = sinh(0.01) / 0.01 = 1.0000166667.
const CASES: { label: string; f: Fn; x: number[]; eps: number; idx?: number[]; want: number[] }[] =
  [
    {
      label: "sum of cubes",
      f: (x) => x.reduce((s, v) => s + v ** 3, 0),
      x: [1, -2, 0.5],
      eps: 1e-3,
      want: [3.000001, 12.000001, 0.750001],
    },
    { label: "bilinear", f: (x) => x[0] * x[1], x: [3, -4], eps: 0.5, want: [-4, 3] },
    { label: "exp", f: (x) => Math.exp(x[0]), x: [0], eps: 0.01, want: [1.0000166667] },
    {
      label: "selected coordinates",
      f: (x) => x.reduce((s, v) => s + v ** 3, 0),
      x: [1, -2, 0.5],
      eps: 1e-3,
      idx: [1],
      want: [NaN, 12.000001, NaN],
    },
  ];

for (const impl of IMPLS) {
  Deno.test(`finiteDiff[${impl.name}]: hand-computed differences`, async () => {
    for (const c of CASES) {
      const x = Float64Array.from(c.x);
      const got = await impl.run(c.f, x, c.eps, c.idx);
      assertEquals(Array.from(x), c.x, `${c.label}: x restored`);
      c.want.forEach((w, i) => {
        if (Number.isNaN(w)) assert(Number.isNaN(got[i]), `${c.label}[${i}] skipped`);
        else assertAllClose([got[i]], [w], 1e-8, 1e-9, `${c.label}[${i}]`);
      });
    }
  });
}

Deno.test("finiteDiff: random quadratic forms match their analytic gradient", () => {
  const rng = createRng(17);
  const n = 6;
  const A = Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const f = (x: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += x[i] * A[i * n + j] * x[j];
    return s;
  };
  const x = Float64Array.from({ length: n }, () => rng.normal());
  // ∇ xᵀAx = (A + Aᵀ) x; central differences of a quadratic are exact up to rounding.
  const analytic = Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += (A[i * n + j] + A[j * n + i]) * x[j];
    return s;
  });
  const r = checkGradient(analytic, centralDifference(f, x, 1e-3), { atol: 1e-8, rtol: 1e-8 });
  assert(r.ok, `worst ${r.worstIndex}: ${r.analytic} vs ${r.numeric}`);
  assertEquals(r.checked, n);
});

Deno.test("checkGradient: reports the worst mismatch and its index", () => {
  const pass = checkGradient([1, 2, 3], [1, 2, 3.00001], { atol: 1e-4, rtol: 0 });
  assertEquals([pass.ok, pass.worstIndex, pass.checked], [true, 2, 3]);
  const fail = checkGradient([1, 2.1, 3.5], [1, 2, 3], { atol: 0.01, rtol: 0 });
  assertEquals([fail.ok, fail.worstIndex, fail.analytic, fail.numeric], [false, 2, 3.5, 3]);
  assertAllClose([fail.worstError, fail.worstExcess], [0.5, 0.49], 1e-12);
  // rtol scales with |numeric|: 1% of 1000 admits 5, not 50
  assert(checkGradient([1005], [1000], { atol: 0, rtol: 0.01 }).ok, "within rtol");
  assert(!checkGradient([1050], [1000], { atol: 0, rtol: 0.01 }).ok, "outside rtol");
  const nan = checkGradient([1, NaN, 100], [1, 2, 3], { atol: 1 });
  assertEquals([nan.ok, nan.worstIndex], [false, 1]);
  const some = checkGradient([1, 99, 3], [1, 2, 3], { indices: [0, 2] });
  assertEquals([some.ok, some.checked], [true, 2]);
  assertThrows(() => checkGradient([1], [1, 2]), SaeflowError, "analytic has 1 entries");
  assertThrows(
    () => centralDifference((x) => x[0], new Float64Array(2), 1e-3, { indices: [2] }),
    SaeflowError,
    "index 2",
  );
});
