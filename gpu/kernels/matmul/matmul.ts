/**
 * `matmul`: f32 matrix products on the GPU in the layouts an SAE and a transformer need (A·B,
 * A·Bᵀ, Aᵀ·B), with batched leading dims, a fused epilogue (alpha, bias, ReLU or GPT-2's
 * tanh-GELU, accumulation into an existing output) and operands larger than one storage binding
 * (split into windows, see `plan.ts`). The variant that computes it is chosen by
 * `chooseMatmulVariant` (`variants.ts`).
 * @module
 */

import { GpuError } from "../../device.ts";
import { Tensor } from "../../tensor.ts";
import type { MatmulRun } from "./common.ts";
import { planMatmul, resolveShape } from "./plan.ts";
import type { MatmulActivation } from "./ref.ts";
import { matmulRegblock, matmulVec4 } from "./ssbo.ts";
import { chooseMatmulVariant } from "./variants.ts";

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

/**
 * C = [C₀ +] act(alpha·op(A)·op(B) + bias), recorded on the GPU (no flush, no readback).
 * `a` is `[..., m, k]` (`[..., k, m]` with `transA`), `b` is `[k, n]` (`[n, k]` with `transB`;
 * `[..., k, n]` with `transA`). The result is `[..., m, n]` (`[m, n]` with `transA`).
 * @throws {GpuError} on mismatched shapes (naming both and the layout), wrong dtypes, a bad
 * `out`/`bias`, or `accumulate` without `out`.
 *
 * @example
 * ```ts
 * import { getGpu } from "../../device.ts";
 * import { Tensor } from "../../tensor.ts";
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
