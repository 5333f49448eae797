import { getGpu, Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import {
  adapterKey,
  chooseMatmulVariant,
  defaultMatmulTuningPath,
  getMatmulVariant,
  matmul,
  MATMUL_VARIANTS,
  type MatmulActivation,
  matmulRef,
  readMatmulTuningFile,
  selectMatmulVariant,
  SMALL_MATMUL_MACS,
  tuneMatmul,
  writeMatmulTuning,
} from "../../gpu/kernels/matmul/mod.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../assert.ts";

const gpu = await getGpu();

/** One product: C = [C₀ +] act(alpha·op(A)·op(B) + bias). */
interface Case {
  name: string;
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  /** Leading dims of `a` (flattened into m, or into k with transA; b gets them too then). */
  batch?: number[];
  bias?: boolean;
  activation?: MatmulActivation;
  accumulate?: boolean;
  alpha?: number;
  /** Pretend bindings hold at most this many bytes (forces row/k/n windows). */
  maxBindingBytes?: number;
  /** Hand-written operands (as stored) and the hand-computed result. */
  a?: number[];
  b?: number[];
  expected?: number[];
}

const I3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const CASES: Case[] = [
  {
    name: "hand 2×3·3×2",
    m: 2,
    k: 3,
    n: 2,
    a: [1, 2, 3, 4, 5, 6],
    b: [7, 8, 9, 10, 11, 12],
    expected: [58, 64, 139, 154],
  },
  {
    name: "hand Aᵀ·Bᵀ with bias, relu, alpha",
    m: 2,
    k: 2,
    n: 2,
    transA: true,
    transB: true,
    // A = [[1, 2], [3, 4]] stored transposed; B = [[1, 0], [0, -1]] stored transposed.
    a: [1, 3, 2, 4],
    b: [1, 0, 0, -1],
    bias: true, // bias = [0.5, -0.25]: see biasFor
    activation: "relu",
    alpha: 2,
    expected: [2 + 0.5, 0, 6 + 0.5, 0],
  },
  { name: "identity", m: 3, k: 3, n: 3, a: [1, -2, 3, 4, 5, -6, 7, 8, 9], b: I3 },
  { name: "1×1×1", m: 1, k: 1, n: 1 },
  { name: "7×13×5", m: 7, k: 13, n: 5 },
  { name: "65×33×17 A·Bᵀ", m: 65, k: 33, n: 17, transB: true },
  { name: "65×36×20 Aᵀ·B", m: 65, k: 36, n: 20, transA: true },
  { name: "33×20×70 Aᵀ·Bᵀ", m: 33, k: 20, n: 70, transA: true, transB: true },
  { name: "130×64×136 A·B", m: 130, k: 64, n: 136 },
  { name: "bias + gelu_tanh", m: 9, k: 24, n: 12, bias: true, activation: "gelu_tanh" },
  { name: "bias + relu, alpha", m: 17, k: 8, n: 33, bias: true, activation: "relu", alpha: -1.5 },
  { name: "accumulate A·Bᵀ", m: 12, k: 16, n: 9, transB: true, accumulate: true, alpha: 0.5 },
  {
    name: "accumulate + gelu",
    m: 5,
    k: 12,
    n: 7,
    accumulate: true,
    bias: true,
    activation: "gelu_tanh",
  },
  { name: "batched [2, 3, 5, 8]·[8, 6]", m: 5, k: 8, n: 6, batch: [2, 3], bias: true },
  { name: "batched Aᵀ·B, k flattened", m: 6, k: 4, n: 5, transA: true, batch: [3] },
  {
    name: "deep k 20×850×24 (split-k passes)",
    m: 20,
    k: 850,
    n: 24,
    bias: true,
    activation: "gelu_tanh",
  },
  {
    name: "windows: A·B + bias + relu",
    m: 70,
    k: 20,
    n: 40,
    bias: true,
    activation: "relu",
    maxBindingBytes: 2048,
  },
  {
    name: "windows: Aᵀ·B accumulate",
    m: 44,
    k: 30,
    n: 36,
    transA: true,
    accumulate: true,
    maxBindingBytes: 2048,
  },
  {
    name: "windows: A·Bᵀ + bias",
    m: 40,
    k: 36,
    n: 50,
    transB: true,
    bias: true,
    maxBindingBytes: 1024,
  },
];

function pseudoRandom(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

interface Data {
  a: Float32Array;
  b: Float32Array;
  bias?: Float32Array;
  c0?: Float32Array;
  /** Flattened dims and stored shapes. */
  m: number;
  k: number;
  aShape: number[];
  bShape: number[];
  outShape: number[];
}

function dataFor(c: Case, seed: number): Data {
  const lead = (c.batch ?? []).reduce((x, y) => x * y, 1);
  const m = c.transA ? c.m : c.m * lead;
  const k = c.transA ? c.k * lead : c.k;
  const batch = c.batch ?? [];
  const aShape = c.transA ? [...batch, c.k, c.m] : [...batch, c.m, c.k];
  const bShape = c.transB ? [c.n, k] : c.transA ? [...batch, c.k, c.n] : [k, c.n];
  return {
    a: c.a ? Float32Array.from(c.a) : pseudoRandom(m * k, seed),
    b: c.b ? Float32Array.from(c.b) : pseudoRandom(k * c.n, seed + 1),
    bias: c.bias
      ? (c.expected ? Float32Array.from([0.5, -0.25]) : pseudoRandom(c.n, seed + 2))
      : undefined,
    c0: c.accumulate ? pseudoRandom(m * c.n, seed + 3) : undefined,
    m,
    k,
    aShape,
    bShape,
    outShape: c.transA ? [c.m, c.n] : [...batch, c.m, c.n],
  };
}

/** Independent float64 oracle: the textbook triple loop with explicit index maps. */
function oracle(c: Case, d: Data): Float64Array {
  const { m, k } = d, n = c.n;
  const A = (i: number, p: number) => c.transA ? d.a[p * m + i] : d.a[i * k + p];
  const B = (p: number, j: number) => c.transB ? d.b[j * k + p] : d.b[p * n + j];
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A(i, p) * B(p, j);
      let v = (c.alpha ?? 1) * s + (d.bias ? d.bias[j] : 0);
      if (c.activation === "relu") v = Math.max(v, 0);
      if (c.activation === "gelu_tanh") {
        v = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      }
      out[i * n + j] = v + (d.c0 ? d.c0[i * n + j] : 0);
    }
  }
  return out;
}

