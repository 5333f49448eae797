/**
 * `ActivationsStore.getBatchTokens` against SAELens's own `get_batch_tokens(k)` (the call its
 * evals make; fixture from `tests/fixtures/gen_saelens_store.py`): for every pretokenized
 * dataset of the fixture, written as a JSON Lines file, the store serves SAELens's token batches
 * call after call, wrapping at the end of the dataset inside a batch as SAELens does. (Text
 * datasets use the fixture's toy tokenizer, which a model cannot carry; they are replayed
 * through the tokenize stage in `tests/stages/saelens_parity_test.ts`.)
 */

import { getGpu } from "../../gpu/device.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { ActivationsStore } from "../../pipeline/activations_store.ts";
import { assert, assertEquals } from "../assert.ts";

interface EvalCase {
  name: string;
  dataset: ({ text: string } | { tokens: number[] })[];
  context_size: number;
  calls: number[];
  batches: number[][][];
  error: { type: string; message: string } | null;
}

const FIXTURE: { eval_tokens: EvalCase[] } = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/saelens_store.json", import.meta.url)),
);
const gpu = await getGpu();
const MODEL = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL, { gpu });

const pretokenized = FIXTURE.eval_tokens.filter((c) => "tokens" in c.dataset[0]);

Deno.test("ActivationsStore parity: the fixture has pretokenized get_batch_tokens cases", () => {
  assert(pretokenized.length >= 3, `${pretokenized.length} cases`);
});

for (const c of pretokenized) {
  Deno.test(`ActivationsStore parity: getBatchTokens equals get_batch_tokens (${c.name})`, async () => {
    assert(c.error === null, `SAELens failed: ${c.error?.message}`);
    const dir = await Deno.makeTempDir({ prefix: "saeflow_parity_" });
    try {
      const path = `${dir}/train.jsonl`;
      await Deno.writeTextFile(path, c.dataset.map((r) => JSON.stringify(r)).join("\n") + "\n");
      const store = new ActivationsStore({
        model,
        dataset: path,
        hookName: "blocks.0.hook_resid_pre",
        contextSize: c.context_size,
        dIn: model.cfg.dModel,
      });
      try {
        for (let i = 0; i < c.calls.length; i++) {
          using t = await store.getBatchTokens(c.calls[i]);
          const ids = (await t.toArray()) as Int32Array;
          const rows = Array.from(
            { length: c.calls[i] },
            (_, r) => Array.from(ids.subarray(r * c.context_size, (r + 1) * c.context_size)),
          );
          assertEquals(rows, c.batches[i], `call ${i} (${c.calls[i]} sequences)`);
        }
      } finally {
        await store.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
