import { getGpu, type Gpu, GpuError } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import {
  Adam,
  adamRef,
  adamScalars,
  adamStep,
  createAdamScalars,
  writeAdamScalars,
} from "../../gpu/kernels/adam.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

interface Args {
  p: Float32Array;
  grads: Float32Array[];
  lr: number;
  clip?: number;
  maximize?: boolean;
}
type State = { p: Float32Array; m: Float32Array; v: Float32Array };

/** One implementation of Adam over several steps: the TS reference or a GPU path. */
interface Impl {
  name: string;
  run(a: Args): Promise<State>;
}

const ref: Impl = {
  name: "ref",
  run(a) {
    const p = a.p.slice(), m = new Float32Array(p.length), v = new Float32Array(p.length);
    a.grads.forEach((g, i) =>
      adamRef(p, g, m, v, { lr: a.lr, step: i + 1 }, { clipFactor: a.clip, maximize: a.maximize })
    );
    return Promise.resolve({ p, m, v });
  },
};

function adamStepImpl(name: string, device: Gpu): Impl {
  return {
    name,
    async run(a) {
      const o = { gpu: device };
      using p = Tensor.from(a.p, undefined, o);
      using m = Tensor.zeros(p.shape, "f32", o), v = Tensor.zeros(p.shape, "f32", o);
      using h = createAdamScalars(device);
      using clip = a.clip === undefined ? undefined : Tensor.from([a.clip], undefined, o);
      for (let i = 0; i < a.grads.length; i++) {
        using g = Tensor.from(a.grads[i], undefined, o);
        writeAdamScalars(h, { lr: a.lr, step: i + 1 });
        adamStep(p, g, m, v, h, { clipFactor: clip, maximize: a.maximize });
      }
      const [pr, mr, vr] = await readAll([p, m, v]) as Float32Array[];
      return { p: pr, m: mr, v: vr };
    },
  };
}

const adamClassImpl: Impl = {
  name: "gpu Adam class",
  async run(a) {
    using p = Tensor.from(a.p);
    using clip = a.clip === undefined ? undefined : Tensor.from([a.clip]);
    const opt = new Adam([p], { lr: a.lr, maximize: a.maximize });
    for (let i = 0; i < a.grads.length; i++) {
      using g = Tensor.from(a.grads[i]);
      if (i % 2 === 0) opt.prepare(); // the one-submit path: scalars before recording
      opt.update([g], { clipFactor: clip });
    }
    assertEquals(opt.step, a.grads.length);
    const [pr, mr, vr] = await readAll([p, opt.m[0], opt.v[0]]) as Float32Array[];
    opt.dispose();
    return { p: pr, m: mr, v: vr };
  },
};

const IMPLS: Impl[] = [
  ref,
  adamStepImpl("gpu adamStep", gpu),
  adamClassImpl,
  adamStepImpl("gpu 16 KiB windows", smallBindingGpu(gpu, 16384)),
];

