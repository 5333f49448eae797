import { getGpu, GpuError } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import { clipGradNorm, clipGradNormRef, GradNormClipper } from "../../gpu/kernels/clip.ts";
import { scale } from "../../gpu/kernels/elementwise.ts";
import { adamRef, adamStep, createAdamScalars, writeAdamScalars } from "../../gpu/kernels/adam.ts";
import { assert, assertAllClose, assertThrows } from "../assert.ts";
import { createRng, randomArray } from "./_ops_helpers.ts";

const gpu = await getGpu();

type Out = { totalNorm: number; factor: number; clipped: Float32Array[] };

/** One implementation of clip_grad_norm_: the TS reference or a GPU path. */
interface Impl {
  name: string;
  run(grads: Float32Array[], maxNorm: number): Promise<Out>;
}

const ref: Impl = {
  name: "ref",
  run(grads, maxNorm) {
    const r = clipGradNormRef(grads, maxNorm);
    const clipped = grads.map((g) => g.map((x) => x * r.factor));
    return Promise.resolve({ totalNorm: r.totalNorm, factor: r.factor, clipped });
  },
};

const gpuFunction: Impl = {
  name: "gpu clipGradNorm",
  async run(grads, maxNorm) {
    const ts = grads.map((g) => Tensor.from(g));
    const r = clipGradNorm(ts, { maxNorm });
    const [total, factor, ...clipped] = await readAll([r.totalNorm, r.factor, ...ts]);
    for (const t of [r.totalNorm, r.factor, ...ts]) t.dispose();
    return { totalNorm: total[0], factor: factor[0], clipped: clipped as Float32Array[] };
  },
};

const gpuClipper: Impl = {
  name: "gpu GradNormClipper, twice",
  async run(grads, maxNorm) {
    const ts = grads.map((g) => Tensor.from(g));
    const clipper = new GradNormClipper(gpu, ts.length, { maxNorm });
    const doubled = ts.map((t) => t.clone());
    for (const t of doubled) scale(t, 2, t);
    clipper.record(doubled); // a first step with other values
    clipper.record(ts); // reuses the slots
    for (const t of doubled) t.dispose();
    const [total, factor] = await readAll([clipper.totalNorm, clipper.factor]);
    const clipped = grads.map((g) => g.map((x) => x * factor[0]));
    for (const t of ts) t.dispose();
    clipper.dispose();
    return { totalNorm: total[0], factor: factor[0], clipped };
  },
};

const IMPLS = [ref, gpuFunction, gpuClipper];

const f = (a: number[]) => Float32Array.from(a);
// Hand-computed: norms 5 and 12, total √(25 + 144) = 13, factor 1 / (13 + 1e-6).
const F13 = 1 / (13 + 1e-6);
const CASES: { label: string; grads: Float32Array[]; maxNorm: number; want: Out }[] = [
  {
    label: "clipped to norm 1",
    grads: [f([3, 4]), f([12])],
    maxNorm: 1,
    want: { totalNorm: 13, factor: F13, clipped: [f([3 * F13, 4 * F13]), f([12 * F13])] },
  },
  {
    label: "max norm 2",
    grads: [f([3, 4])],
    maxNorm: 2,
    want: { totalNorm: 5, factor: 2 / (5 + 1e-6), clipped: [f([1.2, 1.6])] },
  },
  {
    label: "below the threshold: unchanged",
    grads: [f([0.3]), f([0.4]), f([])],
    maxNorm: 1,
    want: { totalNorm: 0.5, factor: 1, clipped: [f([0.3]), f([0.4]), f([])] },
  },
  {
    label: "all zero: factor 1",
    grads: [f([0, 0, 0])],
    maxNorm: 1,
    want: { totalNorm: 0, factor: 1, clipped: [f([0, 0, 0])] },
  },
];

for (const impl of IMPLS) {
  Deno.test(`clip[${impl.name}]: hand-computed norms and factors`, async () => {
    for (const c of CASES) {
      const got = await impl.run(c.grads, c.maxNorm);
      assertAllClose([got.totalNorm], [c.want.totalNorm], 1e-6, 1e-6, `${c.label}: total`);
      assertAllClose([got.factor], [c.want.factor], 0, 1e-6, `${c.label}: factor`);
      got.clipped.forEach((g, i) =>
        assertAllClose(g, c.want.clipped[i], 1e-7, 1e-6, `${c.label}: grad ${i}`)
      );
    }
  });
  if (impl === ref) continue;
  Deno.test(`clip[${impl.name}]: random gradients match the reference`, async () => {
    const rng = createRng(21);
    const grads = [768, 6144 * 8, 1, 5000, 100_000].map((n) => randomArray(rng, n, -0.02, 0.02));
    const got = await impl.run(grads, 1), want = await ref.run(grads, 1);
    assertAllClose([got.totalNorm], [want.totalNorm], 0, 1e-5, "total");
    assertAllClose([got.factor], [want.factor], 0, 1e-5, "factor");
    got.clipped.forEach((g, i) => assertAllClose(g, want.clipped[i], 1e-8, 1e-5, `grad ${i}`));
  });
}

Deno.test("clip: bad arguments are clear errors", () => {
  assertThrows(() => new GradNormClipper(gpu, 0), GpuError, "count must be");
  assertThrows(() => new GradNormClipper(gpu, 1, { maxNorm: 0 }), GpuError, "maxNorm");
  const c = new GradNormClipper(gpu, 2);
  using a = Tensor.from([1]);
  assertThrows(() => c.record([a]), GpuError, "1 gradients, expected 2");
  c.dispose();
});

Deno.test("clip: the factor feeds adamStep on the GPU, all in one submit", async () => {
  const grads = [f([3, 4]), f([12])], params = [f([1, 2]), f([-1])];
  const gs = grads.map((g) => Tensor.from(g)), ps = params.map((p) => Tensor.from(p));
  const ms = ps.map((p) => Tensor.zeros(p.shape)), vs = ps.map((p) => Tensor.zeros(p.shape));
  using h = createAdamScalars(gpu);
  const clipper = new GradNormClipper(gpu, 2);
  writeAdamScalars(h, { lr: 0.1, step: 1 }); // the step's only upload, before recording
  gpu.flush();
  const { factor } = clipper.record(gs);
  ps.forEach((p, i) => adamStep(p, gs[i], ms[i], vs[i], h, { clipFactor: factor }));
  assert(gpu.pendingOps >= 4, "nothing was submitted while recording");
  const got = await readAll(ps);
  const want = clipGradNormRef(grads, 1);
  params.forEach((p, i) => {
    adamRef(p, grads[i], new Float32Array(p.length), new Float32Array(p.length), {
      lr: 0.1,
      step: 1,
    }, { clipFactor: want.factor });
    assertAllClose(got[i], p, 1e-6, 0, `param ${i}`);
  });
  for (const t of [...gs, ...ps, ...ms, ...vs]) t.dispose();
  clipper.dispose();
});
