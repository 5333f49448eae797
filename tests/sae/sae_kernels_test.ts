// SAE kernels (normalisation in/out, activation epilogues): one case table run against the TS
// references and the GPU kernels, each checked against hand-computed values; random cases compare
// GPU to reference, also with tiny bindings so the row-window path runs. Tolerance: 1e-5 abs +
// 1e-5 rel (f32 kernels vs float64-accumulating references).
import { getGpu, type Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import {
  denseFromTopk,
  denseFromTopkRef,
  gatedActs,
  gatedActsRef,
  gatedMagnitude,
  gatedMagnitudeRef,
  jumpRelu,
  jumpReluRef,
} from "../../sae/kernels/activations.ts";
import {
  saeNormalizeIn,
  saeNormalizeInRef,
  saeNormalizeOut,
  saeNormalizeOutRef,
} from "../../sae/kernels/normalize.ts";
import { SaeKernelError } from "../../sae/kernels/errors.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "../gpu/_ops_helpers.ts";

const gpu = await getGpu();
const ATOL = 1e-5, RTOL = 1e-5;

interface Impl {
  name: string;
  normIn(
    mode: string,
    x: Float32Array,
    n: number,
    d: number,
    b: Float32Array | null,
  ): Promise<{ x: Float32Array; state: Float32Array }>;
  normOut(
    mode: string,
    y: Float32Array,
    n: number,
    d: number,
    s: Float32Array,
  ): Promise<Float32Array>;
  jump(h: Float32Array, t: Float32Array, n: number, d: number): Promise<Float32Array>;
  gatedMag(h: Float32Array, r: Float32Array, b: Float32Array, n: number, d: number): Promise<
    Float32Array
  >;
  gated(h: Float32Array, bg: Float32Array, pm: Float32Array, n: number, d: number): Promise<
    Float32Array
  >;
  dense(v: Float32Array, i: Int32Array, n: number, k: number, d: number): Promise<Float32Array>;
}

const ref: Impl = {
  name: "ref",
  normIn: (m, x, n, d, b) => Promise.resolve(saeNormalizeInRef(m, x, n, d, b)),
  normOut: (m, y, n, d, s) => Promise.resolve(saeNormalizeOutRef(m, y, n, d, s)),
  jump: (h, t, n, d) => Promise.resolve(jumpReluRef(h, t, n, d)),
  gatedMag: (h, r, b, n, d) => Promise.resolve(gatedMagnitudeRef(h, r, b, n, d)),
  gated: (h, bg, pm, n, d) => Promise.resolve(gatedActsRef(h, bg, pm, n, d)),
  dense: (v, i, n, k, d) => Promise.resolve(denseFromTopkRef(v, i, n, k, d)),
};

function gpuImpl(name: string, device: Gpu): Impl {
  const up = (a: Float32Array, shape: number[]) => Tensor.from(a, shape, { gpu: device });
  const read = async (t: Tensor) => {
    const v = await t.toArray() as Float32Array;
    t.dispose();
    return v;
  };
  return {
    name,
    async normIn(m, x, n, d, b) {
      using tx = up(x, [n, d]);
      using tb = b ? up(b, [d]) : undefined;
      const r = saeNormalizeIn(tx, m, tb ?? null);
      return { x: await read(r.x), state: r.state ? await read(r.state) : new Float32Array(0) };
    },
    async normOut(m, y, n, d, s) {
      using ty = up(y, [n, d]);
      using ts = s.length ? up(s, [n, 2]) : undefined;
      return await read(saeNormalizeOut(ty, m, ts ?? null));
    },
    async jump(h, t, n, d) {
      using th = up(h, [n, d]);
      using tt = up(t, [d]);
      return await read(jumpRelu(th, tt));
    },
    async gatedMag(h, r, b, n, d) {
      using th = up(h, [n, d]);
      using tr = up(r, [d]);
      using tb = up(b, [d]);
      return await read(gatedMagnitude(th, tr, tb));
    },
    async gated(h, bg, pm, n, d) {
      using th = up(h, [n, d]);
      using tb = up(bg, [d]);
      using tp = up(pm, [n, d]);
      return await read(gatedActs(th, tb, tp));
    },
    async dense(v, i, n, k, d) {
      using tv = up(v, [n, k]);
      using ti = Tensor.from(i, [n, k], { gpu: device });
      return await read(denseFromTopk(tv, ti, d));
    },
  };
}

const IMPLS = [ref, gpuImpl("gpu", gpu), gpuImpl("gpu-windows", smallBindingGpu(gpu, 1024))];
const f32 = (a: number[]) => new Float32Array(a);

for (const impl of IMPLS) {
  Deno.test(`sae kernels [${impl.name}]: normalisation cases against hand-computed values`, async () => {
    // constant_norm_rescale of [3, 4] and [0, 2]: c = √2/5 and √2/2.
    const x = f32([3, 4, 0, 2]);
    const c = await impl.normIn("constant_norm_rescale", x, 2, 2, null);
    assertAllClose(c.x, [3 * Math.SQRT2 / 5, 4 * Math.SQRT2 / 5, 0, Math.SQRT2], ATOL, RTOL);
    assertAllClose(c.state, [Math.SQRT2 / 5, 0, Math.SQRT2 / 2, 0], ATOL, RTOL);
    assertAllClose(await impl.normOut("constant_norm_rescale", c.x, 2, 2, c.state), x, ATOL, RTOL);
    // with b_dec [1, -1]: subtracted after the rescale.
    const cb = await impl.normIn("constant_norm_rescale", x, 2, 2, f32([1, -1]));
    assertAllClose(cb.x, [3 * Math.SQRT2 / 5 - 1, 4 * Math.SQRT2 / 5 + 1, -1, Math.SQRT2 + 1]);
    // layer_norm of [1, 2, 3]: μ 2, σ 1 (unbiased) → [-1, 0, 1]/(1 + 1e-5).
    const l = await impl.normIn("layer_norm", f32([1, 2, 3]), 1, 3, null);
    assertAllClose(l.x, [-1 / 1.00001, 0, 1 / 1.00001], ATOL, RTOL);
    assertAllClose(l.state, [2, 1], ATOL, RTOL);
    assertAllClose(
      await impl.normOut("layer_norm", f32([1, 1, 1]), 1, 3, l.state),
      [3, 3, 3],
      ATOL,
      RTOL,
    );
    // none: only the bias.
    const nb = await impl.normIn("none", f32([1, 2, 3, 4]), 2, 2, f32([0.5, -1]));
    assertAllClose(nb.x, [0.5, 3, 2.5, 5]);
    assertEquals(nb.state.length, 0);
  });

  Deno.test(`sae kernels [${impl.name}]: activation cases against hand-computed values`, async () => {
    // Appendix A JumpReLU: h 0.6, θ [1, 0.5, 0.25] → [0, 0.6, 0.6]; strict h > θ; ReLU.
    assertAllClose(
      await impl.jump(f32([0.6, 0.6, 0.6, 0.5, -0.2, 0.3]), f32([1, 0.5, 0.25]), 2, 3),
      [0, 0.6, 0.6, 0, 0, 0.3],
    );
    // Negative threshold still gives ReLU: h −0.1 > θ −1 but ReLU(h) = 0.
    assertAllClose(await impl.jump(f32([-0.1, 2]), f32([-1, -1]), 1, 2), [0, 2]);
    // Appendix A gated: h0 = 0.6 → π_mag = 0.6·e^{[1,2,3]} + 1.
    const piMag = await impl.gatedMag(f32([0.6, 0.6, 0.6]), f32([1, 2, 3]), f32([1, 1, 1]), 1, 3);
    const want = [1, 2, 3].map((r) => 0.6 * Math.exp(r) + 1);
    assertAllClose(piMag, [2.6310, 5.4334, 13.0513], 1e-3);
    assertAllClose(piMag, want, ATOL, RTOL);
    // gate: 0.6 + [−2, 0, 1] > 0 → [0, 1, 1]; negative π_mag is ReLU'd.
    assertAllClose(
      await impl.gated(f32([0.6, 0.6, 0.6]), f32([-2, 0, 1]), f32([2.6310, 5.4334, -13]), 1, 3),
      [0, 5.4334, 0],
    );
    // Sparse lists → dense rows; −1 marks an empty slot.
    assertAllClose(
      await impl.dense(f32([5, 2, 7, 0]), Int32Array.from([3, 0, 1, -1]), 2, 2, 4),
      [2, 0, 0, 5, 0, 7, 0, 0],
    );
  });
}

Deno.test("sae kernels: random GPU vs reference (also in row windows)", async () => {
  const rng = createRng(7);
  // Row windows need row sizes that keep window offsets 256-byte aligned: d = 64, 128 there.
  for (const [n, d] of [[5, 7], [33, 16], [1, 130], [9, 64], [3, 128]]) {
    const x = randomArray(rng, n * d, -2, 2), b = randomArray(rng, d);
    const th = randomArray(rng, d, -0.5, 1), r = randomArray(rng, d, -1, 1);
    for (const impl of d % 64 === 0 ? IMPLS.slice(1) : [IMPLS[1]]) {
      for (const mode of ["none", "constant_norm_rescale", "layer_norm"]) {
        const want = saeNormalizeInRef(mode, x, n, d, b);
        const got = await impl.normIn(mode, x, n, d, b);
        assertAllClose(got.x, want.x, ATOL, RTOL, `${impl.name} ${mode} in`);
        assertAllClose(got.state, want.state, ATOL, RTOL, `${impl.name} ${mode} state`);
        if (mode !== "none") {
          assertAllClose(
            await impl.normOut(mode, x, n, d, want.state),
            saeNormalizeOutRef(mode, x, n, d, want.state),
            ATOL,
            RTOL,
            `${impl.name} ${mode} out`,
          );
        }
      }
      assertAllClose(await impl.jump(x, th, n, d), jumpReluRef(x, th, n, d), 0, 0);
      assertAllClose(
        await impl.gatedMag(x, r, b, n, d),
        gatedMagnitudeRef(x, r, b, n, d),
        ATOL,
        RTOL,
      );
      assertAllClose(
        await impl.gated(x, b, x, n, d),
        gatedActsRef(x, b, x, n, d),
        0,
        0,
      );
    }
  }
});

Deno.test("sae kernels: errors name the op, the argument and the shapes", () => {
  using x = Tensor.from(new Float32Array(6), [2, 3]);
  using b = Tensor.from(new Float32Array(2));
  assertThrows(() => saeNormalizeIn(x, "layer_norm", b), SaeKernelError, "bDec has shape [2]");
  assertThrows(
    () => saeNormalizeIn(x, "expected_average_only_in", null),
    SaeKernelError,
    "run-time",
  );
  assertThrows(() => jumpRelu(x, b), SaeKernelError, "threshold has shape [2], expected [3]");
  assertThrows(() => saeNormalizeOut(x, "layer_norm", null), SaeKernelError, "state");
});
