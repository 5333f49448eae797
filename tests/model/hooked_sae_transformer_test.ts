// HookedSAETransformer (SAELens analysis/test_hooked_sae_transformer.py behaviours) on the shipped
// real model with small random SAEs: no SAEs ⇒ same logits; an SAE ⇒ different; add /
// overwrite / reset / prevSaes; withSaes restores on success and on exceptions; run_with_*
// variants; the error term reproduces the logits; latent edits change the output; hook_z SAEs;
// blocks.L.mlp.hook_in.
import { HookedSAETransformer } from "../../model/hooked_sae_transformer.ts";
import { disposeCache } from "../../model/hooks/gpu.ts";
import { ModelError } from "../../model/mod.ts";
import { SAE } from "../../sae/sae.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { scale } from "../../gpu/kernels/elementwise.ts";
import { assert, assertAllClose, assertEquals, assertRejects, assertThrows } from "../assert.ts";

const DIR = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const model = await HookedSAETransformer.fromPretrainedNoProcessing(DIR);
const tokens = model.toTokens("Hello World!");
const RESID = "blocks.1.hook_resid_pre";

function makeSae(hookName: string, seed: number, extra: Record<string, unknown> = {}) {
  return SAE.fromConfig(
    { architecture: "standard", dIn: 128, dSae: 64, metadata: { hookName }, ...extra },
    { seed },
  );
}
const saeA = await makeSae(RESID, 1);
const saeB = await makeSae(RESID, 2);
const saeZ = await makeSae("blocks.0.attn.hook_z", 3, { reshapeActivations: "hook_z" });
const saeMlp = await makeSae("blocks.2.mlp.hook_in", 4);

const clean = await (await model.forward(tokens)).toArray() as Float32Array;

async function logitsOf(t: Tensor | Promise<Tensor>): Promise<Float32Array> {
  const x = await t;
  const data = await x.toArray() as Float32Array;
  x.dispose();
  return data;
}

function differs(a: Float32Array, b: Float32Array): boolean {
  return a.some((x, i) => Math.abs(x - b[i]) > 1e-3);
}

/** Captures console.warn during `fn`. */
function warnings(fn: () => void): string[] {
  const seen: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => void seen.push(a.join(" "));
  try {
    fn();
  } finally {
    console.warn = orig;
  }
  return seen;
}

Deno.test("hooked sae transformer: no SAEs ⇒ the model's logits; an SAE ⇒ different logits", async () => {
  assertAllClose(await logitsOf(model.runWithSaes(tokens, { saes: [] })), clean, 0);
  const withSae = await logitsOf(model.runWithSaes(tokens, { saes: [saeA] }));
  assert(differs(withSae, clean), "splicing a random SAE changes the logits");
  assertEquals(model.actsToSaes.size, 0, "runWithSaes detaches afterwards");
  // Attached for good, the forward uses it too.
  model.addSae(saeA);
  assertAllClose(await logitsOf(model.forward(tokens)), withSae, 1e-5);
  model.resetSaes();
  assertAllClose(await logitsOf(model.forward(tokens)), clean, 0);
});

Deno.test("hooked sae transformer: add / overwrite / reset / prevSaes / unknown hooks", () => {
  model.addSae(saeA);
  assertEquals(model.actsToSaes.get(RESID), saeA);
  assert(model.hookNames().includes(`${RESID}.hook_sae_acts_post`));
  assert(!model.hookNames().includes(RESID), "the SAE replaces the hook point");
  model.addSae(saeB);
  assertEquals(model.actsToSaes.get(RESID), saeB, "overwritten");
  model.addSae(saeZ);
  model.resetSaes([RESID]);
  assertEquals([...model.actsToSaes.keys()], ["blocks.0.attn.hook_z"]);
  model.resetSaes(["blocks.0.attn.hook_z"], [saeA as SAE]);
  // prevSaes puts saeA back at the reset name (SAELens replaces by position).
  assertEquals(model.actsToSaes.get("blocks.0.attn.hook_z"), saeA);
  model.resetSaes();
  assertEquals(model.actsToSaes.size, 0);
  assertThrows(() => model.resetSaes([RESID], []), ModelError, "previous SAEs");
  const bogus = { ...saeA, cfg: { ...saeA.cfg, metadata: { hookName: "blocks.9.hook_nope" } } };
  assertThrows(
    () => model.addSae(bogus as unknown as SAE),
    ModelError,
    'no hook point "blocks.9.hook_nope"',
  );
  assertEquals(model.actsToSaes.size, 0, "unknown hook: nothing attached");
  const w = warnings(() => model.addSae(bogus as unknown as SAE, { skipMissingHooks: true }));
  assertEquals(model.actsToSaes.size, 0, "skipMissingHooks: no-op");
  assert(w.some((m) => m.includes("blocks.9.hook_nope")), "with a warning");
});

Deno.test("hooked sae transformer: withSaes restores the previous state, also after an exception", async () => {
  model.addSae(saeA, { useErrorTerm: false });
  saeB.useErrorTerm = false;
  await model.withSaes([saeB], (m) => {
    assertEquals(m.actsToSaes.get(RESID), saeB);
    assertEquals(saeB.useErrorTerm, true);
  }, { useErrorTerm: true });
  assertEquals(model.actsToSaes.get(RESID), saeA, "previous SAE back");
  assertEquals(saeB.useErrorTerm, false, "useErrorTerm restored");
  await assertRejects(
    () =>
      model.withSaes([saeB, saeZ], () => {
        throw new Error("boom");
      }, { useErrorTerm: true }),
    Error,
    "boom",
  );
  assertEquals(model.actsToSaes.get(RESID), saeA);
  assert(!model.actsToSaes.has("blocks.0.attn.hook_z"));
  assertEquals(saeB.useErrorTerm, false, "restored after the exception");
  assertEquals(saeZ.useErrorTerm, false);
  model.resetSaes();
});