/** Tolerance of the spec: relative 1e-5·k (absolute for values near 0). */
function check(c: Case, d: Data, got: ArrayLike<number>, what: string): void {
  const expected = oracle(c, d);
  const tol = 1e-5 * Math.max(1, d.k);
  assertAllClose(got, expected, tol, tol, `${what}: ${c.name}`);
  if (c.expected) assertAllClose(got, c.expected, 1e-6, 1e-6, `${what}: ${c.name} (by hand)`);
}

Deno.test("matmulRef: every case matches the float64 oracle and the hand-computed values", () => {
  CASES.forEach((c, i) => {
    const d = dataFor(c, 100 + i);
    const got = matmulRef(d.a, d.b, d.m, d.k, c.n, {
      transA: c.transA,
      transB: c.transB,
      bias: d.bias,
      activation: c.activation,
      accumulateInto: d.c0,
      alpha: c.alpha,
    });
    check(c, d, got, "matmulRef");
  });
});

async function runGpu(c: Case, d: Data, variant: string): Promise<Float32Array> {
  using a = Tensor.from(d.a, d.aShape);
  using b = Tensor.from(d.b, d.bShape);
  using bias = d.bias ? Tensor.from(d.bias) : undefined;
  using out = d.c0 ? Tensor.from(d.c0, d.outShape) : undefined;
  using result = matmul(a, b, {
    transA: c.transA,
    transB: c.transB,
    bias,
    activation: c.activation,
    accumulate: c.accumulate,
    alpha: c.alpha,
    out,
    variant,
    maxBindingBytes: c.maxBindingBytes,
  });
  assertEquals(result.shape, d.outShape, `${c.name}: result shape`);
  if (out) assert(result === out, "matmul returns `out`");
  return await result.toArray() as Float32Array;
}

