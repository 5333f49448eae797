/**
 * The WebGPU device: one per adapter, opened with the adapter's maximum limits and the optional
 * features saeflow can use. It owns the command recorder (every op records into one compute pass
 * that is submitted once, see {@link Gpu.flush}), the pipeline and bind-group caches, the buffer
 * pool and batched readback (MAP_READ staging buffers reused through a free list per size, see
 * {@link Gpu.readLater}). GPU failures (no adapter, device lost, validation errors) surface as
 * {@link GpuError}s, never as hangs: a lost device or an uncaptured validation error rejects every
 * pending read and wait at once, and every later op throws it.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";
import { BufferPool, isBufferReleased } from "./pool.ts";

/** An error from the GPU layer: no adapter, a lost device, a validation or shader error. */
export class GpuError extends SaeflowError {}

/** A buffer (or window into one) that a kernel binds. */
export interface BufferBinding {
  /** The GPU buffer. */
  buffer: GPUBuffer;
  /** Byte offset into the buffer (default 0). */
  offset?: number;
  /** Byte size of the window (default: the rest of the buffer). */
  size?: number;
}

/** Anything {@link Gpu.dispatch} accepts as a binding: a buffer, a window, or a `Tensor`. */
export type Bindable = GPUBuffer | BufferBinding | { binding(): BufferBinding };

/** Limits saeflow requests at the adapter's maximum (never hard-coded). */
const REQUESTED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupsPerDimension",
  "maxUniformBufferBindingSize",
  "maxUniformBuffersPerShaderStage",
] as const;

const OPTIONAL_FEATURES = ["shader-f16", "timestamp-query", "subgroups"] as const;

/** What the adapter is and what it offers. */
export interface GpuInfo {
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100". */
  description: string;
  /** Adapter vendor name. */
  vendor: string;
  /** Adapter architecture name. */
  architecture: string;
  /**
   * True for software (CPU) adapters such as Mesa's llvmpipe / lavapipe: the adapter's own flag,
   * or its description naming a known software rasterizer (see {@link isSoftwareAdapter}).
   */
  isFallbackAdapter: boolean;
  /** Optional features enabled on the device. */
  features: string[];
}

/** What {@link isSoftwareAdapter} reads: fields of `GPUAdapterInfo` (all optional). */
export interface AdapterIdentity {
  /** `GPUAdapterInfo.description`. */
  description?: string;
  /** `GPUAdapterInfo.device`. */
  device?: string;
  /** `GPUAdapterInfo.vendor`. */
  vendor?: string;
  /** `GPUAdapterInfo.architecture`. */
  architecture?: string;
  /** `GPUAdapterInfo.isFallbackAdapter` (or the older `GPUAdapter.isFallbackAdapter`). */
  isFallbackAdapter?: boolean;
}

/**
 * Names of software rasterizers as adapters report them: Mesa llvmpipe (GL) and lavapipe
 * (Vulkan, which reports "llvmpipe (LLVM …)"), softpipe, Google SwiftShader, Microsoft WARP
 * ("Microsoft Basic Render Driver").
 */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render driver/i;

/**
 * True when the adapter computes on the CPU: its `isFallbackAdapter` flag, or a description,
 * device, vendor or architecture naming a known software rasterizer. The flag alone is not
 * enough: where it lives and whether it is set differs across Deno/wgpu versions and backends.
 *
 * @example
 * ```ts
 * import { isSoftwareAdapter } from "./device.ts";
 * const lavapipe = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "65541" };
 * if (!isSoftwareAdapter(lavapipe)) throw new Error("llvmpipe is a software adapter");
 * if (isSoftwareAdapter({ description: "NVIDIA H100 80GB HBM3", vendor: "4318" })) {
 *   throw new Error("an H100 is not");
 * }
 * ```
 */
export function isSoftwareAdapter(info: AdapterIdentity): boolean {
  if (info.isFallbackAdapter === true) return true;
  return [info.description, info.device, info.vendor, info.architecture].some(
    (field) => typeof field === "string" && SOFTWARE_ADAPTER.test(field),
  );
}

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();
function bufferId(buffer: GPUBuffer): number {
  let id = bufferIds.get(buffer);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(buffer, id);
  }
  return id;
}

