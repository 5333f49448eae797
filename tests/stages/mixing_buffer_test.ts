import { assert, assertEquals, assertRejects } from "../assert.ts";
import { mixingBuffer, type MixingBufferOptions } from "../../stages/mixing_buffer.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { TrainingError } from "../../sae/training/errors.ts";
import type { ActivationBatch } from "../../sae/training/activation_scaler.ts";

/** `n` rows of width `dIn` where every entry of row r is `start + r`; token id = 1000 + value. */
function chunk(start: number, n: number, dIn: number): ActivationBatch {
  const acts = new Float32Array(n * dIn);
  const tokenIds = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    acts.fill(start + r, r * dIn, (r + 1) * dIn);
    tokenIds[r] = 1000 + start + r;
  }
  return { acts, nRows: n, tokenIds };
}

async function collect(
  source: Iterable<ActivationBatch | Float32Array> | AsyncIterable<ActivationBatch>,
  options: MixingBufferOptions,
): Promise<ActivationBatch[]> {
  const out: ActivationBatch[] = [];
  for await (const b of mixingBuffer(source, options)) {
    // views are only valid until the next pull, so copy
    out.push({ acts: b.acts.slice(), nRows: b.nRows, tokenIds: b.tokenIds?.slice() });
  }
  return out;
}

/** Row ids of a batch, checking every row is intact (all entries equal) and its token id. */
function rowIds(batch: ActivationBatch, dIn: number): number[] {
  const ids: number[] = [];
  for (let r = 0; r < batch.nRows; r++) {
    const v = batch.acts[r * dIn];
    for (let j = 1; j < dIn; j++) assertEquals(batch.acts[r * dIn + j], v, `row ${r} torn`);
    if (batch.tokenIds) assertEquals(batch.tokenIds[r], 1000 + v, `token id of row ${r}`);
    ids.push(v);
  }
  return ids;
}

Deno.test("mixing buffer: chunks of 19 and 15 rows, buffer 16, batch 4 → 8 mixed batches", async () => {
  const dIn = 8;
  const batches = await collect([chunk(0, 19, dIn), chunk(19, 15, dIn)], {
    bufferSize: 16,
    batchSize: 4,
    dIn,
    rng: new Mulberry32(1234),
  });
  assertEquals(batches.length, 8);
  const ids: number[] = [];
  for (const b of batches) {
    assertEquals(b.nRows, 4);
    assertEquals(b.acts.length, 4 * dIn);
    assert(b.acts instanceof Float32Array);
    ids.push(...rowIds(b, dIn));
  }
  assertEquals(new Set(ids).size, 32, "each input row is served at most once");
  assert(ids.every((id) => id >= 0 && id < 34));
  assert(ids.some((id, i) => id !== i), "output order must differ from input order");
  // the first refill holds rows 0..18 only, so the first two batches come from them
  assert(ids.slice(0, 8).every((id) => id < 19));
});

Deno.test("mixing buffer: SAELens' mixing case (buffer 100, batch 50, d 1)", async () => {
  const source = [chunk(0, 30, 1), chunk(30, 30, 1), chunk(60, 60, 1)].map((c) => c.acts);
  const gen = mixingBuffer(source, {
    bufferSize: 100,
    batchSize: 50,
    dIn: 1,
    rng: new Mulberry32(5),
  });
  const first = await gen.next();
  assert(!first.done);
  const ids = [...first.value.acts];
  assertEquals(ids.length, 50);
  assertEquals(new Set(ids).size, 50);
  assert(ids.some((id, i) => id !== i), "must not be arange(50)");
  assertEquals(first.value.tokenIds, undefined);
  await gen.return();
});

Deno.test("mixing buffer: same seed gives the same batches; another seed differs", async () => {
  const run = (seed: number) =>
    collect([chunk(0, 40, 3), chunk(40, 40, 3)], {
      bufferSize: 32,
      batchSize: 8,
      dIn: 3,
      rng: new Mulberry32(seed),
    });
  const a = await run(9), b = await run(9), c = await run(10);
  assertEquals(a, b);
  assert(JSON.stringify(a) !== JSON.stringify(c));
});

Deno.test("mixing buffer: async source, remaining full batches served at the end", async () => {
  async function* source() {
    yield chunk(0, 5, 2);
    yield chunk(5, 5, 2);
  }
  // never reaches bufferSize: everything is served at exhaustion, in arrival order
  const batches = await collect(source(), {
    bufferSize: 64,
    batchSize: 4,
    dIn: 2,
    rng: new Mulberry32(0),
  });
  assertEquals(batches.map((b) => rowIds(b, 2)), [[0, 1, 2, 3], [4, 5, 6, 7]]);
});

Deno.test("mixing buffer: empty loader yields nothing", async () => {
  assertEquals(
    await collect([], { bufferSize: 16, batchSize: 4, dIn: 4, rng: new Mulberry32(0) }),
    [],
  );
});

Deno.test("mixing buffer: buffer smaller than batch throws on the first pull", async () => {
  const gen = mixingBuffer([chunk(0, 8, 4)], {
    bufferSize: 4,
    batchSize: 8,
    dIn: 4,
    rng: new Mulberry32(0),
  });
  await assertRejects(() => gen.next(), TrainingError, "Buffer size must be greater than or equal");
});

Deno.test("mixing buffer: malformed chunks are rejected", async () => {
  const opts = { bufferSize: 4, batchSize: 2, dIn: 4, rng: new Mulberry32(0) };
  await assertRejects(
    () => collect([{ acts: new Float32Array(7), nRows: 2 }], opts),
    TrainingError,
    "chunk 0",
  );
  await assertRejects(() => collect([new Float32Array(6)], opts), TrainingError, "multiple of dIn");
  await assertRejects(
    () => collect([chunk(0, 2, 4), { acts: new Float32Array(8), nRows: 2 }], opts),
    TrainingError,
    "lacks tokenIds",
  );
});

Deno.test("mixing buffer: long run keeps rows intact and serves each at most once", async () => {
  const dIn = 5;
  const chunks = Array.from({ length: 50 }, (_, i) => chunk(i * 37, 37, dIn));
  const batches = await collect(chunks, {
    bufferSize: 64,
    batchSize: 8,
    dIn,
    rng: new Mulberry32(3),
  });
  const ids = batches.flatMap((b) => rowIds(b, dIn));
  // every served group is whole batches, so only 1850 mod 8 rows are left over
  assertEquals(ids.length, 1848);
  assertEquals(new Set(ids).size, 1848);
});
