// Shared by the GPU model tests: tiny random models per family (host params) and a comparison of
// GPU hook values against the reference forward that treats the masked −∞ scores exactly.
import { getGpu } from "../../../gpu/device.ts";
import { readAll, type Tensor } from "../../../gpu/tensor.ts";
import { type ForwardResult, type LoadedModel, loadModelFromDir } from "../../../model/mod.ts";
import { assertEquals } from "../../assert.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "../families/mod.ts";

export const TOKENS = [[3, 17, 5, 9, 22, 1, 0, 14], [7, 7, 12, 2, 19, 4, 11, 6]];

/**
 * GPU vs reference tolerance: |gpu − ref| ≤ ATOL + RTOL·|ref|. Observed worst ≈ 4e-6 on these
 * models (float32 GPU arithmetic against float64-accumulating references).
 */
export const ATOL = 2e-5, RTOL = 1e-4;

/** Loads a tiny random HF-layout model of `family` (temp dir removed afterwards). */
export async function loadFamily(family: string, seed: number): Promise<LoadedModel> {
  const dir = await writeHfModel(CONFIGS[family], randomHfTensors(CONFIGS[family], seed));
  try {
    return await loadModelFromDir(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Worst violation of the tolerance (0 when within), with −∞ required to match exactly. */
export function worstError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    if (w === -Infinity || g === -Infinity) {
      if (w !== g) return Infinity;
      continue;
    }
    const excess = Math.abs(g - w) - (ATOL + RTOL * Math.abs(w));
    if (!(excess <= 0)) worst = Math.max(worst, Number.isNaN(excess) ? Infinity : excess);
  }
  return worst;
}

/** Asserts a GPU cache equals the reference cache: same names in the same order, shapes, values. */
export async function assertCacheMatches(
  gpuCache: Map<string, Tensor>,
  ref: ForwardResult,
  label: string,
): Promise<void> {
  const names = [...gpuCache.keys()];
  assertEquals(names, [...ref.cache.keys()], `${label}: hook names in firing order`);
  const values = await readAll(names.map((n) => gpuCache.get(n)!));
  names.forEach((n, i) => {
    const r = ref.cache.get(n)!;
    assertEquals([...gpuCache.get(n)!.shape], r.shape, `${label}: shape of ${n}`);
    const err = worstError(values[i] as Float32Array, r.data);
    if (err > 0) throw new Error(`${label}: ${n} differs from the reference (excess ${err})`);
  });
}

/** Asserts one GPU tensor equals reference data within the tolerance. */
export async function assertTensorMatches(t: Tensor, want: ArrayLike<number>, label: string) {
  const got = await t.toArray() as Float32Array;
  const err = worstError(got, want);
  if (err > 0) throw new Error(`${label}: differs from the reference (excess ${err})`);
}

/** The shared device (tests share one). */
export const gpu = await getGpu();
