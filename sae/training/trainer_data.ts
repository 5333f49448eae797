/**
 * The trainer's data provider: any source of GPU batches `[n, dIn]` — an async or sync iterable,
 * an iterator, or a `ReadableStream` (read through a reader, so the stream is not cancelled
 * when training stops early).
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { reduceAll, reduceRows } from "../../gpu/kernels/reduce.ts";
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

/**
 * SAELens' norm scaling factor s = √dIn / mean over `nBatches` batches of the mean row norm
 * (§5.1), pulled from `it` (the batches are consumed, not trained on). Row norms and batch means
 * are reduced on the GPU into one `[nBatches]` tensor, read back once and summed in float64.
 * `check(batch, i)` validates each batch; `dispose` frees them.
 */
export async function estimateScalingFactor(
  it: BatchIterator,
  nBatches: number,
  gpu: Gpu,
  check: (batch: Tensor, index: number) => void,
  dispose: boolean,
): Promise<number> {
  using means = Tensor.zeros([nBatches], "f32", { gpu });
  let dIn = 0;
  for (let i = 0; i < nBatches; i++) {
    const next = await it.next();
    if (next.done) {
      throw new TrainingError(
        `norm estimation got ${i} batches from the data provider, expected ${nBatches}`,
      );
    }
    check(next.value, i);
    dIn = next.value.shape[1];
    const norms = reduceRows("l2", next.value);
    reduceAll("mean", norms, { out: means, outIndex: i });
    gpu.flush();
    norms.dispose();
    if (dispose) next.value.dispose();
  }
  let sum = 0;
  for (const v of await means.toArray()) sum += v;
  const mean = sum / nBatches;
  if (!(mean > 0) || !Number.isFinite(mean)) {
    throw new TrainingError(
      `mean activation norm over ${nBatches} batches is ${mean}, expected a finite value > 0`,
    );
  }
  return Math.sqrt(dIn) / mean;
}
