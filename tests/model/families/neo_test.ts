// GPT-Neo: local attention on the odd layer (the window matters), no 1/√d score scale.
import { assert, assertEquals } from "../../assert.ts";
import { checkFamily, flat, TOKENS } from "./_check.ts";
import { naiveForward } from "./mod.ts";

Deno.test("gpt_neo: local attention on odd layers, no 1/sqrt(d) scale", async () => {
  const { cfg, hf, tensors, run } = await checkFamily("gpt_neo", 2);
  assertEquals(cfg.attnTypes, ["global", "local"]);
  assertEquals(cfg.useAttnScale, false);
  // The window matters: treating layer 1 as global changes the logits.
  const global = naiveForward(hf, tensors, TOKENS[0], { isLocal: () => false });
  const V = cfg.dVocab, P = 8;
  const ours = run.logits!.data.subarray(0, P * V);
  const maxDiff = Math.max(...flat(global.logits).map((x, i) => Math.abs(x - ours[i])));
  assert(maxDiff > 1e-3, `local window made no difference (${maxDiff})`);
  // Local layer pattern: keys ≥ window (3) back get zero weight.
  const pat = run.cache.get("blocks.1.attn.hook_pattern")!.data;
  assertEquals(pat[7 * P + 4], 0);
  assert(pat[7 * P + 5] > 0);
});
