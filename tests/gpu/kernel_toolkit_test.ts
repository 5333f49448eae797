// The kernel toolkit (gpu/kernel.ts): uniform packing, argument checks with the family's error
// class, spans (binding limit, offset alignment, forced window sizes), the launch helpers.
import { getGpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import {
  checkAlias,
  checkBindable,
  checkDisjoint,
  checkInt,
  checkTensor,
  dispatch1d,
  gcd,
  lcm,
  nextPow2,
  packUniform,
  prevPow2,
  shiftedWindow,
  spans,
  uniformStruct,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  windowOf,
} from "../../gpu/kernel.ts";
import { ModelError } from "../../model/errors.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { smallBindingGpu } from "./_ops_helpers.ts";

const gpu = await getGpu();

Deno.test("toolkit: packUniform writes u32, i32 and f32 words, padded to 16 bytes", () => {
  const w = packUniform("uifuu", 7, -3, 1.5, 2 ** 32 - 1, 9);
  assertEquals(w.length, 8);
  assertEquals(w[0], 7);
  assertEquals(new Int32Array(w.buffer)[1], -3);
  assertEquals(new Float32Array(w.buffer)[2], 1.5);
  assertEquals(w[3], 2 ** 32 - 1);
  assertEquals(w[4], 9);
  assertEquals([...w.slice(5)], [0, 0, 0]);
  assertEquals(packUniform("u", 1).length, 4);
  assertThrows(() => packUniform("uu", 1), GpuError, "2 fields but 1 values");
  assertThrows(() => packUniform("ux", 1, 2), GpuError, 'field 1 has type "x"');
  assertEquals(uniformStruct("uif", ["n", "s", "c"]), "struct U { n: u32, s: i32, c: f32 }");
  assertThrows(() => uniformStruct("uf", ["n"]), GpuError, "2 fields but 1 names");
});

Deno.test("toolkit: checkTensor checks liveness, dtype, rank and shape in order, in the family's class", () => {
  const x = Tensor.zeros([2, 3]);
  assertEquals([...checkTensor(x, "op", "x", { dtype: "f32", rank: 2, shape: [2, 3] })], [2, 3]);
  assertThrows(() => checkTensor(x, "op", "x", { dtype: "i32" }), GpuError, "op: x must be i32");
  assertThrows(
    () => checkTensor(x, "op", "x", { dtype: ["u32", "i32"] }),
    GpuError,
    "must be u32 or i32, got Tensor(f32, [2, 3])",
  );
  assertThrows(() => checkTensor(x, "op", "x", { rank: 1 }), GpuError, "must have rank 1");
  assertThrows(
    () => checkTensor(x, "op", "x", { shape: [3, 2] }),
    GpuError,
    "has shape [2, 3], expected [3, 2]",
  );
  const e = assertThrows(() => checkTensor(x, "lm", "x", { shape: [1] }, ModelError), ModelError);
  assert(!(e instanceof GpuError), "the family's class, not GpuError");
  x.dispose();
  // A disposed tensor is reported as such before any other mismatch.
  assertThrows(() => checkTensor(x, "op", "x", { dtype: "i32" }), GpuError, "after dispose()");
  assertThrows(() => checkInt(2.5, 1, 4, "op", "k"), GpuError, "k is 2.5, expected an integer");
  assertThrows(() => checkInt(5, 1, 4, "op", "k", ModelError), ModelError, "[1, 4]");
  checkInt(4, 1, 4, "op", "k");
});

Deno.test("toolkit: checkAlias allows exactly in place, checkDisjoint allows disjoint ranges", () => {
  using whole = Tensor.zeros([8]);
  const a = new Tensor(gpu, whole.buffer, [4], "f32", whole.offset, false);
  const b = new Tensor(gpu, whole.buffer, [4], "f32", whole.offset + 16, false);
  const c = new Tensor(gpu, whole.buffer, [4], "f32", whole.offset + 8, false);
  checkAlias(a, [a], "op");
  assertThrows(() => checkAlias(a, [b], "op"), GpuError, "shares a GPU buffer");
  checkDisjoint(a, [b], "op");
  assertThrows(() => checkDisjoint(a, [c], "op", ModelError), ModelError, "overlaps an input");
  assertThrows(() => checkDisjoint(a, [a], "op"), GpuError, "overlaps");
  const small = smallBindingGpu(gpu, 16);
  checkBindable(small, a, "op", "a");
  assertThrows(() => checkBindable(small, whole, "op", "x"), GpuError, "more than this device's");
});

Deno.test("toolkit: integers", () => {
  assertEquals([gcd(12, 18), gcd(7, 0), gcd(0, 5)], [6, 7, 5]);
  assertEquals([lcm(4, 6), lcm(1, 9)], [12, 9]);
  assertEquals([nextPow2(1), nextPow2(5), nextPow2(64), prevPow2(5), prevPow2(64)], [
    1,
    8,
    64,
    4,
    64,
  ]);
});

/** Asserts the spans tile [0, count) in order, fit the binding limit and keep offsets aligned. */
function checkSpans(
  g: typeof gpu,
  list: { start: number; count: number }[],
  count: number,
  widest: number,
  aligned: number[],
): void {
  let covered = 0;
  for (const s of list) {
    assertEquals(s.start, covered);
    assert(s.count > 0, "no empty span");
    assert(s.count * widest * 4 <= g.maxBindingSize, "span fits one binding");
    for (const e of [widest, ...aligned]) {
      assertEquals((s.start * e * 4) % g.bindingOffsetAlignment, 0, `offset of width ${e}`);
    }
    covered += s.count;
  }
  assertEquals(covered, count);
}

Deno.test("toolkit: spans fit the binding limit with aligned offsets for every bound width", () => {
  assertEquals(spans(gpu, 0, 8), []);
  assertEquals(spans(gpu, 100, 8), [{ start: 0, count: 100 }]);
  // 64 KiB bindings: rows of 100 (and 7 and 3 bound at the same rows).
  const mid = smallBindingGpu(gpu, 65536);
  const s = spans(mid, 1000, 100, { aligned: [100, 7, 3] });
  assert(s.length > 1, "split");
  checkSpans(mid, s, 1000, 100, [7, 3]);
  // 4 KiB bindings: 1024 f32 per binding.
  const small = smallBindingGpu(gpu, 4096);
  // multipleOf: starts are multiples of it.
  const m = spans(small, 50, 20, { multipleOf: 8 });
  assert(m.every((w) => w.start % 8 === 0), "starts are multiples of 8");
  checkSpans(small, m, 50, 20, []);
  // maxCount forces smaller spans even when everything fits, never below one aligned group.
  const f = spans(gpu, 100, 3, { maxCount: 10 });
  assert(f.length > 1 && f.every((w) => w.count <= Math.max(10, f[0].count)), "forced windows");
  checkSpans(gpu, f, 100, 3, []);
  const align = gpu.bindingOffsetAlignment / 4 / gcd(gpu.bindingOffsetAlignment / 4, 3);
  assertEquals(spans(gpu, 100, 3, { maxCount: 1 })[0].count, align);
  // One aligned group that does not fit names the limit, in the family's class.
  assertThrows(() => spans(small, 4, 1025), GpuError, "maxStorageBufferBindingSize of 4096");
  assertThrows(() => spans(small, 4, 1025, { error: ModelError }), ModelError, "exceeds");
});

Deno.test("toolkit: shifted windows start at the aligned offset below and name the shift", () => {
  const align = gpu.bindingOffsetAlignment;
  using whole = Tensor.zeros([align]); // align·4 bytes
  // A view 3 elements into the buffer: the window of its elements [5, 12) starts at byte 0.
  const view = new Tensor(gpu, whole.buffer, [align - 3], "f32", whole.offset + 12, false);
  const w = shiftedWindow(view, 5, 7);
  const base = w.binding.offset ?? 0;
  assertEquals(base % align, 0);
  assertEquals(base + w.shift * 4, whole.offset + 12 + 5 * 4, "shift reaches the first element");
  const size = w.binding.size ?? whole.buffer.size - base;
  assert(size % 16 === 0 || base + size === whole.buffer.size, "size rounded to 16 bytes");
  assert(base + size >= whole.offset + 12 + 12 * 4, "the last element is inside");
  // Shifted spans: starts need no alignment; each binding still fits with the shift.
  const small = smallBindingGpu(gpu, 2 * align);
  const s = spans(small, 100, 3, { shifted: true });
  assert(s.length > 1 && s.some((x) => (x.start * 12) % align !== 0), "unaligned starts");
  for (const x of s) assert(x.count * 12 + align <= 2 * align, "fits with the shift");
  assertEquals(s.reduce((a, x) => a + x.count, 0), 100);
});

const SCALE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
struct U { n: u32, s: f32 }
@group(0) @binding(2) var<uniform> u: U;
${WGSL_WG_INDEX}
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i < u.n) { y[i] = u.s * x[i]; }
}`;

Deno.test("toolkit: a windowed kernel written with the toolkit matches its reference past the window size", async () => {
  const small = smallBindingGpu(gpu, 1024); // 256 f32 per binding
  const n = 1000;
  const xs = Float32Array.from({ length: n }, (_, i) => i - 300);
  using x = Tensor.from(xs);
  using y = Tensor.zeros([n]);
  const pipeline = gpu.pipeline("test_toolkit_scale", SCALE_WGSL);
  const windows = spans(small, n, 1);
  assert(windows.length >= 4, "several windows");
  for (const s of windows) {
    const bind = [windowOf(x, s.start, s.count), windowOf(y, s.start, s.count)];
    dispatch1d(gpu, pipeline, [...bind, gpu.uniform(packUniform("uf", s.count, -2))], s.count);
  }
  dispatch1d(gpu, pipeline, [x, y, gpu.uniform(packUniform("uf", 0, 0))], 0); // records nothing
  const got = await y.toArray();
  for (let i = 0; i < n; i++) assertEquals(got[i], -2 * xs[i], `element ${i}`);
});
