/**
 * `Tensor`: a GPU buffer with a shape and a dtype. Data lives on the GPU; `toArray()` reads it
 * back. Memory is released explicitly with `dispose()` (or `using`), because GPU buffers are
 * invisible to the garbage collector.
 * @module
 */

import { bf16ToF32, f16ToF32 } from "../io/dtypes.ts";
import { type BufferBinding, currentGpu, type Gpu, GpuError } from "./device.ts";
import { type BufferLease, bufferLease } from "./pool.ts";

/** Element types a tensor holds on the GPU. */
export type DType = "f32" | "i32" | "u32";

/** Element types accepted on upload (`f16`/`bf16` bit patterns are converted to f32). */
export type UploadDType = DType | "f16" | "bf16";

/** The host array type of each dtype. */
export type HostArray<D extends DType = DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** Number of elements of `shape` (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new GpuError(
        `invalid tensor shape [${shape.join(", ")}]: dims must be safe integers ≥ 0`,
      );
    }
  }
}

/**
 * Throws a {@link GpuError} naming `name` (e.g. `"W_enc"`), its shape and the limit when a tensor
 * of `shape` cannot exist on `gpu`: a dim that is not a safe integer ≥ 0, or more bytes than the
 * device's `maxBufferSize`. Call it before building large host arrays for the tensor, so a size
 * the device cannot hold fails at once rather than after the host work.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { checkTensorFits } from "./tensor.ts";
 * const gpu = await getGpu();
 * checkTensorFits(gpu, [768, 16384], "W_enc"); // fits
 * let msg = "";
 * try {
 *   checkTensorFits(gpu, [2 ** 20, 2 ** 20], "W_enc");
 * } catch (err) {
 *   msg = (err as Error).message;
 * }
 * if (!msg.includes("W_enc") || !msg.includes("maxBufferSize")) throw new Error(msg);
 * ```
 */
export function checkTensorFits(gpu: Gpu, shape: readonly number[], name = "tensor"): void {
  checkShape(shape);
  const bytes = numel(shape) * 4;
  if (bytes > gpu.maxBufferSize) {
    throw new GpuError(
      `${name} [${shape.join(", ")}] needs ${bytes} bytes, more than this device's ` +
        `maxBufferSize of ${gpu.maxBufferSize} bytes`,
    );
  }
}

/** Throws unless every value of `data` is an integer that `dtype` holds exactly. */
function checkIntegers(data: ArrayLike<number>, dtype: "i32" | "u32"): void {
  const [lo, hi] = dtype === "i32" ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new GpuError(
        `Tensor.from: value ${v} at index ${i} is not ${dtype === "i32" ? "an" : "a"} ${dtype} ` +
          `(an integer in [${lo}, ${hi}])`,
      );
    }
  }
}

/** Options of tensor constructors. */
export interface TensorOptions {
  /** The device; defaults to the shared one (`await getGpu()` must have run). */
  gpu?: Gpu;
}

