// Spec transformer_lens.md §7 reference values for the real GPT-2 small. Runs only when
// SAEFLOW_GPT2_DIR points at a local copy of openai-community/gpt2 (config.json +
// model.safetensors); the token ids are written out, so no tokenizer is needed.
import {
  lmCrossEntropyLoss,
  loadModelFromDir,
  logSoftmax,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../../model/mod.ts";
import { assertClose, assertEquals } from "../../assert.ts";

const DIR = Deno.env.get("SAEFLOW_GPT2_DIR");
const ignore = !DIR;

Deno.test({
  name: "gpt2-small: 'Hello world!' loss 5.331855773925781 (processed and unprocessed)",
  ignore,
  async fn() {
    const tokens = [[50256, 15496, 995, 0]];
    for (const processing of [TL_DEFAULT_PROCESSING, {}]) {
      const { cfg, params } = await loadModelFromDir(DIR!, { processing });
      const { logits } = referenceForward(cfg, params, tokens);
      assertClose(lmCrossEntropyLoss(logits!, tokens), 5.331855773925781, 4e-5);
    }
  },
});

Deno.test({
  name: "gpt2-small: processed b_U and P(' The') after 'The cat sat on the mat.'",
  ignore,
  async fn() {
    const { cfg, params } = await loadModelFromDir(DIR!, { processing: TL_DEFAULT_PROCESSING });
    const bU = params.get("unembed.b_U")!.data;
    assertClose(bU[1757], 2.8995, 5e-4); // " John"
    assertClose(bU[5335], 1.6034, 5e-4); // " Mary"
    const tokens = [[50256, 464, 3797, 3332, 319, 262, 2603, 13]];
    const { logits } = referenceForward(cfg, params, tokens, { namesFilter: [] });
    assertEquals(logits!.shape, [1, 8, 50257]);
    const lp = logSoftmax(logits!).data;
    assertClose(Math.exp(lp[7 * 50257 + 383]), 0.1198, 5e-5); // " The"
  },
});
