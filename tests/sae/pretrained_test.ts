import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  applyConfigOverrides,
  getPretrainedDirectory,
  getPretrainedRelease,
  listPretrainedReleases,
  PretrainedLookupError,
  resolvePretrained,
} from "../../sae/pretrained.ts";
import { setConfigWarnHandler } from "../../config/errors.ts";

const GPT2_L0 = [10, 10, 18, 23, 31, 41, 51, 54, 60, 70, 52, 56, 70];
const GPT2_VAR = [0.999, 0.999, 0.999, 0.999, 0.9, 0.9, 0.9, 0.9, 0.9, 0.77, 0.77, 0.77, 0.77];

Deno.test("gpt2-small-res-jb lookup matches the SAELens 6.18 registry", () => {
  const lookup = getPretrainedRelease("gpt2-small-res-jb");
  assert(lookup !== null);
  const ids = [
    ...Array.from({ length: 12 }, (_, i) => `blocks.${i}.hook_resid_pre`),
    "blocks.11.hook_resid_post",
  ];
  assertEquals(lookup.release, "gpt2-small-res-jb");
  assertEquals(lookup.repoId, "jbloom/GPT2-Small-SAEs-Reformatted");
  assertEquals(lookup.model, "gpt2-small");
  assertEquals(lookup.conversionFunc, null);
  assertEquals(Object.keys(lookup.saesMap), ids);
  assertEquals(lookup.saesMap, Object.fromEntries(ids.map((id) => [id, id])));
  assertEquals(lookup.expectedL0, Object.fromEntries(ids.map((id, i) => [id, GPT2_L0[i]])));
  assertEquals(
    lookup.expectedVarExplained,
    Object.fromEntries(ids.map((id, i) => [id, GPT2_VAR[i]])),
  );
  assertEquals(
    lookup.neuronpediaId,
    Object.fromEntries(ids.map((id, i) => [id, `gpt2-small/${i}-res-jb`])),
  );
  assertEquals(lookup.configOverrides, {
    model_from_pretrained_kwargs: { center_writing_weights: true },
  });
  assertEquals(lookup.normScalingFactor, {});
  assertEquals(lookup.expectedL0["blocks.8.hook_resid_pre"], 60);
  assertEquals(lookup.expectedVarExplained["blocks.8.hook_resid_pre"], 0.9);
});

Deno.test("registry totals: 73 releases, 4,500 SAEs; neuronpedia ids unique; int paths", () => {
  const dir = getPretrainedDirectory();
  assertEquals(dir.size, 73);
  assertEquals(listPretrainedReleases().length, 73);
  let saes = 0, withNp = 0, withNorm = 0;
  const neuronpedia = new Map<string, string>();
  for (const lookup of dir.values()) {
    const ids = Object.keys(lookup.saesMap);
    saes += ids.length;
    withNorm += Object.keys(lookup.normScalingFactor).length;
    for (const id of ids) {
      const np = lookup.neuronpediaId[id];
      if (np === null) continue;
      withNp++;
      const where = `${lookup.release}/${id}`;
      assert(
        !neuronpedia.has(np),
        `neuronpedia id ${np} used by ${neuronpedia.get(np)} and ${where}`,
      );
      neuronpedia.set(np, where);
    }
  }
  assertEquals(saes, 4500);
  assertEquals(withNp, 2190);
  assertEquals(withNorm, 301);
  // Integer paths (CLT layers) come back as strings.
  const clt = getPretrainedRelease("mntss-gemma-2-2b-2.5m-clt-as-per-layer");
  assertEquals(clt?.saesMap["layer_0"], "0");
  assertEquals(clt?.conversionFunc, "mntss_clt_layer_transcoder");
  // Parsed once: the same object every time.
  assert(getPretrainedDirectory() === dir);
});

Deno.test("the entry with a stray nested release is tolerated", () => {
  const lookup = getPretrainedRelease("gpt2-small-res_scefr-ajt");
  assert(lookup !== null);
  assert(Object.hasOwn(lookup.saesMap, "blocks.10.hook_resid_pre"));
});