function toBinding(b: Bindable): BufferBinding {
  if ("binding" in b && typeof b.binding === "function") return b.binding();
  if ("buffer" in b && (b as BufferBinding).buffer) return b as BufferBinding;
  return { buffer: b as GPUBuffer };
}

/**
 * Throws when `buffer` was released to the pool (a disposed tensor's storage, kept as a raw
 * buffer): recording it would read or write whatever tensor gets the buffer next, or, once the
 * pool destroyed it, fail validation and so poison the device for every later call.
 */
function checkNotReleased(buffer: GPUBuffer, op: string): void {
  if (isBufferReleased(buffer)) {
    throw new GpuError(
      `${op}: a buffer of ${buffer.size} bytes belongs to a disposed tensor or object (used ` +
        "after dispose())",
    );
  }
}

const MAX_BIND_GROUPS_CACHED = 8192;

interface PendingRead {
  staging: GPUBuffer;
  size: number;
  resolve: (data: ArrayBuffer) => void;
  reject: (err: unknown) => void;
}

/** Most free staging buffers kept per size; more are destroyed when released. */
const STAGING_FREE_PER_SIZE = 8;

/**
 * A WebGPU device with saeflow's recorder, caches and pool. Get the shared one with
 * {@link getGpu}; create extra ones with {@link Gpu.create}.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * if (!gpu.info.description) throw new Error("the adapter has no description");
 * if (gpu !== await getGpu()) throw new Error("getGpu() returns the shared device");
 * ```
 */
export class Gpu {
  /** Adapter facts and enabled features. */
  readonly info: GpuInfo;
  /** Largest size of one storage binding, in bytes. */
  readonly maxBindingSize: number;
  /** Largest size of one buffer, in bytes. */
  readonly maxBufferSize: number;
  /** Required alignment of a storage binding's offset, in bytes. */
  readonly bindingOffsetAlignment: number;
  /** Most workgroups per dispatch dimension. */
  readonly maxWorkgroupsPerDimension: number;
  /** The buffer pool (by exact size). */
  readonly pool: BufferPool;

  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #recorded = 0;
  #pipelines = new Map<string, GPUComputePipeline>();
  #pipelineIds = new WeakMap<GPUComputePipeline, number>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #uniforms = new Map<string, GPUBuffer>();
  #pendingReads: PendingRead[] = [];
  /** Called with the error when the device fails: in-flight readbacks and `sync()` waits. */
  #waiters = new Set<(err: GpuError) => void>();
  #stagingFree = new Map<number, GPUBuffer[]>();
  #error: GpuError | null = null;
  #destroyed = false;
  /**
   * {@link Gpu.checkLater} reads recorded but not yet submitted, those submitted and not yet
   * inspected, and the first error one of them found.
   */
  #checksRecorded: Promise<void>[] = [];
  #checks = new Set<Promise<void>>();
  #checkError: Error | null = null;

  private constructor(readonly adapter: GPUAdapter, readonly device: GPUDevice, info: GpuInfo) {
    this.info = info;
    const limits = device.limits;
    this.maxBindingSize = limits.maxStorageBufferBindingSize;
    this.maxBufferSize = limits.maxBufferSize;
    this.bindingOffsetAlignment = limits.minStorageBufferOffsetAlignment;
    this.maxWorkgroupsPerDimension = limits.maxComputeWorkgroupsPerDimension;
    this.pool = new BufferPool(device);
    device.lost.then((lost) => {
      if (this.#destroyed) return;
      this.#fail(
        new GpuError(
          `the GPU device was lost (${lost.reason}: ${lost.message || "no message"}); ` +
            "its buffers and tensors are gone: save what is on the host and open a new device",
        ),
      );
    });
    device.addEventListener("uncapturederror", (event) => {
      const message = (event as GPUUncapturedErrorEvent).error?.message ?? String(event);
      this.#fail(new GpuError(`GPU validation error: ${message}`));
    });
  }

