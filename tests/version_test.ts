/**
 * saeflow's recorded version is `deno.json`'s, and the SAELens version it stamps is the one it
 * follows (6.49.2) in new SAE metadata and in `runner_cfg.json`.
 */
import { SAE_LENS_VERSION, SAEFLOW_VERSION } from "../util/version.ts";
import { SAEMetadata } from "../sae/metadata.ts";
import { runnerConfigFromDict, runnerConfigToDict } from "../pipeline/runner_config.ts";
import { assertEquals } from "./assert.ts";

Deno.test("SAEFLOW_VERSION is deno.json's version; SAELens target 6.49.2", async () => {
  const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assertEquals(SAEFLOW_VERSION, deno.version);
  assertEquals(SAE_LENS_VERSION, "6.49.2");
});

Deno.test("new SAE metadata records both versions; a file's own versions are kept", () => {
  assertEquals(new SAEMetadata({ model_name: "gpt2" }).toDict(), {
    sae_lens_version: "6.49.2",
    sae_lens_training_version: "6.49.2",
    saeflow_version: SAEFLOW_VERSION,
    model_name: "gpt2",
  });
  const fromSaeLens = { sae_lens_version: "6.20.0", sae_lens_training_version: "6.20.0", a: 1 };
  assertEquals(SAEMetadata.fromDict(fromSaeLens).toDict(), fromSaeLens);
  const fromSaeflow = { ...fromSaeLens, saeflow_version: "0.0.9" };
  assertEquals(SAEMetadata.fromDict(fromSaeflow).toDict(), fromSaeflow);
});

Deno.test("runner_cfg.json is stamped with the SAELens version saeflow follows", () => {
  const cfg = runnerConfigFromDict({ sae: { architecture: "standard", dIn: 8, dSae: 16 } });
  const dict = runnerConfigToDict(cfg);
  assertEquals([dict.sae_lens_version, dict.sae_lens_training_version], ["6.49.2", "6.49.2"]);
});