Deno.test("resolvePretrained: repo, folder, overrides with neuronpedia_id, loader name", () => {
  const r = resolvePretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre");
  assertEquals(r, {
    release: "gpt2-small-res-jb",
    repoId: "jbloom/GPT2-Small-SAEs-Reformatted",
    folder: "blocks.8.hook_resid_pre",
    configOverrides: {
      model_from_pretrained_kwargs: { center_writing_weights: true },
      neuronpedia_id: "gpt2-small/8-res-jb",
    },
    normScalingFactor: null,
    conversionFunc: "sae_lens",
  });
  // The returned overrides are a copy.
  (r.configOverrides.model_from_pretrained_kwargs as Record<string, unknown>).x = 1;
  assertEquals(getPretrainedRelease("gpt2-small-res-jb")?.configOverrides, {
    model_from_pretrained_kwargs: { center_writing_weights: true },
  });

  const gemma = resolvePretrained("gemma-2b-res-jb", "blocks.12.hook_resid_post");
  assertEquals(gemma.folder, "gemma_2b_blocks.12.hook_resid_post_16384");
  assertEquals(gemma.normScalingFactor, 0.21381938399317255);
  const noNp = resolvePretrained("gemma-2b-res-jb", "blocks.17.hook_resid_post");
  assertEquals(noNp.configOverrides, { neuronpedia_id: null });

  const canonical = resolvePretrained(
    "gemma-scope-2b-pt-res-canonical",
    "layer_0/width_16k/canonical",
  );
  assertEquals(canonical.folder, "layer_0/width_16k/average_l0_105");
  assertEquals(canonical.conversionFunc, "gemma_2");
  const llama = resolvePretrained("llama_scope_lxr_8x", "l0r_8x");
  assertEquals(llama.folder, "Llama3_1-8B-Base-L0R-8x");
  assert(llama.normScalingFactor !== null && Math.abs(llama.normScalingFactor - 58.935) < 0.01);
});

Deno.test("resolvePretrained: an unknown release with '/' is a raw HF repo id", () => {
  const r = resolvePretrained("someone/my-saes", "layer_3/width_16k");
  assertEquals(r, {
    release: null,
    repoId: "someone/my-saes",
    folder: "layer_3/width_16k",
    configOverrides: {},
    normScalingFactor: null,
    conversionFunc: "sae_lens",
  });
  const warnings: string[] = [];
  const previous = setConfigWarnHandler((m) => warnings.push(m));
  try {
    resolvePretrained("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.0.hook_resid_pre");
  } finally {
    setConfigWarnHandler(previous);
  }
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("gpt2-small-res-jb"));
});

Deno.test("resolvePretrained errors: unknown release, unknown id lists ≤ 5 ids", () => {
  const err = assertThrows(
    () => resolvePretrained("gpt2-small-res", "blocks.0.hook_resid_pre"),
    PretrainedLookupError,
    'release "gpt2-small-res"',
  );
  assert(err.message.includes("gpt2-small-res-jb"), err.message); // suggests close names
  const idErr = assertThrows(
    () => resolvePretrained("gpt2-small-res-jb", "blocks.12.hook_resid_pre"),
    PretrainedLookupError,
    '"blocks.12.hook_resid_pre"',
  );
  assert(idErr.message.includes("(13)"), idErr.message);
  assert(idErr.message.includes("blocks.4.hook_resid_pre"), idErr.message);
  assert(!idErr.message.includes("blocks.5.hook_resid_pre"), "at most 5 ids listed");
  const gemmaErr = assertThrows(
    () => resolvePretrained("gemma-scope-2b-pt-res", "layer_0/width_16k/average_l0_1"),
    PretrainedLookupError,
  );
  assert(gemmaErr.message.includes("gemma-scope-2b-pt-res-canonical"), gemmaErr.message);
  assertThrows(() => resolvePretrained("gpt2-small-res-jb", "toString"), PretrainedLookupError);
  assertEquals(getPretrainedRelease("no-such-release"), null);
});

Deno.test("applyConfigOverrides: device, then a shallow top-level update", () => {
  const cfg = { d_in: 4, device: "mps", model_from_pretrained_kwargs: { a: 1 } };
  const out = applyConfigOverrides(cfg, { model_from_pretrained_kwargs: { b: 2 } }, "cpu");
  assertEquals(out, { d_in: 4, device: "cpu", model_from_pretrained_kwargs: { b: 2 } });
  assertEquals(cfg.device, "mps"); // input untouched
  assertEquals(applyConfigOverrides(cfg, {}).device, "mps");
});
