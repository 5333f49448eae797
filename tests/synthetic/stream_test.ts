// The GPU side of the synthetic data: decoding codes (synthetic/decode.ts) against the plain-TS
// reference at realistic widths, the source stage (determinism, resume from a cursor, closing,
// cancelling), and training through source → buffer → saeStep (synthetic/train.ts).

import { getGpu } from "../../gpu/device.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { createTrainerConfig } from "../../sae/training/trainer_config.ts";
import { decodeCodesRef, paddedCodes, SyntheticDecoder } from "../../synthetic/decode.ts";
import { SyntheticError } from "../../synthetic/errors.ts";
import { SyntheticModel, synthSaeBenchConfig } from "../../synthetic/model.ts";
import {
  SYNTHETIC_KEY,
  syntheticBlockOf,
  syntheticCursor,
  syntheticSource,
} from "../../synthetic/source.ts";
import { trainOnSynthetic } from "../../synthetic/train.ts";
import { assert, assertAllClose, assertEquals, assertRejects, assertThrows } from "../assert.ts";

const gpu = await getGpu();

async function drain(stream: ReadableStream<{ acts: Map<string, Tensor> }>) {
  const out: Float32Array[] = [];
  for await (const b of stream) {
    const t = b.acts.get(SYNTHETIC_KEY)!;
    out.push(await t.toArray() as Float32Array);
    t.dispose();
  }
  return out;
}

Deno.test("decode: GPU equals the reference at realistic widths (vec4 and scalar rows, bias, noise)", async () => {
  for (
    const [cfg, rows] of [
      // SynthSAEBench's recipe at 4096 features in d = 768, with bias and noise.
      [
        { ...synthSaeBenchConfig({ nFeatures: 4096, dIn: 768 }), biasNorm: 0.5, noiseStd: 0.05 },
        300,
      ],
      // An odd width (scalar path), independent features, rows with no feature at all.
      [{ dIn: 130, nFeatures: 400, firing: { maxProb: 0.05, minProb: 0.001 }, seed: 9 }, 257],
    ] as const
  ) {
    const model = new SyntheticModel(cfg);
    using dec = new SyntheticDecoder(model, gpu);
    const codes = model.sampleBlock(2, rows);
    using x = dec.decode(codes);
    assertEquals(x.shape, [rows, model.dIn]);
    const want = decodeCodesRef(codes, model);
    assertAllClose(await x.toArray(), want, 2e-4, 1e-5, `d ${model.dIn}`);
    if (model.noiseStd === 0) {
      // Some rows are empty: exactly zero.
      let empty = 0;
      for (let r = 0; r < rows; r++) if (codes.rowPtr[r + 1] === codes.rowPtr[r]) empty++;
      assert(empty > 0, "expected empty rows");
    }
  }
});

Deno.test("decode: noise has the requested spread; padded codes; bad codes refused", async () => {
  const model = new SyntheticModel({ dIn: 64, nFeatures: 80, noiseStd: 0.3, seed: 1 });
  using dec = new SyntheticDecoder(model, gpu);
  const codes = model.sampleBlock(0, 512);
  using x = dec.decode(codes);
  const clean = decodeCodesRef(codes, { ...model, noiseStd: 0 });
  const got = await x.toArray();
  let s2 = 0;
  for (let i = 0; i < got.length; i++) s2 += (got[i] - clean[i]) ** 2;
  const sd = Math.sqrt(s2 / got.length);
  assert(Math.abs(sd - 0.3) < 0.01, `noise sd ${sd}`);
  const p = paddedCodes({
    rows: 2,
    rowPtr: Uint32Array.of(0, 0, 2),
    index: Uint32Array.of(3, 5),
    value: Float32Array.of(1, 2),
    block: 0,
    stream: 0,
    noiseKey: 0,
  });
  assertEquals([p.k, [...p.idx], [...p.vals]], [2, [-1, -1, 3, 5], [0, 0, 1, 2]]);
  assertThrows(
    () =>
      dec.decode({
        rows: 1,
        rowPtr: Uint32Array.of(0, 1),
        index: Uint32Array.of(80),
        value: Float32Array.of(1),
        block: 0,
        stream: 0,
        noiseKey: 0,
      }),
    SyntheticError,
    "feature 80",
  );
});

