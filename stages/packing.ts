/**
 * Packing tokenized documents into fixed-length training sequences — SAELens'
 * `concat_and_batch_sequences` (spec §4.2), including its special-token de-duplication and the
 * `disable_concat_sequences` mode. Each document is copied with typed-array block copies, so a
 * 10M-token document costs one pass over its tokens.
 * @module
 */

import { _requireInt, TrainingError } from "../sae/training/errors.ts";

/** Options of {@link concatAndBatchSequences} (SAELens argument names in camelCase). */
export interface PackingOptions {
  /** Tokens per yielded row (`context_size`). */
  contextSize: number;
  /** Put at position 0 of every row unless the row already starts with it (e.g. BOS). */
  beginBatchTokenId?: number | null;
  /** Put before the first token of every document unless it already starts with it. */
  beginSequenceTokenId?: number | null;
  /** Put between documents concatenated into one row unless already there. */
  sequenceSeparatorTokenId?: number | null;
  /**
   * Never join documents: each document gives at most one row (its first `contextSize` tokens,
   * with the begin token prepended when missing); documents that are too short are skipped.
   */
  disableConcatSequences?: boolean;
}

/** Packing state threaded through {@link _addTokensToRow}. @internal */
export interface _RowState {
  /** The row being filled (length = context size). */
  row: Int32Array;
  /** Tokens already in `row` (0 = no row started, SAELens' `batch is None`). */
  fill: number;
  /** Next unread position in the current document. */
  offset: number;
}

function copyTokens(row: Int32Array, at: number, doc: ArrayLike<number>, from: number, to: number) {
  if (to <= from) return;
  if (ArrayBuffer.isView(doc)) {
    row.set((doc as unknown as Int32Array).subarray(from, to), at);
  } else {
    for (let i = from; i < to; i++) row[at + i - from] = doc[i];
  }
}

/**
 * One call of SAELens' `_add_tokens_to_batch`: appends special tokens and document tokens to
 * `state.row` starting at `state.offset` and advances `fill`/`offset`. Like SAELens, `offset`
 * advances by the number of tokens *asked for*, which may run past the document's end.
 * @internal
 */
export function _addTokensToRow(
  state: _RowState,
  doc: ArrayLike<number>,
  isStartOfSequence: boolean,
  options: PackingOptions,
): void {
  const { row, offset } = state;
  const contextSize = row.length;
  const end = doc.length;
  // At most two prefix tokens: [begin_batch | separator] then begin_sequence.
  let p0 = 0, p1 = 0, nPrefix = 0;
  let first = doc[offset];
  const bos = options.beginSequenceTokenId;
  if (isStartOfSequence && bos != null && first !== bos) {
    p0 = bos;
    nPrefix = 1;
    first = bos;
  }
  const front = state.fill === 0 ? options.beginBatchTokenId : options.sequenceSeparatorTokenId;
  if (front != null && first !== front) {
    p1 = p0;
    p0 = front;
    nPrefix++;
  }
  const prefixRoom = contextSize - state.fill;
  const nPrefixWritten = Math.min(nPrefix, prefixRoom);
  if (nPrefixWritten > 0) row[state.fill] = p0;
  if (nPrefixWritten > 1) row[state.fill + 1] = p1;
  const needed = Math.max(contextSize - state.fill - nPrefix, 0);
  const take = Math.min(offset + needed, end);
  copyTokens(row, state.fill + nPrefixWritten, doc, offset, take);
  state.fill += nPrefixWritten + Math.max(take - offset, 0);
  state.offset = offset + needed;
}

/**
 * Incremental packer: feed documents one at a time with {@link SequencePacker.push}; rows come
 * out as soon as they are complete. The final incomplete row is never emitted. Each yielded row
 * is a new `Int32Array` of length `contextSize` the caller may keep.
 *
 * @example
 * ```ts
 * import { SequencePacker } from "./packing.ts";
 * const packer = new SequencePacker({ contextSize: 4, beginBatchTokenId: 50256 });
 * const rows = [...packer.push([1, 2, 3, 4, 5, 6, 7])];
 * // rows = [[50256, 1, 2, 3], [50256, 4, 5, 6]]
 * if (rows.length !== 2 || rows[1][3] !== 6) throw new Error("unexpected packing");
 * ```
 */
export class SequencePacker {
  readonly #options: PackingOptions;
  readonly #contextSize: number;
  readonly #disableConcat: boolean;
  readonly #beginToken: number | null | undefined;
  #state: _RowState;

