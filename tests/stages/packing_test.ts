import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  _addTokensToRow,
  concatAndBatchSequences,
  concatAndBatchSequencesAsync,
  type PackingOptions,
} from "../../stages/packing.ts";
import { TrainingError } from "../../sae/training/errors.ts";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const rows = (docs: Iterable<ArrayLike<number>>, options: PackingOptions) =>
  [...concatAndBatchSequences(docs, options)].map((r) => [...r]);

// SAELens' documents: [0..2], [3..9], [10..16], [17..n)
const docsUpTo = (n: number) => [range(0, 3), range(3, 10), range(10, 17), range(17, n)];
// the five-document variant used by the "all token types" cases
const fiveDocs = () => [range(0, 3), range(3, 8), range(8, 11), range(11, 17), range(17, 19)];

/** Runs one `_add_tokens_to_batch` call; `batch` null = no row started. */
function addTokens(
  batch: number[] | null,
  tokens: number[],
  offset: number,
  isStart: boolean,
  options: Omit<PackingOptions, "contextSize"> = {},
) {
  const state = { row: new Int32Array(5), fill: 0, offset };
  if (batch) {
    state.row.set(batch);
    state.fill = batch.length;
  }
  _addTokensToRow(state, tokens, isStart, { contextSize: 5, ...options });
  return { batch: [...state.row.subarray(0, state.fill)], offset: state.offset };
}

Deno.test("add tokens: starts a new row from an offset", () => {
  assertEquals(addTokens(null, range(0, 10), 1, true), { batch: [1, 2, 3, 4, 5], offset: 6 });
});

Deno.test("add tokens: begin-batch token on a new row, respecting the offset", () => {
  const opts = { beginBatchTokenId: 999, sequenceSeparatorTokenId: 998 };
  assertEquals(addTokens(null, range(0, 10), 0, true, opts), {
    batch: [999, 0, 1, 2, 3],
    offset: 4,
  });
  assertEquals(addTokens(null, range(0, 10), 2, true, opts), {
    batch: [999, 2, 3, 4, 5],
    offset: 6,
  });
});

Deno.test("add tokens: no begin-batch token when already there; short documents", () => {
  assertEquals(addTokens(null, [999, 1, 2, 3], 0, true, { beginBatchTokenId: 999 }), {
    batch: [999, 1, 2, 3],
    offset: 5,
  });
  assertEquals(addTokens(null, [0, 1, 2], 0, false), { batch: [0, 1, 2], offset: 5 });
});

Deno.test("add tokens: begin-batch and begin-sequence together", () => {
  const opts = { beginBatchTokenId: 999, beginSequenceTokenId: 998 };
  assertEquals(addTokens(null, range(0, 10), 0, true, opts), {
    batch: [999, 998, 0, 1, 2],
    offset: 3,
  });
});

Deno.test("add tokens: appending to a row, with separators", () => {
  assertEquals(addTokens(range(0, 4), range(0, 10), 0, true), {
    batch: [0, 1, 2, 3, 0],
    offset: 1,
  });
  assertEquals(
    addTokens(range(0, 3), range(0, 10), 0, true, {
      sequenceSeparatorTokenId: 997,
      beginBatchTokenId: 999,
    }),
    { batch: [0, 1, 2, 997, 0], offset: 1 },
  );
  const all = { sequenceSeparatorTokenId: 997, beginSequenceTokenId: 998, beginBatchTokenId: 999 };
  assertEquals(addTokens(range(0, 2), range(0, 10), 0, true, all), {
    batch: [0, 1, 997, 998, 0],
    offset: 1,
  });
  for (const offset of [0, 1, 3]) {
    // only the separator fits; no document token is consumed
    assertEquals(addTokens(range(0, 4), range(0, 10), offset, true, all), {
      batch: [0, 1, 2, 3, 997],
      offset,
    });
  }
});

Deno.test("add tokens: identical separator and begin-sequence collapse; not at doc start", () => {
  assertEquals(
    addTokens(range(0, 2), range(0, 10), 0, true, {
      sequenceSeparatorTokenId: 998,
      beginSequenceTokenId: 998,
      beginBatchTokenId: 999,
    }),
    { batch: [0, 1, 998, 0, 1], offset: 2 },
  );
  assertEquals(
    addTokens(range(0, 2), range(0, 10), 0, false, {
      sequenceSeparatorTokenId: 997,
      beginSequenceTokenId: 998,
    }),
    { batch: [0, 1, 997, 0, 1], offset: 2 },
  );
});

Deno.test("packing: no special tokens, 20 and 19 tokens", () => {
  const expected20 = [range(0, 5), range(5, 10), range(10, 15), range(15, 20)];
  assertEquals(rows(docsUpTo(20), { contextSize: 5 }), expected20);
  assertEquals(rows(docsUpTo(19), { contextSize: 5 }), expected20.slice(0, 3));
});

Deno.test("packing: begin-batch 999", () => {
  assertEquals(rows(docsUpTo(19), { contextSize: 5, beginBatchTokenId: 999 }), [
    [999, 0, 1, 2, 3],
    [999, 4, 5, 6, 7],
    [999, 8, 9, 10, 11],
    [999, 12, 13, 14, 15],
  ]);
});

