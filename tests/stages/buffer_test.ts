/**
 * The GPU buffer stage against the CPU reference `mixingBuffer` (same seed → the same batches,
 * bit for bit) for several mix fractions, block sizes and two hook keys; the end-of-stream
 * remainder; and exact resume: a buffer rebuilt from a snapshot taken at any batch, fed the
 * blocks after the snapshot's cursor, serves exactly the batches of the uninterrupted run.
 */

import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { ActivationBuffer, bufferCapacityRows, type BufferOptions } from "../../stages/buffer.ts";
import {
  type ActivationBlock,
  StageError,
  startCursor,
  type TrainBatch,
} from "../../stages/types.ts";
import { mixingBuffer, servingBatches } from "../../stages/mixing_buffer.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const gpu = await getGpu();

/** Deterministic host blocks: block b has rows[b] rows; key k's row r is a distinct pattern. */
function hostBlocks(rows: number[], widths: Map<string, number>): Map<string, Float32Array>[] {
  return rows.map((n, b) => {
    const m = new Map<string, Float32Array>();
    for (const [k, d] of widths) {
      const rng = new Mulberry32(b * 131 + d);
      m.set(k, Float32Array.from({ length: n * d }, () => rng.nextFloat()));
    }
    return m;
  });
}

function toBlock(
  host: Map<string, Float32Array>,
  widths: ReadonlyMap<string, number>,
  b: number,
): ActivationBlock {
  const acts = new Map<string, Tensor>();
  let rows = 0;
  for (const [k, d] of widths) {
    const data = host.get(k)!;
    rows = data.length / d;
    acts.set(k, Tensor.from(data, [rows, d], { gpu }));
  }
  return {
    acts,
    rows,
    tokenIds: new Int32Array(rows),
    cursor: { ...startCursor(), sequences: b + 1 },
  };
}

/** Runs a buffer over blocks [from, …) and reads every batch as host arrays. */
async function drain(
  opts: BufferOptions,
  host: Map<string, Float32Array>[],
  from = 0,
  stopAfter = Infinity,
): Promise<
  { batches: { index: number; acts: Map<string, Float32Array> }[]; buf: ActivationBuffer }
> {
  const buf = new ActivationBuffer(opts);
  const blocks = ReadableStream.from((function* () {
    for (let b = from; b < host.length; b++) yield toBlock(host[b], opts.widths, b);
  })());
  const reader = blocks.pipeThrough(buf).getReader();
  const batches: { index: number; acts: Map<string, Float32Array> }[] = [];
  while (batches.length < stopAfter) {
    const r = await reader.read();
    if (r.done) break;
    const acts = new Map<string, Float32Array>();
    for (const [k, t] of r.value.acts) {
      acts.set(k, (await t.toArray()) as Float32Array);
      t.dispose();
    }
    batches.push({ index: r.value.index, acts });
  }
  if (batches.length >= stopAfter) reader.releaseLock();
  return { batches, buf };
}

async function reference(
  host: Map<string, Float32Array>[],
  key: string,
  d: number,
  o: { bufferSize: number; batchSize: number; mixFraction: number; seed: number },
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const chunks = host.map((m) => m.get(key)!);
  for await (const b of mixingBuffer(chunks, { ...o, dIn: d, rng: new Mulberry32(o.seed) })) {
    out.push(b.acts.slice());
  }
  return out;
}

const CASES = [
  {
    name: "mix 0.5, even blocks",
    rows: Array(12).fill(40),
    bufferSize: 100,
    batchSize: 16,
    mixFraction: 0.5,
  },
  {
    name: "mix 0.3, uneven blocks",
    rows: [7, 33, 12, 50, 1, 29, 41, 8, 19, 60],
    bufferSize: 64,
    batchSize: 10,
    mixFraction: 0.3,
  },
  {
    name: "mix 0 (in order)",
    rows: Array(6).fill(25),
    bufferSize: 40,
    batchSize: 8,
    mixFraction: 0,
  },
  {
    name: "mix 0.9, big blocks",
    rows: Array(8).fill(70),
    bufferSize: 50,
    batchSize: 12,
    mixFraction: 0.9,
  },
  {
    name: "ends before the first fill",
    rows: [10, 10],
    bufferSize: 100,
    batchSize: 6,
    mixFraction: 0.5,
  },
];

for (const c of CASES) {
  Deno.test(`buffer: ${c.name} equals the CPU reference for every key`, async () => {
    const widths = new Map([["a", 5], ["b#1", 3]]);
    const host = hostBlocks(c.rows, widths);
    const opts: BufferOptions = {
      bufferSize: c.bufferSize,
      batchSize: c.batchSize,
      mixFraction: c.mixFraction,
      widths,
      blockRows: Math.max(...c.rows),
      seed: 9,
      gpu,
    };
    const { batches } = await drain(opts, host);
    for (const [k, d] of widths) {
      const want = await reference(host, k, d, { ...c, seed: 9 });
      assertEquals(batches.length, want.length, `${k}: number of batches`);
      batches.forEach((b, i) => assertEquals(b.acts.get(k), want[i], `${k}: batch ${i}`));
    }
    assertEquals(batches.map((b) => b.index), batches.map((_, i) => i));
  });
}

