/**
 * `deno task tune [--force]`: measures the matmul variants on this machine's adapter for every
 * layout and records the fastest in the tuning file (`defaultMatmulTuningPath()`), which every
 * later saeflow process on this adapter reads on its first large product. Without `--force`,
 * layouts already recorded for this adapter are kept.
 * @module
 */

import { getGpu } from "../gpu/device.ts";
import { defaultMatmulTuningPath, tuneMatmul } from "../gpu/kernels/matmul/mod.ts";

if (import.meta.main) {
  const gpu = await getGpu();
  const force = Deno.args.includes("--force");
  const path = defaultMatmulTuningPath();
  const results = await tuneMatmul(gpu, undefined, { cache: path, force });
  for (const r of results) {
    const speeds = Object.entries(r.gflops)
      .filter(([, g]) => Number.isFinite(g))
      .map(([name, g]) => `${name} ${g.toFixed(1)}`)
      .join(", ");
    console.log(
      `${r.layout}: ${r.variant} (${r.fromCache ? `recorded ${r.measuredAt}` : "measured now"}; ` +
        `GFLOP/s ${speeds || "-"})`,
    );
  }
  console.log(`adapter: ${gpu.info.description}; tuning file: ${path}`);
  gpu.destroy();
}
