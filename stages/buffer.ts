/**
 * The buffer stage: SAELens's `mixing_buffer` (spec §4.4, newest `mix_fraction` semantics) on the
 * GPU. Activation blocks are appended to a store of rows; whenever it holds at least `bufferSize`
 * rows, a seeded permutation (drawn on the host) shuffles it, the first
 * max(1, ⌊⌊N·(1 − mixFraction)⌋ / batchSize⌋) batches are served and the rest is kept to mix with
 * the next blocks. Every hook key is shuffled by the same permutation, so each SAE of a
 * several-SAE run gets exactly the batches it would get training alone. When the upstream ends,
 * the remaining whole batches are served in the order they are held. `training/mixing_buffer.ts`
 * is the CPU reference; both give the same batches for the same seed.
 *
 * Memory: two stores per hook key (the rows being gathered and the rows being served), each of
 * {@link bufferCapacityRows} rows, plus the served batches in flight — fixed by the config and
 * reported by {@link ActivationBuffer.memoryBytes}.
 *
 * Exact resume: the buffer is a pull source (a batch is made only when the consumer asks), so
 * the only batches beyond the consumer's position are those already pulled into a stream queue.
 * {@link ActivationBuffer.snapshot} captures them together with the held rows, the rows still
 * to serve, the RNG state and the cursor of the last absorbed block; a buffer built from that
 * snapshot serves exactly the batches the original would have.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { readAll, Tensor } from "../gpu/tensor.ts";
import { gatherRows } from "../gpu/kernels/gather.ts";
import { servingBatches } from "./mixing_buffer.ts";
import { Mulberry32, randomPermutation, type Rng } from "../util/rng.ts";
import { type ActivationBlock, StageError, type TokenCursor, type TrainBatch } from "./types.ts";

/** Options of {@link ActivationBuffer}. */
export interface BufferOptions {
  /** Rows to hold before shuffling and serving (SAELens: n_batches_in_buffer × T′). */
  bufferSize: number;
  /** Rows per served batch (`train_batch_size_tokens`). */
  batchSize: number;
  /** SAELens `activations_mixing_fraction`, in [0, 1) (default 0.5; 0 serves in order). */
  mixFraction?: number;
  /** Width of every hook key's rows. */
  widths: ReadonlyMap<string, number>;
  /** Most rows one incoming block has (store_batch_size_prompts × T′); sizes the stores. */
  blockRows: number;
  /** Seed of the shuffling permutations (default 42, the runner's `seed`). */
  seed?: number;
  /** The device. */
  gpu: Gpu;
  /** Continue from a snapshot. */
  restore?: BufferSnapshot;
}

/** Everything a buffer needs to continue exactly (host copies; see the module doc). */
export interface BufferSnapshot {
  /** Row width of every hook key. */
  widths: Record<string, number>;
  /** The shuffling RNG's state. */
  rngState: number;
  /** Index the next new batch gets. */
  nextIndex: number;
  /** Cursor of the last block absorbed (null: none yet). */
  cursor: TokenCursor | null;
  /** Rows held for mixing, `[storeRows, d]` per key. */
  store: Map<string, Float32Array>;
  /** Number of held rows. */
  storeRows: number;
  /** Rows of the current refill not yet served, in serving order, per key. */
  serving: Map<string, Float32Array>;
  /** Number of rows still to serve. */
  servingRows: number;
  /** Whether the rows to serve are the final, unshuffled remainder (upstream ended). */
  final: boolean;
  /** Batches made but not consumed, in order. */
  pending: { index: number; acts: Map<string, Float32Array> }[];
}

function checkInt(v: number, name: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new StageError(`buffer: ${name} is ${v}, expected an integer >= ${min}`);
  }
}

