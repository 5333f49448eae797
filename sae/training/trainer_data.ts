/**
 * The trainer's data provider: any source of GPU batches `[n, dIn]` — an async or sync iterable,
 * an iterator, or a `ReadableStream` (read through a reader, so the stream is not cancelled
 * when training stops early).
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { reduceAll, reduceRows } from "../../gpu/kernels/reduce.ts";
import { TrainingError } from "./errors.ts";

/** A transcoder's training batch: input rows and the target rows to reconstruct. */
export interface TranscoderBatch {
  /** `[n, d_in]` activations at `hook_name`. */
  input: Tensor;
  /** `[n, d_out]` activations at `hook_name_out`. */
  target: Tensor;
}

/** What `SAETrainer` accepts as its data provider (transcoders: {@link TranscoderBatch}es). */
export type DataProvider =
  | AsyncIterable<Tensor | TranscoderBatch>
  | Iterable<Tensor | TranscoderBatch>
  | ReadableStream<Tensor | TranscoderBatch>
  | AsyncIterator<Tensor | TranscoderBatch>
  | Iterator<Tensor | TranscoderBatch>;

/** A uniform async pull interface over a {@link DataProvider}. */
export interface BatchIterator {
  next(): Promise<IteratorResult<Tensor | TranscoderBatch>>;
}

/**
 * Wraps a provider as a {@link BatchIterator}. Never calls `return()`/`cancel()`: the trainer
 * pulls exactly the batches it needs and leaves the rest to the caller.
 *
 * @example
 * ```ts
 * import { batchIterator } from "./trainer_data.ts";
 * const it = batchIterator([]);
 * if (!(await it.next()).done) throw new Error();
 * ```
 */
export function batchIterator(provider: DataProvider): BatchIterator {
  if (provider === null || (typeof provider !== "object" && typeof provider !== "function")) {
    throw new TrainingError(
      `data provider is ${provider}, expected an iterable, iterator or ReadableStream of ` +
        "Tensor batches",
    );
  }
  if (typeof ReadableStream !== "undefined" && provider instanceof ReadableStream) {
    const reader = provider.getReader();
    return {
      async next() {
        const r = await reader.read();
        return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
      },
    };
  }
  type Item = Tensor | TranscoderBatch;
  const p = provider as Partial<AsyncIterable<Item> & Iterable<Item>>;
  let it: AsyncIterator<Item> | Iterator<Item>;
  if (typeof p[Symbol.asyncIterator] === "function") it = p[Symbol.asyncIterator]!();
  else if (typeof p[Symbol.iterator] === "function") it = p[Symbol.iterator]!();
  else if (typeof (provider as Iterator<Item>).next === "function") {
    it = provider as Iterator<Item>;
  } else {
    throw new TrainingError(
      "data provider is not an iterable, iterator or ReadableStream of Tensor batches",
    );
  }
  return { next: async () => await it.next() };
}

/**
 * SAELens' norm scaling factor s = √dIn / mean over `nBatches` batches of the mean row norm
 * (§5.1), fed one batch at a time: row norms and batch means are reduced on the GPU into one
 * `[nBatches]` tensor, read back once by {@link NormEstimator.finish} and summed in float64.
 * The batches are not trained on (the caller disposes them).
 */
export class NormEstimator {
  readonly #means: Tensor;
  #seen = 0;
  #dIn = 0;

  /** Allocates the per-batch slots. */
  constructor(readonly nBatches: number, readonly gpu: Gpu) {
    if (!Number.isSafeInteger(nBatches) || nBatches < 1) {
      throw new TrainingError(`norm estimation over ${nBatches} batches, expected >= 1`);
    }
    this.#means = Tensor.zeros([nBatches], "f32", { gpu });
  }

  /** Batches added so far. */
  get seen(): number {
    return this.#seen;
  }

  /** True once `nBatches` batches were added. */
  get full(): boolean {
    return this.#seen >= this.nBatches;
  }

  /** Records the mean row norm of `batch` [n, dIn] (no readback). */
  add(batch: Tensor): void {
    if (this.full) throw new TrainingError(`norm estimation already has ${this.nBatches} batches`);
    this.#dIn = batch.shape[1];
    const norms = reduceRows("l2", batch);
    reduceAll("mean", norms, { out: this.#means, outIndex: this.#seen++ });
    this.gpu.flush();
    norms.dispose();
  }

  /** Reads the means back and returns s (frees the slots). */
  async finish(): Promise<number> {
    if (!this.full) {
      throw new TrainingError(
        `norm estimation got ${this.#seen} batches, expected ${this.nBatches}`,
      );
    }
    let sum = 0;
    for (const v of await this.#means.toArray()) sum += v;
    this.#means.dispose();
    const mean = sum / this.nBatches;
    if (!(mean > 0) || !Number.isFinite(mean)) {
      throw new TrainingError(
        `mean activation norm over ${this.nBatches} batches is ${mean}, expected a finite value > 0`,
      );
    }
    return Math.sqrt(this.#dIn) / mean;
  }
}

/**
 * {@link NormEstimator} over `nBatches` batches pulled from `it` (SAELens `fit()`'s estimate).
 * `check(batch, i)` validates each batch; `dispose` frees them.
 */
export async function estimateScalingFactor(
  it: BatchIterator,
  nBatches: number,
  gpu: Gpu,
  check: (batch: Tensor, index: number) => void,
  dispose: boolean,
): Promise<number> {
  const est = new NormEstimator(nBatches, gpu);
  for (let i = 0; i < nBatches; i++) {
    const next = await it.next();
    if (next.done) {
      throw new TrainingError(
        `norm estimation got ${i} batches from the data provider, expected ${nBatches}`,
      );
    }
    const batch = next.value as Tensor;
    check(batch, i);
    est.add(batch);
    if (dispose) batch.dispose();
  }
  return await est.finish();
}
