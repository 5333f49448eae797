/**
 * The matmul kernel family behind one import: `matmul` (f32 products in the layouts an SAE and a
 * transformer need, a fused epilogue, operands larger than one binding), its plain-TS reference
 * `matmulRef`, the variants and how one is chosen, and the per-adapter tuning (`tuneMatmul`, the
 * tuning file).
 *
 * Inside the folder: `matmul.ts` (the op) splits a product with `plan.ts` (windows past the
 * binding limit) and runs the variant `variants.ts` chooses (the registry and the choice); the
 * kernels are `ssbo.ts`, `tiled.ts` and `ubo.ts` + `ubo_pack.ts` over `common.ts` (the call
 * record, the WGSL epilogue); `tune.ts` times the variants through `matmul` and records the
 * winners with `tune_cache.ts`. Imports point one way (tune → matmul → variants → kernels);
 * nothing in the folder imports this file.
 * @module
 */

export { matmul, type MatmulOptions } from "./matmul.ts";
export type { MatmulCall, MatmulLayout, MatmulRun, MatmulVariant } from "./common.ts";
export { type MatmulShape, resolveShape } from "./plan.ts";
export {
  applyActivation,
  geluTanh,
  type MatmulActivation,
  matmulRef,
  type MatmulRefOptions,
} from "./ref.ts";
export {
  chooseMatmulVariant,
  findMatmulVariant,
  getMatmulVariant,
  MATMUL_VARIANTS,
  setTunedMatmulVariant,
  SMALL_MATMUL_MACS,
  tunedMatmulVariant,
} from "./variants.ts";
export { matmulNaive, matmulRegblock, matmulVec4 } from "./ssbo.ts";
export { matmulTiled128, matmulTiled64 } from "./tiled.ts";
export { matmulUbo16x16, matmulUbo8x16 } from "./ubo.ts";
export { releaseMatmulScratch } from "./ubo_pack.ts";
export {
  matmulTuneResults,
  selectMatmulVariant,
  tuneMatmul,
  type TuneOptions,
  type TuneResult,
} from "./tune.ts";
export {
  adapterKey,
  defaultMatmulTuningPath,
  MATMUL_TUNING_FILENAME,
  type MatmulTuningEntry,
  type MatmulTuningFile,
  readMatmulTuning,
  readMatmulTuningFile,
  writeMatmulTuning,
} from "./tune_cache.ts";