/**
 * Rows each of the two stores per hook key needs: the most rows the buffer can ever hold.
 *
 * While fewer than `bufferSize` rows are held, blocks keep coming, so a refill starts with at most
 * `bufferSize − 1 + blockRows` rows. With more held, one block arrives per refill and a refill of
 * N rows serves `servingBatches(N)·batchSize ≥ batchSize` rows. Let T be the smallest N whose
 * refill serves at least `blockRows` rows: from T on the held rows cannot grow, and below T a
 * refill keeps at most `T − 1 − batchSize` rows. So the buffer never holds more than
 * max(bufferSize − 1 + blockRows, T − 1 − batchSize + blockRows) rows; the second term only
 * counts when blocks are larger than a batch (e.g. at a high mix fraction, SAELens's held rows
 * grow until a refill serves a whole block).
 *
 * @example
 * ```ts
 * import { bufferCapacityRows } from "./buffer.ts";
 * // Blocks no larger than a batch: a refill always serves at least one block's worth.
 * if (bufferCapacityRows(16384, 4096, 4096, 0.5) !== 16384 - 1 + 4096) throw new Error();
 * // 17-row blocks, 8-row batches, mix 0.9: held rows grow until a refill serves 3 batches,
 * // i.e. until N·(1 − 0.9) ≥ 24 (N = 241 in floats).
 * if (bufferCapacityRows(16, 8, 17, 0.9) !== 241 - 1 - 8 + 17) throw new Error();
 * ```
 */
export function bufferCapacityRows(
  bufferSize: number,
  batchSize: number,
  blockRows: number,
  mixFraction = 0.5,
): number {
  let grown = 0;
  if (blockRows > batchSize) {
    // T, found from just below its real-number value with the same float arithmetic as the
    // refills (servingBatches is non-decreasing in N).
    const whole = Math.ceil(blockRows / batchSize) * batchSize;
    let t = Math.max(0, Math.floor(whole / (1 - mixFraction)) - 2);
    while (servingBatches(t, batchSize, mixFraction) * batchSize < blockRows) t++;
    grown = t - 1 - batchSize + blockRows;
  }
  return Math.max(bufferSize - 1 + blockRows, grown);
}

interface Waiter {
  block: ActivationBlock;
  resolve: () => void;
}

/**
 * The GPU mixing buffer as a stream pair: write activation blocks to `writable`, read training
 * batches from `readable` (so it works with `pipeThrough`).
 */
export class ActivationBuffer implements ReadableWritablePair<TrainBatch, ActivationBlock> {
  /** Where activation blocks go in (each write settles once the block is absorbed). */
  readonly writable: WritableStream<ActivationBlock>;
  /** Training batches, made only when read. */
  readonly readable: ReadableStream<TrainBatch>;
  /** Rows per store (see {@link bufferCapacityRows}). */
  readonly capacity: number;
  readonly #o: Required<Omit<BufferOptions, "restore" | "seed">>;
  readonly #rng: Rng;
  #store = new Map<string, Tensor>();
  #other = new Map<string, Tensor>();
  #nRows = 0;
  /** Source of the batches being served, and their rows (indices into it) in serving order. */
  #serveSrc = new Map<string, Tensor>();
  #serveIdx = new Int32Array(0);
  #served = 0;
  #final = false;
  #closed = false;
  #nextIndex = 0;
  #cursor: TokenCursor | null = null;
  #replay: TrainBatch[] = [];
  #made: TrainBatch[] = [];
  #inbox: Waiter[] = [];
  #upstreamDone = false;
  #upstreamError: unknown = undefined;
  #wake: (() => void) | null = null;
  #perm = new Uint32Array(0);
  #writableController: WritableStreamDefaultController | null = null;

