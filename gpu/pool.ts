/**
 * A pool of storage buffers keyed by exact byte size. GPU memory is invisible to the garbage
 * collector, so tensors return their buffers here on `dispose()` and the next tensor of the
 * same size reuses them instead of allocating.
 * @module
 */

/** Usage flags of every pooled buffer. */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to the pool's granularity (16 bytes, at least 16). */
export function poolSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** Storage buffers by size, reused after release. */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #liveBytes = 0;
  #freeBytes = 0;

  /** A pool allocating from `device`. */
  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` bytes (exactly {@link poolSize}`(bytes)`), reused when free. */
  acquire(bytes: number): GPUBuffer {
    const size = poolSize(bytes);
    const list = this.#free.get(size);
    if (list?.length) {
      this.#freeBytes -= size;
      this.#liveBytes += size;
      return list.pop()!;
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    this.#liveBytes += size;
    return buffer;
  }

  /** Returns `buffer` to the pool for reuse. */
  release(buffer: GPUBuffer): void {
    const list = this.#free.get(buffer.size);
    if (list) list.push(buffer);
    else this.#free.set(buffer.size, [buffer]);
    this.#liveBytes -= buffer.size;
    this.#freeBytes += buffer.size;
  }

  /** Bytes held by live (acquired, not released) buffers. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** Bytes held by free buffers waiting for reuse. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /** Destroys every free buffer. */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.#freeBytes = 0;
  }
}
