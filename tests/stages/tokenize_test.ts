/**
 * The tokenize stage: SAELens packing through blocks, pretokenized rows, epoch ends (the block
 * being filled is dropped once, the next may span epochs, an empty epoch is an error), and exact
 * resume: a core started from any block's cursor, fed from that cursor's document on, gives
 * exactly the blocks after it.
 */

import { loadTokenizer } from "../../hub/tokenizer.ts";
import { encoderFor, tokenize, TokenizeCore, type TokenizeOptions } from "../../stages/tokenize.ts";
import {
  type DocumentBatch,
  type SourceCursor,
  type SourceDocument,
  StageError,
  type TokenBlock,
} from "../../stages/types.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

/** Documents as token lists, served in batches of `batch` per shard, over `epochs` epochs. */
function* batches(
  shards: number[][][],
  batch: number,
  epochs: number,
  from: SourceCursor = { epoch: 0, shard: 0, row: 0 },
  text = false,
): Generator<DocumentBatch> {
  for (let e = from.epoch; e < epochs; e++) {
    for (let s = e === from.epoch ? from.shard : 0; s < shards.length; s++) {
      const rows = shards[s];
      let r = e === from.epoch && s === from.shard ? from.row : 0;
      for (; r < rows.length; r += batch) {
        const docs: SourceDocument[] = rows.slice(r, r + batch).map((d) =>
          text ? { text: d.join(" ") } : { tokens: Int32Array.from(d) }
        );
        yield {
          docs,
          start: { epoch: e, shard: s, row: r },
          cursor: { epoch: e, shard: s, row: r + docs.length },
        };
      }
    }
  }
}

const encodeInts = (t: string) => t === "" ? [] : t.split(" ").map(Number);

function run(opts: TokenizeOptions, input: Iterable<DocumentBatch>): TokenBlock[] {
  const core = new TokenizeCore(opts);
  const out: TokenBlock[] = [];
  for (const b of input) out.push(...core.push(b));
  return out;
}

const rows = (blocks: TokenBlock[]) =>
  blocks.flatMap((b) =>
    Array.from(
      { length: b.nSeq },
      (_, i) => Array.from(b.tokens.subarray(i * b.contextSize, (i + 1) * b.contextSize)),
    )
  );

Deno.test("tokenize: text is packed as SAELens's concat_and_batch_sequences (spec §4.2 vectors)", () => {
  const docs = [[0, 1, 2], [3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16], [17, 18]];
  const opts = { contextSize: 5, blockSize: 1, encode: encodeInts };
  assertEquals(
    rows(run({ ...opts, beginBatchTokenId: 999 }, batches([docs], 2, 1, undefined, true))),
    [
      [999, 0, 1, 2, 3],
      [999, 4, 5, 6, 7],
      [999, 8, 9, 10, 11],
      [999, 12, 13, 14, 15],
    ],
  );
  assertEquals(
    rows(run({ ...opts, sequenceSeparatorTokenId: 997 }, batches([docs], 3, 1, undefined, true))),
    [
      [0, 1, 2, 997, 3],
      [4, 5, 6, 7, 8],
      [9, 997, 10, 11, 12],
      [13, 14, 15, 16, 997],
    ],
  );
  assertEquals(
    rows(run({ ...opts, disableConcatSequences: true }, batches([docs], 1, 1, undefined, true))),
    [[3, 4, 5, 6, 7], [10, 11, 12, 13, 14]],
  );
});

Deno.test("tokenize: the real tokenizer path (tiny Shakespeare GPT-2, BOS prepended per row)", async () => {
  const tok = await loadTokenizer(
    new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname,
  );
  const stream = ReadableStream.from([{
    docs: [{ text: "Hello" }, { text: "world!" }],
    start: { epoch: 0, shard: 0, row: 0 },
    cursor: { epoch: 0, shard: 0, row: 2 },
  }]).pipeThrough(tokenize({
    contextSize: 4,
    blockSize: 2,
    encode: encoderFor(tok),
    beginBatchTokenId: tok.bosTokenId,
    sequenceSeparatorTokenId: tok.bosTokenId,
  }));
  const blocks = await Array.fromAsync(stream);
  const H = 72, e = 101, l = 108, o = 111, w = 119, r = 114, d = 100, bang = 33, BOS = 256;
  // The separator BOS completes row 2 while "world!" is being packed.
  assertEquals(rows(blocks), [[BOS, H, e, l], [BOS, l, o, BOS], [BOS, w, o, r], [BOS, l, d, bang]]);
  assertEquals(blocks[0].cursor.doc, { epoch: 0, shard: 0, row: 1 });
  assertEquals(blocks[0].cursor.carry, Int32Array.of(BOS, l, o));
  assertEquals(blocks[0].cursor.skipRows, 1);
});

