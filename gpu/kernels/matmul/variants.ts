/**
 * The matmul variants (kernels numbered naive → fast, like llm.c) and which one a product uses:
 * forced, tuned in this process, read from the tuning file, or a default by adapter kind.
 * @module
 */

import type { Gpu } from "../../device.ts";
import { GpuError } from "../../device.ts";
import { readEnv } from "../../../util/env.ts";
import type { MatmulLayout, MatmulVariant } from "./common.ts";
import { matmulNaive, matmulRegblock, matmulVec4 } from "./ssbo.ts";
import { matmulTiled128, matmulTiled64 } from "./tiled.ts";
import { readMatmulTuning } from "./tune_cache.ts";
import { matmulUbo16x16, matmulUbo8x16 } from "./ubo.ts";

/** Every variant, in number order. */
export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  matmulNaive,
  matmulRegblock,
  matmulVec4,
  matmulTiled64,
  matmulTiled128,
  matmulUbo8x16,
  matmulUbo16x16,
];

/** The variant called `name` (full name or number), or `undefined` when there is none. */
export function findMatmulVariant(name: string): MatmulVariant | undefined {
  return MATMUL_VARIANTS.find((x) => x.name === name || x.name.split("_")[0] === name);
}

/**
 * The variant called `name`: its full name (`"7_ubo_16x16"`) or its number (`"7"`).
 * @throws {GpuError} listing the known names.
 */
export function getMatmulVariant(name: string): MatmulVariant {
  const v = findMatmulVariant(name);
  if (!v) {
    throw new GpuError(
      `unknown matmul variant "${name}"; known: ${MATMUL_VARIANTS.map((x) => x.name).join(", ")}`,
    );
  }
  return v;
}

/** Products below this many multiply-adds skip tuning and use the cheap-to-compile variant 2. */
export const SMALL_MATMUL_MACS = 1 << 21;

const tuned = new WeakMap<Gpu, Map<MatmulLayout, MatmulVariant>>();

/** Records `layout`'s tuned variant for `gpu` (used by {@link tuneMatmul}). */
export function setTunedMatmulVariant(gpu: Gpu, layout: MatmulLayout, v: MatmulVariant): void {
  let map = tuned.get(gpu);
  if (!map) tuned.set(gpu, map = new Map());
  map.set(layout, v);
}

/** The tuned variant of `layout` on `gpu`, if {@link tuneMatmul} has run. */
export function tunedMatmulVariant(gpu: Gpu, layout: MatmulLayout): MatmulVariant | undefined {
  return tuned.get(gpu)?.get(layout);
}

const stored = new WeakMap<Gpu, Partial<Record<MatmulLayout, string>> | null>();

/** `layout`'s variant from the tuning file's entry for `gpu` (read once per device). */
function storedMatmulVariant(gpu: Gpu, layout: MatmulLayout): MatmulVariant | undefined {
  let variants = stored.get(gpu);
  if (variants === undefined) {
    variants = readMatmulTuning(gpu)?.variants ?? null;
    stored.set(gpu, variants);
  }
  const name = variants?.[layout];
  return name ? findMatmulVariant(name) : undefined;
}

function envVariant(): string | undefined {
  return readEnv("SAEFLOW_MATMUL_VARIANT");
}

/**
 * The variant `matmul` uses for a product of this size and layout: `opts.variant`, else env
 * `SAEFLOW_MATMUL_VARIANT`, else variant 2 for small products, else the variant tuned in this
 * process, else the one measured fastest on this adapter earlier (the tuning file written by
 * `deno task tune`, the demo or the benchmarks: `defaultMatmulTuningPath()`), else a default by
 * adapter kind (the uniform-tile variant 7 on software adapters, the 128×128 workgroup-tiled
 * variant 5 on GPUs).
 */
export function chooseMatmulVariant(
  gpu: Gpu,
  layout: MatmulLayout,
  macs: number,
  forced?: string,
): MatmulVariant {
  const name = forced ?? envVariant();
  if (name) return getMatmulVariant(name);
  if (macs < SMALL_MATMUL_MACS) return matmulRegblock;
  return tunedMatmulVariant(gpu, layout) ?? storedMatmulVariant(gpu, layout) ??
    (gpu.info.isFallbackAdapter ? matmulUbo16x16 : matmulTiled128);
}
