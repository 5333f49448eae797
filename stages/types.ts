/**
 * What flows between the streaming stages (one chunk = one batch, never one row), and the
 * cursors that travel with the data so a run resumes exactly where it stopped.
 *
 * ```
 * source ─DocumentBatch─► tokenize ─TokenBlock─► hook ─ActivationBlock─► buffer ─TrainBatch─►
 *   saeStep ─PipelineEvent─► checkpoint ─PipelineEvent─► log
 * ```
 *
 * A cursor says where the *next* unread piece of data starts. Stages may run ahead of one another
 * (Web Streams queue a chunk or two), but only what the buffer has absorbed counts: a checkpoint
 * stores the buffer's contents and the cursor of the last block it absorbed, and a resumed run
 * restarts the source there.
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { SaeflowError } from "../util/errors.ts";

/** A stage got input it cannot use (names the stage and what was expected). */
export class StageError extends SaeflowError {}

/**
 * A position in a dataset: `epoch` (completed passes over the data), `shard` (index into the
 * dataset's sorted list of data files) and `row` (row within that shard).
 */
export interface SourceCursor {
  /** Passes over the whole dataset completed before this position. */
  epoch: number;
  /** Index of the shard (data file) in the dataset's sorted shard list. */
  shard: number;
  /** Row within that shard. */
  row: number;
}

/** One document of a dataset: raw text, or token ids of a pretokenized dataset. */
export type SourceDocument = { text: string } | { tokens: Int32Array };

/**
 * A batch of consecutive documents. `start` is the position of `docs[0]`; a batch never spans
 * two shards or two epochs, so `docs[j]` sits at `{ ...start, row: start.row + j }`. `cursor` is
 * the position after the batch.
 */
export interface DocumentBatch {
  /** The documents, in dataset order. */
  docs: SourceDocument[];
  /** Position of `docs[0]`. */
  start: SourceCursor;
  /** Position after the last document. */
  cursor: SourceCursor;
}

/**
 * Where the tokenizer stage stands after a block: re-reading the dataset from `doc` with the
 * packer holding `carry`, and dropping the first `skipRows` rows that document produces, gives
 * exactly the rows after the block.
 */
export interface TokenCursor {
  /** Position of the document whose packing produced the block's last row. */
  doc: SourceCursor;
  /** The packer's partial row before that document was packed (SAELens's carry-over). */
  carry: Int32Array;
  /** Rows that document produced up to and including the block's last row. */
  skipRows: number;
  /** Documents read so far (SAELens `n_dataset_processed`), over all epochs. */
  docsRead: number;
  /** Sequences (rows of `contextSize` tokens) produced so far, over all epochs. */
  sequences: number;
}

/** The cursor of a fresh start at the beginning of the dataset. */
export function startCursor(): TokenCursor {
  return {
    doc: { epoch: 0, shard: 0, row: 0 },
    carry: new Int32Array(0),
    skipRows: 0,
    docsRead: 0,
    sequences: 0,
  };
}

/** `nSeq` sequences of `contextSize` tokens (an LLM batch, SAELens `store_batch_size_prompts`). */
export interface TokenBlock {
  /** Row-major `[nSeq, contextSize]` token ids. */
  tokens: Int32Array;
  /** Sequences in the block. */
  nSeq: number;
  /** Tokens per sequence. */
  contextSize: number;
  /** Where the tokenizer stands after this block. */
  cursor: TokenCursor;
}

/** Where activations are read: a hook point, optionally one attention head of it. */
export interface HookSpec {
  /** TransformerLens hook name, e.g. `blocks.8.hook_resid_pre`. */
  hookName: string;
  /** SAELens `hook_head_index`: one head of a `[batch, pos, head, d_head]` hook. */
  headIndex?: number | null;
}

/** The key of a hook spec in activation maps: the hook name, `#<head>` appended for a head. */
export function activationKey(spec: HookSpec): string {
  return spec.headIndex == null ? spec.hookName : `${spec.hookName}#${spec.headIndex}`;
}

/**
 * The activations of one token block on the GPU, one `[rows, d]` f32 tensor per hook key, rows
 * in (sequence, position) order after the position slice and the special-token filter.
 */
export interface ActivationBlock {
  /** Activations by {@link activationKey}; every tensor has `rows` rows. The consumer owns them. */
  acts: Map<string, Tensor>;
  /** Token id of every row. */
  tokenIds: Int32Array;
  /** Rows in every tensor. */
  rows: number;
  /** The cursor of the token block these activations came from. */
  cursor: TokenCursor;
}

/** One training batch per hook key (`[train_batch_size_tokens, d]`), owned by the consumer. */
export interface TrainBatch {
  /** Serial number of the batch since the start of the run (0, 1, 2, …). */
  index: number;
  /** Activations by {@link activationKey}. */
  acts: Map<string, Tensor>;
  /** Rows in every tensor. */
  rows: number;
}

/** One SAE being trained, as the step, checkpoint and log stages see it. */
export interface SaeUnitInfo {
  /** Name of the SAE (the key of SAELens's multi-SAE `saes` dict; the hook for one SAE). */
  id: string;
  /** Hook point it reads. */
  hookName: string;
  /** {@link activationKey} of its input. */
  key: string;
  /** Architecture name. */
  architecture: string;
  /** Input width. */
  dIn: number;
  /** Dictionary size. */
  dSae: number;
}

/**
 * Small events on the metrics stream that runs from the step stage through the checkpoint and
 * log stages (never activations); the contract lives in `logging/types.ts`.
 */
export type { MetricsEvent } from "../logging/types.ts";
