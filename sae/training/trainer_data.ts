/**
 * The trainer's data provider: any source of GPU batches `[n, dIn]` — an async or sync iterable,
 * an iterator, or a `ReadableStream` (read through a reader, so the stream is not cancelled
 * when training stops early).
 * @module
 */

import type { Tensor } from "../../gpu/tensor.ts";
import { TrainingError } from "../../training/errors.ts";

/** What `SAETrainer` accepts as its data provider. */
export type DataProvider =
  | AsyncIterable<Tensor>
  | Iterable<Tensor>
  | ReadableStream<Tensor>
  | AsyncIterator<Tensor>
  | Iterator<Tensor>;

/** A uniform async pull interface over a {@link DataProvider}. */
export interface BatchIterator {
  next(): Promise<IteratorResult<Tensor>>;
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
  if (typeof ReadableStream !== "undefined" && provider instanceof ReadableStream) {
    const reader = provider.getReader();
    return {
      async next() {
        const r = await reader.read();
        return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
      },
    };
  }
  const p = provider as Partial<AsyncIterable<Tensor> & Iterable<Tensor>>;
  let it: AsyncIterator<Tensor> | Iterator<Tensor>;
  if (typeof p[Symbol.asyncIterator] === "function") it = p[Symbol.asyncIterator]!();
  else if (typeof p[Symbol.iterator] === "function") it = p[Symbol.iterator]!();
  else if (typeof (provider as Iterator<Tensor>).next === "function") {
    it = provider as Iterator<Tensor>;
  } else {
    throw new TrainingError(
      "data provider is not an iterable, iterator or ReadableStream of Tensor batches",
    );
  }
  return { next: async () => await it.next() };
}
