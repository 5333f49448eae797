import { getGpu, type Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import {
  axpy,
  copy,
  fill,
  scale,
  scaleByTensor,
  unary,
  type UnaryOp,
} from "../../gpu/kernels/elementwise.ts";
import { binary, type BinaryOp } from "../../gpu/kernels/binary.ts";
import { axpyRef, binaryRef, UNARY_OPS, unaryRef } from "../../gpu/kernels/elementwise_ref.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { createRng, randomArray, smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

/** One implementation of the elementwise ops: the TS reference or a GPU path. */
interface Impl {
  name: string;
  unary(op: UnaryOp, x: Float32Array, c: number): Promise<Float32Array>;
  binary(
    op: BinaryOp,
    a: Float32Array,
    aShape: number[],
    b: Float32Array,
    bShape: number[],
  ): Promise<{ data: Float32Array; shape: number[] }>;
  axpy(alpha: number, x: Float32Array, y: Float32Array): Promise<Float32Array>;
}

const ref: Impl = {
  name: "ref",
  unary: (op, x, c) => Promise.resolve(unaryRef(op, x, c)),
  binary: (op, a, as, b, bs) => Promise.resolve(binaryRef(op, a, as, b, bs)),
  axpy: (alpha, x, y) => Promise.resolve(axpyRef(alpha, x, y.slice())),
};

/** GPU implementation; `inPlace` writes into an input, `device` may report small bindings. */
function gpuImpl(name: string, device: Gpu, inPlace: boolean): Impl {
  const up = (d: Float32Array, shape: number[]) => Tensor.from(d, shape, { gpu: device });
  return {
    name,
    async unary(op, x, c) {
      using t = up(x, [x.length]);
      if (inPlace) return await unary(op, t, { c, out: t }).toArray() as Float32Array;
      using y = unary(op, t, { c });
      return await y.toArray() as Float32Array;
    },
    async binary(op, a, as, b, bs) {
      using ta = up(a, as);
      using tb = up(b, bs);
      const n = binaryRef("add", a, as, b, bs).data.length;
      const target = !inPlace ? undefined : ta.size === n ? ta : tb.size === n ? tb : undefined;
      const y = binary(op, ta, tb, { out: target });
      const data = await y.toArray() as Float32Array;
      const shape = [...y.shape];
      if (!target) y.dispose();
      return { data, shape };
    },
    async axpy(alpha, x, y) {
      using tx = up(x, [x.length]);
      using ty = up(y, [y.length]);
      return await axpy(alpha, tx, ty).toArray() as Float32Array;
    },
  };
}

const IMPLS: Impl[] = [
  ref,
  gpuImpl("gpu", gpu, false),
  gpuImpl("gpu in place", gpu, true),
  gpuImpl("gpu 16 KiB windows", smallBindingGpu(gpu, 16384), false),
];

// Hand-computed expectations (closed forms evaluated by hand / from known constants).
const UNARY_CASES: { op: UnaryOp; x: number[]; c?: number; want: number[] }[] = [
  { op: "neg", x: [1, -2, 0, 3.5, -0.25], want: [-1, 2, 0, -3.5, 0.25] },
  { op: "exp", x: [0, 1, -1, 2, -20], want: [1, 2.7182818, 0.36787944, 7.3890561, 2.0611536e-9] },
  { op: "log", x: [1, Math.E, 0.5, 10, 1e-3], want: [0, 1, -0.69314718, 2.3025851, -6.9077553] },
  { op: "relu", x: [-1, 0, 2, -0.5, 3], want: [0, 0, 2, 0, 3] },
  // gelu_new(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.84119199; large |x| must not overflow.
  {
    op: "geluTanh",
    x: [1, -1, 0, 2, -3, 20, -20],
    want: [0.84119199, -0.15880801, 0, 1.9545977, -0.0036373921, 20, 0],
  },
  { op: "sigmoid", x: [0, 2, -2, 100, -100], want: [0.5, 0.88079708, 0.11920292, 1, 0] },
  { op: "tanh", x: [0, 0.5, -1, 20, -20], want: [0, 0.46211716, -0.76159416, 1, -1] },
  { op: "sqrt", x: [0, 1, 4, 2, 0.25], want: [0, 1, 2, 1.4142136, 0.5] },
  { op: "abs", x: [-1.5, 2, 0, -0.125, 7], want: [1.5, 2, 0, 0.125, 7] },
  { op: "square", x: [-3, 0.5, 0, 2, -1], want: [9, 0.25, 0, 4, 1] },
  { op: "scale", x: [1, -2, 0.5, 0, 4], c: -2, want: [-2, 4, -1, 0, -8] },
  { op: "addScalar", x: [1, -2, 0.5, 0, 4], c: 0.5, want: [1.5, -1.5, 1, 0.5, 4.5] },
];

const A23 = [1, 2, 3, 4, 5, 6];
const BINARY_CASES: {
  op: BinaryOp;
  a: number[];
  as: number[];
  b: number[];
  bs: number[];
  want: number[];
  shape: number[];
}[] = [
  {
    op: "add",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [7, 7, 7, 7, 7, 7],
    shape: [2, 3],
  },
  {
    op: "sub",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [-5, -3, -1, 1, 3, 5],
    shape: [2, 3],
  },
  {
    op: "mul",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [6, 10, 12, 12, 10, 6],
    shape: [2, 3],
  },
  {
    op: "div",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [1 / 6, 0.4, 0.75, 4 / 3, 2.5, 6],
    shape: [2, 3],
  },
  {
    op: "max",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [6, 5, 4, 4, 5, 6],
    shape: [2, 3],
  },
  {
    op: "min",
    a: A23,
    as: [2, 3],
    b: [6, 5, 4, 3, 2, 1],
    bs: [2, 3],
    want: [1, 2, 3, 3, 2, 1],
    shape: [2, 3],
  },
  // row vector [n] against [m, n]
  {
    op: "add",
    a: A23,
    as: [2, 3],
    b: [10, 20, 30],
    bs: [3],
    want: [11, 22, 33, 14, 25, 36],
    shape: [2, 3],
  },
  // column vector [m, 1]
  {
    op: "sub",
    a: A23,
    as: [2, 3],
    b: [100, 200],
    bs: [2, 1],
    want: [-99, -98, -97, -196, -195, -194],
    shape: [2, 3],
  },
  // scalars [] and [1]
  { op: "mul", a: A23, as: [2, 3], b: [2], bs: [], want: [2, 4, 6, 8, 10, 12], shape: [2, 3] },
  {
    op: "div",
    a: A23,
    as: [2, 3],
    b: [4],
    bs: [1],
    want: [0.25, 0.5, 0.75, 1, 1.25, 1.5],
    shape: [2, 3],
  },
  // the broadcast operand first
  {
    op: "sub",
    a: [10, 20, 30],
    as: [3],
    b: A23,
    bs: [2, 3],
    want: [9, 18, 27, 6, 15, 24],
    shape: [2, 3],
  },
  // outer broadcast [2, 1] with [3]
  {
    op: "add",
    a: [1, 2],
    as: [2, 1],
    b: [10, 20, 30],
    bs: [3],
    want: [11, 21, 31, 12, 22, 32],
    shape: [2, 3],
  },
  // middle dim broadcast in 3-D
  {
    op: "add",
    a: [1, 2, 3, 4, 5, 6, 7, 8],
    as: [2, 2, 2],
    b: [10, 20, 30, 40],
    bs: [2, 1, 2],
    want: [11, 22, 13, 24, 35, 46, 37, 48],
    shape: [2, 2, 2],
  },
];

for (const impl of IMPLS) {
  Deno.test(`elementwise[${impl.name}]: unary ops match hand-computed values`, async () => {
    for (const c of UNARY_CASES) {
      const got = await impl.unary(c.op, Float32Array.from(c.x), c.c ?? 0);
      assertAllClose(got, c.want, 1e-6, 1e-5, `${c.op}`);
    }
  });

  Deno.test(`elementwise[${impl.name}]: binary ops with broadcasting`, async () => {
    for (const c of BINARY_CASES) {
      const got = await impl.binary(
        c.op,
        Float32Array.from(c.a),
        c.as,
        Float32Array.from(c.b),
        c.bs,
      );
      const label = `${c.op} [${c.as}] · [${c.bs}]`;
      assertEquals(got.shape, c.shape, label);
      assertAllClose(got.data, c.want, 1e-6, 1e-6, label);
    }
  });

  Deno.test(`elementwise[${impl.name}]: axpy y += a·x`, async () => {
    const got = await impl.axpy(-0.5, Float32Array.from([2, 4, -6]), Float32Array.from([1, 1, 1]));
    assertAllClose(got, [0, -1, 4], 0);
  });

  if (impl === ref) continue;
  Deno.test(`elementwise[${impl.name}]: random inputs match the reference`, async () => {
    const rng = createRng(7);
    for (const n of [1024, 1023, 4099]) {
      const x = randomArray(rng, n, -3, 3);
      for (const op of UNARY_OPS) {
        const input = op === "log" || op === "sqrt" ? x.map(Math.abs) : x;
        const c = op === "scale" ? 1.75 : op === "addScalar" ? -0.25 : 0;
        assertAllClose(await impl.unary(op, input, c), unaryRef(op, input, c), 1e-6, 1e-5, op);
      }
      const y = randomArray(rng, n);
      assertAllClose(await impl.axpy(0.3, x, y), axpyRef(0.3, x, y.slice()), 1e-6, 1e-6, "axpy");
    }
    const shapes: [number[], number[]][] = [
      [[37, 41], [37, 41]],
      [[37, 41], [41]],
      [[37, 41], [37, 1]],
      [[37, 41], []],
      [[1, 41], [37, 1]],
      [[2, 3, 4, 5], [3, 1, 5]],
      [[6, 1, 7], [5, 1]],
      [[64, 32], [64, 32]],
      [[300, 40], [40]],
      [[300, 40], [300, 1]],
      [[3, 1], [1, 3]],
    ];
    for (const [as, bs] of shapes) {
      const a = randomArray(rng, as.reduce((p, d) => p * d, 1));
      const b = randomArray(rng, bs.reduce((p, d) => p * d, 1), 0.5, 2);
      for (const op of ["add", "sub", "mul", "div", "max", "min"] as BinaryOp[]) {
        const want = binaryRef(op, a, as, b, bs);
        const got = await impl.binary(op, a, as, b, bs);
        assertEquals(got.shape, want.shape);
        assertAllClose(got.data, want.data, 1e-6, 1e-6, `${op} [${as}] · [${bs}]`);
      }
    }
  });
}

Deno.test("elementwise: fill, copy, scale and scaleByTensor", async () => {
  using t = Tensor.empty([5]);
  fill(t, 2.5);
  assertEquals(await t.toArray(), new Float32Array(5).fill(2.5));
  using c = copy(t);
  using s = scale(c, -2);
  using f = Tensor.from([0.25]);
  using x = Tensor.from([4, 8, -12, 0]);
  using y = scaleByTensor(x, f);
  scaleByTensor(x, f, x);
  assertEquals(await c.toArray(), new Float32Array(5).fill(2.5));
  assertEquals(await s.toArray(), new Float32Array(5).fill(-5));
  assertEquals(await y.toArray(), new Float32Array([1, 2, -3, 0]));
  assertEquals(await x.toArray(), new Float32Array([1, 2, -3, 0]));
});

Deno.test("elementwise: a binary op on one tensor twice (x·x, in place too)", async () => {
  using x = Tensor.from([1, -2, 3, 4, 5], [5]);
  using sq = binary("mul", x, x);
  binary("add", x, x, { out: x });
  assertEquals(await sq.toArray(), new Float32Array([1, 4, 9, 16, 25]));
  assertEquals(await x.toArray(), new Float32Array([2, -4, 6, 8, 10]));
});

Deno.test("elementwise: bad shapes, dtypes and aliasing are clear errors", () => {
  using a = Tensor.from(new Float32Array(6), [2, 3]);
  using b = Tensor.from(new Float32Array(4), [4]);
  using i = Tensor.from(new Int32Array(6), [2, 3]);
  using col = Tensor.from(new Float32Array(2), [2, 1]);
  assertThrows(() => binary("add", a, b), GpuError, "do not broadcast");
  assertThrows(() => unary("exp", i), GpuError, "must be f32");
  assertThrows(() => unary("exp", a, { out: b }), GpuError, "expected [2, 3]");
  assertThrows(() => binary("add", a, col, { out: col }), GpuError, "shape [2, 1]");
  using p = Tensor.from(new Float32Array(8), [2, 1, 2, 1, 2]);
  using q = Tensor.from(new Float32Array(4), [2, 1, 2, 1]);
  assertThrows(() => binary("add", p, q), GpuError, "at most 4");
  using big = Tensor.from(new Float32Array(8));
  assertThrows(() => axpy(1, big, big), GpuError, "must not share a GPU buffer");
  assertThrows(() => unary("nope" as UnaryOp, a), GpuError, "unknown unary op");
  // two views of one buffer: binding it writable and readable in one dispatch is invalid WebGPU
  using whole = Tensor.zeros([128]);
  const lo = new Tensor(gpu, whole.buffer, [64], "f32", 0, false);
  const hi = new Tensor(gpu, whole.buffer, [64], "f32", 256, false);
  assertThrows(() => unary("neg", lo, { out: hi }), GpuError, "shares a GPU buffer");
  assertThrows(() => binary("add", lo, lo, { out: hi }), GpuError, "shares a GPU buffer");
});

Deno.test("elementwise: tensors over the binding limit are split into windows", async () => {
  const small = smallBindingGpu(gpu, 16384);
  using x = Tensor.from(new Float32Array(4099).fill(2), [4099], { gpu: small });
  gpu.flush();
  using y = unary("square", x);
  assertEquals(gpu.pendingOps, 2, "two windows of at most 4096 elements");
  using a = Tensor.from(new Float32Array(300 * 40).fill(1), [300, 40], { gpu: small });
  using b = Tensor.from(new Float32Array(40).fill(3), [40], { gpu: small });
  gpu.flush();
  using c = binary("add", a, b);
  assertEquals(gpu.pendingOps, 4, "ceil(300 / 96) windows of rows");
  assertEquals(await y.toArray(), new Float32Array(4099).fill(4));
  assertEquals(await c.toArray(), new Float32Array(300 * 40).fill(4));
});