Deno.test("buffer: a snapshot at any batch resumes exactly (pending batches, held and serving rows, rng)", async () => {
  const widths = new Map([["x", 6], ["y", 2]]);
  const rows = [13, 30, 22, 30, 17, 30, 25, 30, 9, 30, 28, 30, 30];
  const host = hostBlocks(rows, widths);
  const opts: BufferOptions = {
    bufferSize: 48,
    batchSize: 8,
    mixFraction: 0.4,
    widths,
    blockRows: 30,
    seed: 3,
    gpu,
  };
  const { batches: all } = await drain(opts, host);
  assert(all.length > 10, `only ${all.length} batches`);
  for (const k of [0, 2, 7, all.length - 3]) {
    // A consumer that has consumed batches 0…k while the stream pulled one more.
    const buf = new ActivationBuffer(opts);
    const blocks = ReadableStream.from(host.map((h, b) => toBlock(h, widths, b)));
    const consumed: TrainBatch[] = [];
    let snap = null;
    const sink = new WritableStream<TrainBatch>({
      async write(batch, controller) {
        consumed.push(batch);
        for (const t of batch.acts.values()) t.dispose();
        if (batch.index === k) {
          snap = await buf.snapshot(k);
          controller.error(new Error("stop"));
        }
      },
    });
    await blocks.pipeThrough(buf).pipeTo(sink).catch(() => {});
    assert(snap !== null, "no snapshot taken");
    const s = snap as Awaited<ReturnType<ActivationBuffer["snapshot"]>>;
    assert(s.pending.length <= 1, `${s.pending.length} batches pending`);
    const from = s.cursor === null ? 0 : s.cursor.sequences;
    const { batches: rest } = await drain({ ...opts, restore: s }, host, from);
    assertEquals(rest.length, all.length - k - 1, `batches after ${k}`);
    rest.forEach((b, i) => {
      assertEquals(b.index, all[k + 1 + i].index);
      for (const key of widths.keys()) {
        assertEquals(b.acts.get(key), all[k + 1 + i].acts.get(key), `batch ${b.index} ${key}`);
      }
    });
  }
});

Deno.test("buffer: configuration errors are named; capacity follows the config", () => {
  const widths = new Map([["a", 4]]);
  assertThrows(
    () => new ActivationBuffer({ bufferSize: 10, batchSize: 16, widths, blockRows: 4, gpu }),
    StageError,
    "Buffer size must be greater than or equal to batch size",
  );
  assertThrows(
    () =>
      new ActivationBuffer({
        bufferSize: 32,
        batchSize: 16,
        widths,
        blockRows: 4,
        mixFraction: 1,
        gpu,
      }),
    StageError,
    "expected a number in [0, 1)",
  );
  assertEquals(bufferCapacityRows(16384, 4096, 4096, 0.5), 16384 - 1 + 4096);
  // 60-row blocks, 10-row batches, mix 0.9: the held rows grow until a refill serves 6 batches,
  // N·(1 − 0.9) ≥ 60, which floats reach at N = 601 (0.1 is 0.09999999999999998).
  assertEquals(bufferCapacityRows(100, 10, 60, 0.9), 601 - 1 - 10 + 60);
  const buf = new ActivationBuffer({ bufferSize: 32, batchSize: 16, widths, blockRows: 8, gpu });
  assertEquals(buf.memoryBytes, 4 * 4 * (2 * buf.capacity + 32));
  buf.dispose();
});

Deno.test("buffer: the capacity bounds the held rows for any block sequence (refills simulated)", () => {
  // The buffer's refill rule on row counts alone: absorb blocks until bufferSize rows are held,
  // then serve servingBatches(N) batches. Blocks of the largest size make the held rows grow
  // most; random sizes and empty blocks (every position excluded) are checked too.
  const rng = new Mulberry32(5);
  let worst = 0;
  for (let trial = 0; trial < 3000; trial++) {
    const batchSize = 1 + Math.floor(rng.nextFloat() * 70);
    const bufferSize = batchSize + Math.floor(rng.nextFloat() * 300);
    const blockRows = 1 + Math.floor(rng.nextFloat() * 250);
    const mixFraction = [0, 0.1, 0.3, 0.5, 0.75, 0.9, 0.95, rng.nextFloat() * 0.97][trial % 8];
    const cap = bufferCapacityRows(bufferSize, batchSize, blockRows, mixFraction);
    const random = trial % 2 === 1;
    let held = 0, peak = 0;
    for (let b = 0; b < 600; b++) {
      held += random ? Math.floor(rng.nextFloat() * (blockRows + 1)) : blockRows;
      peak = Math.max(peak, held);
      if (held >= bufferSize) held -= servingBatches(held, batchSize, mixFraction) * batchSize;
    }
    const where = `bufferSize ${bufferSize}, batchSize ${batchSize}, blockRows ${blockRows}, ` +
      `mix ${mixFraction}`;
    assert(peak <= cap, `${where}: ${peak} rows held, capacity ${cap}`);
    if (!random) worst = Math.max(worst, peak / cap);
  }
  // The bound is tight enough to matter: steady full blocks come within 10 % of it somewhere.
  assert(worst > 0.9, `peak/capacity at most ${worst}`);
});
