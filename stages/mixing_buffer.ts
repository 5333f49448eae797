/**
 * SAELens's `mixing_buffer` (spec §4.4, newest `mix_fraction` form): activation rows from the
 * store are accumulated; whenever at least `bufferSize` rows are held they are shuffled (unless
 * `mixFraction` is 0), the front max(1, ⌊⌊N·(1 − mixFraction)⌋ / batchSize⌋) batches are served
 * and the rest is kept to mix with the next chunk. With the default `mixFraction` 0.5 this is
 * 6.18's max(1, ⌊N / (2·batchSize)⌋). When the source ends the remaining whole batches are served
 * in the order they are held, as SAELens does. This CPU version is the reference of the GPU buffer
 * stage (`stages/buffer.ts`).
 *
 * Memory stays flat: rows live in two ping-pong Float32Array stores plus one serving store, all
 * reused between refills; a refill is one gather pass driven by a seeded permutation.
 * @module
 */

import { _requireInt, TrainingError } from "../sae/training/errors.ts";
import { randomPermutation, type Rng } from "../util/rng.ts";
import type { ActivationBatch } from "../sae/training/activation_scaler.ts";

/** Options of {@link mixingBuffer}. */
export interface MixingBufferOptions {
  /** Rows to accumulate before shuffling and serving (SAELens: n_batches_in_buffer·context). */
  bufferSize: number;
  /** Rows per yielded batch (`train_batch_size_tokens`). */
  batchSize: number;
  /** Floats per row. */
  dIn: number;
  /** Source of the shuffling permutations. */
  rng: Rng;
  /** Fraction of the held rows kept for mixing, in [0, 1) (SAELens default 0.5; 0: no shuffle). */
  mixFraction?: number;
}

/** Growable row store: `[capacity, dIn]` floats plus optional token ids. */
class RowStore {
  acts = new Float32Array(0);
  tokenIds: Int32Array | null = null;
  capacity = 0;

  constructor(readonly dIn: number, readonly withTokens: boolean) {}

  /** Makes room for `rows` rows, keeping the first `keep` rows. */
  reserve(rows: number, keep: number): void {
    if (rows <= this.capacity) return;
    // Grow by 25 % at least: chunk sizes are steady, so capacity settles after a refill or two.
    const capacity = Math.max(rows, Math.ceil(this.capacity * 1.25));
    const acts = new Float32Array(capacity * this.dIn);
    acts.set(this.acts.subarray(0, keep * this.dIn));
    this.acts = acts;
    if (this.withTokens) {
      const ids = new Int32Array(capacity);
      if (this.tokenIds) ids.set(this.tokenIds.subarray(0, keep));
      this.tokenIds = ids;
    }
    this.capacity = capacity;
  }

  /** Copies row `from` of `src` to row `to` of this store (no allocation). */
  copyRow(src: RowStore, from: number, to: number): void {
    const d = this.dIn, a = src.acts, b = this.acts;
    const s = from * d, t = to * d;
    for (let j = 0; j < d; j++) b[t + j] = a[s + j];
    if (this.tokenIds) this.tokenIds[to] = src.tokenIds![from];
  }

  /** Rows [start, start + n) as a batch of views into this store. */
  view(start: number, n: number): ActivationBatch {
    const acts = this.acts.subarray(start * this.dIn, (start + n) * this.dIn);
    if (!this.tokenIds) return { acts, nRows: n };
    return { acts, nRows: n, tokenIds: this.tokenIds.subarray(start, start + n) };
  }
}

function asBatch(chunk: ActivationBatch | Float32Array, dIn: number): ActivationBatch {
  if (!(chunk instanceof Float32Array)) return chunk;
  if (chunk.length % dIn !== 0) {
    throw new TrainingError(
      `mixing buffer chunk has ${chunk.length} floats, expected a multiple of dIn = ${dIn}`,
    );
  }
  return { acts: chunk, nRows: chunk.length / dIn };
}

/**
 * Batches served per refill of `nRows` held rows: SAELens's
 * `max(1, int(N * (1 - mix_fraction)) // batch_size)`.
 *
 * @example
 * ```ts
 * import { servingBatches } from "./mixing_buffer.ts";
 * if (servingBatches(10000, 1000, 0.5) !== 5 || servingBatches(10000, 1000, 0) !== 10) throw new Error();
 * if (servingBatches(1500, 1000, 0.5) !== 1) throw new Error("at least one batch");
 * ```
 */
export function servingBatches(nRows: number, batchSize: number, mixFraction: number): number {
  return Math.max(1, Math.floor(Math.trunc(nRows * (1 - mixFraction)) / batchSize));
}

