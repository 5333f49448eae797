import { getGpu, type Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { layerNorm, layerNormRef, type LayerNormRefOptions } from "../../gpu/kernels/layernorm.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

interface Args extends LayerNormRefOptions {
  x: Float32Array;
  m: number;
  n: number;
}

/** One implementation of layer norm: the TS reference or a GPU path. */
interface Impl {
  name: string;
  run(a: Args): Promise<{ y: Float32Array; scale: Float32Array }>;
  shapes?: number[][];
}

const ref: Impl = { name: "ref", run: (a) => Promise.resolve(layerNormRef(a.x, a.m, a.n, a)) };

function gpuImpl(
  name: string,
  device: Gpu,
  opts: { inPlace?: boolean; variant?: "workgroup" | "thread"; shapes?: number[][] } = {},
): Impl {
  return {
    name,
    shapes: opts.shapes,
    async run(a) {
      const up = (d: Float32Array, shape: number[]) => Tensor.from(d, shape, { gpu: device });
      using x = up(a.x, [a.m, a.n]);
      using w = a.weight ? up(a.weight, [a.n]) : undefined;
      using b = a.bias ? up(a.bias, [a.n]) : undefined;
      const r = layerNorm(x, {
        weight: w,
        bias: b,
        eps: a.eps,
        rms: a.rms,
        scale: true,
        out: opts.inPlace ? x : undefined,
        variant: opts.variant,
      });
      const y = await r.y.toArray() as Float32Array;
      const scale = await r.scale!.toArray() as Float32Array;
      assertEquals(r.scale!.shape, [a.m, 1]);
      if (!opts.inPlace) r.y.dispose();
      r.scale!.dispose();
      return { y, scale };
    },
  };
}

const IMPLS: Impl[] = [
  ref,
  gpuImpl("gpu", gpu),
  gpuImpl("gpu workgroup per row", gpu, { variant: "workgroup" }),
  gpuImpl("gpu thread per row", gpu, { variant: "thread" }),
  gpuImpl("gpu in place", gpu, { inPlace: true }),
  gpuImpl("gpu in place workgroup per row", gpu, {
    inPlace: true,
    variant: "workgroup",
    shapes: [[33, 768]],
  }),
  gpuImpl("gpu 16 KiB windows", smallBindingGpu(gpu, 16384), { shapes: [[100, 64], [70, 96]] }),
];

const f = (a: number[]) => Float32Array.from(a);
// Hand-computed from y = (x − mean) / √(var + eps) · w + b, var biased.
const CASES: { label: string; args: Args; y: number[]; scale: number[] }[] = [
  { label: "two values", args: { x: f([1, 3]), m: 1, n: 2, eps: 0 }, y: [-1, 1], scale: [1] },
  {
    label: "1..4: var 1.25",
    args: { x: f([1, 2, 3, 4]), m: 1, n: 4, eps: 0 },
    y: [-1.3416408, -0.4472136, 0.4472136, 1.3416408],
    scale: [1.118034],
  },
  {
    label: "weight and bias: var 3",
    args: {
      x: f([2, 2, 2, 6]),
      m: 1,
      n: 4,
      eps: 0,
      weight: f([1, 2, 3, 4]),
      bias: f([0.5, 0.5, 0.5, 0.5]),
    },
    y: [-0.0773503, -0.6547005, -1.2320508, 7.4282032],
    scale: [1.7320508],
  },
  {
    label: "eps: √(1 + 0.25); constant row → 0 with scale √eps",
    args: { x: f([1, -1, 10, 10]), m: 2, n: 2, eps: 0.25 },
    y: [0.8944272, -0.8944272, 0, 0],
    scale: [1.118034, 0.5],
  },
  {
    label: "default eps 1e-5",
    args: { x: f([0, 0, 0, 0]), m: 1, n: 4 },
    y: [0, 0, 0, 0],
    scale: [0.0031622777],
  },
  {
    label: "rms: √12.5",
    args: { x: f([3, 4, 3, 4]), m: 2, n: 2, eps: 0, rms: true, weight: f([1, 0.5]) },
    y: [0.8485281, 0.5656854, 0.8485281, 0.5656854],
    scale: [3.5355339, 3.5355339],
  },
];

for (const impl of IMPLS) {
  Deno.test(`layerNorm[${impl.name}]: hand-computed cases`, async () => {
    for (const c of CASES) {
      const got = await impl.run(c.args);
      assertAllClose(got.y, c.y, 1e-6, 1e-6, `${c.label} y`);
      assertAllClose(got.scale, c.scale, 1e-7, 1e-6, `${c.label} scale`);
    }
  });
  if (impl === ref) continue;
  Deno.test(`layerNorm[${impl.name}]: random rows match the reference`, async () => {
    const rng = createRng(9);
    for (const [m, n] of impl.shapes ?? [[7, 5], [33, 768], [2, 3000]]) {
      const x = randomArray(rng, m * n, -3, 5);
      const weight = randomArray(rng, n, 0.5, 1.5), bias = randomArray(rng, n);
      for (const o of [{}, { weight, bias }, { rms: true, weight }, { weight, eps: 0.1 }]) {
        const args = { x, m, n, ...o };
        const want = layerNormRef(x, m, n, args);
        const got = await impl.run(args);
        assertAllClose(got.y, want.y, 1e-5, 1e-5, `y [${m}, ${n}]`);
        assertAllClose(got.scale, want.scale, 1e-6, 1e-5, `scale [${m}, ${n}]`);
      }
    }
  });
}

Deno.test("layerNorm: scale into a given tensor; no scale unless asked", async () => {
  using x = Tensor.from([1, 3, 0, 4], [2, 2]);
  using s = Tensor.zeros([2, 1]);
  const r = layerNorm(x, { eps: 0, scale: s });
  assertEquals(r.scale, s);
  assertAllClose(await s.toArray(), [1, 2], 1e-7);
  r.y.dispose();
  const r2 = layerNorm(x);
  assertEquals(r2.scale, null);
  r2.y.dispose();
});

Deno.test("layerNorm: bad weights and aliasing are clear errors", () => {
  using x = Tensor.from(new Float32Array(6), [2, 3]);
  using w = Tensor.from(new Float32Array(4));
  using s = Tensor.zeros([2]);
  assertThrows(() => layerNorm(x, { weight: w }), GpuError, "weight has 4 elements, expected 3");
  assertThrows(() => layerNorm(x, { scale: s }), GpuError, "expected [2, 1]");
  assertThrows(() => layerNorm(x, { scale: x.reshape([6, 1]) }), GpuError, "expected [2, 1]");
});
