/**
 * `matmul`: f32 matrix products on the GPU in the layouts an SAE and a transformer need (A·B,
 * A·Bᵀ, Aᵀ·B), with batched leading dims, a fused epilogue (alpha, bias, ReLU or GPT-2's
 * tanh-GELU, accumulation into an existing output) and operands larger than one storage binding
 * (split into windows, see `matmul_plan.ts`). Several kernels ("variants", numbered naive → fast
 * like llm.c) compute the same thing; {@link tuneMatmul} measures them once per adapter and
 * layout and `matmul` then uses the fastest.
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import { Tensor } from "../tensor.ts";
import type { MatmulLayout, MatmulRun, MatmulVariant } from "./matmul_common.ts";
import { planMatmul, resolveShape } from "./matmul_plan.ts";
import type { MatmulActivation } from "./matmul_ref.ts";
import {
  matmulNaive,
  matmulRegblock,
  matmulTiled128,
  matmulTiled64,
  matmulVec4,
} from "./matmul_ssbo.ts";
import { matmulUbo16x16, matmulUbo8x16 } from "./matmul_ubo.ts";
import { readMatmulTuning } from "./matmul_tune_cache.ts";
import { readEnv } from "../../util/env.ts";

export type { MatmulCall, MatmulLayout, MatmulRun, MatmulVariant } from "./matmul_common.ts";
export type { MatmulActivation } from "./matmul_ref.ts";
export { type MatmulShape, resolveShape } from "./matmul_plan.ts";

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

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** `a` is stored `[..., k, m]`: the product uses Aᵀ. */
  transA?: boolean;
  /** `b` is stored `[n, k]`: the product uses Bᵀ. */
  transB?: boolean;
  /** Per-column bias `[n]`, added before the activation. */
  bias?: Tensor;
  /** Activation of alpha·A·B + bias (default "none"). */
  activation?: MatmulActivation;
  /** Add the result to the values already in `out` (required): out += act(alpha·A·B + bias). */
  accumulate?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Write into this tensor (shape of the result, f32) instead of a new one. */
  out?: Tensor;
  /** Force a variant (name or number); otherwise env `SAEFLOW_MATMUL_VARIANT`, then the tuned one. */
  variant?: string;
  /** @internal Test hook: pretend storage bindings hold at most this many bytes. */
  maxBindingBytes?: number;
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

/**
 * C = [C₀ +] act(alpha·op(A)·op(B) + bias), recorded on the GPU (no flush, no readback).
 * `a` is `[..., m, k]` (`[..., k, m]` with `transA`), `b` is `[k, n]` (`[n, k]` with `transB`;
 * `[..., k, n]` with `transA`). The result is `[..., m, n]` (`[m, n]` with `transA`).
 * @throws {GpuError} on mismatched shapes (naming both and the layout), wrong dtypes, a bad
 * `out`/`bias`, or `accumulate` without `out`.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { matmul } from "./matmul.ts";
 * await getGpu();
 * using a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
 * using b = Tensor.from([1, 0, 0, 1, 1, 1], [3, 2]);
 * using c = matmul(a, b);
 * const v = await c.toArray(); // [4, 5, 10, 11]
 * if (v[0] !== 4 || v[3] !== 11) throw new Error("wrong product");
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const gpu = a.gpu;
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  for (const [what, t] of [["a", a], ["b", b], ["bias", opts.bias], ["out", opts.out]] as const) {
    if (t && t.dtype !== "f32") throw new GpuError(`matmul: ${what} must be f32, got ${t.dtype}`);
  }
  const shape = resolveShape(a.shape, b.shape, transA, transB);
  const { m, k, n, outShape } = shape;
  if (opts.bias && (opts.bias.size !== n || opts.bias.rank !== 1)) {
    throw new GpuError(
      `matmul: bias must be [${n}] (n of the product), got [${opts.bias.shape.join(", ")}]`,
    );
  }
  if (opts.accumulate && !opts.out) {
    throw new GpuError("matmul: accumulate needs an `out` tensor to add into");
  }
  const out = opts.out ?? Tensor.empty(outShape, "f32", { gpu });
  if (opts.out) {
    if (out.size !== m * n || out.shape[out.shape.length - 1] !== n) {
      throw new GpuError(
        `matmul: out is [${out.shape.join(", ")}], expected [${outShape.join(", ")}]`,
      );
    }
    for (const [what, t] of [["a", a], ["b", b], ["bias", opts.bias]] as const) {
      if (t && t.buffer === out.buffer) {
        throw new GpuError(`matmul: out shares its GPU buffer with ${what}; use a separate tensor`);
      }
    }
  }
  const variant = chooseMatmulVariant(gpu, shape.layout, m * n * k, opts.variant);
  const calls = planMatmul(gpu, {
    a,
    b,
    out,
    bias: opts.bias,
    shape,
    transA,
    transB,
    activation: opts.activation ?? "none",
    accumulate: opts.accumulate ?? false,
    alpha: opts.alpha ?? 1,
    maxBindingBytes: Math.min(opts.maxBindingBytes ?? Infinity, gpu.maxBindingSize),
  });
  const run: MatmulRun = { memo: new Map() };
  for (const call of calls) {
    const v = [variant, matmulVec4, matmulRegblock].find((x) => x.supports(gpu, call))!;
    v.record(gpu, call, run);
  }
  return out;
}

export {
  matmulTuneResults,
  selectMatmulVariant,
  tuneMatmul,
  type TuneOptions,
  type TuneResult,
} from "./matmul_tune.ts";
export {
  adapterKey,
  defaultMatmulTuningPath,
  MATMUL_TUNING_FILENAME,
  type MatmulTuningEntry,
  type MatmulTuningFile,
  readMatmulTuning,
  readMatmulTuningFile,
  writeMatmulTuning,
} from "./matmul_tune_cache.ts";
export { releaseMatmulScratch } from "./matmul_ubo_pack.ts";
export { applyActivation, geluTanh, matmulRef, type MatmulRefOptions } from "./matmul_ref.ts";
export {
  matmulNaive,
  matmulRegblock,
  matmulTiled128,
  matmulTiled64,
  matmulUbo16x16,
  matmulUbo8x16,
  matmulVec4,
};
