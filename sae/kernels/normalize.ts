/**
 * SAE input/output kernels: x̃ = norm(x) − b_dec (run-time normalisation fused with the b_dec
 * subtraction of SAELens `process_sae_in`) and the run-time denormalisation of the output.
 * Constant-norm and layer-norm statistics use one workgroup per row; the per-row state
 * (c or μ, σ) stays on the GPU between encode and decode. References in `normalize_ref.ts`.
 * @module
 */

import { Tensor } from "../../gpu/tensor.ts";
import { SaeKernelError } from "./errors.ts";
import {
  checkDisjoint,
  checkTensor,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
} from "../../gpu/kernel.ts";
import { dispatchRows, ROW_WG } from "./_rows.ts";
import { checkRuntimeNorm, LAYER_NORM_EPS, type RuntimeNormMode } from "./normalize_ref.ts";

export {
  checkRuntimeNorm,
  LAYER_NORM_EPS,
  type RuntimeNormMode,
  saeNormalizeInRef,
  saeNormalizeOutRef,
} from "./normalize_ref.ts";

const NORM_WG = 64;

function inWgsl(mode: RuntimeNormMode, bias: boolean): string {
  const sub = bias ? " - B[j]" : "";
  const io = /* wgsl */ `
struct U { rowStart: u32, rows: u32, cols: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${mode === "none" ? "" : "@group(0) @binding(2) var<storage, read_write> S: array<f32>;"}
${bias ? `@group(0) @binding(${mode === "none" ? 2 : 3}) var<storage, read> B: array<f32>;` : ""}
@group(0) @binding(${(mode === "none" ? 2 : 3) + (bias ? 1 : 0)}) var<uniform> u: U;
${WGSL_WG_INDEX}`;
  if (mode === "none") {
    return /* wgsl */ `${io}
@compute @workgroup_size(${ROW_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${ROW_WG}u + lid;
  if (i >= u.rows * u.cols) { return; }
  let j = i % u.cols;
  Y[i] = X[i]${sub};
}`;
  }
  // Per row: statistics by a workgroup tree reduction, then one pass writing x̃.
  const stats = mode === "constant_norm_rescale"
    ? /* wgsl */ `
  var ss = 0.0;
  for (var j = lid; j < u.cols; j += ${NORM_WG}u) { let v = X[base + j]; ss += v * v; }
  let scale = sqrt(f32(u.cols)) / sqrt(wgSum(lid, ss));
  let shift = 0.0;
  if (lid == 0u) { S[2u * g] = scale; S[2u * g + 1u] = 0.0; }`
    : /* wgsl */ `
  var s = 0.0;
  for (var j = lid; j < u.cols; j += ${NORM_WG}u) { s += X[base + j]; }
  let shift = wgSum(lid, s) / f32(u.cols);
  var ss = 0.0;
  for (var j = lid; j < u.cols; j += ${NORM_WG}u) { let v = X[base + j] - shift; ss += v * v; }
  let sigma = sqrt(wgSum(lid, ss) / f32(u.cols - 1u));
  let scale = 1.0 / (sigma + ${LAYER_NORM_EPS});
  if (lid == 0u) { S[2u * g] = shift; S[2u * g + 1u] = sigma; }`;
  return /* wgsl */ `${io}
var<workgroup> sh: array<f32, ${NORM_WG}>;
${wgslWorkgroupReduce("wgSum", NORM_WG, "a + b")}
@compute @workgroup_size(${NORM_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg);
  if (r >= u.rows) { return; }
  let g = u.rowStart + r;
  let base = r * u.cols;
  ${stats}
  for (var j = lid; j < u.cols; j += ${NORM_WG}u) {
    Y[base + j] = (X[base + j] - shift) * scale${sub};
  }
}`;
}

/** Result of {@link saeNormalizeIn}. */
export interface NormalizedInput {
  /** x̃ `[n, d]` (a new tensor). */
  x: Tensor;
  /** Per-row state `[n, 2]` for {@link saeNormalizeOut}: (c, 0) or (μ, σ); null for `none`. */
  state: Tensor | null;
}