/**
 * A tensor on the GPU.
 *
 * Disposal: the tensor that owns a buffer (`owned`, e.g. from {@link Tensor.from}) returns it to
 * the pool on `dispose()`; views of it ({@link Tensor.reshape}, row windows) share its disposal
 * state, so after the owner's `dispose()` every view is disposed too and using one throws a
 * {@link GpuError} (it never reads the next tensor's data from the reused buffer). Disposing a
 * view only ends that view: the owner and its other views stay usable.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { Tensor } from "./tensor.ts";
 * await getGpu();
 * using t = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const data = await t.toArray(); // Float32Array [1, 2, 3, 4]
 * if (data[3] !== 4) throw new Error("unexpected");
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** Number of elements. */
  readonly size: number;
  #disposed = false;
  readonly #buffer: GPUBuffer;
  /** The buffer's lease when this tensor was made: shared with the owner and its other views. */
  readonly #lease: BufferLease;

  /**
   * Wraps `buffer` (from `offset` bytes). Prefer {@link Tensor.from} / {@link Tensor.empty}.
   * @param owned when true, `dispose()` returns the buffer to the pool.
   */
  constructor(
    readonly gpu: Gpu,
    buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: D,
    readonly offset = 0,
    readonly owned = true,
  ) {
    checkShape(shape);
    this.#buffer = buffer;
    this.#lease = bufferLease(buffer);
    if (!this.#lease.live) {
      throw new GpuError(
        `cannot make a tensor [${shape.join(", ")}] on a buffer that was released by dispose()`,
      );
    }
    this.size = numel(shape);
    if (offset + this.byteLength > buffer.size) {
      throw new GpuError(
        `tensor [${shape.join(", ")}] at offset ${offset} needs ${this.byteLength} bytes but ` +
          `its buffer has ${buffer.size}`,
      );
    }
  }

  /** Bytes of data (4 per element). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /**
   * The GPU buffer holding the data (shared with views).
   * @throws {GpuError} when the tensor, or the tensor owning its buffer, was disposed.
   */
  get buffer(): GPUBuffer {
    this.#check();
    return this.#buffer;
  }

  /** True after `dispose()` of this tensor, or of the tensor that owns its buffer. */
  get disposed(): boolean {
    return this.#disposed || !this.#lease.live;
  }

  /** An uninitialised tensor (pooled memory: contents are arbitrary). */
  static empty<D extends DType = "f32">(
    shape: readonly number[],
    dtype: D = "f32" as D,
    options: TensorOptions = {},
  ): Tensor<D> {
    const gpu = options.gpu ?? currentGpu();
    gpu.throwIfFailed(); // a lost or failed device: say so before allocating on it
    checkTensorFits(gpu, shape);
    return new Tensor(gpu, gpu.pool.acquire(numel(shape) * 4), [...shape], dtype);
  }

  /** A tensor filled with zeros. */
  static zeros<D extends DType = "f32">(
    shape: readonly number[],
    dtype: D = "f32" as D,
    options: TensorOptions = {},
  ): Tensor<D> {
    const t = Tensor.empty(shape, dtype, options);
    t.gpu.clear(t.buffer, 0, t.buffer.size);
    return t;
  }

  /**
   * Uploads host data. `shape` defaults to `[data.length]`; the dtype follows the array type
   * (Float32Array → f32, Int32Array → i32, Uint32Array → u32, number[] → f32) unless
   * `options.dtype` says otherwise; `f16` / `bf16` take Uint16Array bit patterns and upload f32.
   */
  static from(
    data: Float32Array | Int32Array | Uint32Array | Uint16Array | Float64Array | number[],
    shape?: readonly number[],
    options: TensorOptions & { dtype?: UploadDType } = {},
  ): Tensor {
    const ok = data instanceof Float32Array || data instanceof Int32Array ||
      data instanceof Uint32Array || data instanceof Uint16Array ||
      data instanceof Float64Array || Array.isArray(data);
    if (!ok) {
      const what = data === null || typeof data !== "object"
        ? String(data === null ? "null" : typeof data)
        : (data as object).constructor?.name ?? "object";
      throw new GpuError(
        `Tensor.from: data is ${what}, expected a Float32Array, Int32Array, Uint32Array, ` +
          "Uint16Array (f16/bf16 bits), Float64Array or number[]",
      );
    }
    const inferred: UploadDType = data instanceof Int32Array
      ? "i32"
      : data instanceof Uint32Array
      ? "u32"
      : data instanceof Uint16Array
      ? "f16"
      : "f32";
    const dtype = options.dtype ?? inferred;
    let host: Float32Array | Int32Array | Uint32Array;
    if (dtype === "f16" || dtype === "bf16") {
      if (!(data instanceof Uint16Array)) {
        throw new GpuError(`dtype ${dtype} uploads need a Uint16Array of bit patterns`);
      }
      host = dtype === "f16" ? f16ToF32(data) : bf16ToF32(data);
    } else if (dtype === "f32") {
      host = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    } else if (dtype === "i32" || dtype === "u32") {
      const native = dtype === "i32" ? data instanceof Int32Array : data instanceof Uint32Array;
      if (!native) checkIntegers(data as ArrayLike<number>, dtype);
      host = native
        ? data as Int32Array | Uint32Array
        : dtype === "i32"
        ? Int32Array.from(data as ArrayLike<number>)
        : Uint32Array.from(data as ArrayLike<number>);
    } else {
      throw new GpuError(
        `Tensor.from: dtype ${JSON.stringify(dtype)}, expected f32, i32, u32, f16 or bf16`,
      );
    }
    const finalShape = shape ?? [host.length];
    if (numel(finalShape) !== host.length) {
      throw new GpuError(
        `Tensor.from: shape [${finalShape.join(", ")}] has ${numel(finalShape)} elements but ` +
          `the data has ${host.length}`,
      );
    }
    const gpuDtype: DType = dtype === "f16" || dtype === "bf16" ? "f32" : dtype;
    const t = Tensor.empty(finalShape, gpuDtype, options);
    if (host.length) t.gpu.write(t.buffer, 0, host);
    return t;
  }

  /** The binding of this tensor's bytes (what kernels bind). */
  binding(): BufferBinding {
    this.#check();
    if (this.offset === 0 && this.buffer.size === this.byteLength) return { buffer: this.buffer };
    return { buffer: this.buffer, offset: this.offset, size: Math.max(4, this.byteLength) };
  }

  /** A view of the same data with another shape (no copy; the view does not own the buffer). */
  reshape(shape: readonly number[]): Tensor<D> {
    this.#check();
    const resolved = [...shape];
    const inferIdx = resolved.indexOf(-1);
    if (inferIdx >= 0) {
      const rest = numel(resolved.filter((_, i) => i !== inferIdx));
      resolved[inferIdx] = rest === 0 ? 0 : this.size / rest;
    }
    if (numel(resolved) !== this.size || !resolved.every(Number.isSafeInteger)) {
      throw new GpuError(
        `cannot reshape [${this.shape.join(", ")}] (${this.size} elements) to [${
          shape.join(", ")
        }]`,
      );
    }
    return new Tensor(this.gpu, this.buffer, resolved, this.dtype, this.offset, false);
  }

  /** Reads the data back to the host (submits pending GPU work first). */
  async toArray(): Promise<HostArray<D>> {
    this.#check();
    const bytes = this.size === 0
      ? new ArrayBuffer(0)
      : await this.gpu.read(this.buffer, this.offset, this.byteLength);
    return wrapHost(bytes, this.dtype) as HostArray<D>;
  }

  /** A deep copy in a new buffer. */
  clone(): Tensor<D> {
    this.#check();
    const t = Tensor.empty(this.shape, this.dtype, { gpu: this.gpu });
    this.gpu.copy(this.buffer, this.offset, t.buffer, 0, this.byteLength);
    return t;
  }

  /**
   * Releases the buffer to the pool (an owning tensor; its views are disposed with it) or ends
   * this view (the owner's buffer stays). Using the tensor afterwards throws a {@link GpuError}.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // A lease already ended (another owner of the same acquisition disposed it) must not put
    // the buffer into the pool a second time.
    if (this.owned && this.#lease.live) this.gpu.pool.release(this.#buffer);
  }

  /** `using t = …` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #check(): void {
    if (this.#disposed) {
      throw new GpuError(`${this} was used after dispose()`);
    }
    if (!this.#lease.live) {
      throw new GpuError(
        `${this} was used after the tensor owning its buffer was disposed ` +
          "(a view lives only as long as its owner)",
      );
    }
  }

  /** A short description, e.g. `Tensor(f32, [2, 3])`. */
  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}])`;
  }
}

/** Wraps raw bytes as the host array type of `dtype`. */
export function wrapHost(bytes: ArrayBuffer, dtype: DType): HostArray {
  if (dtype === "f32") return new Float32Array(bytes);
  if (dtype === "i32") return new Int32Array(bytes);
  return new Uint32Array(bytes);
}

/** Reads several tensors back with one submit and one wait. */
export async function readAll(tensors: readonly Tensor[]): Promise<HostArray[]> {
  if (!Array.isArray(tensors) || !tensors.every((t) => t instanceof Tensor)) {
    throw new GpuError("readAll: expected an array of Tensors");
  }
  if (!tensors.length) return [];
  const gpu = tensors[0].gpu;
  const reads = tensors.map((t) =>
    t.size === 0
      ? Promise.resolve(new ArrayBuffer(0))
      : gpu.readLater(t.buffer, t.offset, t.byteLength)
  );
  gpu.flush();
  const bytes = await Promise.all(reads);
  gpu.throwIfFailed();
  await gpu.settleChecks();
  return bytes.map((b, i) => wrapHost(b, tensors[i].dtype));
}