  /** Allocates the stores (and restores a snapshot when given). */
  constructor(options: BufferOptions) {
    checkInt(options.bufferSize, "bufferSize", 1);
    checkInt(options.batchSize, "batchSize", 1);
    checkInt(options.blockRows, "blockRows", 1);
    const mixFraction = options.mixFraction ?? 0.5;
    if (!(mixFraction >= 0 && mixFraction < 1)) {
      throw new StageError(`buffer: mix fraction is ${mixFraction}, expected a number in [0, 1)`);
    }
    if (options.bufferSize < options.batchSize) {
      throw new StageError(
        `buffer: the buffer holds ${options.bufferSize} rows (n_batches_in_buffer × training ` +
          `context), fewer than one batch of ${options.batchSize} (train_batch_size_tokens): ` +
          "Buffer size must be greater than or equal to batch size",
      );
    }
    if (options.widths.size === 0) throw new StageError("buffer: no hook keys");
    for (const [k, d] of options.widths) checkInt(d, `width of ${k}`, 1);
    this.#o = { ...options, mixFraction };
    this.#rng = new Mulberry32(options.seed ?? 42);
    this.capacity = bufferCapacityRows(
      options.bufferSize,
      options.batchSize,
      options.blockRows,
      mixFraction,
    );
    for (const [k, d] of options.widths) {
      this.#store.set(k, Tensor.empty([this.capacity, d], "f32", { gpu: options.gpu }));
      this.#other.set(k, Tensor.empty([this.capacity, d], "f32", { gpu: options.gpu }));
    }
    if (options.restore) this.#restore(options.restore);
    this.writable = new WritableStream<ActivationBlock>({
      start: (controller) => {
        this.#writableController = controller;
      },
      write: (block) =>
        new Promise<void>((resolve) => {
          this.#inbox.push({ block, resolve });
          this.#wake?.();
        }),
      close: () => {
        this.#upstreamDone = true;
        this.#wake?.();
      },
      abort: (reason) => {
        this.#upstreamDone = true;
        this.#upstreamError = reason ?? new StageError("buffer: the upstream was aborted");
        this.#wake?.();
      },
    });
    this.readable = new ReadableStream<TrainBatch>({
      pull: (controller) => this.#pull(controller),
      cancel: (reason) => this.#cancel(reason),
    }, { highWaterMark: 0 });
  }

