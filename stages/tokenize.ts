/**
 * The tokenize stage: documents → blocks of `blockSize` sequences of `contextSize` tokens, as
 * SAELens's activations store makes them (spec §4.2):
 *
 * - text is tokenized like `model.to_tokens(text, truncate=False, prepend_bos=False)` and packed
 *   with `concat_and_batch_sequences` (begin-batch token = BOS when `prepend_bos`, the configured
 *   separator, `disable_concat_sequences`);
 * - pretokenized rows give one sequence each, their first `contextSize` tokens;
 * - when the dataset ends (the source starts its next epoch) the packer's partial row and the
 *   block being filled are dropped, and the next block is filled across epochs if it has to be —
 *   SAELens's `get_batch_tokens(raise_at_epoch_end=True)` then its retry; an epoch that yields no
 *   sequence at all is an error ("Dataset may be too small").
 *
 * Every block carries a {@link TokenCursor}: the position of the document its last row came from,
 * the packer's carry-over before that document, and how many of that document's rows are already
 * out. {@link TokenizeCore} started from such a cursor continues with exactly the next row.
 *
 * {@link tokenize} is the in-thread TransformStream; `tokenize_worker.ts` runs the source and this
 * core in a Worker, so tokenizing overlaps the GPU syncs that block the main thread.
 * @module
 */

import type { Tokenizer } from "../hub/tokenizer.ts";
import { SequencePacker } from "./packing.ts";
import {
  type DocumentBatch,
  type SourceCursor,
  type SourceDocument,
  StageError,
  startCursor,
  type TokenBlock,
  type TokenCursor,
} from "./types.ts";

/** Options of the tokenize stage (SAELens runner fields in camelCase where they exist). */
export interface TokenizeOptions {
  /** Tokens per sequence (`context_size`). */
  contextSize: number;
  /** Sequences per block (`store_batch_size_prompts`). */
  blockSize: number;
  /** For text documents: encodes one text without special tokens (see {@link encoderFor}). */
  encode?: ((text: string) => ArrayLike<number>) | null;
  /** Put at the start of every packed row (SAELens: BOS when `prepend_bos`). */
  beginBatchTokenId?: number | null;
  /** Put before every document (SAELens's store: none; the pretokenize runner: configurable). */
  beginSequenceTokenId?: number | null;
  /** Put between concatenated documents (`sequence_separator_token`, resolved to an id). */
  sequenceSeparatorTokenId?: number | null;
  /** `disable_concat_sequences`. */
  disableConcatSequences?: boolean;
  /** Where to continue (default: the start of the dataset). */
  start?: TokenCursor;
}

/**
 * Encodes like TransformerLens `to_tokens(text, prepend_bos=False, truncate=False)`: the
 * tokenizer's own post-processor runs, and a BOS it adds is removed again.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "../hub/tokenizer.ts";
 * import { encoderFor } from "./tokenize.ts";
 * const tok = await loadTokenizer(new URL("../data/tiny-shakespeare-gpt2", import.meta.url).pathname);
 * const ids = encoderFor(tok)("Hi");
 * if (Array.from(ids).join() !== "72,105") throw new Error(`unexpected ${ids}`);
 * ```
 */
export function encoderFor(tok: Tokenizer): (text: string) => number[] {
  return (text) => {
    const ids = tok.encodeWithSpecialTokens(text);
    return tok.prependsBos && ids.length > 0 && ids[0] === tok.bosTokenId ? ids.slice(1) : ids;
  };
}

function checkCount(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new StageError(`tokenize: ${name} is ${value}, expected an integer >= ${min}`);
  }
}

/**
 * The tokenizer stage's state machine, without streams: {@link TokenizeCore.push} takes a batch
 * of documents and returns the blocks it completes. Synchronous, so it runs as a stream
 * transform or in a Worker alike.
 *
 * @example
 * ```ts
 * import { TokenizeCore } from "./tokenize.ts";
 * const core = new TokenizeCore({ contextSize: 4, blockSize: 2, beginBatchTokenId: 99 });
 * const docs = [{ tokens: Int32Array.of(1, 2, 3, 4, 5, 6, 7) }];
 * const blocks = core.push({ docs, start: { epoch: 0, shard: 0, row: 0 }, cursor: { epoch: 0, shard: 0, row: 1 } });
 * // pretokenized rows give one sequence each: no block yet (2 sequences per block)
 * if (blocks.length !== 0) throw new Error("expected no block");
 * ```
 */
export class TokenizeCore {
  readonly #opts: TokenizeOptions;
  #packer: SequencePacker;
  #pending: Int32Array[] = [];
  #epoch: number;
  #skip: number;
  #resumeAt: SourceCursor | null;
  #docsRead: number;
  #sequences: number;
  #epochRows = 0;
  #retrying = false;

  /** Validates the options and restores `options.start` when given. */
  constructor(options: TokenizeOptions) {
    checkCount(options.contextSize, "contextSize", 1);
    checkCount(options.blockSize, "blockSize", 1);
    this.#opts = { ...options };
    const start = options.start ?? startCursor();
    this.#packer = this.#newPacker(start.carry);
    this.#epoch = start.doc.epoch;
    this.#skip = start.skipRows;
    this.#resumeAt = start.skipRows > 0 || start.carry.length > 0 ? { ...start.doc } : null;
    this.#docsRead = start.docsRead;
    this.#sequences = start.sequences;
    // A run resumed inside an epoch has produced rows in it already.
    const d = start.doc;
    this.#epochRows = d.row > 0 || d.shard > 0 || start.skipRows > 0 ? 1 : 0;
  }