Deno.test("source: blocks are the decoded codes, deterministic, resumable from a cursor", async () => {
  const model = new SyntheticModel({
    dIn: 32,
    nFeatures: 100,
    hierarchy: { roots: 3, branching: 3, depth: 2 },
    correlation: { rank: 4 },
    noiseStd: 0.01,
    seed: 6,
  });
  const seen: number[] = [];
  const cursors: number[] = [];
  const stream = syntheticSource({
    model,
    gpu,
    blockRows: 48,
    nBlocks: 5,
    onCodes: (c) => seen.push(c.block),
  });
  const all: Float32Array[] = [];
  for await (const b of stream) {
    assertEquals(b.rows, 48);
    assertEquals(b.tokenIds.length, 48);
    cursors.push(syntheticBlockOf(b.cursor));
    const t = b.acts.get(SYNTHETIC_KEY)!;
    all.push(await t.toArray() as Float32Array);
    t.dispose();
  }
  assertEquals(seen, [0, 1, 2, 3, 4]);
  assertEquals(cursors, [1, 2, 3, 4, 5]);
  for (let b = 0; b < 5; b++) {
    assertAllClose(all[b], decodeCodesRef(model.sampleBlock(b, 48), model), 1e-4, 1e-5);
  }
  // Resume after block 2 (its cursor) from a fresh model with the same config.
  const again = new SyntheticModel(model.cfg);
  const rest = await drain(
    syntheticSource({
      model: again,
      gpu,
      blockRows: 48,
      startBlock: syntheticBlockOf(syntheticCursor(2, 48)),
      nBlocks: 2,
    }),
  );
  assertEquals(rest, all.slice(3));
  // A consumer that stops early cancels the source (the dictionary is freed, nothing hangs).
  const reader = syntheticSource({ model, gpu, blockRows: 8 }).getReader();
  const first = await reader.read();
  first.value!.acts.get(SYNTHETIC_KEY)!.dispose();
  await reader.cancel();
});

Deno.test("source: bad options and foreign cursors are refused", () => {
  const model = new SyntheticModel({ dIn: 4, nFeatures: 8 });
  assertThrows(() => syntheticSource({ model, gpu, blockRows: 0 }), SyntheticError, "blockRows");
  assertThrows(() => syntheticSource({ model, gpu, startBlock: -1 }), SyntheticError, "startBlock");
  assertThrows(() => syntheticSource({ model, gpu, nBlocks: 1.5 }), SyntheticError, "nBlocks");
  assertThrows(
    () =>
      syntheticBlockOf({
        doc: { epoch: 1, shard: 3, row: 7 },
        carry: new Int32Array(0),
        skipRows: 0,
        docsRead: 0,
        sequences: 0,
      }),
    SyntheticError,
    "not a synthetic-stream cursor",
  );
  assertEquals(syntheticBlockOf(null), 0);
});

Deno.test("trainOnSynthetic: source → buffer → saeStep trains several SAEs on the same batches", async () => {
  const model = new SyntheticModel({ dIn: 16, nFeatures: 32, seed: 2 });
  const make = (seed: number) =>
    TrainingSAE.create(
      createTrainingConfig({ architecture: "standard", dIn: 16, dSae: 32, l1Coefficient: 0.5 }),
      { gpu, seed },
    );
  const trainer = createTrainerConfig({
    totalTrainingSamples: 640,
    trainBatchSizeSamples: 64,
    lr: 0.01,
  });
  // Two identical SAEs trained together, and one trained alone on the same stream: all three
  // end with the same weights (the same batches in the same order).
  const a = make(1), b = make(1), c = make(1);
  try {
    const steps: number[] = [];
    const r = await trainOnSynthetic({
      model,
      gpu,
      blockRows: 128,
      trainees: [{ id: "a", sae: a, trainer }, { id: "b", sae: b, trainer }],
      onEvent: (e) => {
        if (e.type === "step" && e.sae === "a") steps.push(e.step);
      },
    });
    assertEquals(r.tokens, 640);
    assertEquals(steps, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await trainOnSynthetic({
      model,
      gpu,
      blockRows: 128,
      trainees: [{ id: "c", sae: c, trainer }],
    });
    const [wa, wb, wc] = await Promise.all(
      [a, b, c].map(async (s) => (await s.stateDict()).get("W_dec")!),
    );
    assertEquals(wa, wb);
    assertEquals(wa, wc);
    const fresh = make(1);
    const init = (await fresh.stateDict()).get("W_dec")!;
    fresh.dispose();
    assert(wa.some((v, i) => v !== init[i]), "the SAE did not change");
    await assertRejects(
      () =>
        trainOnSynthetic({
          model,
          gpu,
          trainees: [{
            id: "wide",
            sae: a,
            trainer: { ...trainer, trainBatchSizeSamples: 32 },
          }, { id: "b", sae: b, trainer }],
        }),
      SyntheticError,
      "share the batches",
    );
  } finally {
    for (const s of [a, b, c]) s.dispose();
  }
});
