/**
 * `ActivationsStore` (SAELens's API over the stages): fromSae reads the SAE's metadata,
 * getBatchTokens packs like the tokenize stage, getActivations reads the hook, nextBatch serves
 * the buffer's batches, and a saved state continues with exactly the next batch.
 */

import { getGpu } from "../../gpu/device.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { ActivationsStore } from "../../pipeline/activations_store.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import { SAEMetadata } from "../../sae/metadata.ts";
import { SAE } from "../../sae/sae.ts";
import { createSAEConfig } from "../../sae/config.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";

const gpu = await getGpu();
const MODEL = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const CORPUS = new URL("../../data/tinyshakespeare.txt", import.meta.url).pathname;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });

async function sae(metadata: Record<string, unknown>): Promise<SAE> {
  const cfg = createSAEConfig({
    architecture: "standard",
    dIn: 128,
    dSae: 256,
    metadata: new SAEMetadata(metadata),
  });
  return await SAE.fromConfig(cfg, { gpu, seed: 1 });
}

const store = async (extra = {}) =>
  ActivationsStore.fromSae({
    model,
    sae: await sae({ hookName: "blocks.1.hook_resid_pre", contextSize: 16, prependBos: true }),
    dataset: CORPUS,
    storeBatchSizePrompts: 4,
    nBatchesInBuffer: 8,
    trainBatchSizeTokens: 32,
    ...extra,
  });

Deno.test("ActivationsStore: tokens, activations and batches from the SAE's metadata", async () => {
  const s = await store();
  assertEquals(s.trainingContextSize, 16);
  using toks = await s.getBatchTokens(3);
  assertEquals(toks.shape, [3, 16]);
  const ids = (await toks.toArray()) as Int32Array;
  assertEquals(ids[0], 256); // BOS starts every packed row
  assertEquals(ids[16], 256);
  using acts = await s.getActivations(ids);
  assertEquals(acts.shape, [48, 128]);
  const b = await s.nextBatch();
  assertEquals(b.shape, [32, 128]);
  b.dispose();
  assert(s.stateDict().n_dataset_processed > 0);
  await s.close();
});

Deno.test("ActivationsStore: a saved state continues with exactly the next batches", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await store();
    for (let i = 0; i < 5; i++) (await a.nextBatch()).dispose();
    await a.saveToCheckpoint(dir);
    const next: Float32Array[] = [];
    for (let i = 0; i < 4; i++) {
      const t = await a.nextBatch();
      next.push((await t.toArray()) as Float32Array);
      t.dispose();
    }
    await a.close();
    const b = await store();
    await b.loadFromCheckpoint(dir);
    for (let i = 0; i < 4; i++) {
      const t = await b.nextBatch();
      assertEquals(await t.toArray(), next[i], `batch ${i} after the checkpoint`);
      t.dispose();
    }
    await b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ActivationsStore: missing metadata and a hook the model lacks are named", async () => {
  const noContext = await sae({ hookName: "blocks.1.hook_resid_pre" });
  const badHook = await sae({
    hookName: "blocks.9.hook_resid_pre",
    contextSize: 16,
    prependBos: true,
  });
  assertThrows(
    () => ActivationsStore.fromSae({ model, sae: noContext, dataset: CORPUS }),
    PipelineError,
    "no context_size",
  );
  assertThrows(
    () =>
      ActivationsStore.fromSae({
        model,
        sae: badHook,
        dataset: CORPUS,
      }),
    Error,
    "is not a hook point",
  );
  const s = await store();
  await s.nextBatch().then((t) => t.dispose());
  await assertRejects(
    () => s.loadFromCheckpoint("/nonexistent"),
    PipelineError,
    "before the first",
  );
  await s.close();
});
