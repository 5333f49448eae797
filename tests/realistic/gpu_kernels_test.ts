/**
 * The `gpu/kernels` families against their references at realistic shapes (the checks of
 * `gpu_kernel_cases.ts`, shared with `deno task gpu-check`).
 */
import { getGpu } from "../../gpu/device.ts";
import { GPU_KERNEL_CHECKS } from "./gpu_kernel_cases.ts";

for (const c of GPU_KERNEL_CHECKS) {
  Deno.test(`realistic ${c.name}`, async () => {
    await c.run(await getGpu());
  });
}
