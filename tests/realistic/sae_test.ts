/**
 * SAE inference of every implemented architecture against the reference at realistic shapes
 * (the checks of `sae_cases.ts`, shared with `deno task gpu-check`).
 */
import { getGpu } from "../../gpu/device.ts";
import { SAE_INFERENCE_CHECKS } from "./sae_cases.ts";

for (const c of SAE_INFERENCE_CHECKS) {
  Deno.test(`realistic ${c.name}`, async () => {
    await c.run(await getGpu());
  });
}