Deno.test("packing: begin-sequence 998", () => {
  assertEquals(rows(docsUpTo(19), { contextSize: 5, beginSequenceTokenId: 998 }), [
    [998, 0, 1, 2, 998],
    [3, 4, 5, 6, 7],
    [8, 9, 998, 10, 11],
    [12, 13, 14, 15, 16],
  ]);
});

Deno.test("packing: separator 997", () => {
  assertEquals(rows(docsUpTo(19), { contextSize: 5, sequenceSeparatorTokenId: 997 }), [
    [0, 1, 2, 997, 3],
    [4, 5, 6, 7, 8],
    [9, 997, 10, 11, 12],
    [13, 14, 15, 16, 997],
  ]);
});

Deno.test("packing: all three special tokens", () => {
  const options = {
    contextSize: 5,
    sequenceSeparatorTokenId: 997,
    beginSequenceTokenId: 998,
    beginBatchTokenId: 999,
  };
  assertEquals(rows(fiveDocs(), options), [
    [999, 998, 0, 1, 2],
    [999, 998, 3, 4, 5],
    [999, 6, 7, 997, 998],
    [999, 8, 9, 10, 997],
    [999, 11, 12, 13, 14],
    [999, 15, 16, 997, 998],
  ]);
});

Deno.test("packing: identical special tokens collapse", () => {
  const options = {
    contextSize: 5,
    sequenceSeparatorTokenId: 999,
    beginSequenceTokenId: 999,
    beginBatchTokenId: 999,
  };
  assertEquals(rows(fiveDocs(), options), [
    [999, 0, 1, 2, 999],
    [999, 3, 4, 5, 6],
    [999, 7, 999, 8, 9],
    [999, 10, 999, 11, 12],
    [999, 13, 14, 15, 16],
  ]);
});

Deno.test("packing: typed-array documents give the same rows as arrays", () => {
  const options = { contextSize: 5, sequenceSeparatorTokenId: 997, beginBatchTokenId: 999 };
  const typed = fiveDocs().map((d) => Int32Array.from(d));
  assertEquals(rows(typed, options), rows(fiveDocs(), options));
  assert(rows(typed, options).length > 0);
});

Deno.test("packing: a 10M-token document streams 50k rows that all start with 999", () => {
  const doc = new Int32Array(10_000_000);
  for (let i = 0; i < doc.length; i++) doc[i] = i;
  const gen = concatAndBatchSequences([doc], {
    contextSize: 5,
    beginSequenceTokenId: 999,
    beginBatchTokenId: 999,
  });
  let n = 0;
  for (const row of gen) {
    assertEquals(row.length, 5);
    // row r = [999, 4r, 4r+1, 4r+2, 4r+3]
    if (row[0] !== 999 || row[1] !== 4 * n || row[4] !== 4 * n + 3) {
      throw new Error(`row ${n} is ${row}`);
    }
    if (++n === 50_000) break;
  }
  assertEquals(n, 50_000);
});

Deno.test("packing: disable concat sequences", () => {
  assertEquals(rows(docsUpTo(20), { contextSize: 5, disableConcatSequences: true }), [
    [3, 4, 5, 6, 7],
    [10, 11, 12, 13, 14],
  ]);
  const withBos = [[999, 3, 4, 5, 6], [999, 10, 11, 12, 13]];
  for (const key of ["beginBatchTokenId", "beginSequenceTokenId"]) {
    assertEquals(
      rows(docsUpTo(20), { contextSize: 5, disableConcatSequences: true, [key]: 999 }),
      withBos,
      key,
    );
  }
  assertEquals(
    rows(docsUpTo(20), {
      contextSize: 5,
      disableConcatSequences: true,
      beginBatchTokenId: 999,
      beginSequenceTokenId: 888,
    }),
    [[888, 3, 4, 5, 6], [888, 10, 11, 12, 13]],
  );
});

Deno.test("packing: disable concat edge cases (begin already there, length ctx-1, id 0)", () => {
  const opts = { contextSize: 5, disableConcatSequences: true, beginBatchTokenId: 0 };
  // token id 0 counts as set (SAELens' truthiness test would ignore it)
  assertEquals(rows([[7, 8, 9, 10], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5], []], opts), [
    [0, 7, 8, 9, 10],
    [0, 1, 2, 3, 4],
  ]);
});

Deno.test("packing: async source gives the same rows", async () => {
  async function* source() {
    for (const d of fiveDocs()) yield d;
  }
  const options = { contextSize: 5, sequenceSeparatorTokenId: 997, beginBatchTokenId: 999 };
  const got: number[][] = [];
  for await (const row of concatAndBatchSequencesAsync(source(), options)) got.push([...row]);
  assertEquals(got, rows(fiveDocs(), options));
});

Deno.test("packing: invalid options throw", () => {
  assertThrows(() => rows([[1]], { contextSize: 0 }), TrainingError, "contextSize");
  assertThrows(
    () => rows([[1, 2]], { contextSize: 1, beginBatchTokenId: 5 }),
    TrainingError,
    "contextSize is 1",
  );
  assertThrows(
    () => rows([[1]], { contextSize: 4, sequenceSeparatorTokenId: 1.5 }),
    TrainingError,
    "sequenceSeparatorTokenId",
  );
});