/**
 * Mixes activation chunks from `source` into shuffled batches of `batchSize` rows (SAELens
 * 6.18 `mixing_buffer`). Chunks are {@link ActivationBatch}es (or bare Float32Arrays of whole
 * rows); token ids, when the chunks carry them, are permuted together with their rows.
 * Throws on the first pull when `bufferSize < batchSize`.
 *
 * The yielded `acts`/`tokenIds` are views into reused internal buffers, valid until the next
 * pull; copy them (`slice()`) to keep them longer.
 *
 * @example
 * ```ts
 * import { mixingBuffer } from "./mixing_buffer.ts";
 * import { Mulberry32 } from "../util/rng.ts";
 * const chunks = [new Float32Array(19 * 2), new Float32Array(15 * 2)];
 * let n = 0;
 * for await (const b of mixingBuffer(chunks, { bufferSize: 16, batchSize: 4, dIn: 2, rng: new Mulberry32(0) })) {
 *   if (b.nRows !== 4 || b.acts.length !== 8) throw new Error("bad batch shape");
 *   n++;
 * }
 * if (n !== 8) throw new Error(`expected 8 batches, got ${n}`);
 * ```
 */
export async function* mixingBuffer(
  source: AsyncIterable<ActivationBatch | Float32Array> | Iterable<ActivationBatch | Float32Array>,
  options: MixingBufferOptions,
): AsyncGenerator<ActivationBatch, void, undefined> {
  const { bufferSize, batchSize, dIn, rng } = options;
  const mixFraction = options.mixFraction ?? 0.5;
  if (!(mixFraction >= 0 && mixFraction < 1)) {
    throw new TrainingError(`mixing buffer mixFraction is ${mixFraction}, expected [0, 1)`);
  }
  _requireInt(bufferSize, "mixing buffer bufferSize", 1);
  _requireInt(batchSize, "mixing buffer batchSize", 1);
  _requireInt(dIn, "mixing buffer dIn", 1);
  if (bufferSize < batchSize) {
    throw new TrainingError(
      `mixing buffer bufferSize (${bufferSize} rows) is smaller than batchSize (${batchSize}); ` +
        "Buffer size must be greater than or equal to batch size",
    );
  }

  let store: RowStore | null = null; // rows waiting to be mixed
  let spare: RowStore | null = null; // receives the kept rows at each refill
  let serving: RowStore | null = null; // the rows being served
  let perm = new Uint32Array(0);
  let nRows = 0;
  let chunkIndex = 0;

  for await (const raw of source) {
    const chunk = asBatch(raw, dIn);
    const rows = chunk.nRows;
    if (!Number.isSafeInteger(rows) || rows < 0 || chunk.acts.length < rows * dIn) {
      throw new TrainingError(
        `mixing buffer chunk ${chunkIndex} has nRows ${rows} and ${chunk.acts.length} floats, ` +
          `expected a non-negative integer nRows with nRows·dIn (dIn = ${dIn}) <= acts.length`,
      );
    }
    if (store === null) {
      const withTokens = chunk.tokenIds !== undefined;
      store = new RowStore(dIn, withTokens);
      spare = new RowStore(dIn, withTokens);
      serving = new RowStore(dIn, withTokens);
    }
    if ((chunk.tokenIds !== undefined) !== store.withTokens) {
      throw new TrainingError(
        `mixing buffer chunk ${chunkIndex} ${chunk.tokenIds ? "has" : "lacks"} tokenIds, ` +
          `expected every chunk to ${store.withTokens ? "carry" : "omit"} them like chunk 0`,
      );
    }
    if (chunk.tokenIds && chunk.tokenIds.length < rows) {
      throw new TrainingError(
        `mixing buffer chunk ${chunkIndex} has ${chunk.tokenIds.length} tokenIds for ${rows} rows`,
      );
    }
    chunkIndex++;

    store.reserve(nRows + rows, nRows);
    store.acts.set(chunk.acts.subarray(0, rows * dIn), nRows * dIn);
    if (chunk.tokenIds) store.tokenIds!.set(chunk.tokenIds.subarray(0, rows), nRows);
    nRows += rows;
    if (nRows < bufferSize) continue;

    // Shuffle by gathering: the first `cutoff` permuted rows go to `serving`, the rest to
    // `spare`, which then becomes the store.
    if (perm.length < nRows) perm = new Uint32Array(Math.ceil(nRows * 1.25));
    if (mixFraction > 0) randomPermutation(nRows, rng, perm);
    else for (let i = 0; i < nRows; i++) perm[i] = i;
    const nBatches = servingBatches(nRows, batchSize, mixFraction);
    const cutoff = nBatches * batchSize;
    serving!.reserve(cutoff, 0);
    spare!.reserve(Math.max(nRows - cutoff, store.capacity), 0);
    for (let i = 0; i < cutoff; i++) serving!.copyRow(store, perm[i], i);
    for (let i = cutoff; i < nRows; i++) spare!.copyRow(store, perm[i], i - cutoff);
    [store, spare] = [spare!, store];
    nRows -= cutoff;
    for (let b = 0; b < nBatches; b++) yield serving!.view(b * batchSize, batchSize);
  }

  if (store === null) return;
  const remaining = Math.floor(nRows / batchSize);
  for (let b = 0; b < remaining; b++) yield store.view(b * batchSize, batchSize);
}
