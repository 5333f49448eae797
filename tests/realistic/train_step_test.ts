/**
 * GPU training steps of every trainable architecture against the reference at realistic shapes
 * (the case table of `train_step_cases.ts`, shared with `deno task gpu-check`).
 */
import { getGpu } from "../../gpu/device.ts";
import { runTrainStepCase, TRAIN_STEP_CASES } from "./train_step_cases.ts";

for (const c of TRAIN_STEP_CASES) {
  Deno.test(`realistic training step vs reference: ${c.architecture}: ${c.name}`, async () => {
    await runTrainStepCase(await getGpu(), c);
  });
}