  /**
   * Validates the options (context size ≥ 1, integer token ids). `carry` restores a partial row
   * saved with {@link SequencePacker.carry} (concatenation mode only).
   */
  constructor(options: PackingOptions, carry?: ArrayLike<number>) {
    _requireInt(options.contextSize, "contextSize", 1);
    for (
      const key of [
        "beginBatchTokenId",
        "beginSequenceTokenId",
        "sequenceSeparatorTokenId",
      ] as const
    ) {
      const id = options[key];
      if (id != null && !Number.isSafeInteger(id)) {
        throw new TrainingError(`${key} is ${id}, expected an integer token id or null`);
      }
    }
    this.#options = { ...options };
    this.#contextSize = options.contextSize;
    this.#disableConcat = options.disableConcatSequences ?? false;
    // Without concatenation a lone begin-batch token acts as the begin-sequence token. SAELens
    // tests Python truthiness here, which wrongly ignores token id 0; saeflow tests "is set".
    this.#beginToken = options.beginSequenceTokenId ?? options.beginBatchTokenId;
    if (!this.#disableConcat && this.#contextSize < 2 && options.beginBatchTokenId != null) {
      // SAELens would emit [bos] rows forever without consuming a token.
      throw new TrainingError(
        "contextSize is 1 with beginBatchTokenId set, expected contextSize >= 2",
      );
    }
    this.#state = { row: new Int32Array(this.#contextSize), fill: 0, offset: 0 };
    if (carry && carry.length > 0) {
      if (this.#disableConcat || carry.length >= this.#contextSize) {
        throw new TrainingError(
          `packer carry-over of ${carry.length} tokens, expected fewer than contextSize ` +
            `(${this.#contextSize}) and concatenation on`,
        );
      }
      this.#state.row.set(carry);
      this.#state.fill = carry.length;
    }
  }

  /**
   * A copy of the partial row the packer holds (SAELens's carry-over between documents): a new
   * packer built with it continues exactly where this one stands between two documents.
   */
  get carry(): Int32Array {
    return this.#state.row.slice(0, this.#state.fill);
  }

  /** Packs one more document (token ids), yielding every row it completes. */
  *push(doc: ArrayLike<number>): Generator<Int32Array, void, undefined> {
    if (this.#disableConcat) {
      const row = this.#packAlone(doc);
      if (row !== null) yield row;
      return;
    }
    const state = this.#state;
    state.offset = 0;
    let isStart = true;
    while (doc.length - state.offset > 0) {
      _addTokensToRow(state, doc, isStart, this.#options);
      isStart = false;
      if (state.fill === this.#contextSize) {
        const full = state.row;
        state.row = new Int32Array(this.#contextSize);
        state.fill = 0;
        yield full;
      }
    }
  }

  #packAlone(doc: ArrayLike<number>): Int32Array | null {
    const ctx = this.#contextSize;
    const begin = this.#beginToken;
    if (doc.length === 0) return null;
    if (begin != null && doc[0] !== begin) {
      if (doc.length < ctx - 1) return null; // too short even with the begin token
      const row = new Int32Array(ctx);
      row[0] = begin;
      copyTokens(row, 1, doc, 0, ctx - 1);
      return row;
    }
    if (doc.length < ctx) return null;
    const row = new Int32Array(ctx);
    copyTokens(row, 0, doc, 0, ctx);
    return row;
  }
}

/**
 * Packs documents into rows of `contextSize` tokens (SAELens `concat_and_batch_sequences`).
 * Concatenation mode joins documents, adding the begin-batch token at each row start, the
 * begin-sequence token before each document and the separator between documents — each only
 * when the next token isn't already that token (so identical special tokens collapse) — and
 * drops the final incomplete row.
 *
 * @example
 * ```ts
 * import { concatAndBatchSequences } from "./packing.ts";
 * const docs = [[0, 1, 2], [3, 4, 5, 6, 7, 8, 9]];
 * const rows = [...concatAndBatchSequences(docs, { contextSize: 5, sequenceSeparatorTokenId: 97 })];
 * // rows = [[0, 1, 2, 97, 3], [4, 5, 6, 7, 8]]
 * if (rows.length !== 2 || rows[0][3] !== 97) throw new Error("unexpected packing");
 * ```
 */
export function* concatAndBatchSequences(
  docs: Iterable<ArrayLike<number>>,
  options: PackingOptions,
): Generator<Int32Array, void, undefined> {
  const packer = new SequencePacker(options);
  for (const doc of docs) yield* packer.push(doc);
}

/**
 * {@link concatAndBatchSequences} over an async source of documents (e.g. streamed from disk).
 *
 * @example
 * ```ts
 * import { concatAndBatchSequencesAsync } from "./packing.ts";
 * async function* docs() { yield [1, 2]; yield [3, 4]; }
 * const rows = [];
 * for await (const row of concatAndBatchSequencesAsync(docs(), { contextSize: 4 })) rows.push(row);
 * if (rows.length !== 1) throw new Error("expected one row");
 * ```
 */
export async function* concatAndBatchSequencesAsync(
  docs: AsyncIterable<ArrayLike<number>> | Iterable<ArrayLike<number>>,
  options: PackingOptions,
): AsyncGenerator<Int32Array, void, undefined> {
  const packer = new SequencePacker(options);
  for await (const doc of docs) yield* packer.push(doc);
}
