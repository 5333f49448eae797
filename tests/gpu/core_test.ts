import { getGpu, GpuError } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import { grid1d, spans, WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../../gpu/kernel.ts";
import { assert, assertAllClose, assertEquals, assertRejects, assertThrows } from "../assert.ts";

const gpu = await getGpu();

Deno.test("device: adapter info and maximum limits are requested", () => {
  assert(gpu.info.description.length > 0, "adapter description");
  const adapterLimits = gpu.adapter.limits;
  assertEquals(gpu.maxBindingSize, adapterLimits.maxStorageBufferBindingSize);
  assertEquals(gpu.maxBufferSize, adapterLimits.maxBufferSize);
  assertEquals(
    gpu.device.limits.maxStorageBuffersPerShaderStage,
    adapterLimits.maxStorageBuffersPerShaderStage,
  );
  for (const f of gpu.info.features) {
    assert(gpu.device.features.has(f as GPUFeatureName), `feature ${f}`);
  }
});

Deno.test("tensor: upload, read back, dtypes, reshape", async () => {
  using a = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  assertEquals(a.shape, [2, 3]);
  assertEquals(await a.toArray(), new Float32Array([1, 2, 3, 4, 5, 6]));
  using b = Tensor.from(new Int32Array([-1, 7]), [2]);
  assertEquals(b.dtype, "i32");
  assertEquals(await b.toArray(), new Int32Array([-1, 7]));
  using c = Tensor.from([0.5, 1.5]);
  assertEquals(c.dtype, "f32");
  const v = a.reshape([3, -1]);
  assertEquals(v.shape, [3, 2]);
  assertEquals(await v.toArray(), new Float32Array([1, 2, 3, 4, 5, 6]));
  assertThrows(() => a.reshape([4, 2]), GpuError, "cannot reshape");
  using s = Tensor.from([3], []);
  assertEquals(s.size, 1);
});

Deno.test("tensor: f16 and bf16 uploads convert to f32", async () => {
  using h = Tensor.from(new Uint16Array([0x3c00, 0xc000, 0x7bff]), [3], { dtype: "f16" });
  assertEquals(h.dtype, "f32");
  assertEquals(await h.toArray(), new Float32Array([1, -2, 65504]));
  using bf = Tensor.from(new Uint16Array([0x3f80, 0xc040]), [2], { dtype: "bf16" });
  assertEquals(await bf.toArray(), new Float32Array([1, -3]));
});

Deno.test("tensor: zeros, clone, batched readback, empty", async () => {
  using z = Tensor.zeros([5]);
  using a = Tensor.from([1, 2, 3]);
  using c = a.clone();
  using e = Tensor.empty([0, 4]);
  const [zr, cr, er] = await readAll([z, c, e]);
  assertEquals(zr, new Float32Array(5));
  assertEquals(cr, new Float32Array([1, 2, 3]));
  assertEquals(er.length, 0);
});

Deno.test("tensor: bad shapes and use after dispose are clear errors", async () => {
  assertThrows(() => Tensor.from([1, 2, 3], [2, 2]), GpuError, "shape [2, 2] has 4 elements");
  assertThrows(() => Tensor.empty([2, 1.5]), GpuError, "invalid tensor shape");
  const t = Tensor.from([1]);
  t.dispose();
  await assertRejects(() => t.toArray(), GpuError, "after dispose");
  assertThrows(() => Tensor.empty([gpu.maxBufferSize]), GpuError, "maxBufferSize");
});

Deno.test("pool: a disposed buffer is reused by the next tensor of that size", () => {
  const a = Tensor.empty([1000]);
  const buffer = a.buffer;
  a.dispose();
  using b = Tensor.empty([1000]);
  assert(b.buffer === buffer, "buffer reused");
});

const ADD_ONE = /* wgsl */ `
${WGSL_WG_INDEX}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> n: vec4<u32>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i < n.x) { x[i] = x[i] + 1.0; }
}`;

Deno.test("recording: many dispatches go out in one submit and run in order", async () => {
  using t = Tensor.from(new Float32Array(130));
  const pipeline = gpu.pipeline("test_add_one", ADD_ONE);
  const n = gpu.uniform([130, 0, 0, 0]);
  for (let i = 0; i < 10; i++) gpu.dispatch(pipeline, [t, n], grid1d(gpu, 3));
  assertEquals(gpu.pendingOps, 10);
  assertAllClose(await t.toArray(), new Float32Array(130).fill(10));
  assertEquals(gpu.pendingOps, 0);
});

Deno.test("recording: a write after recorded ops lands after them", async () => {
  using t = Tensor.from(new Float32Array(4));
  const pipeline = gpu.pipeline("test_add_one", ADD_ONE);
  gpu.dispatch(pipeline, [t, gpu.uniform([4, 0, 0, 0])], [1]);
  gpu.write(t.buffer, 0, new Float32Array([5, 5, 5, 5]));
  gpu.dispatch(pipeline, [t, gpu.uniform([4, 0, 0, 0])], [1]);
  assertEquals(await t.toArray(), new Float32Array([6, 6, 6, 6]));
});

Deno.test("kernel helpers: grid folding and row windows respect device limits", () => {
  const [x, y] = grid1d(gpu, 200000);
  assert(x <= gpu.maxWorkgroupsPerDimension && x * y >= 200000, "grid covers the count");
  const rowBytes = 24576 * 4;
  const windows = spans(gpu, 4096, rowBytes / 4);
  let covered = 0;
  for (const w of windows) {
    assertEquals(w.start, covered);
    assert(w.count * rowBytes <= gpu.maxBindingSize, "window fits a binding");
    assertEquals((w.start * rowBytes) % gpu.bindingOffsetAlignment, 0);
    covered += w.count;
  }
  assertEquals(covered, 4096);
  assertThrows(() => spans(gpu, 2, gpu.maxBindingSize / 4 + 1), GpuError, "exceeds");
});

Deno.test("errors: oversize binding names the limit", () => {
  const pipeline = gpu.pipeline("test_add_one", ADD_ONE);
  const big = { buffer: gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }) };
  assertThrows(
    () =>
      gpu.dispatch(pipeline, [{ ...big, size: gpu.maxBindingSize + 16 }, gpu.uniform([1])], [1]),
    GpuError,
    "maxStorageBufferBindingSize",
  );
  big.buffer.destroy();
});

Deno.test("errors: a shader that fails to compile surfaces as a GpuError naming the kernel", async () => {
  const { Gpu } = await import("../../gpu/device.ts");
  const own = await Gpu.create();
  try {
    own.pipeline("broken_kernel", "@compute @workgroup_size(1) fn main() { let x: f32 = ; }");
    await own.device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 50));
    assertThrows(() => own.throwIfFailed(), GpuError, "broken_kernel");
  } finally {
    own.destroy();
  }
});