for (const variant of MATMUL_VARIANTS) {
  Deno.test(`matmul ${variant.name}: every case matches the oracle`, async () => {
    for (const [i, c] of CASES.entries()) {
      const d = dataFor(c, 100 + i);
      check(c, d, await runGpu(c, d, variant.name), variant.name);
    }
  });
}

Deno.test("matmul: shape, dtype and option errors name what was wrong", () => {
  using a = Tensor.from(new Float32Array(6), [2, 3]);
  using b = Tensor.from(new Float32Array(20), [4, 5]);
  using b2 = Tensor.from(new Float32Array(6), [3, 2]);
  const e = assertThrows(() => matmul(a, b), GpuError, "a [2, 3] and b [4, 5]");
  assert(e.message.includes("A·B"), e.message);
  assertThrows(() => matmul(a, b, { transB: true }), GpuError, "A·Bᵀ");
  assertThrows(() => matmul(a, b2, { transA: true }), GpuError, "Aᵀ·B");
  using v = Tensor.from(new Float32Array(3), [3]);
  assertThrows(() => matmul(v, b2), GpuError, "at least 2 dims");
  using badBias = Tensor.from(new Float32Array(3), [3]);
  assertThrows(() => matmul(a, b2, { bias: badBias }), GpuError, "bias must be [2]");
  assertThrows(() => matmul(a, b2, { accumulate: true }), GpuError, "needs an `out`");
  using badOut = Tensor.empty([3, 3]);
  assertThrows(() => matmul(a, b2, { out: badOut }), GpuError, "expected [2, 2]");
  using ints = Tensor.from(new Int32Array(6), [2, 3]);
  assertThrows(() => matmul(ints, b2), GpuError, "a must be f32");
  using sq = Tensor.from(new Float32Array(4), [2, 2]);
  assertThrows(() => matmul(sq, sq, { out: sq }), GpuError, "shares its GPU buffer with a");
  using out = Tensor.zeros([2, 2]);
  assertThrows(
    // 272-byte bindings: C and A rows fit one at a time, B's 3 rows (k) need 2 k-windows.
    () => matmul(a, b2, { out, accumulate: true, activation: "relu", maxBindingBytes: 272 }),
    GpuError,
    "cannot be split",
  );
  assertThrows(() => getMatmulVariant("99"), GpuError, "unknown matmul variant");
});

Deno.test("matmul: variant choice (forced, env, small, tuned) and autotune caching", async () => {
  const big = SMALL_MATMUL_MACS * 4;
  assertEquals(chooseMatmulVariant(gpu, "nn", 10).name, "2_regblock_4x4");
  assertEquals(chooseMatmulVariant(gpu, "nn", big, "6").name, "6_ubo_8x16");
  Deno.env.set("SAEFLOW_MATMUL_VARIANT", "3_vec4_8x8");
  try {
    assertEquals(chooseMatmulVariant(gpu, "nn", big).name, "3_vec4_8x8");
  } finally {
    Deno.env.delete("SAEFLOW_MATMUL_VARIANT");
  }
  const options = { candidates: ["2", "3"], shape: [32, 64, 64] as [number, number, number] };
  const picked = await selectMatmulVariant(gpu, "nt", options);
  assert(["2_regblock_4x4", "3_vec4_8x8"].includes(picked.name), picked.name);
  assertEquals(chooseMatmulVariant(gpu, "nt", big).name, picked.name);
  // Cached: a second call returns the same object without measuring (an unknown candidate
  // would throw if it measured).
  const again = await selectMatmulVariant(gpu, "nt", { candidates: ["nope"] });
  assert(again === picked, "cached choice");
});

