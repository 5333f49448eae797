/**
 * The cached-activations stage: reads a cache folder (SAELens's cached-activations layout, a
 * Hugging Face `save_to_disk` dataset — `io/hf_dataset.ts`) and emits {@link ActivationBlock}s
 * into the buffer stage, replacing `source → tokenize → hook` (SAELens `use_cached_activations`).
 *
 * It reads as SAELens's store reads a cache (`_load_raw_llm_batch_from_cached`): blocks of
 * `blockSize` (= `store_batch_size_prompts`) consecutive rows (sequences); when fewer than
 * `blockSize` rows remain, the rest is skipped and reading starts again at row 0 (a new
 * epoch). Each row's positions are flattened in order and those whose token id is in
 * `excludeSpecialTokens` are dropped (`get_filtered_llm_batch`), so the blocks match — row for
 * row, bit for bit — what the hook stage emits live for the same token sequences.
 *
 * Cursor: a block's {@link TokenCursor} names its last row (`doc` = `{epoch, shard: file, row:
 * row in file}`, `skipRows` = 1, no carry); starting from it continues with the next row.
 * Reading runs ahead of the consumer by `readAhead` blocks (host memory: that many blocks).
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import type { HfDataset } from "../io/hf_dataset.ts";
import { type ActivationBlock, StageError, type TokenCursor } from "./types.ts";

/** One activation key fed from one cache column. */
export interface CachedColumn {
  /** The activation key the buffer and SAEs use ({@link activationKey}). */
  key: string;
  /** The cache column (SAELens names columns by hook name). */
  column: string;
  /** Expected width (the SAE's `d_in`). */
  dIn: number;
}

/** Options of {@link cachedActivations}. */
export interface CachedActivationsOptions {
  /** The opened cache. */
  dataset: HfDataset;
  /** Which columns to read, as which keys. */
  columns: readonly CachedColumn[];
  /** Positions per row the run expects (the training context after `seqpos_slice`). */
  contextSize: number;
  /** Rows per block (`store_batch_size_prompts`). */
  blockSize: number;
  /** Token ids whose positions are dropped (needs the `token_ids` column). */
  excludeSpecialTokens?: readonly number[] | null;
  /** Where to continue (default: row 0). */
  start?: TokenCursor;
  /** The device. */
  gpu: Gpu;
  /** Blocks read ahead of the consumer (default 2). */
  readAhead?: number;
  /** Name of the token-id column (default `token_ids`). */
  tokenColumn?: string;
}

/**
 * Checks that the cache has every column with rows of `[contextSize, dIn]`, and the token-id
 * column when tokens are to be excluded; errors name the cache's value and the run's.
 */
export function checkCachedColumns(
  dataset: HfDataset,
  columns: readonly CachedColumn[],
  contextSize: number,
  needTokens: boolean,
  tokenColumn = "token_ids",
): void {
  const where = `cached activations ${dataset.dir}`;
  const arrays = [...dataset.features].filter(([, f]) => f.type === "Array2D").map(([k]) => k);
  for (const c of columns) {
    const f = dataset.features.get(c.column);
    if (f?.type !== "Array2D") {
      throw new StageError(
        `${where} holds activations of ${JSON.stringify(arrays)}, not of ` +
          `${JSON.stringify(c.column)} (the hook this run trains on); cache that hook, or point ` +
          "cached_activations_path at a cache of it",
      );
    }
    const [T, d] = f.shape;
    if (T !== contextSize) {
      throw new StageError(
        `${where}: ${c.column} rows have ${T} positions (the cache's context size after ` +
          `seqpos_slice), but this run's context is ${contextSize} positions; cache with the ` +
          "run's context_size and seqpos_slice",
      );
    }
    if (d !== c.dIn) {
      throw new StageError(
        `${where}: ${c.column} has d_in ${d}, but the SAE expects d_in ${c.dIn}`,
      );
    }
  }
  const t = dataset.features.get(tokenColumn);
  if (t && (t.type !== "List" || t.length !== contextSize)) {
    throw new StageError(
      `${where}: ${tokenColumn} is not a list of ${contextSize} token ids per row`,
    );
  }
  if (needTokens && !t) {
    throw new StageError(
      `${where} has no ${tokenColumn} column, so exclude_special_tokens cannot drop positions; ` +
        "set exclude_special_tokens to false or cache with token ids",
    );
  }
}