  #newPacker(carry?: ArrayLike<number>): SequencePacker {
    const o = this.#opts;
    return new SequencePacker({
      contextSize: o.contextSize,
      beginBatchTokenId: o.beginBatchTokenId,
      beginSequenceTokenId: o.beginSequenceTokenId,
      sequenceSeparatorTokenId: o.sequenceSeparatorTokenId,
      disableConcatSequences: o.disableConcatSequences,
    }, carry);
  }

  /** Documents read so far (SAELens `n_dataset_processed`). */
  get docsRead(): number {
    return this.#docsRead;
  }

  /** Packs `batch`; returns the blocks it completed, in order. */
  push(batch: DocumentBatch): TokenBlock[] {
    const out: TokenBlock[] = [];
    const { docs, start } = batch;
    for (let j = 0; j < docs.length; j++) {
      const at: SourceCursor = { epoch: start.epoch, shard: start.shard, row: start.row + j };
      if (at.epoch !== this.#epoch) this.#newEpoch(at.epoch);
      if (this.#resumeAt) {
        const r = this.#resumeAt;
        if (r.epoch !== at.epoch || r.shard !== at.shard || r.row !== at.row) {
          throw new StageError(
            `tokenize: resuming at document ${fmtCursor(r)}, but the source started at ` +
              `${fmtCursor(at)}`,
          );
        }
        this.#resumeAt = null;
      } else {
        this.#docsRead++;
      }
      const carry = this.#packer.carry;
      let produced = 0;
      for (const row of this.#rowsOf(docs[j], at)) {
        produced++;
        if (this.#skip > 0) {
          this.#skip--;
          continue;
        }
        this.#epochRows++;
        this.#sequences++;
        this.#pending.push(row);
        if (this.#pending.length === this.#opts.blockSize) {
          out.push(this.#block({
            doc: at,
            carry,
            skipRows: produced,
            docsRead: this.#docsRead,
            sequences: this.#sequences,
          }));
        }
      }
      if (this.#skip > 0) {
        throw new StageError(
          `tokenize: document ${fmtCursor(at)} gave ${produced} sequences on resume, but the ` +
            `checkpoint had taken ${produced + this.#skip} from it: the dataset changed`,
        );
      }
    }
    return out;
  }

  #newEpoch(epoch: number): void {
    if (this.#epochRows === 0) {
      throw new StageError(
        `tokenize: epoch ${this.#epoch} of the dataset gave no sequence of ` +
          `${this.#opts.contextSize} tokens: Unable to fill buffer after starting new epoch. ` +
          "Dataset may be too small (or every document is too short with " +
          "disable_concat_sequences).",
      );
    }
    // SAELens: the block being filled is dropped once, then the next block may span epochs.
    if (!this.#retrying) {
      this.#pending = [];
      this.#retrying = true;
    }
    this.#packer = this.#newPacker();
    this.#epoch = epoch;
    this.#epochRows = 0;
  }

  *#rowsOf(doc: SourceDocument, at: SourceCursor): Generator<Int32Array> {
    const ctx = this.#opts.contextSize;
    if ("tokens" in doc) {
      if (doc.tokens.length < ctx) {
        throw new StageError(
          `tokenize: pretokenized row ${fmtCursor(at)} has ${doc.tokens.length} tokens, ` +
            `expected at least context_size = ${ctx}`,
        );
      }
      yield doc.tokens.slice(0, ctx);
      return;
    }
    const encode = this.#opts.encode;
    if (!encode) {
      throw new StageError(
        `tokenize: document ${fmtCursor(at)} is text, but no tokenizer was given (a model ` +
          "without a tokenizer can only train on a pretokenized dataset)",
      );
    }
    yield* this.#packer.push(encode(doc.text));
  }

  #block(cursor: TokenCursor): TokenBlock {
    const { contextSize, blockSize } = this.#opts;
    const tokens = new Int32Array(blockSize * contextSize);
    this.#pending.forEach((row, i) => tokens.set(row, i * contextSize));
    this.#pending = [];
    this.#retrying = false;
    return { tokens, nSeq: blockSize, contextSize, cursor };
  }
}

/** `epoch 0, shard 1, row 5` as `e0/s1/r5`. */
export function fmtCursor(c: SourceCursor): string {
  return `e${c.epoch}/s${c.shard}/r${c.row}`;
}

/**
 * The tokenize stage as a TransformStream (in this thread). Use `tokenize_worker.ts` to run it
 * beside the source in a Worker.
 *
 * @example
 * ```ts
 * import { tokenize } from "./tokenize.ts";
 * const docs = ReadableStream.from([{
 *   docs: [{ tokens: Int32Array.of(1, 2, 3) }, { tokens: Int32Array.of(4, 5, 6) }],
 *   start: { epoch: 0, shard: 0, row: 0 },
 *   cursor: { epoch: 0, shard: 0, row: 2 },
 * }]);
 * const blocks = await Array.fromAsync(docs.pipeThrough(tokenize({ contextSize: 2, blockSize: 2 })));
 * if (blocks.length !== 1 || blocks[0].tokens.join() !== "1,2,4,5") throw new Error("unexpected");
 * ```
 */
export function tokenize(options: TokenizeOptions): TransformStream<DocumentBatch, TokenBlock> {
  const core = new TokenizeCore(options);
  return new TransformStream({
    transform(batch, controller) {
      for (const block of core.push(batch)) controller.enqueue(block);
    },
  });
}