Deno.test("matmul: tuning file: measured choices are written, read back by a new device, and used", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/matmul_tuning.json`;
  const shape: [number, number, number] = [32, 64, 64];
  const first = await Gpu.create();
  const second = await Gpu.create();
  const third = await Gpu.create();
  try {
    const measured = await tuneMatmul(first, ["nt"], {
      candidates: ["2", "3"],
      shape,
      cache: path,
    });
    assertEquals(measured.map((r) => [r.layout, r.fromCache]), [["nt", false]]);
    const file = readMatmulTuningFile(path)!;
    const entry = file.adapters[adapterKey(first)];
    assertEquals(entry.shape, shape);
    assertEquals(entry.variants, { nt: measured[0].variant });
    assert(Object.keys(entry.gflops.nt!).length === 2, "both candidates timed");
    // A fresh device takes the stored choice without measuring (an unknown candidate would
    // throw if it measured).
    const reused = await tuneMatmul(second, ["nt"], { candidates: ["nope"], shape, cache: path });
    assertEquals(reused[0].variant, measured[0].variant);
    assert(reused[0].fromCache && reused[0].measuredAt === entry.date, "from the file");
    assertEquals(chooseMatmulVariant(second, "nt", SMALL_MATMUL_MACS * 4).name, entry.variants.nt);
    // Another shape is measured again and replaces the entry's layouts.
    const other = await tuneMatmul(second, ["nn"], {
      candidates: ["3"],
      shape: [16, 64, 64],
      cache: path,
    });
    assertEquals(other[0].fromCache, false);
    assertEquals(readMatmulTuningFile(path)!.adapters[adapterKey(second)].variants, {
      nn: "3_vec4_8x8",
    });
    // Without tuning in-process, matmul reads the default tuning file once per device.
    await writeMatmulTuning(third, {
      date: "2026-01-01T00:00:00.000Z",
      shape,
      variants: { tn: "4_tiled_64x64" },
      gflops: {},
    }, `${dir}/cache/matmul_tuning.json`);
    Deno.env.set("SAEFLOW_CACHE_DIR", `${dir}/cache`);
    try {
      assertEquals(defaultMatmulTuningPath(), `${dir}/cache/matmul_tuning.json`);
      assertEquals(chooseMatmulVariant(third, "tn", SMALL_MATMUL_MACS * 4).name, "4_tiled_64x64");
    } finally {
      Deno.env.delete("SAEFLOW_CACHE_DIR");
    }
  } finally {
    for (const g of [first, second, third]) g.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("matmul: a malformed tuning file is ignored with a message naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases = [
      "{not json",
      '{"version": 2, "adapters": {}}',
      '{"version": 1, "adapters": {"x": {"date": "d", "shape": [1, 2], "variants": {}}}}',
    ];
    const messages: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => messages.push(args.join(" "));
    try {
      for (const [i, text] of cases.entries()) {
        await Deno.writeTextFile(`${dir}/t${i}.json`, text);
        assertEquals(readMatmulTuningFile(`${dir}/t${i}.json`), undefined);
        assertEquals(readMatmulTuningFile(`${dir}/t${i}.json`), undefined); // reported once
      }
      assertEquals(readMatmulTuningFile(`${dir}/missing.json`), undefined);
    } finally {
      console.error = original;
    }
    assertEquals(messages.length, 3);
    for (const [i, problem] of ["not JSON", "no version 1 header", 'entry "x" lacks'].entries()) {
      assert(
        messages[i].includes(`${dir}/t${i}.json`) && messages[i].includes(problem),
        messages[i],
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
