// Every family the reference supports, on the GPU: the tiny random HF-layout models of every
// fixture registered in tests/model/families/mod.ts (GPT-2, GPT-Neo with local attention, NeoX
// parallel + partial rotary, Llama GQA, Llama-3.1 rope scaling, Mistral sliding window, Qwen2
// biases, Qwen3 q/k norms, Gemma, Gemma-2 softcaps and sandwich norms): logits of the fused path
// and every hook value of the fully hooked path match the reference forward; processed weights
// too; flag-gated hooks (hook_result, hook_mlp_in).
import {
  hookNames,
  processWeights,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../../model/mod.ts";
import { gpuForward, GpuModel, uploadTokens } from "../../../model/gpu/transformer.ts";
import { disposeCache, GpuHookContext } from "../../../model/hooks/gpu.ts";
import { assertEquals } from "../../assert.ts";
import { CONFIGS } from "../families/mod.ts";
import { assertCacheMatches, assertTensorMatches, gpu, loadFamily, TOKENS } from "./_helpers.ts";

let seed = 100;
for (const family of Object.keys(CONFIGS)) {
  const s = seed++;
  Deno.test(`gpu families: ${family} logits and every hook match the reference`, async () => {
    const { cfg, params } = await loadFamily(family, s);
    const ref = referenceForward(cfg, params, TOKENS);
    const model = new GpuModel(gpu, cfg, params);
    try {
      using tok = uploadTokens(gpu, cfg, TOKENS);
      const fused = await gpuForward(model, tok);
      await assertTensorMatches(fused.logits!, ref.logits!.data, `${family} fused logits`);
      fused.logits!.dispose();
      const ctx = new GpuHookContext({ namesFilter: () => true });
      const full = await gpuForward(model, tok, { ctx });
      assertEquals([...ctx.cache.keys()], hookNames(cfg));
      await assertCacheMatches(ctx.cache, ref, family);
      await assertTensorMatches(full.logits!, ref.logits!.data, `${family} hooked logits`);
      full.logits!.dispose();
      disposeCache(ctx.cache);
    } finally {
      model.dispose();
    }
  });
}

Deno.test("gpu families: TL default processing (fold_ln etc.) runs on the GPU like the reference", async () => {
  for (const family of ["gpt2", "gemma2"]) {
    const raw = await loadFamily(family, 200);
    const { cfg, params } = processWeights(raw.cfg, raw.params, TL_DEFAULT_PROCESSING);
    const ref = referenceForward(cfg, params, TOKENS);
    const model = new GpuModel(gpu, cfg, params);
    using tok = uploadTokens(gpu, cfg, TOKENS);
    const ctx = new GpuHookContext({ namesFilter: (n) => n.includes("ln") });
    const { logits } = await gpuForward(model, tok, { ctx });
    await assertTensorMatches(logits!, ref.logits!.data, `${family} processed logits`);
    const want = referenceForward(cfg, params, TOKENS, { namesFilter: (n) => n.includes("ln") });
    await assertCacheMatches(ctx.cache, want, `${family} processed norms`);
    logits!.dispose();
    disposeCache(ctx.cache);
    model.dispose();
  }
});

Deno.test("gpu families: flag hooks attn.hook_result and hook_mlp_in (GPT-2 and parallel NeoX)", async () => {
  for (const family of ["gpt2", "gpt_neox"]) {
    const base = await loadFamily(family, 300);
    const cfg = { ...base.cfg, useAttnResult: true, useHookMlpIn: true };
    const ref = referenceForward(cfg, base.params, TOKENS);
    const model = new GpuModel(gpu, cfg, base.params);
    using tok = uploadTokens(gpu, cfg, TOKENS);
    const fused = await gpuForward(model, tok);
    await assertTensorMatches(fused.logits!, ref.logits!.data, `${family} logits via hook_result`);
    fused.logits!.dispose();
    const ctx = new GpuHookContext({ namesFilter: () => true });
    const { logits } = await gpuForward(model, tok, { ctx });
    await assertCacheMatches(ctx.cache, ref, `${family} with flag hooks`);
    assertEquals(ctx.cache.get("blocks.0.attn.hook_result")!.shape, [
      2,
      8,
      cfg.nHeads,
      cfg.dModel,
    ]);
    logits!.dispose();
    disposeCache(ctx.cache);
    model.dispose();
  }
});
