/**
 * saeflow against SAELens's own code. `tests/fixtures/saelens_store.json` was written by
 * `tests/fixtures/gen_saelens_store.py`, which runs SAELens's real `concat_and_batch_sequences`,
 * the real `ActivationsStore` token path (`_iterate_filtered_activations` → `get_raw_llm_batch`
 * → `get_batch_tokens(raise_at_epoch_end=True)` and its retry, with "activation = token id") and
 * the real `mixing_buffer`; the SAELens commits it read are in the fixture. Each case is replayed
 * here through saeflow:
 *
 * - packing: `concatAndBatchSequences` gives SAELens's rows;
 * - the store: `TokenizeCore` fed the same dataset epoch after epoch (in document batches that
 *   split each epoch into two shards) gives SAELens's LLM batches, in order, with the same epoch
 *   drops and epoch-spanning retries; a block's cursor is in a later epoch exactly when SAELens
 *   hit the end of the dataset during that batch; a dataset whose epoch yields nothing fails with
 *   "Dataset may be too small";
 * - the mixing buffer: the CPU `mixingBuffer` and the GPU `ActivationBuffer` with mix fraction 0
 *   serve SAELens's batches row for row; for other fractions (the shuffles differ by RNG) each
 *   refill serves as many batches as SAELens's, and the end-of-stream remainder too.
 *
 * Deliberate difference (documented in `stages/packing.ts`): without concatenation SAELens only
 * promotes a *truthy* begin-batch token to begin-sequence token, so BOS id 0 is never prepended;
 * saeflow prepends any id that is set. Those cases assert saeflow equals SAELens run with the
 * begin-sequence token passed explicitly (`saeflow_expected`), and that SAELens's own output
 * differs.
 */

import { getGpu } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import type { Tokenizer } from "../../hub/tokenizer.ts";
import { resolveSpecialToken } from "../../pipeline/special_tokens.ts";
import { ActivationBuffer } from "../../stages/buffer.ts";
import { mixingBuffer } from "../../stages/mixing_buffer.ts";
import { concatAndBatchSequences } from "../../stages/packing.ts";
import { TokenizeCore } from "../../stages/tokenize.ts";
import {
  type ActivationBlock,
  type DocumentBatch,
  type SourceDocument,
  StageError,
  startCursor,
  type TokenBlock,
} from "../../stages/types.ts";
import { TrainingError } from "../../sae/training/errors.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { nDatasetProcessed } from "../../stages/checkpoint.ts";
import { assert, assertEquals } from "../assert.ts";

// --- the fixture ---------------------------------------------------------------------------------

type SpecialToken = "bos" | "eos" | "sep" | number | null;
interface PyError {
  type: string;
  message: string;
}
interface StoreBatch {
  tokens: number[][];
  after_epoch_end: boolean;
  n_dataset_processed: number;
  sequences_pulled: number;
}
interface StoreRun {
  batches: StoreBatch[];
  error: PyError | null;
}
interface StoreCase extends StoreRun {
  name: string;
  tokenizer: { bos: number | null; eos: number | null; sep: number | null };
  dataset: ({ text: string } | { tokens: number[] })[];
  context_size: number;
  store_batch_size_prompts: number;
  prepend_bos: boolean;
  sequence_separator_token: SpecialToken;
  disable_concat_sequences: boolean;
  n_batches: number;
  documented_difference?: string;
  saeflow_expected?: StoreRun;
}
interface EvalCase extends Omit<StoreCase, "batches" | "n_batches" | "saeflow_expected"> {
  calls: number[];
  batches: number[][][];
  saeflow_expected?: { batches: number[][][]; error: PyError | null };
}
interface PackRun {
  rows: number[][] | null;
  error: PyError | null;
}
interface PackCase extends PackRun {
  name: string;
  docs: number[][];
  context_size: number;
  begin_batch_token_id: number | null;
  begin_sequence_token_id: number | null;
  sequence_separator_token_id: number | null;
  disable_concat_sequences: boolean;
  documented_difference?: string;
  saeflow_expected?: PackRun;
}
interface MixCase {
  name: string;
  buffer_size: number;
  batch_size: number;
  chunks: number[];
  mix_fraction: number;
  error: PyError | null;
  batches_per_chunk?: number[];
  final_batches?: number;
  batches?: number[][];
}
interface Fixture {
  saelens: { files: Record<string, string> } | null;
  store: StoreCase[];
  eval_tokens: EvalCase[];
  packing: PackCase[];
  mixing: MixCase[];
}

const FIXTURE: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/saelens_store.json", import.meta.url)),
);
const ZERO_BEGIN_TOKEN = "zero_begin_batch_token_without_concat";