const f = (a: number[]) => Float32Array.from(a);
// Worked by hand from torch.optim.Adam (lr 0.1, betas (0.9, 0.999), eps 1e-8):
// element 0, g = 0.5 then −0.25:
//   t=1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25, p = 1 − 0.1·0.5/(0.5 + 1e-8) = 0.900000002
//   t=2: m = 0.045 − 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
//        m̂ = 0.02/0.19 = 0.105263158, v̂ = 0.00031225/0.001999 = 0.156203102,
//        p = 0.900000002 − 0.1·0.105263158/(0.395225382 + 1e-8) = 0.873366299
// element 1, g = 1e-6 then −3e-6 (eps matters: it is added after √v̂):
//   t=1: m̂ = 1e-6, √v̂ = 1e-6, p = 0.5 − 0.1·1e-6/(1e-6 + 1e-8) = 0.400990099
//   t=2: m = −2.1e-7, v = 9.999e-15, p = 0.450189102
// With clip factor 0.5 the gradients halve (element 1 then moves by 0.1·0.5e-6/(0.5e-6 + 1e-8)).
const G1 = f([0.5, 1e-6]), G2 = f([-0.25, -3e-6]), P0 = f([1, 0.5]);
const CASES: { label: string; args: Args; want: State }[] = [
  {
    label: "one step",
    args: { p: P0, grads: [G1], lr: 0.1 },
    want: { p: f([0.900000002, 0.400990099]), m: f([0.05, 1e-7]), v: f([0.00025, 1e-15]) },
  },
  {
    label: "two steps",
    args: { p: P0, grads: [G1, G2], lr: 0.1 },
    want: {
      p: f([0.8733662987, 0.4501891017]),
      m: f([0.02, -2.1e-7]),
      v: f([0.00031225, 9.999e-15]),
    },
  },
  {
    label: "two steps, clip factor 0.5",
    args: { p: P0, grads: [G1, G2], lr: 0.1, clip: 0.5 },
    want: {
      p: f([0.8733663014, 0.4509417562]),
      m: f([0.01, -1.05e-7]),
      v: f([7.80625e-5, 2.49975e-15]),
    },
  },
  {
    label: "two steps, maximize",
    args: { p: P0, grads: [G1, G2], lr: 0.1, maximize: true },
    want: {
      p: f([1.126633701, 0.5498108983]),
      m: f([-0.02, 2.1e-7]),
      v: f([0.00031225, 9.999e-15]),
    },
  },
];

for (const impl of IMPLS) {
  Deno.test(`adam[${impl.name}]: hand-computed torch sequence`, async () => {
    for (const c of CASES) {
      const got = await impl.run(c.args);
      assertAllClose(got.p, c.want.p, 3e-7, 0, `${c.label}: p`);
      assertAllClose(got.m, c.want.m, 1e-20, 1e-5, `${c.label}: m`);
      assertAllClose(got.v, c.want.v, 1e-25, 1e-5, `${c.label}: v`);
    }
  });
  if (impl === ref) continue;
  Deno.test(`adam[${impl.name}]: random tensors match the reference`, async () => {
    const rng = createRng(13);
    for (const n of [4096, 4099]) {
      const p = randomArray(rng, n);
      const grads = [0, 1, 2].map(() => randomArray(rng, n, -0.01, 0.01));
      for (const extra of [{}, { clip: 0.3 }]) {
        const args = { p, grads, lr: 1e-3, ...extra };
        const [got, want] = [await impl.run(args), await ref.run(args)];
        assertAllClose(got.p, want.p, 1e-6, 1e-6, `p n=${n}`);
        assertAllClose(got.m, want.m, 1e-9, 1e-5, `m n=${n}`);
        assertAllClose(got.v, want.v, 1e-12, 1e-5, `v n=${n}`);
      }
    }
  });
}

Deno.test("adam: scalars follow torch's host arithmetic", () => {
  const h = adamScalars({ lr: 0.1, step: 2 });
  assertAllClose(h, [0.1, 0.9, 0.999, 1e-8, 0.1 / 0.19, Math.sqrt(0.001999), 0.1, 0.001], 0, 1e-7);
  assertThrows(() => adamScalars({ lr: 0.1, step: 0 }), GpuError, "step must be");
  assertThrows(() => adamScalars({ lr: 0.1, step: 1, beta1: 1 }), GpuError, "betas");
});

Deno.test("adam: mismatched or aliased tensors are clear errors", () => {
  using p = Tensor.zeros([4]), g = Tensor.zeros([4]), m = Tensor.zeros([4]);
  using v3 = Tensor.zeros([3]), h = createAdamScalars(gpu);
  assertThrows(() => adamStep(p, g, m, v3, h), GpuError, "v Tensor(f32, [3]) has 3 elements");
  assertThrows(() => adamStep(p, g, m, m, h), GpuError, "m and v share a GPU buffer");
  assertThrows(() => adamStep(p, g, m, g, h), GpuError, "share a GPU buffer");
  const opt = new Adam([p], { lr: 1 });
  assertThrows(() => opt.update([g, g]), GpuError, "2 gradients for 1 parameters");
  opt.dispose();
});
