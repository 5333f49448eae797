/**
 * `y = epilogue(x · W + b)` for the language model: x `[..., K]`, W `[K, N]` (TL's
 * right-multiplying layout) uploaded once ({@link prepareLinear}). The product runs on the shared
 * tuned `matmul` (gpu/kernels/matmul/mod.ts: per-adapter variants, operands larger than one binding
 * split into windows) with its fused bias + ReLU / tanh-GELU epilogue; other activations, the
 * gated pair `act(x·W_gate) · (x·W_in) + b` and the soft cap `c·tanh(y/c)` follow as element-wise
 * passes. The plain-TS reference is {@link linearRef}.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import { matmul, type MatmulActivation } from "../../../gpu/kernels/matmul/mod.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import type { ActFn } from "../../config.ts";
import { activation } from "../../reference/ops.ts";
import { ModelError } from "../../errors.ts";
import { gatedCombine, mapInPlace } from "./pointwise.ts";

/** A weight matrix `[K, N]` on the GPU (with optional bias and gated partner). */
export interface LinearWeight {
  /** Input width. */
  K: number;
  /** Output width. */
  N: number;
  /** `[K, N]`. */
  w: Tensor;
  /** Gated partner `W_in [K, N]` (the output is act(x·w)·(x·w2) + bias), or null. */
  w2: Tensor | null;
  /** `[N]`, or null. */
  bias: Tensor | null;
}

/** Host data of a weight: `[K, N]` row-major (`W[k * N + n]`). */
export interface HostLinear {
  /** `[K, N]` weights. */
  W: Float32Array;
  /** Optional `[N]` bias. */
  bias?: Float32Array | null;
  /** Optional second matrix of a gated pair, `[K, N]`. */
  W2?: Float32Array | null;
}

/** Uploads `[K, N]` weights (and bias / gated partner). */
export function prepareLinear(gpu: Gpu, host: HostLinear, K: number, N: number): LinearWeight {
  const check = (a: Float32Array, n: number, what: string) => {
    if (a.length !== n) {
      throw new ModelError(`prepareLinear: ${what} has ${a.length} elements, expected ${n}`);
    }
  };
  check(host.W, K * N, "W");
  if (host.bias) check(host.bias, N, "bias");
  if (host.W2) check(host.W2, K * N, "W2");
  return {
    K,
    N,
    w: Tensor.from(host.W, [K, N], { gpu }),
    w2: host.W2 ? Tensor.from(host.W2, [K, N], { gpu }) : null,
    bias: host.bias ? Tensor.from(host.bias, [N], { gpu }) : null,
  };
}

/** Frees a prepared weight. */
export function disposeLinear(w: LinearWeight): void {
  w.w.dispose();
  w.w2?.dispose();
  w.bias?.dispose();
}

/** Options of {@link linear}. */
export interface LinearOptions {
  /** Activation applied after the bias (with a gated weight: to the gate). */
  act?: ActFn | "none";
  /** Soft cap c > 0: y ← c·tanh(y/c) after everything else. */
  softcap?: number;
  /** Shape of the output (same element count as `[..., N]`), e.g. `[B, P, H, d]`. */
  outShape?: readonly number[];
}

/** The activation the matmul epilogue computes itself, if any. */
function fusedActivation(act: ActFn | "none"): MatmulActivation | null {
  if (act === "none") return "none";
  if (act === "relu") return "relu";
  if (act === "gelu_new" || act === "gelu_pytorch_tanh") return "gelu_tanh";
  return null;
}

/**
 * `epilogue(x · W + b)` over the last axis of `x` (`[..., K]` → `[..., N]`). With a gated
 * weight: `act(x·W) · (x·W2) + b`. Records dispatches only.
 */
export function linear(x: Tensor, w: LinearWeight, opts: LinearOptions = {}): Tensor {
  if (x.disposed) throw new ModelError(`linear: x ${x} was used after dispose()`);
  if (x.dtype !== "f32" || x.rank < 1 || x.shape[x.rank - 1] !== w.K) {
    throw new ModelError(`linear: x ${x} must be f32 [..., ${w.K}]`);
  }
  const act = opts.act ?? "none";
  const rows = x.size / w.K;
  const x2 = x.reshape([rows, w.K]);
  let y: Tensor;
  if (w.w2) {
    if (!w.bias || act === "none") {
      throw new ModelError("linear: a gated weight needs its bias b_in and an activation");
    }
    const gate = matmul(x2, w.w);
    const up = matmul(x2, w.w2);
    y = gatedCombine(gate, up, w.bias, act);
    gate.dispose();
    up.dispose();
  } else {
    const fused = fusedActivation(act);
    y = matmul(x2, w.w, { bias: w.bias ?? undefined, activation: fused ?? "none" });
    if (fused === null) mapInPlace(y, act as ActFn);
  }
  if ((opts.softcap ?? 0) > 0) mapInPlace(y, { softcap: opts.softcap! });
  const shape = opts.outShape ?? [...x.shape.slice(0, -1), w.N];
  if (shape.reduce((a, b) => a * b, 1) !== y.size) {
    throw new ModelError(`linear: outShape [${shape.join(", ")}] does not hold ${y}`);
  }
  // Ownership moves to the reshaped object; `y` is dropped without dispose().
  return new Tensor(y.gpu, y.buffer, [...shape], "f32", y.offset, y.owned);
}

/**
 * Plain-TS reference of {@link linear}: `x [rows, K] · W [K, N]` with bias, activation (or the
 * gated pair with `W2`) and soft cap; float64 accumulation, float32 result.
 */
export function linearRef(
  x: Float32Array,
  rows: number,
  K: number,
  N: number,
  host: HostLinear,
  opts: { act?: ActFn | "none"; softcap?: number } = {},
): Float32Array {
  const act = !opts.act || opts.act === "none" ? (v: number) => v : activation(opts.act);
  const out = new Float32Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let a = 0, g = 0;
      for (let k = 0; k < K; k++) {
        const xv = x[r * K + k];
        a += xv * host.W[k * N + n];
        if (host.W2) g += xv * host.W2[k * N + n];
      }
      const b = host.bias ? host.bias[n] : 0;
      let v = host.W2 ? act(a) * g + b : act(a + b);
      const c = opts.softcap ?? 0;
      if (c > 0) v = c * Math.tanh(v / c);
      out[r * N + n] = v;
    }
  }
  return out;
}