  /**
   * Opens a device on the best adapter, with the adapter's maximum limits and the optional
   * features `shader-f16`, `timestamp-query` and `subgroups` when offered.
   * @throws {GpuError} when no adapter exists or the device cannot be created.
   */
  static async create(
    options: { powerPreference?: GPUPowerPreference } = {},
  ): Promise<Gpu> {
    if (typeof navigator === "undefined" || !navigator.gpu) {
      throw new GpuError(
        "WebGPU is not available in this runtime (navigator.gpu is missing): run under Deno 2.x",
      );
    }
    let adapter: GPUAdapter | null;
    try {
      adapter = await navigator.gpu.requestAdapter({
        powerPreference: options.powerPreference ?? "high-performance",
      });
    } catch (err) {
      throw new GpuError(`requesting a WebGPU adapter failed: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    }
    if (!adapter) {
      throw new GpuError(
        "no WebGPU adapter found: install a GPU driver, or Mesa (libegl-mesa0 or " +
          "mesa-vulkan-drivers) for the llvmpipe software adapter",
      );
    }
    const requiredLimits: Record<string, number> = {};
    const adapterLimits = adapter.limits as unknown as Record<string, number>;
    for (const name of REQUESTED_LIMITS) {
      const value = adapterLimits[name];
      if (typeof value === "number") requiredLimits[name] = value;
    }
    const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({
        requiredLimits,
        requiredFeatures: features as unknown as GPUFeatureName[],
      });
    } catch (err) {
      throw new GpuError(`could not create a WebGPU device: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // Deno accepts unknown limit names silently: verify that what we asked for was granted.
    const granted = device.limits as unknown as Record<string, number>;
    for (const [name, value] of Object.entries(requiredLimits)) {
      if (granted[name] !== value) {
        throw new GpuError(`device limit ${name} is ${granted[name]}, requested ${value}`);
      }
    }
    const ai = adapter.info;
    const fallbackFlag = (ai as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
    return new Gpu(adapter, device, {
      description: ai.description || ai.device || "unknown adapter",
      vendor: ai.vendor,
      architecture: ai.architecture,
      isFallbackAdapter: isSoftwareAdapter({
        description: ai.description,
        device: ai.device,
        vendor: ai.vendor,
        architecture: ai.architecture,
        isFallbackAdapter: fallbackFlag,
      }),
      features: [...features],
    });
  }

  /** True when the device offers `shader-f16`. */
  get hasF16(): boolean {
    return this.info.features.includes("shader-f16");
  }

  /** True when the device offers `timestamp-query`. */
  get hasTimestamps(): boolean {
    return this.info.features.includes("timestamp-query");
  }

  /** True when the device offers `subgroups`. */
  get hasSubgroups(): boolean {
    return this.info.features.includes("subgroups");
  }

  /** Records the first failure and rejects everything still waiting on the GPU with it. */
  #fail(err: GpuError): void {
    if (!this.#error) this.#error = err;
    const first = this.#error;
    for (const read of this.#pendingReads.splice(0)) read.reject(first);
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake(first);
  }

  /** Throws the first asynchronous GPU error seen so far (validation, device loss), if any. */
  throwIfFailed(): void {
    if (this.#destroyed) throw new GpuError("this GPU device has been destroyed");
    if (this.#error) throw this.#error;
  }

  /**
   * A compute pipeline for `code`, compiled once and cached under `key`. `key` must identify the
   * WGSL text (include any constants baked into it).
   */
  pipeline(key: string, code: string, entryPoint = "main"): GPUComputePipeline {
    const cacheKey = `${key}#${entryPoint}`;
    let pipeline = this.#pipelines.get(cacheKey);
    if (pipeline) return pipeline;
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code, label: key });
    pipeline = this.device.createComputePipeline({
      label: key,
      layout: "auto",
      compute: { module, entryPoint },
    });
    this.device.popErrorScope().then((error) => {
      if (error) this.#fail(new GpuError(`kernel "${key}" failed to compile: ${error.message}`));
    });
    this.#pipelines.set(cacheKey, pipeline);
    this.#pipelineIds.set(pipeline, this.#pipelines.size);
    return pipeline;
  }

  /**
   * A read-only uniform buffer holding `values`, cached by content (shape parameters are the
   * same from step to step, so no per-dispatch upload is needed). Numbers are written as u32
   * unless `values` is a typed array, whose bytes are used as they are.
   */
  uniform(values: ArrayLike<number> | Float32Array | Int32Array | Uint32Array): GPUBuffer {
    const bytes = ArrayBuffer.isView(values)
      ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
      : new Uint8Array(Uint32Array.from(values as ArrayLike<number>).buffer);
    const key = bytes.join(",");
    let buffer = this.#uniforms.get(key);
    if (buffer) return buffer;
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(bytes);
    buffer.unmap();
    this.#uniforms.set(key, buffer);
    return buffer;
  }

  #bindGroup(pipeline: GPUComputePipeline, bindings: BufferBinding[]): GPUBindGroup {
    let key = `${this.#pipelineIds.get(pipeline)}`;
    for (const b of bindings) key += `|${bufferId(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1}`;
    let group = this.#bindGroups.get(key);
    if (group) return group;
    if (this.#bindGroups.size >= MAX_BIND_GROUPS_CACHED) this.#bindGroups.clear();
    group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((resource, binding) => ({
        binding,
        resource: resource.size === undefined && !resource.offset
          ? { buffer: resource.buffer }
          : resource,
      })),
    });
    this.#bindGroups.set(key, group);
    return group;
  }

  #passEncoder(): GPUComputePassEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (!this.#pass) this.#pass = this.#encoder.beginComputePass();
    return this.#pass;
  }

  #copyEncoder(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  /**
   * Records one dispatch of `pipeline` into the pending pass. `bindings[i]` is bound at
   * `@group(0) @binding(i)`. Nothing runs until {@link flush} (or a read) submits the pass.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    bindings: Bindable[],
    workgroups: readonly [number, number?, number?],
  ): void {
    this.throwIfFailed();
    const [x, y = 1, z = 1] = workgroups;
    const max = this.maxWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new GpuError(
        `dispatch of [${x}, ${y}, ${z}] workgroups exceeds the limit of ${max} per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    const resolved = bindings.map(toBinding);
    for (const b of resolved) {
      checkNotReleased(b.buffer, "dispatch");
      const size = b.size ?? b.buffer.size - (b.offset ?? 0);
      if (size > this.maxBindingSize && !(b.buffer.usage & GPUBufferUsage.UNIFORM)) {
        throw new GpuError(
          `a binding of ${size} bytes exceeds this device's maxStorageBufferBindingSize of ` +
            `${this.maxBindingSize} bytes; split the tensor into row windows`,
        );
      }
    }
    const pass = this.#passEncoder();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.#bindGroup(pipeline, resolved));
    pass.dispatchWorkgroups(x, y, z);
    this.#recorded++;
  }

  /** Records a buffer-to-buffer copy (ends the current pass; still one submit). */
  copy(
    src: GPUBuffer,
    srcOffset: number,
    dst: GPUBuffer,
    dstOffset: number,
    size: number,
  ): void {
    this.throwIfFailed();
    checkNotReleased(src, "copy");
    checkNotReleased(dst, "copy");
    if (size === 0) return;
    this.#copyEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.#recorded++;
  }

  /** Records zero-filling of `size` bytes of `buffer` from `offset`. */
  clear(buffer: GPUBuffer, offset = 0, size?: number): void {
    this.throwIfFailed();
    checkNotReleased(buffer, "clear");
    this.#copyEncoder().clearBuffer(buffer, offset, size);
    this.#recorded++;
  }

  /**
   * Uploads `data` into `buffer` at `offset` bytes. Work recorded earlier is submitted first, so
   * the write lands after every previously recorded op and before every later one.
   */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.throwIfFailed();
    checkNotReleased(buffer, "write");
    this.flush();
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, offset, padded);
    }
  }

  /** Number of ops recorded since the last submit. */
  get pendingOps(): number {
    return this.#recorded;
  }

  /** Submits everything recorded so far as one command buffer and starts pending readbacks. */
  flush(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    const encoder = this.#encoder;
    this.#encoder = null;
    this.#recorded = 0;
    const reads = this.#pendingReads.splice(0);
    for (const check of this.#checksRecorded.splice(0)) this.#checks.add(check);
    if (encoder) this.device.queue.submit([encoder.finish()]);
    else if (reads.length) this.device.queue.submit([]);
    for (const read of reads) this.#startMap(read);
  }

  /**
   * Maps `read`'s staging buffer and settles its promise: with the data, or with the device's
   * failure as soon as one is reported (a map on a lost device may never settle).
   */
  #startMap(read: PendingRead): void {
    let settled = false;
    const wake = (err: GpuError) => {
      settled = true;
      read.reject(err);
    };
    this.#waiters.add(wake);
    let mapping: Promise<undefined>;
    try {
      mapping = read.staging.mapAsync(GPUMapMode.READ, 0, read.size);
    } catch (err) {
      mapping = Promise.reject(err);
    }
    mapping.then(() => {
      this.#waiters.delete(wake);
      let data: ArrayBuffer | null = null;
      let failure: unknown = null;
      try {
        if (!settled) data = read.staging.getMappedRange(0, read.size).slice(0);
        read.staging.unmap();
        this.#releaseStaging(read.staging);
      } catch (err) {
        // A device lost after the map resolved: the buffer went with it.
        failure = err;
      }
      if (settled) return;
      settled = true;
      if (this.#error) read.reject(this.#error);
      else if (failure !== null || data === null) this.#readFailed(read, failure);
      else read.resolve(data);
    }, (err) => {
      this.#waiters.delete(wake);
      if (settled) return;
      settled = true;
      this.#readFailed(read, err);
    });
  }

  /** Rejects `read`, preferring a device loss reported within one more turn of the loop. */
  #readFailed(read: PendingRead, err: unknown): void {
    setTimeout(() => {
      read.reject(
        this.#error ??
          new GpuError(`GPU readback failed: ${(err as Error)?.message ?? err}`, { cause: err }),
      );
    }, 0);
  }

  /**
   * A MAP_READ staging buffer of at least `size` bytes: a free one of that (16-byte aligned) size
   * when there is one, else a new one. Released buffers go back to a free list per size, up to
   * {@link STAGING_FREE_PER_SIZE} each.
   */
  #staging(size: number): GPUBuffer {
    const aligned = Math.max(16, Math.ceil(size / 16) * 16);
    const free = this.#stagingFree.get(aligned);
    if (free?.length) return free.pop()!;
    return this.device.createBuffer({
      size: aligned,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  #releaseStaging(buffer: GPUBuffer): void {
    const list = this.#stagingFree.get(buffer.size) ?? [];
    if (list.length < STAGING_FREE_PER_SIZE) {
      list.push(buffer);
      this.#stagingFree.set(buffer.size, list);
    } else {
      buffer.destroy();
    }
  }

  /**
   * Records a copy of `size` bytes of `buffer` into a MAP_READ staging buffer; the promise
   * resolves after a later {@link flush} once the GPU has finished. Many reads recorded in one
   * step share one submit and one wait. Staging buffers are reused: each size keeps a free list
   * of up to 8 buffers, so a read every N steps allocates nothing after the first. The promise
   * rejects with a {@link GpuError} when the device is lost or reports a validation error first.
   */
  readLater(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    this.throwIfFailed();
    checkNotReleased(buffer, "read");
    const aligned = Math.ceil(size / 4) * 4;
    const staging = this.#staging(aligned);
    this.copy(buffer, offset, staging, 0, aligned);
    return new Promise<ArrayBuffer>((resolve, reject) => {
      this.#pendingReads.push({
        staging,
        size: aligned,
        resolve: (data) => resolve(aligned === size ? data : data.slice(0, size)),
        reject,
      });
    });
  }

  /**
   * Records a read of `size` bytes of `buffer` (an error flag a kernel wrote) that `check`
   * inspects once the GPU has finished; no submit or wait of its own. When `check` returns an
   * error, the next {@link read}, {@link sync} or {@link settleChecks} throws it, once: a GPU-side
   * validation reports a named error with the output it concerns, without a sync per op.
   */
  checkLater(
    buffer: GPUBuffer,
    offset: number,
    size: number,
    check: (bytes: ArrayBuffer) => Error | null,
  ): void {
    const done: Promise<void> = this.readLater(buffer, offset, size).then((bytes) => {
      const err = check(bytes);
      if (err && !this.#checkError) this.#checkError = err;
    }, () => {/* a failed device is reported by throwIfFailed */}).finally(() => {
      this.#checks.delete(done);
    });
    this.#checksRecorded.push(done);
  }

  /**
   * Waits for every submitted {@link checkLater} read and throws the first error they found (then
   * forgets it, so later calls work again). Checks recorded after the last flush are not waited
   * for (they are reported by a later call).
   */
  async settleChecks(): Promise<void> {
    if (this.#checks.size) {
      const submitted = [...this.#checks];
      await Promise.all(submitted);
      for (const check of submitted) this.#checks.delete(check);
    }
    const err = this.#checkError;
    this.#checkError = null;
    if (err) throw err;
  }

  /** Reads bytes back now: records the copy, submits, and waits for the GPU. */
  async read(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    const promise = this.readLater(buffer, offset, size);
    this.flush();
    const data = await promise;
    this.throwIfFailed();
    await this.settleChecks();
    return data;
  }

  /**
   * Submits pending work and waits until the GPU has finished it.
   * @throws {GpuError} when the device is lost (also while waiting: the wait never outlives the
   * device) or has reported a validation error.
   */
  async sync(): Promise<void> {
    this.throwIfFailed();
    this.flush();
    await new Promise<void>((resolve, reject) => {
      // A lost device may never report the work done: a failure ends the wait (and is thrown
      // below).
      const wake = () => resolve();
      this.#waiters.add(wake);
      let done: Promise<undefined>;
      try {
        done = this.device.queue.onSubmittedWorkDone();
      } catch (err) {
        done = Promise.reject(err);
      }
      done.then(() => {
        this.#waiters.delete(wake);
        resolve();
      }, (err) => {
        this.#waiters.delete(wake);
        // Prefer a device loss reported within one more turn of the loop.
        setTimeout(() => {
          if (this.#error) resolve();
          else reject(new GpuError(`waiting for the GPU failed: ${err?.message ?? err}`));
        }, 0);
      });
    });
    this.throwIfFailed();
    await this.settleChecks();
  }

  /** Drops cached bind groups and pooled buffers (call after freeing many large tensors). */
  trim(): void {
    this.flush();
    this.#bindGroups.clear();
    this.pool.trim();
  }

  /** Destroys the device and everything it owns. */
  destroy(): void {
    if (this.#destroyed) return;
    this.flush();
    this.#destroyed = true;
    this.pool.trim();
    for (const b of this.#uniforms.values()) b.destroy();
    this.#uniforms.clear();
    this.#bindGroups.clear();
    if (defaultGpu && currentDefault === this) {
      defaultGpu = null;
      currentDefault = null;
    }
    this.device.destroy();
  }
}

/**
 * Destroys `gpu` when this isolate unloads (the end of a script, a worker or a test module), so
 * its native device is released in order rather than left to process-exit teardown.
 */
function destroyAtUnload(gpu: Gpu): void {
  if (typeof globalThis.addEventListener !== "function") return;
  globalThis.addEventListener("unload", () => gpu.destroy(), { once: true });
}

let defaultGpu: Promise<Gpu> | null = null;
let currentDefault: Gpu | null = null;

/**
 * The shared default device, created on first call.
 * @throws {GpuError} when no WebGPU adapter is available.
 */
export function getGpu(): Promise<Gpu> {
  if (!defaultGpu) {
    defaultGpu = Gpu.create().then((gpu) => {
      currentDefault = gpu;
      destroyAtUnload(gpu);
      return gpu;
    }, (err) => {
      defaultGpu = null;
      throw err;
    });
  }
  return defaultGpu;
}

/**
 * The shared default device if {@link getGpu} has already resolved.
 * @throws {GpuError} when it has not: call `await getGpu()` first.
 */
export function currentGpu(): Gpu {
  if (!currentDefault) {
    throw new GpuError("no GPU device yet: call `await getGpu()` before creating tensors");
  }
  return currentDefault;
}