/** The generator's toy tokenizer: whitespace-separated integer ids. */
const toyEncode = (text: string): number[] => text.split(/\s+/).filter((w) => w !== "").map(Number);

Deno.test("saelens parity: the fixture names the SAELens sources it came from and covers the cases", () => {
  const files = FIXTURE.saelens?.files ?? {};
  for (
    const f of [
      "sae_lens/tokenization_and_batching.py",
      "sae_lens/training/mixing_buffer.py",
      "sae_lens/training/activations_store.py",
    ]
  ) {
    assert(/^[0-9a-f]{40}$/.test(files[f] ?? ""), `no commit recorded for ${f}`);
  }
  assert(FIXTURE.packing.length >= 100, "packing cases");
  assert(FIXTURE.store.some((c) => c.error?.message.includes("Dataset may be too small")));
  assert(FIXTURE.store.some((c) => c.batches.some((b) => b.after_epoch_end)));
  assert(FIXTURE.mixing.some((c) => c.mix_fraction === 0 && c.batches));
  assert(FIXTURE.mixing.some((c) => c.mix_fraction === 0.9 && !c.error));
});

// --- packing -------------------------------------------------------------------------------------

function pack(c: PackCase): number[][] {
  return [
    ...concatAndBatchSequences(c.docs, {
      contextSize: c.context_size,
      beginBatchTokenId: c.begin_batch_token_id,
      beginSequenceTokenId: c.begin_sequence_token_id,
      sequenceSeparatorTokenId: c.sequence_separator_token_id,
      disableConcatSequences: c.disable_concat_sequences,
    }),
  ].map((r) => Array.from(r));
}

Deno.test("saelens parity: concatAndBatchSequences gives concat_and_batch_sequences' rows", () => {
  let differences = 0;
  for (const c of FIXTURE.packing) {
    assert(c.error === null, `${c.name}: SAELens failed (${c.error?.message})`);
    const got = pack(c);
    if (c.documented_difference === ZERO_BEGIN_TOKEN) {
      assertEquals(got, c.saeflow_expected!.rows, `${c.name} (begin token 0 is set)`);
      if (JSON.stringify(c.rows) !== JSON.stringify(got)) differences++;
    } else {
      assertEquals(got, c.rows, c.name);
    }
  }
  // The documented difference is real: SAELens ignores begin token 0 without concatenation.
  assert(differences >= 5, `the zero-begin-token difference shows in ${differences} cases`);
});

// --- the store: tokenize stage vs get_batch_tokens + retry ---------------------------------------

function toyTokenizer(t: StoreCase["tokenizer"]): Tokenizer {
  return { bosTokenId: t.bos, eosTokenId: t.eos, sepTokenId: t.sep } as unknown as Tokenizer;
}

/**
 * The dataset epoch after epoch as the source stage would give it: two shards per epoch (first
 * half, second half), batches of up to 3 documents that never span a shard.
 */
function* epochs(rows: SourceDocument[], maxEpochs: number): Generator<DocumentBatch> {
  const half = Math.ceil(rows.length / 2);
  const shards = rows.length > 1 ? [rows.slice(0, half), rows.slice(half)] : [rows];
  for (let epoch = 0; epoch < maxEpochs; epoch++) {
    for (let shard = 0; shard < shards.length; shard++) {
      for (let row = 0; row < shards[shard].length; row += 3) {
        const docs = shards[shard].slice(row, row + 3);
        yield {
          docs,
          start: { epoch, shard, row },
          cursor: { epoch, shard, row: row + docs.length },
        };
      }
    }
  }
}

function replayStore(c: StoreCase): { blocks: TokenBlock[]; error: unknown } {
  const tok = toyTokenizer(c.tokenizer);
  const core = new TokenizeCore({
    contextSize: c.context_size,
    blockSize: c.store_batch_size_prompts,
    encode: toyEncode,
    // As the runner builds them (pipeline/runner.ts).
    beginBatchTokenId: c.prepend_bos ? c.tokenizer.bos : null,
    sequenceSeparatorTokenId: resolveSpecialToken(
      c.sequence_separator_token,
      tok,
      "sequence_separator_token",
    ),
    disableConcatSequences: c.disable_concat_sequences,
  });
  const docs: SourceDocument[] = c.dataset.map((r) =>
    "text" in r ? { text: r.text } : { tokens: Int32Array.from(r.tokens) }
  );
  const blocks: TokenBlock[] = [];
  try {
    for (const batch of epochs(docs, 100)) {
      blocks.push(...core.push(batch));
      if (blocks.length >= c.n_batches) break;
    }
  } catch (error) {
    return { blocks, error };
  }
  // One document batch can complete several blocks: compare as many as SAELens gave.
  return { blocks: blocks.slice(0, c.n_batches), error: null };
}

