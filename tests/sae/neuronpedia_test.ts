/**
 * Neuronpedia URLs: feature pages and quick lists, checked against strings Python's SAELens code
 * path produces (`urllib.parse.quote(json.dumps(...))`, computed with CPython 3), and the errors
 * for an SAE without `neuronpedia_id`, malformed ids and out-of-range indices.
 */

import { createSAEConfig } from "../../sae/config.ts";
import {
  neuronpediaFeatureUrl,
  neuronpediaQuickListUrl,
  parseNeuronpediaId,
} from "../../sae/neuronpedia.ts";
import { SaeError } from "../../sae/errors.ts";
import { getPretrainedRelease } from "../../sae/pretrained.ts";
import { assertEquals, assertThrows } from "../assert.ts";

function configWith(id: string | null, dSae = 16384) {
  const cfg = createSAEConfig({ architecture: "standard", dIn: 2304, dSae });
  cfg.metadata.neuronpediaId = id;
  return cfg;
}

Deno.test("neuronpedia: feature URLs from an id, a config and an SAE-like object", () => {
  assertEquals(
    neuronpediaFeatureUrl("gpt2-small/8-res-jb", 1234),
    "https://www.neuronpedia.org/gpt2-small/8-res-jb/1234",
  );
  const cfg = configWith("gemma-2-2b/20-gemmascope-res-16k");
  assertEquals(
    neuronpediaFeatureUrl(cfg, 16383),
    "https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/16383",
  );
  assertEquals(
    neuronpediaFeatureUrl({ cfg }, 0),
    "https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/0",
  );
  assertEquals(
    neuronpediaFeatureUrl("pythia-70m-deduped/e-att-sm", 7),
    "https://www.neuronpedia.org/pythia-70m-deduped/e-att-sm/7",
  );
  assertEquals(parseNeuronpediaId("pythia-70m-deduped/e-att-sm").layer, "e");
});

Deno.test("neuronpedia: every neuronpedia id of the pretrained registry parses", () => {
  let n = 0;
  for (const release of ["gpt2-small-res-jb", "gemma-scope-2b-pt-res-canonical"]) {
    const r = getPretrainedRelease(release);
    if (!r) throw new Error(`registry has no ${release}`);
    for (const id of Object.values(r.neuronpediaId)) {
      if (id === null) continue;
      const p = parseNeuronpediaId(id);
      assertEquals(`${p.modelId}/${p.layer}-${p.saeSet}`, id);
      n++;
    }
  }
  if (n < 20) throw new Error(`only ${n} ids checked`);
});

Deno.test("neuronpedia: quick-list URLs equal Python's quote(json.dumps(...))", () => {
  assertEquals(
    neuronpediaQuickListUrl(configWith("gemma-2-2b/20-gemmascope-res-16k"), [0, 16383]),
    "https://neuronpedia.org/quick-list/?name=temporary_list&features=%5B%7B%22modelId%22%3A%20" +
      "%22gemma-2-2b%22%2C%20%22layer%22%3A%20%2220-gemmascope-res-16k%22%2C%20%22index%22%3A" +
      "%20%220%22%7D%2C%20%7B%22modelId%22%3A%20%22gemma-2-2b%22%2C%20%22layer%22%3A%20%2220-" +
      "gemmascope-res-16k%22%2C%20%22index%22%3A%20%2216383%22%7D%5D",
  );
  assertEquals(
    neuronpediaQuickListUrl(
      "pythia-70m-deduped/e-att-sm",
      [5],
      'Ünïcode list/with "quotes" & more?',
    ),
    "https://neuronpedia.org/quick-list/?name=%C3%9Cn%C3%AFcode%20list/with%20%22quotes%22%20" +
      "%26%20more%3F&features=%5B%7B%22modelId%22%3A%20%22pythia-70m-deduped%22%2C%20%22layer" +
      "%22%3A%20%22e-att-sm%22%2C%20%22index%22%3A%20%225%22%7D%5D",
  );
});

Deno.test("neuronpedia: no id, malformed ids and bad indices are refused clearly", () => {
  assertThrows(() => neuronpediaFeatureUrl(configWith(null), 0), SaeError, "no neuronpedia_id");
  assertThrows(() => neuronpediaQuickListUrl({ cfg: configWith(null) }, [0]), SaeError, "no ");
  for (const bad of ["gpt2-small", "gpt2-small/8", "a/b/c", "gpt2 small/8-res", "/8-res", "m/-x"]) {
    assertThrows(() => neuronpediaFeatureUrl(bad, 0), SaeError, "{model}/{layer}-{saeSet}");
  }
  assertThrows(
    () => neuronpediaFeatureUrl(configWith("m/1-x", 100), 100),
    SaeError,
    "[0, 100) (the SAE's d_sae is 100)",
  );
  for (const idx of [-1, 1.5, NaN, Infinity]) {
    assertThrows(() => neuronpediaFeatureUrl("m/1-x", idx), SaeError, "feature index");
  }
  assertThrows(() => neuronpediaQuickListUrl("m/1-x", []), SaeError, "at least one");
  assertThrows(
    () => neuronpediaQuickListUrl(configWith("m/1-x", 10), [1, 2, 10]),
    SaeError,
    "feature index 10",
  );
});
