/**
 * GPU failures surface as GpuErrors, never as hangs: no adapter, no WebGPU at all, a device
 * lost behind saeflow's back, and an uncaptured validation error. Each test that breaks a
 * device opens its own with `Gpu.create()`, so the shared one stays healthy.
 *
 * It runs with the rest of the suite in one isolate (tests/all.ts). It once ran alone after
 * the others because the process sometimes aborted at exit on the GL backend; that abort comes
 * from opening one wgpu instance per isolate, with or without this file (see tests/all.ts).
 */

import { Gpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";

/** Settles `promise` or fails after `ms` with a message saying what hung. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets the device's `lost` and error callbacks run. */
const settleCallbacks = () => new Promise((r) => setTimeout(r, 20));

const ADD_ONE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> n: vec4<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < n.x) { x[id.x] = x[id.x] + 1.0; }
}`;

Deno.test("no adapter: Gpu.create() throws one GpuError naming what is missing and what to install", async () => {
  const gpu = navigator.gpu as unknown as Record<string, unknown>;
  assert(!Object.hasOwn(gpu, "requestAdapter"), "requestAdapter lives on the prototype");
  let asked = 0;
  gpu.requestAdapter = () => {
    asked++;
    return Promise.resolve(null);
  };
  try {
    const err = await assertRejects(() => Gpu.create(), GpuError, "no WebGPU adapter found");
    assertEquals(asked, 1);
    assert(err.message.includes("install a GPU driver"), err.message);
    assert(/libegl-mesa0|mesa-vulkan-drivers/.test(err.message), err.message);
    // An adapter request that throws is reported the same way, not as a bare TypeError.
    gpu.requestAdapter = () => Promise.reject(new TypeError("backend exploded"));
    await assertRejects(() => Gpu.create(), GpuError, "backend exploded");
  } finally {
    delete gpu.requestAdapter;
  }
  assert(typeof navigator.gpu.requestAdapter === "function", "restored");
});

Deno.test("no WebGPU: Gpu.create() without navigator.gpu throws a GpuError", async () => {
  Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
  try {
    await assertRejects(() => Gpu.create(), GpuError, "navigator.gpu is missing");
  } finally {
    delete (navigator as unknown as Record<string, unknown>).gpu;
  }
  assert(navigator.gpu !== undefined, "restored");
});

Deno.test("device lost: pending reads reject and every later op throws a GpuError saying so", async () => {
  const own = await Gpu.create();
  const t = Tensor.from(new Float32Array([1, 2, 3, 4]), [4], { gpu: own });
  const pipeline = own.pipeline("errors_add_one", ADD_ONE);
  const n = own.uniform([4, 0, 0, 0]);
  own.dispatch(pipeline, [t, n], [1]);
  assertEquals(await t.toArray(), new Float32Array([2, 3, 4, 5]), "the device works first");
  // Recorded, not yet submitted:
  const later = own.readLater(t.buffer, 0, 16);
  // Submitted, waiting for the map:
  const inFlight = own.read(t.buffer, 0, 16);
  own.device.destroy(); // behind saeflow's back
  try {
    const lost = /GPU device was lost/;
    await within(5000, "readLater", assertRejects(() => later, GpuError, lost));
    await within(5000, "read", assertRejects(() => inFlight, GpuError, lost));
    await settleCallbacks();
    assertThrows(() => own.dispatch(pipeline, [t, n], [1]), GpuError, lost);
    assertThrows(() => own.throwIfFailed(), GpuError, lost);
    await within(5000, "sync", assertRejects(() => own.sync(), GpuError, lost));
    await within(5000, "toArray", assertRejects(() => t.toArray(), GpuError, lost));
    await within(5000, "read", assertRejects(() => own.read(t.buffer, 0, 4), GpuError, lost));
    const live = own.pool.liveBytes;
    assertThrows(() => Tensor.from([1, 2], [2], { gpu: own }), GpuError, lost);
    assertThrows(() => Tensor.zeros([2], "f32", { gpu: own }), GpuError, lost);
    assertEquals(own.pool.liveBytes, live, "nothing allocated on the lost device");
    assertThrows(() => own.write(t.buffer, 0, new Float32Array(4)), GpuError, lost);
  } finally {
    t.dispose();
    own.destroy();
  }
});

Deno.test("device lost: a readback whose map never settles still rejects", async () => {
  const own = await Gpu.create();
  const t = Tensor.from(new Float32Array([7]), [1], { gpu: own });
  const proto = GPUBuffer.prototype as unknown as Record<string, unknown>;
  const mapAsync = proto.mapAsync;
  // A driver that never answers the map (as on a hung or vanished GPU).
  proto.mapAsync = () => new Promise<undefined>(() => {});
  try {
    const read = own.read(t.buffer, 0, 4);
    await settleCallbacks();
    own.device.destroy();
    await within(5000, "read on a lost device", assertRejects(() => read, GpuError, "lost"));
  } finally {
    proto.mapAsync = mapAsync;
    t.dispose();
    own.destroy();
  }
});

Deno.test("device lost: sync() waiting on the queue rejects instead of hanging", async () => {
  const own = await Gpu.create();
  const queue = own.device.queue as unknown as Record<string, unknown>;
  // A queue that never reports the work done, as a vanished GPU would.
  queue.onSubmittedWorkDone = () => new Promise<undefined>(() => {});
  try {
    const waiting = own.sync();
    await settleCallbacks();
    own.device.destroy();
    await within(5000, "sync on a lost device", assertRejects(() => waiting, GpuError, "lost"));
    // And a sync started after the loss fails at once.
    await within(1000, "second sync", assertRejects(() => own.sync(), GpuError, "lost"));
  } finally {
    delete queue.onSubmittedWorkDone;
    own.destroy();
  }
});

Deno.test("uncaptured validation error: the next sync() and read() throw 'GPU validation error'", async () => {
  const own = await Gpu.create();
  const t = Tensor.from(new Float32Array([1, 2]), [2], { gpu: own });
  try {
    await own.sync(); // healthy so far
    const pipeline = own.pipeline("errors_add_one", ADD_ONE);
    // Through the raw device, so saeflow's own checks cannot catch it first: the layout has two
    // bindings, the group one.
    own.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: t.buffer } }],
    });
    const err = await within(5000, "sync", assertRejects(() => own.sync(), GpuError));
    assert(err.message.startsWith("GPU validation error: "), err.message);
    assert(/bind/i.test(err.message), `the driver's reason is kept: ${err.message}`);
    await within(
      5000,
      "read",
      assertRejects(() => own.read(t.buffer, 0, 8), GpuError, "GPU validation error"),
    );
    assertThrows(() => own.dispatch(pipeline, [t, own.uniform([2])], [1]), GpuError, "validation");
  } finally {
    t.dispose();
    own.destroy();
  }
});

Deno.test("destroy(): a destroyed Gpu says so", async () => {
  const own = await Gpu.create();
  own.destroy();
  await assertRejects(() => own.sync(), GpuError, "has been destroyed");
  assertThrows(() => Tensor.empty([1], "f32", { gpu: own }), GpuError, "has been destroyed");
});