Deno.test("hooked sae transformer: runWithCacheWithSaes caches hook_sae_* values (equal to the SAE's)", async () => {
  const run = await model.runWithCacheWithSaes(tokens, { saes: [saeA] });
  const names = [...run.cache.keys()];
  for (const h of ["input", "acts_pre", "acts_post", "recons", "output"]) {
    assert(names.includes(`${RESID}.hook_sae_${h}`), `cache has hook_sae_${h}`);
  }
  assert(!names.includes(RESID), "the replaced hook point does not fire");
  const P = tokens[0].length;
  assertEquals([...run.cache.get(`${RESID}.hook_sae_acts_post`)!.shape], [1, P, 64]);
  // The SAE's own forward on the cached input gives the cached latents and output.
  using acts = saeA.encode(run.cache.get(`${RESID}.hook_sae_input`)!);
  assertAllClose(
    await run.cache.get(`${RESID}.hook_sae_acts_post`)!.toArray(),
    await acts.toArray(),
    1e-5,
  );
  // Order: hooks before the splice, the SAE's, then the rest.
  assert(names.indexOf("blocks.0.hook_resid_post") < names.indexOf(`${RESID}.hook_sae_input`));
  assert(names.indexOf(`${RESID}.hook_sae_output`) < names.indexOf("blocks.1.ln1.hook_scale"));
  run.logits!.dispose();
  disposeCache(run.cache);
  assertEquals(model.actsToSaes.size, 0);
});

Deno.test("hooked sae transformer: useErrorTerm ⇒ the original logits; latent edits still change them", async () => {
  const withErr = await logitsOf(model.runWithSaes(tokens, { saes: [saeA], useErrorTerm: true }));
  assertAllClose(withErr, clean, 1e-4, 1e-5, "error term reproduces the model");
  assertEquals(saeA.useErrorTerm, false, "restored");
  const edited = await logitsOf(model.runWithHooksWithSaes(tokens, {
    saes: [saeA],
    useErrorTerm: true,
    fwdHooks: [[`${RESID}.hook_sae_acts_post`, (t) => scale(t, 0)]],
  }));
  assert(differs(edited, clean), "ablating every latent changes the output");
});

Deno.test("hooked sae transformer: hook_z SAEs take [B,T,H,d_head]; mlp.hook_in SAEs attach", async () => {
  const seen: number[][] = [];
  const run = await model.runWithCacheWithSaes(tokens, {
    saes: [saeZ, saeMlp],
    namesFilter: (n) => n.includes("hook_sae_"),
    fwdHooks: [["blocks.0.attn.hook_z.hook_sae_input", (t) => void seen.push([...t.shape])]],
  });
  const P = tokens[0].length;
  // SAELens flattens the heads before hook_sae_input (reshape_fn_in runs first).
  assertEquals(seen, [[1, P, 128]]);
  assert(run.cache.has("blocks.0.attn.hook_z.hook_sae_output"));
  assert(run.cache.has("blocks.2.mlp.hook_in.hook_sae_acts_post"));
  assert(differs(await logitsOf(run.logits!), clean));
  disposeCache(run.cache);
  // With the error term both splices are transparent.
  const transparent = await logitsOf(
    model.runWithSaes(tokens, { saes: [saeZ, saeMlp], useErrorTerm: true }),
  );
  assertAllClose(transparent, clean, 1e-4, 1e-5);
});

Deno.test("hooked sae transformer: a transcoder reads mlp.hook_in and replaces hook_mlp_out (newest SAELens)", async () => {
  const IN = "blocks.1.mlp.hook_in", OUT = "blocks.1.hook_mlp_out";
  const tc = await SAE.fromConfig({
    architecture: "skip_transcoder",
    dIn: 128,
    dSae: 64,
    dOut: 128,
    applyBDecToInput: false,
    metadata: { hookName: IN, hookNameOut: OUT },
  }, { seed: 9 });
  const run = await model.runWithCacheWithSaes(tokens, { saes: [tc] });
  const names = [...run.cache.keys()];
  assert(names.includes(IN), "the input hook still fires and is cached");
  assert(!names.includes(OUT), "the output hook is replaced");
  for (const h of ["input", "acts_post", "recons", "output"]) {
    assert(names.includes(`${OUT}.hook_sae_${h}`), `cache has ${OUT}.hook_sae_${h}`);
  }
  // What flows on at the output hook is the transcoder of the activation at the input hook.
  using expected = tc.forward(run.cache.get(IN)!);
  assertAllClose(
    await run.cache.get(`${OUT}.hook_sae_output`)!.toArray(),
    await expected.toArray(),
    1e-5,
  );
  const spliced = await run.logits!.toArray() as Float32Array;
  assert(differs(spliced, clean), "the transcoder changes the output");
  run.logits!.dispose();
  disposeCache(run.cache);
  // With the error term (original − the hook-free transcoder output) the logits come back, and
  // ablating the latents still changes them.
  const withErr = await logitsOf(model.runWithSaes(tokens, { saes: [tc], useErrorTerm: true }));
  assertAllClose(withErr, clean, 1e-4, 1e-5, "error term reproduces the model");
  const edited = await logitsOf(model.runWithHooksWithSaes(tokens, {
    saes: [tc],
    useErrorTerm: true,
    fwdHooks: [[`${OUT}.hook_sae_acts_post`, (t) => scale(t, 0)]],
  }));
  assert(differs(edited, clean), "ablating the transcoder's latents changes the output");
  assertEquals(model.actsToSaes.size, 0);
  assertEquals(tc.useErrorTerm, false);
  tc.dispose();
});