/** Global row of the next block given a start cursor (see the module doc). */
function startRow(
  dataset: HfDataset,
  start: TokenCursor | undefined,
): { row: number; epoch: number } {
  if (!start) return { row: 0, epoch: 0 };
  const { doc, skipRows, carry } = start;
  const bad = (why: string) =>
    new StageError(
      `cached activations: the resume cursor (file ${doc.shard}, row ${doc.row}, skip ` +
        `${skipRows}) does not fit the cache ${dataset.dir}: ${why}; was the checkpoint made ` +
        "from this cache?",
    );
  if (carry.length !== 0 || (skipRows !== 0 && skipRows !== 1)) {
    throw bad("it is a text-dataset cursor");
  }
  if (doc.shard < 0 || doc.shard >= dataset.files.length) throw bad("no such data file");
  const inFile = dataset.files[doc.shard].numRows;
  if (doc.row < 0 || doc.row + skipRows > inFile || (skipRows === 0 && doc.row >= inFile)) {
    throw bad(`the file has ${inFile} rows`);
  }
  return { row: dataset.fileStarts[doc.shard] + doc.row + skipRows, epoch: doc.epoch };
}

/**
 * The stage (see the module doc): a stream of activation blocks, GPU tensors owned by the
 * consumer.
 */
export function cachedActivations(o: CachedActivationsOptions): ReadableStream<ActivationBlock> {
  const { dataset, blockSize: B, contextSize: T } = o;
  const tokenColumn = o.tokenColumn ?? "token_ids";
  const exclude = new Set(o.excludeSpecialTokens ?? []);
  checkCachedColumns(dataset, o.columns, T, exclude.size > 0, tokenColumn);
  if (!Number.isSafeInteger(B) || B < 1) {
    throw new StageError(`cached activations: blockSize is ${B}, expected a positive integer`);
  }
  const N = dataset.numRows;
  if (N < B) {
    throw new StageError(
      `cached activations ${dataset.dir} has ${N} rows, fewer than one block of ` +
        `store_batch_size_prompts = ${B}: Dataset may be too small`,
    );
  }
  const hasTokens = dataset.features.has(tokenColumn);
  let { row, epoch } = startRow(dataset, o.start);
  let done = o.start?.docsRead ?? 0;
  const readOne = async (): Promise<ActivationBlock> => {
    if (row + B > N) {
      row = 0;
      epoch++;
    }
    const first = row;
    row += B;
    const tokens = hasTokens ? await dataset.readIntList(tokenColumn, first, B) : null;
    let keep: Int32Array | null = null;
    if (exclude.size > 0) {
      const k: number[] = [];
      for (let i = 0; i < tokens!.length; i++) if (!exclude.has(tokens![i])) k.push(i);
      if (k.length < tokens!.length) keep = Int32Array.from(k);
    }
    const rows = keep ? keep.length : B * T;
    const acts = new Map<string, Tensor>();
    try {
      for (const c of o.columns) {
        if (acts.has(c.key)) continue;
        const all = await dataset.readArray2D(c.column, first, B);
        let data = all;
        if (keep) {
          data = new Float32Array(keep.length * c.dIn);
          for (let i = 0; i < keep.length; i++) {
            data.set(all.subarray(keep[i] * c.dIn, (keep[i] + 1) * c.dIn), i * c.dIn);
          }
        }
        acts.set(c.key, Tensor.from(data, [rows, c.dIn], { gpu: o.gpu }));
      }
    } catch (err) {
      for (const t of acts.values()) t.dispose();
      throw err;
    }
    const tokenIds = tokens
      ? (keep ? Int32Array.from(keep, (i) => tokens[i]) : tokens)
      : new Int32Array(rows).fill(-1);
    done += B;
    const last = dataset.locate(first + B - 1);
    const cursor: TokenCursor = {
      doc: { epoch, shard: last.file, row: last.row },
      carry: new Int32Array(0),
      skipRows: 1,
      docsRead: done,
      sequences: done,
    };
    return { acts, tokenIds, rows, cursor };
  };
  return new ReadableStream<ActivationBlock>({
    pull: async (controller) => {
      controller.enqueue(await readOne());
    },
  }, { highWaterMark: o.readAhead ?? 2 });
}