const blockRows = (b: TokenBlock) =>
  Array.from(
    { length: b.nSeq },
    (_, i) => Array.from(b.tokens.subarray(i * b.contextSize, (i + 1) * b.contextSize)),
  );

for (const c of FIXTURE.store) {
  Deno.test(`saelens parity: store ${c.name}`, () => {
    const { blocks, error } = replayStore(c);
    const want = c.documented_difference === ZERO_BEGIN_TOKEN ? c.saeflow_expected! : c;
    if (c.documented_difference === ZERO_BEGIN_TOKEN) {
      assert(
        JSON.stringify(c.batches) !== JSON.stringify(want.batches),
        "SAELens ignores BOS id 0 without concatenation (the documented difference)",
      );
    }
    if (want.error) {
      assertEquals(blocks.length, want.batches.length, "blocks before the error");
      if (want.error.message.includes("Dataset may be too small")) {
        assert(
          error instanceof StageError && /Dataset may be too small/.test(error.message),
          `expected the too-small error, got ${error}`,
        );
      } else {
        // SAELens fails stacking rows of unequal length; saeflow names the short row.
        assert(error instanceof StageError, `expected a StageError, got ${error}`);
      }
      return;
    }
    assert(error === null, `unexpected error ${error}`);
    assertEquals(blocks.length, want.batches.length, "number of LLM batches");
    let prevEpoch = 0;
    blocks.forEach((b, i) => {
      const w = want.batches[i];
      assertEquals(blockRows(b), w.tokens, `batch ${i}`);
      // SAELens hit the end of the dataset during this batch ⇔ it ends in a later epoch.
      assertEquals(b.cursor.doc.epoch > prevEpoch, w.after_epoch_end, `batch ${i} epoch end`);
      prevEpoch = b.cursor.doc.epoch;
      // saeflow counts the document the block's last row came from; SAELens increments
      // n_dataset_processed only once its generator moves past that document.
      assertEquals(b.cursor.docsRead, w.n_dataset_processed + 1, `batch ${i} documents read`);
      // … and what saeflow writes as SAELens's counter is SAELens's own.
      assertEquals(nDatasetProcessed(b.cursor.docsRead), w.n_dataset_processed, `batch ${i}`);
      // Sequences packed so far, the ones dropped at epoch ends included.
      assertEquals(b.cursor.sequences, w.sequences_pulled, `batch ${i} sequences`);
    });
  });
}

/**
 * `get_batch_tokens(k)` as SAELens's evals call it: the end of the dataset wraps silently, even
 * inside a batch. saeflow's `ActivationsStore.getBatchTokens` reads a tokenize stage of one
 * sequence per block and groups k of them, which drops nothing at an epoch end.
 */
for (const c of FIXTURE.eval_tokens) {
  Deno.test(`saelens parity: get_batch_tokens ${c.name}`, () => {
    const total = c.calls.reduce((s, k) => s + k, 0);
    const { blocks, error } = replayStore({
      ...c,
      store_batch_size_prompts: 1,
      n_batches: total,
      batches: [],
      saeflow_expected: undefined,
    });
    const want = c.documented_difference === ZERO_BEGIN_TOKEN ? c.saeflow_expected! : c;
    if (want.error) {
      assert(
        want.error.type === "StopIteration" && error instanceof StageError &&
          /Dataset may be too small/.test(error.message),
        `expected the too-small error, got ${error}`,
      );
      return;
    }
    assert(error === null, `unexpected error ${error}`);
    const rows = blocks.flatMap(blockRows);
    let at = 0;
    const batches = c.calls.map((k) => rows.slice(at, at += k));
    assertEquals(batches, want.batches);
  });
}

// --- the mixing buffer ---------------------------------------------------------------------------

const gpu = await getGpu();

/** What a buffer served: batches as row ids, batches per refill (by chunk), and after the end. */
interface MixRun {
  batches: number[][];
  perChunk: number[];
  final: number;
}

/** Row r of the stream carries the value r, as in the generator. */
const rowIds = (start: number, n: number) => Float32Array.from({ length: n }, (_, i) => start + i);

async function runCpu(c: MixCase): Promise<MixRun> {
  let pulled = 0, done = false;
  function* chunks() {
    let start = 0;
    for (const n of c.chunks) {
      pulled++;
      yield { acts: rowIds(start, n), nRows: n };
      start += n;
    }
    done = true;
  }
  const run: MixRun = { batches: [], perChunk: c.chunks.map(() => 0), final: 0 };
  for await (
    const b of mixingBuffer(chunks(), {
      bufferSize: c.buffer_size,
      batchSize: c.batch_size,
      dIn: 1,
      rng: new Mulberry32(7),
      mixFraction: c.mix_fraction,
    })
  ) {
    if (done) run.final++;
    else run.perChunk[pulled - 1]++;
    run.batches.push(Array.from(b.acts));
  }
  return run;
}