  /** GPU bytes the stores take (two stores per key) plus two batches in flight. */
  get memoryBytes(): number {
    let rowBytes = 0;
    for (const d of this.#o.widths.values()) rowBytes += d * 4;
    return rowBytes * (2 * this.capacity + 2 * this.#o.batchSize);
  }

  /** Cursor of the last block absorbed (null before the first). */
  get cursor(): TokenCursor | null {
    return this.#cursor;
  }

  async #pull(controller: ReadableStreamDefaultController<TrainBatch>): Promise<void> {
    try {
      const batch = await this.#next();
      if (batch === null) {
        this.#closed = true;
        controller.close();
        this.dispose();
        return;
      }
      this.#made.push(batch);
      controller.enqueue(batch);
    } catch (err) {
      controller.error(err);
      this.dispose();
    }
  }

  async #next(): Promise<TrainBatch | null> {
    if (this.#replay.length > 0) return this.#replay.shift()!;
    if (this.#served < this.#serveIdx.length) return this.#serveBatch();
    if (this.#final) return null;
    // Refill: absorb at least one block, until the store holds bufferSize rows.
    do {
      const block = await this.#nextBlock();
      if (block === null) {
        this.#finish();
        return this.#served < this.#serveIdx.length ? this.#serveBatch() : null;
      }
      this.#absorb(block);
    } while (this.#nRows < this.#o.bufferSize);
    this.#shuffleAndSplit();
    return this.#serveBatch();
  }

  async #nextBlock(): Promise<ActivationBlock | null> {
    while (this.#inbox.length === 0) {
      if (this.#upstreamError !== undefined) throw this.#upstreamError;
      if (this.#upstreamDone) return null;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
    const { block, resolve } = this.#inbox.shift()!;
    resolve();
    return block;
  }

  #absorb(block: ActivationBlock): void {
    const { widths } = this.#o;
    try {
      if (block.acts.size !== widths.size || [...widths.keys()].some((k) => !block.acts.has(k))) {
        throw new StageError(
          `buffer: a block has activations for [${[...block.acts.keys()].join(", ")}], ` +
            `expected [${[...widths.keys()].join(", ")}]`,
        );
      }
      for (const [k, t] of block.acts) {
        const d = widths.get(k)!;
        if (t.dtype !== "f32" || t.rank !== 2 || t.shape[1] !== d || t.shape[0] !== block.rows) {
          throw new StageError(
            `buffer: ${k} activations are ${t}, expected [${block.rows}, ${d}] f32`,
          );
        }
      }
      if (this.#nRows + block.rows > this.capacity) {
        throw new StageError(
          `buffer: a block of ${block.rows} rows does not fit beside ${this.#nRows} held rows ` +
            `(capacity ${this.capacity}); blocks must have at most blockRows = ` +
            `${this.#o.blockRows} rows`,
        );
      }
      for (const [k, t] of block.acts) {
        const d = widths.get(k)!, store = this.#store.get(k)!;
        this.#o.gpu.copy(
          t.buffer,
          t.offset,
          store.buffer,
          store.offset + this.#nRows * d * 4,
          t.byteLength,
        );
      }
      this.#nRows += block.rows;
      this.#cursor = block.cursor;
    } finally {
      for (const t of block.acts.values()) t.dispose();
    }
  }

  #shuffleAndSplit(): void {
    const n = this.#nRows, B = this.#o.batchSize;
    if (this.#perm.length < n) this.#perm = new Uint32Array(n);
    const perm = this.#perm;
    if (this.#o.mixFraction > 0) randomPermutation(n, this.#rng, perm);
    else for (let i = 0; i < n; i++) perm[i] = i;
    const cutoff = servingBatches(n, B, this.#o.mixFraction) * B;
    const keep = Int32Array.from(perm.subarray(cutoff, n));
    // The kept rows move to the other store, which becomes the store; the old store is served.
    for (const [k, store] of this.#store) {
      if (keep.length > 0) gatherRows(store, keep, { out: this.#other.get(k)! });
    }
    this.#serveSrc = this.#store;
    [this.#store, this.#other] = [this.#other, this.#store];
    this.#serveIdx = Int32Array.from(perm.subarray(0, cutoff));
    this.#served = 0;
    this.#nRows = keep.length;
  }

  /** Upstream ended: the held whole batches are served in order, then the stream closes. */
  #finish(): void {
    const B = this.#o.batchSize;
    const whole = Math.floor(this.#nRows / B) * B;
    this.#serveSrc = this.#store;
    [this.#store, this.#other] = [this.#other, this.#store];
    this.#serveIdx = Int32Array.from({ length: whole }, (_, i) => i);
    this.#served = 0;
    this.#nRows = 0;
    this.#final = true;
  }

  #serveBatch(): TrainBatch {
    const B = this.#o.batchSize;
    const idx = this.#serveIdx.subarray(this.#served, this.#served + B);
    this.#served += B;
    const acts = new Map<string, Tensor>();
    for (const [k, src] of this.#serveSrc) acts.set(k, gatherRows(src, idx));
    // Batches the consumer has disposed are consumed; the rest may still be in a stream queue.
    this.#made = this.#made.filter((b) => ![...b.acts.values()].some((t) => t.disposed));
    return { index: this.#nextIndex++, acts, rows: B };
  }

  /**
   * Host copies of everything needed to continue exactly, given that the consumer has consumed
   * every batch up to index `consumedThrough` (reads back from the GPU).
   */
  async snapshot(consumedThrough: number): Promise<BufferSnapshot> {
    this.#made = this.#made.filter((b) => b.index > consumedThrough);
    const pending = [...this.#made, ...this.#replay.filter((b) => b.index > consumedThrough)];
    const keys = [...this.#o.widths.keys()];
    const restIdx = this.#serveIdx.subarray(this.#served);
    const heldIdx = Int32Array.from({ length: this.#nRows }, (_, i) => i);
    // Gathered copies (the stores are larger than what they hold), read back in one go.
    const temps: Tensor[] = [];
    const copy = (src: Tensor, idx: Int32Array) => {
      if (idx.length === 0) return null;
      const t = gatherRows(src, idx);
      temps.push(t);
      return t;
    };
    const parts = keys.map((k) => ({
      held: copy(this.#store.get(k)!, heldIdx),
      rest: restIdx.length > 0 ? copy(this.#serveSrc.get(k)!, restIdx) : null,
    }));
    const toRead = [...temps];
    for (const b of pending) for (const k of keys) toRead.push(b.acts.get(k)!);
    const host = (await readAll(toRead)) as Float32Array[];
    for (const t of temps) t.dispose();
    const byTensor = new Map(toRead.map((t, i) => [t, host[i]]));
    const store = new Map<string, Float32Array>(), serving = new Map<string, Float32Array>();
    keys.forEach((k, i) => {
      const { held, rest } = parts[i];
      store.set(k, held ? byTensor.get(held)! : new Float32Array(0));
      serving.set(k, rest ? byTensor.get(rest)! : new Float32Array(0));
    });
    return {
      widths: Object.fromEntries(this.#o.widths),
      rngState: this.#rng.getState(),
      nextIndex: this.#nextIndex,
      cursor: this.#cursor,
      store,
      storeRows: this.#nRows,
      serving,
      servingRows: restIdx.length,
      final: this.#final,
      pending: pending.map((b) => ({
        index: b.index,
        acts: new Map(keys.map((k) => [k, byTensor.get(b.acts.get(k)!)!])),
      })),
    };
  }

  #restore(s: BufferSnapshot): void {
    const gpu = this.#o.gpu;
    const keys = [...this.#o.widths.keys()];
    const theirs = Object.entries(s.widths ?? {}).map(([k, d]) => `${k}:${d}`).sort().join(", ");
    const mine = [...this.#o.widths].map(([k, d]) => `${k}:${d}`).sort().join(", ");
    if (theirs !== mine) {
      throw new StageError(
        `buffer snapshot: hook keys and widths [${theirs}] differ from this run's [${mine}]`,
      );
    }
    const check = (what: string, m: Map<string, Float32Array>, rows: number) => {
      for (const k of keys) {
        const d = this.#o.widths.get(k)!, data = m.get(k);
        if (!data || data.length !== rows * d) {
          throw new StageError(
            `buffer snapshot: ${what} of ${k} has ${data?.length ?? "no"} values, expected ` +
              `${rows} rows of ${d}`,
          );
        }
      }
    };
    if (s.storeRows > this.capacity || s.servingRows > this.capacity) {
      throw new StageError(
        `buffer snapshot: ${s.storeRows} held and ${s.servingRows} serving rows exceed this ` +
          `buffer's capacity of ${this.capacity} rows (a different buffer configuration?)`,
      );
    }
    if (s.servingRows % this.#o.batchSize !== 0) {
      throw new StageError(
        `buffer snapshot: ${s.servingRows} rows left to serve is not a multiple of the batch ` +
          `size ${this.#o.batchSize}`,
      );
    }
    check("held rows", s.store, s.storeRows);
    check("rows to serve", s.serving, s.servingRows);
    for (const p of s.pending) check(`pending batch ${p.index}`, p.acts, this.#o.batchSize);
    for (const k of keys) {
      const store = this.#store.get(k)!, other = this.#other.get(k)!;
      if (s.storeRows > 0) gpu.write(store.buffer, store.offset, s.store.get(k)!);
      if (s.servingRows > 0) gpu.write(other.buffer, other.offset, s.serving.get(k)!);
    }
    this.#nRows = s.storeRows;
    // The rows to serve sit in the other store, which the next refill overwrites only after
    // they have all been gathered (as after a shuffle).
    this.#serveSrc = this.#other;
    this.#serveIdx = Int32Array.from({ length: s.servingRows }, (_, i) => i);
    this.#served = 0;
    this.#final = s.final;
    this.#rng.setState(s.rngState);
    this.#nextIndex = s.nextIndex;
    this.#cursor = s.cursor;
    this.#replay = s.pending.map((p) => ({
      index: p.index,
      rows: this.#o.batchSize,
      acts: new Map(
        keys.map((k) => [
          k,
          Tensor.from(p.acts.get(k)!, [this.#o.batchSize, this.#o.widths.get(k)!], { gpu }),
        ]),
      ),
    }));
  }

  /** The consumer stopped: stop the upstream too, free batches made but never consumed. */
  #cancel(reason: unknown): void {
    this.#writableController?.error(reason ?? new StageError("buffer: the consumer stopped"));
    for (const b of this.#made) for (const t of b.acts.values()) t.dispose();
    for (const b of this.#replay) for (const t of b.acts.values()) t.dispose();
    this.#made = [];
    this.#replay = [];
    this.dispose();
  }

  /** Frees the stores (batches already handed out belong to their consumer). */
  dispose(): void {
    if (this.#closed && this.#store.size === 0) return;
    const seen = new Set<Tensor>();
    for (const m of [this.#store, this.#other, this.#serveSrc]) {
      for (const t of m.values()) if (!seen.has(t)) seen.add(t);
    }
    for (const t of seen) t.dispose();
    this.#store = new Map();
    this.#other = new Map();
    this.#serveSrc = new Map();
    this.#closed = true;
    for (const w of this.#inbox) w.resolve();
    for (const w of this.#inbox) for (const t of w.block.acts.values()) t.dispose();
    this.#inbox = [];
  }
}

/** The buffer stage as a factory (same as `new ActivationBuffer(options)`). */
export function buffer(options: BufferOptions): ActivationBuffer {
  return new ActivationBuffer(options);
}
