/**
 * The GEMM entry point of the training step: C = op(A)·op(B) (+ bias) (ReLU) (+= C), for the
 * three layouts the step needs (A·B, A·Bᵀ, Aᵀ·B). It delegates to the shared
 * `gpu/kernels/matmul` (tuned variants per adapter, operands split into binding windows); every
 * variant sums k in a fixed order, so steps stay bit-for-bit repeatable.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import { matmul } from "../../../gpu/kernels/matmul/mod.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import { TrainSaeError } from "../errors.ts";

/** Options of {@link gemm}. */
export interface GemmOptions {
  /** A is stored `[K, M]` (use Aᵀ). */
  transA?: boolean;
  /** B is stored `[N, K]` (use Bᵀ). */
  transB?: boolean;
  /** Bias `[N]` added to every row. */
  bias?: Tensor;
  relu?: boolean;
  /** C += result instead of C = result. */
  accumulate?: boolean;
}

/** Records C `[M, N]` = op(A)·op(B) with the given epilogue. */
export function gemm(_gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, o: GemmOptions = {}): void {
  const [a0, a1] = a.shape, [b0, b1] = b.shape;
  const [M, K] = o.transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = o.transB ? [b1, b0] : [b0, b1];
  if (K !== Kb || c.shape[0] !== M || c.shape[1] !== N) {
    throw new TrainSaeError(
      `gemm: op(A) [${M}, ${K}] · op(B) [${Kb}, ${N}] does not fit C [${c.shape.join(", ")}]`,
    );
  }
  if (M === 0 || N === 0) return;
  matmul(a, b, {
    out: c,
    transA: o.transA,
    transB: o.transB,
    bias: o.bias,
    activation: o.relu ? "relu" : "none",
    accumulate: o.accumulate,
  });
}