/**
 * The GPU buffer over the same chunks, with a second, wider hook key whose row r is
 * (r, −r, r + 0.5) so both keys must be permuted alike. Batches are grouped by the cursor of the
 * last block absorbed, so the end-of-stream remainder counts with the last chunk.
 */
async function runGpu(c: MixCase): Promise<MixRun> {
  const widths = new Map([["a", 1], ["b", 3]]);
  const buf = new ActivationBuffer({
    bufferSize: c.buffer_size,
    batchSize: c.batch_size,
    mixFraction: c.mix_fraction,
    widths,
    blockRows: Math.max(1, ...c.chunks),
    seed: 7,
    gpu,
  });
  function* blocks(): Generator<ActivationBlock> {
    let start = 0;
    for (let k = 0; k < c.chunks.length; k++) {
      const n = c.chunks[k];
      const ids = rowIds(start, n);
      const wide = Float32Array.from({ length: 3 * n }, (_, i) => {
        const r = ids[Math.floor(i / 3)];
        return [r, -r, r + 0.5][i % 3];
      });
      yield {
        acts: new Map([
          ["a", Tensor.from(ids, [n, 1], { gpu })],
          ["b", Tensor.from(wide, [n, 3], { gpu })],
        ]),
        rows: n,
        tokenIds: new Int32Array(n),
        cursor: { ...startCursor(), sequences: k + 1 },
      };
      start += n;
    }
  }
  const reader = ReadableStream.from(blocks()).pipeThrough(buf).getReader();
  const run: MixRun = { batches: [], perChunk: c.chunks.map(() => 0), final: 0 };
  // Batches stay on the GPU until the end, then come back in one read.
  const served: Tensor[] = [];
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      run.perChunk[buf.cursor!.sequences - 1]++;
      served.push(r.value.acts.get("a")!, r.value.acts.get("b")!);
    }
    const host = (await readAll(served)) as Float32Array[];
    for (let i = 0; i < host.length; i += 2) {
      const ids = Array.from(host[i]), wide = host[i + 1];
      ids.forEach((id, j) =>
        assertEquals(Array.from(wide.subarray(3 * j, 3 * j + 3)), [id, -id, id + 0.5], "key b")
      );
      run.batches.push(ids);
    }
  } finally {
    for (const t of served) t.dispose();
  }
  return run;
}

/** Every served row is a distinct row of the stream. */
function checkRows(c: MixCase, batches: number[][], what: string): void {
  const total = c.chunks.reduce((s, n) => s + n, 0);
  const seen = new Set<number>();
  for (const b of batches) {
    assertEquals(b.length, c.batch_size, `${what}: batch size`);
    for (const id of b) {
      assert(Number.isInteger(id) && id >= 0 && id < total, `${what}: row ${id}`);
      assert(!seen.has(id), `${what}: row ${id} served twice`);
      seen.add(id);
    }
  }
}

for (const c of FIXTURE.mixing) {
  Deno.test(`saelens parity: mixing_buffer ${c.name} (CPU and GPU)`, async () => {
    if (c.error) {
      let cpuError: unknown = null;
      try {
        await runCpu(c);
      } catch (err) {
        cpuError = err;
      }
      assert(cpuError instanceof TrainingError, `CPU: expected a TrainingError, got ${cpuError}`);
      let gpuError: unknown = null;
      try {
        await runGpu(c);
      } catch (err) {
        gpuError = err;
      }
      assert(gpuError instanceof StageError, `GPU: expected a StageError, got ${gpuError}`);
      if (c.error.message.startsWith("Buffer size must be")) {
        for (const err of [cpuError, gpuError]) {
          assert((err as Error).message.includes(c.error.message), (err as Error).message);
        }
      }
      return;
    }
    const perChunk = c.batches_per_chunk!, final = c.final_batches!;
    // GPU batches are grouped by the last block absorbed: the remainder joins the last chunk.
    const gpuPerChunk = perChunk.map((n, k) => k === perChunk.length - 1 ? n + final : n);
    const cpu = await runCpu(c);
    assertEquals(cpu.perChunk, perChunk, "CPU: batches served after each chunk");
    assertEquals(cpu.final, final, "CPU: batches served after the last chunk");
    const onGpu = await runGpu(c);
    assertEquals(onGpu.perChunk, gpuPerChunk, "GPU: batches served per refill");
    if (c.mix_fraction === 0) {
      assertEquals(cpu.batches, c.batches, "CPU batches");
      assertEquals(onGpu.batches, c.batches, "GPU batches");
    } else {
      checkRows(c, cpu.batches, "CPU");
      checkRows(c, onGpu.batches, "GPU");
    }
  });
}