Deno.test("tokenize: pretokenized rows give their first context_size tokens; short rows are named", () => {
  const docs = [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11, 12]];
  assertEquals(rows(run({ contextSize: 3, blockSize: 3 }, batches([docs], 2, 1))), [
    [1, 2, 3],
    [5, 6, 7],
    [8, 9, 10],
  ]);
  assertThrows(
    () => run({ contextSize: 4, blockSize: 1 }, batches([docs], 2, 1)),
    StageError,
    "pretokenized row e0/s0/r1 has 3 tokens, expected at least context_size = 4",
  );
  assertThrows(
    () => run({ contextSize: 2, blockSize: 1 }, batches([[[1, 2]]], 1, 1, undefined, true)),
    StageError,
    "no tokenizer",
  );
});

Deno.test("tokenize: epoch ends drop the block being filled once; the retry may span epochs", () => {
  // 5 sequences per epoch (pretokenized), blocks of 2: epoch 0 gives [0,1] [2,3], drops [4];
  // epoch 1 gives [0,1] [2,3], drops [4] … every block comes from inside one epoch.
  const docs = [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]];
  const got = run({ contextSize: 2, blockSize: 2 }, batches([docs], 2, 3)).map((b) =>
    Array.from(b.tokens).filter((_, i) => i % 2 === 0)
  );
  assertEquals(got, [[0, 1], [2, 3], [0, 1], [2, 3], [0, 1], [2, 3]]);
  // 3 sequences per epoch, blocks of 4: the first block is dropped at the end of epoch 0, the
  // retry block spans epochs 1 and 2 ([0,1,2] + [0]), the next one is dropped at the end of
  // epoch 2 ([1,2]), the retry spans 3 and 4 …
  const small = [[0, 0], [1, 1], [2, 2]];
  const got2 = run({ contextSize: 2, blockSize: 4 }, batches([small], 2, 5)).map((b) =>
    Array.from(b.tokens).filter((_, i) => i % 2 === 0)
  );
  assertEquals(got2, [[0, 1, 2, 0], [0, 1, 2, 0]]);
});

Deno.test("tokenize: an epoch without a single sequence is 'Dataset may be too small'", () => {
  assertThrows(
    () =>
      run(
        { contextSize: 8, blockSize: 1, disableConcatSequences: true, encode: encodeInts },
        batches([[[1, 2], [3]]], 1, 2, undefined, true),
      ),
    StageError,
    "Dataset may be too small",
  );
});

Deno.test("tokenize: resuming from any block's cursor gives exactly the blocks after it", () => {
  const rng = new Mulberry32(5);
  const shards = Array.from(
    { length: 3 },
    () =>
      Array.from(
        { length: 7 + rng.nextInt(6) },
        () => Array.from({ length: rng.nextInt(25) }, () => rng.nextInt(50)),
      ),
  );
  const variants: TokenizeOptions[] = [
    {
      contextSize: 6,
      blockSize: 3,
      encode: encodeInts,
      beginBatchTokenId: 90,
      sequenceSeparatorTokenId: 91,
    },
    { contextSize: 5, blockSize: 2, encode: encodeInts, sequenceSeparatorTokenId: 91 },
    {
      contextSize: 4,
      blockSize: 2,
      encode: encodeInts,
      beginBatchTokenId: 90,
      disableConcatSequences: true,
    },
    { contextSize: 9, blockSize: 4, encode: encodeInts, beginSequenceTokenId: 92 },
  ];
  for (const opts of variants) {
    for (const batchSize of [1, 4]) {
      const all = run(opts, batches(shards, batchSize, 3, undefined, true));
      assert(all.length > 4, `variant gave only ${all.length} blocks`);
      for (let k = 0; k < all.length - 1; k++) {
        const c = all[k].cursor;
        const resumed = run({ ...opts, start: c }, batches(shards, batchSize, 3, c.doc, true));
        assertEquals(resumed.length, all.length - k - 1, `blocks after ${k}`);
        for (let j = 0; j < resumed.length; j++) {
          assertEquals(
            resumed[j].tokens,
            all[k + 1 + j].tokens,
            `block ${k + 1 + j} after resume at ${k}`,
          );
          assertEquals(resumed[j].cursor, all[k + 1 + j].cursor);
        }
      }
    }
  }
});

Deno.test("tokenize: a changed dataset is detected on resume", () => {
  const docs = [[1, 2, 3, 4, 5, 6, 7, 8, 9]];
  const all = run(
    { contextSize: 3, blockSize: 1, encode: encodeInts },
    batches([docs], 1, 1, undefined, true),
  );
  const c = all[0].cursor;
  assertEquals(c.skipRows, 1);
  assertThrows(
    () =>
      run(
        { contextSize: 3, blockSize: 1, encode: encodeInts, start: c },
        batches([[[1, 2]]], 1, 1, c.doc, true),
      ),
    StageError,
    "the dataset changed",
  );
});
