import { getGpu, type Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { softmax, softmaxRef } from "../../gpu/kernels/softmax.ts";
import { assertAllClose, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

interface Args {
  x: Float32Array;
  m: number;
  n: number;
  scale?: number;
  mask?: Float32Array;
  maskShape?: number[];
  log?: boolean;
}

/** One implementation of softmax: the TS reference or a GPU path. */
interface Impl {
  name: string;
  run(a: Args): Promise<Float32Array>;
  /** Random shapes to try (row windows need rows whose offsets can be aligned). */
  shapes?: number[][];
}

const ref: Impl = {
  name: "ref",
  run: (a) => Promise.resolve(softmaxRef(a.x, a.m, a.n, a)),
};

function gpuImpl(
  name: string,
  device: Gpu,
  opts: { inPlace?: boolean; variant?: "workgroup" | "thread"; shapes?: number[][] } = {},
): Impl {
  return {
    name,
    shapes: opts.shapes,
    async run(a) {
      using x = Tensor.from(a.x, [a.m, a.n], { gpu: device });
      using mask = a.mask
        ? Tensor.from(a.mask, a.maskShape ?? [a.mask.length / a.n, a.n], { gpu: device })
        : undefined;
      const o = { scale: a.scale, mask, log: a.log, variant: opts.variant };
      if (opts.inPlace) return await softmax(x, { ...o, out: x }).toArray() as Float32Array;
      using y = softmax(x, o);
      return await y.toArray() as Float32Array;
    },
  };
}

const IMPLS: Impl[] = [
  ref,
  gpuImpl("gpu", gpu),
  gpuImpl("gpu workgroup per row", gpu, { variant: "workgroup" }),
  gpuImpl("gpu thread per row", gpu, { variant: "thread" }),
  gpuImpl("gpu in place", gpu, { inPlace: true }),
  gpuImpl("gpu in place workgroup per row", gpu, { inPlace: true, variant: "workgroup" }),
  gpuImpl("gpu 16 KiB windows", smallBindingGpu(gpu, 16384), {
    shapes: [[7, 5], [200, 64], [100, 96]],
  }),
];

const L3 = Math.log(3);
const f = (a: number[]) => Float32Array.from(a);
// Hand-computed: softmax(0, ln 3) = (1, 3) / 4.
const CASES: { label: string; args: Args; want: number[] }[] = [
  { label: "two logits", args: { x: f([0, L3]), m: 1, n: 2 }, want: [0.25, 0.75] },
  {
    label: "uniform row",
    args: { x: f([1, 1, 1, 1]), m: 1, n: 4 },
    want: [0.25, 0.25, 0.25, 0.25],
  },
  {
    label: "large logits stay finite",
    // softmax(-1000, -999) = (1, e) / (1 + e)
    args: { x: f([1000, 1000, -1000, -999]), m: 2, n: 2 },
    want: [0.5, 0.5, 0.26894142, 0.73105858],
  },
  { label: "scale", args: { x: f([0, 2 * L3]), m: 1, n: 2, scale: 0.5 }, want: [0.25, 0.75] },
  {
    label: "per-row mask [m, n]",
    args: { x: f([0, 0, 0, 0, 0, 0]), m: 2, n: 3, mask: f([0, -1e30, -1e30, 0, 0, -1e30]) },
    want: [1, 0, 0, 0.5, 0.5, 0],
  },
  {
    label: "row-vector mask [n]",
    args: {
      x: f([0, 0, 0, 5, 5, 5]),
      m: 2,
      n: 3,
      mask: f([0, Math.log(2), -1e30]),
      maskShape: [3],
    },
    want: [1 / 3, 2 / 3, 0, 1 / 3, 2 / 3, 0],
  },
  {
    label: "causal [2, 2] mask repeated over 4 rows, -Infinity",
    args: { x: f([3, 7, 0, L3, 3, 7, 0, L3]), m: 4, n: 2, mask: f([0, -Infinity, 0, 0]) },
    want: [1, 0, 0.25, 0.75, 1, 0, 0.25, 0.75],
  },
  {
    label: "log-softmax",
    args: { x: f([0, L3, 2, 2]), m: 2, n: 2, log: true },
    want: [Math.log(0.25), Math.log(0.75), Math.log(0.5), Math.log(0.5)],
  },
];

for (const impl of IMPLS) {
  Deno.test(`softmax[${impl.name}]: hand-computed cases`, async () => {
    for (const c of CASES) {
      assertAllClose(await impl.run(c.args), c.want, 1e-6, 1e-6, c.label);
    }
  });
  if (impl === ref) continue;
  Deno.test(`softmax[${impl.name}]: random rows match the reference`, async () => {
    const rng = createRng(5);
    for (const [m, n] of impl.shapes ?? [[7, 5], [33, 130], [3, 3000], [200, 64]]) {
      const x = randomArray(rng, m * n, -8, 8);
      const mask = randomArray(rng, (m % 2 ? 1 : 2) * n, -4, 0);
      for (
        const args of [
          { x, m, n },
          { x, m, n, scale: 0.125, mask },
          { x, m, n, log: true, mask },
        ]
      ) {
        const want = softmaxRef(args.x, m, n, args);
        assertAllClose(await impl.run(args), want, 1e-6, 1e-5, `[${m}, ${n}]`);
      }
    }
  });
}

Deno.test("softmax: bad masks and dtypes are clear errors", () => {
  using x = Tensor.from(new Float32Array(6), [2, 3]);
  using m4 = Tensor.from(new Float32Array(4), [4]);
  using xi = Tensor.from(new Int32Array(6), [2, 3]);
  assertThrows(() => softmax(x, { mask: m4 }), GpuError, "last dim 3");
  assertThrows(() => softmax(xi), GpuError, "must be f32");
  assertThrows(() => softmax(x, { mask: x, out: x }), GpuError, "must not be the mask");
});
