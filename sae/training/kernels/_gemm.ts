/**
 * The GEMM entry point of the training step: C = op(A)·op(B) (+ bias) (ReLU) (+= C). Stopgap
 * implementation (one invocation per output, k in order) until the shared `gpu/kernels/matmul`
 * lands; the step only calls {@link gemm}.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import {
  dispatchUnits,
  pack,
  TrainSaeError,
  uniformStruct,
  WG,
  WGSL_ARGS,
  WGSL_HEAD,
} from "./_util.ts";

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

const SPEC = "uuuuuuuu";
const CODE = /* wgsl */ `${WGSL_HEAD}
${uniformStruct(SPEC, ["M", "N", "K", "ta", "tb", "bias", "relu", "acc"])}
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> Bm: array<f32>;
@group(0) @binding(2) var<storage, read> BIAS: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let idx = wgIndex(wid, nwg) * ${WG}u + lid;
  if (idx >= u.M * u.N) { return; }
  let m = idx / u.N; let n = idx % u.N;
  var s = 0.0;
  for (var k = 0u; k < u.K; k++) {
    let a = select(A[m * u.K + k], A[k * u.M + m], u.ta == 1u);
    let b = select(Bm[k * u.N + n], Bm[n * u.K + k], u.tb == 1u);
    s += a * b;
  }
  if (u.bias == 1u) { s += BIAS[n]; }
  if (u.relu == 1u) { s = max(s, 0.0); }
  if (u.acc == 1u) { s += C[idx]; }
  C[idx] = s;
}`;

/** Records C `[M, N]` = op(A)·op(B) with the given epilogue. */
export function gemm(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, o: GemmOptions = {}): void {
  const [a0, a1] = a.shape, [b0, b1] = b.shape;
  const [M, K] = o.transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = o.transB ? [b1, b0] : [b0, b1];
  if (K !== Kb || c.shape[0] !== M || c.shape[1] !== N) {
    throw new TrainSaeError(
      `gemm: op(A) [${M}, ${K}] · op(B) [${Kb}, ${N}] does not fit C [${c.shape.join(", ")}]`,
    );
  }
  const p = gpu.pipeline("tsae_gemm_stopgap", CODE);
  const uni = pack(
    SPEC,
    M,
    N,
    K,
    o.transA ? 1 : 0,
    o.transB ? 1 : 0,
    o.bias ? 1 : 0,
    o.relu ? 1 : 0,
    o.accumulate ? 1 : 0,
  );
  dispatchUnits(gpu, p, M * N, [a, b, o.bias ?? a, c, gpu.uniform(uni)]);
}
