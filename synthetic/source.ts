/**
 * The synthetic source stage: a `ReadableStream<ActivationBlock>` of synthetic activations under
 * one key, for the buffer and step stages (`syntheticSource(...).pipeThrough(buffer(...))`).
 * Block b holds rows `[b·blockRows, (b+1)·blockRows)` of the model's stream and depends only on
 * (model seed, stream, b), so a run resumes from a block index: the cursor each block carries
 * records it ({@link syntheticBlockOf}), and `startBlock` restarts there.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { ActivationBlock, TokenCursor } from "../stages/types.ts";
import { SyntheticDecoder } from "./decode.ts";
import { SyntheticError } from "./errors.ts";
import type { SparseCodes, SyntheticModel } from "./model.ts";

/** Default activation key of the synthetic stream. */
export const SYNTHETIC_KEY = "synthetic";

/** Options of {@link syntheticSource}. */
export interface SyntheticSourceOptions {
  /** The model to sample. */
  model: SyntheticModel;
  /** The device the activations go to. */
  gpu: Gpu;
  /** Rows per block (default 4096). */
  blockRows?: number;
  /** Activation key of the blocks (default {@link SYNTHETIC_KEY}). */
  key?: string;
  /** First block (default 0; a resumed run passes {@link syntheticBlockOf} of its cursor). */
  startBlock?: number;
  /** Blocks to produce before closing (default: unbounded). */
  nBlocks?: number;
  /** Stream of the model to read (default 0, training; evaluation uses another). */
  stream?: number;
  /** Called with each block's ground-truth codes before it is enqueued (metrics, tests). */
  onCodes?: (codes: SparseCodes) => void;
}

/**
 * The cursor after block `block` of `rows` rows: `doc.row` is the next block to generate;
 * `sequences` counts rows produced (one "sequence" per row) and `docsRead` blocks.
 */
export function syntheticCursor(block: number, rows: number): TokenCursor {
  return {
    doc: { epoch: 0, shard: 0, row: block + 1 },
    carry: new Int32Array(0),
    skipRows: 0,
    docsRead: block + 1,
    sequences: (block + 1) * rows,
  };
}

/**
 * The block a run resumes at from the cursor of the last block it absorbed (null: none, 0).
 *
 * @example
 * ```ts
 * import { syntheticBlockOf, syntheticCursor } from "./source.ts";
 * if (syntheticBlockOf(syntheticCursor(6, 128)) !== 7 || syntheticBlockOf(null) !== 0) throw new Error();
 * ```
 */
export function syntheticBlockOf(cursor: TokenCursor | null): number {
  if (cursor === null) return 0;
  const b = cursor.doc?.row;
  if (
    !Number.isSafeInteger(b) || b < 0 || cursor.doc.epoch !== 0 || cursor.doc.shard !== 0
  ) {
    throw new SyntheticError(
      `syntheticBlockOf: cursor ${JSON.stringify(cursor.doc)} is not a synthetic-stream cursor ` +
        "(expected epoch 0, shard 0, row = next block)",
    );
  }
  return b;
}

/**
 * The stream of synthetic activation blocks (see the module doc). Each block is sampled on the
 * host and decoded on the GPU when the consumer pulls; its tensor belongs to the consumer. The
 * model's dictionary stays on the GPU until the stream closes or is cancelled.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { SyntheticModel } from "./model.ts";
 * import { syntheticSource } from "./source.ts";
 * const gpu = await getGpu();
 * const model = new SyntheticModel({ dIn: 8, nFeatures: 32, seed: 2 });
 * const blocks = [];
 * for await (const b of syntheticSource({ model, gpu, blockRows: 16, nBlocks: 2 })) blocks.push(b);
 * if (blocks.length !== 2 || blocks[1].acts.get("synthetic")!.shape.join() !== "16,8") throw new Error();
 * for (const b of blocks) for (const t of b.acts.values()) t.dispose();
 * ```
 */
export function syntheticSource(options: SyntheticSourceOptions): ReadableStream<ActivationBlock> {
  const { model, gpu } = options;
  const rows = options.blockRows ?? 4096;
  const key = options.key ?? SYNTHETIC_KEY;
  const stream = options.stream ?? 0;
  const end = (options.startBlock ?? 0) + (options.nBlocks ?? Infinity);
  let block = options.startBlock ?? 0;
  for (
    const [name, v, min] of [["blockRows", rows, 1], ["startBlock", block, 0]] as const
  ) {
    if (!Number.isSafeInteger(v) || v < min) {
      throw new SyntheticError(`syntheticSource: ${name} is ${v}, expected an integer >= ${min}`);
    }
  }
  if (
    !(options.nBlocks === undefined ||
      (Number.isSafeInteger(options.nBlocks) && options.nBlocks >= 0))
  ) {
    throw new SyntheticError(
      `syntheticSource: nBlocks is ${options.nBlocks}, expected an integer >= 0`,
    );
  }
  let decoder: SyntheticDecoder | null = null;
  const close = () => {
    decoder?.dispose();
    decoder = null;
  };
  return new ReadableStream<ActivationBlock>({
    pull(controller) {
      if (block >= end) {
        close();
        controller.close();
        return;
      }
      decoder ??= new SyntheticDecoder(model, gpu);
      const codes = model.sampleBlock(block, rows, stream);
      options.onCodes?.(codes);
      const x = decoder.decode(codes);
      controller.enqueue({
        acts: new Map([[key, x]]),
        tokenIds: new Int32Array(rows),
        rows,
        cursor: syntheticCursor(block, rows),
      });
      block++;
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 1 });
}
