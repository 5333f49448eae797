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

/**
 * The liveness of one acquisition of a buffer, shared by the tensor that owns it and every view
 * of it: `live` turns false when the buffer goes back to the pool, and the next acquisition of
 * the same buffer gets a new lease, so a view kept past its owner's `dispose()` can tell that
 * the bytes now belong to someone else.
 */
export interface BufferLease {
  /** False once the buffer was released (or destroyed). */
  live: boolean;
}

const leases = new WeakMap<GPUBuffer, BufferLease>();

/**
 * The current lease of `buffer`: the one its last `acquire` handed out, or (for a buffer that
 * never came from a pool) a new live one.
 */
export function bufferLease(buffer: GPUBuffer): BufferLease {
  let lease = leases.get(buffer);
  if (!lease) {
    lease = { live: true };
    leases.set(buffer, lease);
  }
  return lease;
}

/** True when `buffer` sits released in a pool (or was destroyed by `trim`): binding it is misuse. */
export function isBufferReleased(buffer: GPUBuffer): boolean {
  return leases.get(buffer)?.live === false;
}

/**
 * Ends `buffer`'s lease and destroys it: for buffers created outside the pool, so that a later
 * binding of it is refused with a named error instead of a validation error that would poison
 * the device.
 */
export function destroyBuffer(buffer: GPUBuffer): void {
  bufferLease(buffer).live = false;
  buffer.destroy();
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
      const buffer = list.pop()!;
      leases.set(buffer, { live: true });
      return buffer;
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    leases.set(buffer, { live: true });
    this.#liveBytes += size;
    return buffer;
  }

  /**
   * Returns `buffer` to the pool for reuse and ends its lease. Releasing a buffer that is
   * already released does nothing (it must not sit in the free list twice).
   */
  release(buffer: GPUBuffer): void {
    const lease = bufferLease(buffer);
    if (!lease.live) return;
    lease.live = false;
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
