// data/pretrained_saes.json (what saeflow loads, through the module graph) is exactly what
// `deno task gen-registry` makes from data/pretrained_saes.yaml (what is edited), so the two
// cannot drift apart; and the registry loads from the JSON alone.
import REGISTRY from "../../data/pretrained_saes.json" with { type: "json" };
import YAML from "yaml";
import {
  REGISTRY_JSON,
  REGISTRY_YAML,
  registryJsonText,
} from "../../scripts/gen_pretrained_saes.ts";
import { listPretrainedReleases, resolvePretrained } from "../../sae/pretrained.ts";
import { assert, assertEquals } from "../assert.ts";

Deno.test("pretrained_saes.json is the generated form of pretrained_saes.yaml, byte for byte", async () => {
  const yamlText = await Deno.readTextFile(REGISTRY_YAML);
  const jsonText = await Deno.readTextFile(REGISTRY_JSON);
  assert(
    jsonText === registryJsonText(yamlText),
    "data/pretrained_saes.json is stale: run `deno task gen-registry` and commit the result",
  );
  // And as values: the imported module equals the YAML parsed as SAELens parses it.
  assertEquals(REGISTRY, YAML.parse(yamlText, { uniqueKeys: false }));
  assertEquals(listPretrainedReleases(), Object.keys(REGISTRY));
});

Deno.test("registryJsonText refuses values JSON cannot hold", () => {
  let msg = "";
  try {
    registryJsonText("r:\n  repo_id: a/b\n  l0: .inf\n");
  } catch (err) {
    msg = (err as Error).message;
  }
  assert(msg.includes("registry.r.l0"), msg);
});

Deno.test("the registry resolves from the bundled JSON (no file read)", () => {
  const r = resolvePretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre");
  assertEquals(r.repoId, "jbloom/GPT2-Small-SAEs-Reformatted");
  assertEquals(r.folder, "blocks.8.hook_resid_pre");
});
