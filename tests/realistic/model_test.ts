/**
 * The LM forward kernels against the reference at realistic shapes (the checks of
 * `model_cases.ts`, shared with `deno task gpu-check`).
 */
import { getGpu } from "../../gpu/device.ts";
import { MODEL_CHECKS } from "./model_cases.ts";

for (const c of MODEL_CHECKS) {
  Deno.test(`realistic ${c.name}`, async () => {
    await c.run(await getGpu());
  });
}
