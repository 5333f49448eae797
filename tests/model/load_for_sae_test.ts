// HookedSAETransformer.fromPretrainedForSae: the model an SAE names, loaded as SAELens's
// load_model does (fromPretrainedNoProcessing + the SAE's model_from_pretrained_kwargs), on the
// shipped tiny GPT-2. Centred writing weights show as a residual stream with zero mean along
// d_model (blocks.0.hook_resid_pre = W_E[tok] + W_pos[pos]); the unprocessed model's is not.
import { HookedSAETransformer } from "../../model/hooked_sae_transformer.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { ModelError } from "../../model/mod.ts";
import { disposeCache } from "../../model/hooks/gpu.ts";
import { SAE } from "../../sae/sae.ts";
import { SAEMetadata } from "../../sae/metadata.ts";
import { getGpu } from "../../gpu/device.ts";
import { assert, assertAllClose, assertEquals, assertRejects } from "../assert.ts";

const DATA = new URL("../../data", import.meta.url).pathname;
const DIR = `${DATA}/tiny-shakespeare-gpt2`;
const HOOK = "blocks.0.hook_resid_pre";
const gpu = await getGpu();
const tokens = [[256, 70, 105, 114, 115, 116, 32, 67]];

function sae(metadata: Record<string, unknown>): Promise<SAE> {
  return SAE.fromConfig(
    { architecture: "standard", dIn: 128, dSae: 64, metadata: { hookName: HOOK, ...metadata } },
    { seed: 1, gpu },
  );
}

/** max over positions of |mean over d_model| of `HOOK`, and the largest |value| there. */
async function residMean(model: HookedTransformer): Promise<{ mean: number; scale: number }> {
  const run = await model.runWithCache(tokens, { namesFilter: [HOOK], stopAtLayer: 1 });
  run.residual?.dispose();
  const x = await run.cache.get(HOOK)!.toArray() as Float32Array;
  disposeCache(run.cache);
  const D = model.cfg.dModel;
  let mean = 0, scale = 0;
  for (let p = 0; p < x.length / D; p++) {
    let s = 0;
    for (let d = 0; d < D; d++) {
      s += x[p * D + d];
      scale = Math.max(scale, Math.abs(x[p * D + d]));
    }
    mean = Math.max(mean, Math.abs(s / D));
  }
  return { mean, scale };
}

async function logits(model: HookedTransformer): Promise<Float32Array> {
  const t = await model.forward(tokens);
  const out = await t.toArray() as Float32Array;
  t.dispose();
  return out;
}

const plain = await HookedTransformer.fromPretrainedNoProcessing(DIR, { gpu });
const plainMean = await residMean(plain);
const plainLogits = await logits(plain);
plain.dispose();

Deno.test("fromPretrainedForSae: the SAE's model_from_pretrained_kwargs take effect (center_writing_weights)", async () => {
  // The check has teeth: the unprocessed model's residual is far from mean-zero.
  assert(plainMean.mean > 1e-2 * plainMean.scale, `unprocessed mean ${plainMean.mean}`);
  const s = await sae({
    modelName: DIR,
    modelClassName: "HookedTransformer",
    modelFromPretrainedKwargs: { center_writing_weights: true },
  });
  const model = await HookedSAETransformer.fromPretrainedForSae(s, { gpu });
  try {
    assert(model instanceof HookedSAETransformer, "called on HookedSAETransformer: its instance");
    const centred = await residMean(model);
    assert(centred.mean < 1e-6 * centred.scale, `centred mean ${centred.mean} (${centred.scale})`);
    // Only the writing weights were centred: no fold_ln / center_unembed, so with LayerNorm
    // after every write the logits stay those of the unprocessed model (to rounding).
    assertAllClose(await logits(model), plainLogits, 1e-4, 1e-4);
    // And the SAE runs spliced into the model it named.
    const withSae = await model.runWithSaes(tokens, { saes: [s] });
    assertEquals([...withSae.shape], [1, tokens[0].length, model.cfg.dVocab]);
    withSae.dispose();
  } finally {
    model.dispose();
    s.dispose();
  }
});