/**
 * x̃ = norm(x) − b_dec on `x [n, d]` (`bDec [d]` or null for no bias). Records dispatches only.
 *
 * @example
 * ```ts
 * import { getGpu } from "../../gpu/device.ts";
 * import { Tensor } from "../../gpu/tensor.ts";
import { SaeKernelError } from "./errors.ts";
 * import { saeNormalizeIn } from "./normalize.ts";
 * await getGpu();
 * using x = Tensor.from([3, 4], [1, 2]);
 * const { x: xn, state } = saeNormalizeIn(x, "constant_norm_rescale", null);
 * const v = await xn.toArray(); // [3√2/5, 4√2/5]
 * if (Math.abs(v[1] - 4 * Math.SQRT2 / 5) > 1e-6) throw new Error();
 * xn.dispose();
 * state?.dispose();
 * ```
 */
export function saeNormalizeIn(
  x: Tensor,
  mode: string,
  bDec: Tensor | null,
): NormalizedInput {
  const op = "saeNormalizeIn";
  const m = checkRuntimeNorm(mode, op);
  const [n, d] = checkTensor(x, op, "x", { dtype: "f32", rank: 2 }, SaeKernelError);
  if (bDec) checkTensor(bDec, op, "bDec", { dtype: "f32", shape: [d] }, SaeKernelError);
  const gpu = x.gpu;
  const out = Tensor.empty([n, d], "f32", { gpu });
  if (m === "none" && !bDec) {
    gpu.copy(x.buffer, x.offset, out.buffer, 0, x.byteLength);
    return { x: out, state: null };
  }
  const state = m === "none" ? null : Tensor.empty([n, 2], "f32", { gpu });
  const key = `sae_norm_in_${m}_${bDec ? "b" : "nb"}`;
  const pipeline = gpu.pipeline(key, inWgsl(m, bDec !== null));
  const whole = [...(state ? [state] : []), ...(bDec ? [bDec] : [])];
  dispatchRows(gpu, pipeline, n, d, [x, out], whole, [], m !== "none");
  return { x: out, state };
}

function outWgsl(mode: RuntimeNormMode): string {
  const expr = mode === "constant_norm_rescale"
    ? "X[i] / S[2u * g]"
    : "X[i] * S[2u * g + 1u] + S[2u * g]";
  return /* wgsl */ `
struct U { rowStart: u32, rows: u32, cols: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> S: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${WGSL_WG_INDEX}
@compute @workgroup_size(${ROW_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${ROW_WG}u + lid;
  if (i >= u.rows * u.cols) { return; }
  let g = u.rowStart + i / u.cols;
  Y[i] = ${expr};
}`;
}

/**
 * Undoes the run-time normalisation of {@link saeNormalizeIn} on `y [n, d]` with its `state`:
 * y/c or y·σ + μ. Mode `none` returns a copy. Writes into `out` when given (not `y`).
 */
export function saeNormalizeOut(
  y: Tensor,
  mode: string,
  state: Tensor | null,
  out?: Tensor,
): Tensor {
  const op = "saeNormalizeOut";
  const m = checkRuntimeNorm(mode, op);
  const [n, d] = checkTensor(y, op, "y", { dtype: "f32", rank: 2 }, SaeKernelError);
  const gpu = y.gpu;
  const result = out ?? Tensor.empty([n, d], "f32", { gpu });
  checkTensor(result, op, "out", { dtype: "f32", shape: [n, d] }, SaeKernelError);
  checkDisjoint(result, [y], op, SaeKernelError);
  if (m === "none") {
    gpu.copy(y.buffer, y.offset, result.buffer, result.offset, y.byteLength);
    return result;
  }
  if (!state) {
    throw new SaeKernelError(`${op}: mode ${m} needs the state returned by saeNormalizeIn`);
  }
  checkTensor(state, op, "state", { dtype: "f32", shape: [n, 2] }, SaeKernelError);
  const pipeline = gpu.pipeline(`sae_norm_out_${m}`, outWgsl(m));
  dispatchRows(gpu, pipeline, n, d, [y, result], [state]);
  return result;
}