Deno.test("fromPretrainedForSae: no kwargs ⇒ no processing; opts override the SAE's kwargs", async () => {
  const bare = await sae({ modelName: DIR });
  const m1 = await HookedSAETransformer.fromPretrainedForSae(bare, { gpu });
  assertAllClose(await logits(m1), plainLogits, 0, 0, "exactly the unprocessed model");
  assertEquals((await residMean(m1)).mean, plainMean.mean);
  m1.dispose();
  bare.dispose();
  // A caller's option beats the SAE's kwarg, in either spelling; metadata alone also works, and
  // HookedTransformer.fromPretrainedForSae gives a plain HookedTransformer.
  const meta = new SAEMetadata({
    model_name: DIR,
    model_from_pretrained_kwargs: { center_writing_weights: true },
  });
  for (const opts of [{ centerWritingWeights: false }, { center_writing_weights: false }]) {
    const m = await HookedTransformer.fromPretrainedForSae(meta, { ...opts, gpu });
    assert(!(m instanceof HookedSAETransformer));
    assertEquals((await residMean(m)).mean, plainMean.mean, JSON.stringify(opts));
    m.dispose();
  }
});

Deno.test("fromPretrainedForSae: clear errors for a missing model name, another model class, bad kwargs", async () => {
  const none = await sae({});
  await assertRejects(
    () => HookedSAETransformer.fromPretrainedForSae(none, { gpu }),
    ModelError,
    "no model_name",
  );
  none.dispose();
  await assertRejects(
    () =>
      HookedSAETransformer.fromPretrainedForSae(
        new SAEMetadata({ model_name: DIR, model_class_name: "AutoModelForCausalLM" }),
        { gpu },
      ),
    ModelError,
    "AutoModelForCausalLM",
  );
  await assertRejects(
    () =>
      HookedSAETransformer.fromPretrainedForSae(
        new SAEMetadata({ model_name: DIR, model_from_pretrained_kwargs: { fold_lnn: true } }),
        { gpu },
      ),
    ModelError,
    "fold_lnn",
  );
});

Deno.test("fromPretrainedForSae: model_name is a folder name, found in the caller's modelDirs", async () => {
  const empty = await Deno.makeTempDir();
  try {
    // The first listed folder that holds it wins; folders without it are skipped.
    const meta = new SAEMetadata({ model_name: "tiny-shakespeare-gpt2" });
    const m = await HookedTransformer.fromPretrainedForSae(meta, { gpu, modelDirs: [empty, DATA] });
    assertAllClose(await logits(m), plainLogits, 0, 0, "the shipped model, unprocessed");
    m.dispose();
    // Not found: one ModelError naming the name and the folders searched.
    const err = await assertRejects(
      () => HookedTransformer.fromPretrainedForSae(meta, { gpu, modelDirs: [empty] }),
      ModelError,
      '"tiny-shakespeare-gpt2" is no folder in modelDirs',
    );
    assert(err.message.includes(empty), err.message);
    // A model_name with separators or dots is never joined to a modelDirs entry: each of these
    // would reach the model through the link if it were.
    await Deno.mkdir(`${empty}/inner`);
    await Deno.symlink(DIR, `${empty}/linked-model`);
    for (
      const [name, dir] of [
        ["../linked-model", "inner"],
        ["inner/../linked-model", ""],
        ["./linked-model", ""],
      ]
    ) {
      await assertRejects(
        () =>
          HookedTransformer.fromPretrainedForSae(new SAEMetadata({ model_name: name }), {
            gpu,
            modelDirs: [`${empty}/${dir}`],
          }),
        ModelError,
        "is no folder in modelDirs",
      );
    }
    await assertRejects(
      () =>
        HookedTransformer.fromPretrainedForSae(meta, {
          gpu,
          modelDirs: "data" as unknown as string[],
        }),
      ModelError,
      "modelDirs must be an array",
    );
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
