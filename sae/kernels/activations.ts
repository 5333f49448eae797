/**
 * Per-architecture activation epilogues on `[n, dSae]` pre-activations: JumpReLU's threshold
 * mask and the gated SAE's magnitude/gate pair. One invocation per element; per-latent
 * parameters are bound whole, matrices in row windows. References in `activations_ref.ts`.
 * @module
 */

import { Tensor } from "../../gpu/tensor.ts";
import {
  checkTensor,
  dispatch1d,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  windowOf,
} from "../../gpu/kernel.ts";
import { SaeKernelError } from "./errors.ts";
import { dispatchRows, ROW_WG } from "./_rows.ts";

export {
  denseFromTopkRef,
  gatedActsRef,
  gatedMagnitudeRef,
  jumpReluRef,
} from "./activations_ref.ts";

/**
 * A row-wise epilogue: `windowed` input matrices (then the output), `params` per-latent vectors,
 * and the WGSL statement computing `Y[i]` (`i` element, `j` column; inputs `A`, `M`; params
 * `P`, `Q`).
 */
function epilogue(
  key: string,
  body: string,
  inputs: Tensor[],
  params: Tensor[],
  op: string,
): Tensor {
  const [n, d] = checkTensor(inputs[0], op, "h", { dtype: "f32", rank: 2 }, SaeKernelError);
  for (const t of inputs.slice(1)) {
    checkTensor(t, op, "piMag", { dtype: "f32", shape: [n, d] }, SaeKernelError);
  }
  const names = ["A", "M"], pnames = ["P", "Q"];
  let b = 0;
  const decl = [
    ...inputs.map((_, k) =>
      `@group(0) @binding(${b++}) var<storage, read> ${names[k]}: array<f32>;`
    ),
    `@group(0) @binding(${b++}) var<storage, read_write> Y: array<f32>;`,
    ...params.map((_, k) =>
      `@group(0) @binding(${b++}) var<storage, read> ${pnames[k]}: array<f32>;`
    ),
    `@group(0) @binding(${b++}) var<uniform> u: U;`,
  ].join("\n");
  const wgsl = /* wgsl */ `
struct U { rowStart: u32, rows: u32, cols: u32, pad: u32 }
${decl}
${WGSL_WG_INDEX}
@compute @workgroup_size(${ROW_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${ROW_WG}u + lid;
  if (i >= u.rows * u.cols) { return; }
  let j = i % u.cols;
  ${body}
}`;
  const gpu = inputs[0].gpu;
  const out = Tensor.empty([n, d], "f32", { gpu });
  dispatchRows(gpu, gpu.pipeline(key, wgsl), n, d, [...inputs, out], params);
  return out;
}

/**
 * JumpReLU: f = ReLU(h)·1[h > θ] on `h [n, dSae]` with `threshold [dSae]`; a new tensor.
 *
 * @example
 * ```ts
 * import { getGpu } from "../../gpu/device.ts";
 * import { Tensor } from "../../gpu/tensor.ts";
 * import { jumpRelu } from "./activations.ts";
 * await getGpu();
 * using h = Tensor.from([0.6, 0.6, 0.6], [1, 3]);
 * using th = Tensor.from([1, 0.5, 0.25]);
 * using f = jumpRelu(h, th);
 * const v = await f.toArray(); // [0, 0.6, 0.6]
 * if (v[0] !== 0 || Math.abs(v[2] - 0.6) > 1e-7) throw new Error();
 * ```
 */
export function jumpRelu(h: Tensor, threshold: Tensor): Tensor {
  const [, d] = checkTensor(h, "jumpRelu", "h", { dtype: "f32", rank: 2 }, SaeKernelError);
  checkTensor(threshold, "jumpRelu", "threshold", { dtype: "f32", shape: [d] }, SaeKernelError);
  return epilogue(
    "sae_act_jumprelu",
    "let v = A[i];\n  Y[i] = select(0.0, v, v > P[j] && v > 0.0);",
    [h],
    [threshold],
    "jumpRelu",
  );
}

/** Gated: π_mag = h0·exp(r_mag) + b_mag from `h0 = x̃·W_enc [n, dSae]`; a new tensor. */
export function gatedMagnitude(h0: Tensor, rMag: Tensor, bMag: Tensor): Tensor {
  const [, d] = checkTensor(h0, "gatedMagnitude", "h0", { dtype: "f32", rank: 2 }, SaeKernelError);
  checkTensor(rMag, "gatedMagnitude", "r_mag", { dtype: "f32", shape: [d] }, SaeKernelError);
  checkTensor(bMag, "gatedMagnitude", "b_mag", { dtype: "f32", shape: [d] }, SaeKernelError);
  return epilogue(
    "sae_act_gated_mag",
    "Y[i] = A[i] * exp(P[j]) + Q[j];",
    [h0],
    [rMag, bMag],
    "gatedMagnitude",
  );
}

/** Gated: f = 1[h0 + b_gate > 0]·ReLU(π_mag); a new tensor. */
export function gatedActs(h0: Tensor, bGate: Tensor, piMag: Tensor): Tensor {
  const [, d] = checkTensor(h0, "gatedActs", "h0", { dtype: "f32", rank: 2 }, SaeKernelError);
  checkTensor(bGate, "gatedActs", "b_gate", { dtype: "f32", shape: [d] }, SaeKernelError);
  return epilogue(
    "sae_act_gated",
    "Y[i] = select(0.0, max(M[i], 0.0), A[i] + P[j] > 0.0);",
    [h0, piMag],
    [bGate],
    "gatedActs",
  );
}

const DENSE_WGSL = /* wgsl */ `
struct U { rowStart: u32, rows: u32, k: u32, d: u32 }
@group(0) @binding(0) var<storage, read> V: array<f32>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${WGSL_WG_INDEX}
@compute @workgroup_size(${ROW_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let s = wgIndex(wid, nwg) * ${ROW_WG}u + lid;
  if (s >= u.rows * u.k) { return; }
  let r = s / u.k;
  let g = (u.rowStart + r) * u.k + s % u.k;
  let j = I[g];
  if (j >= 0 && u32(j) < u.d) { Y[r * u.d + u32(j)] = V[g]; }
}`;

/**
 * Dense `[n, d]` activations from per-row sparse lists (`topkRows` output: `values` f32 and
 * `indices` i32 `[n, k]`, index −1 = empty slot): zeros elsewhere. Records a clear and a
 * scatter dispatch per row window.
 */
export function denseFromTopk(values: Tensor, indices: Tensor, d: number): Tensor {
  const op = "denseFromTopk";
  const [n, k] = checkTensor(values, op, "values", { dtype: "f32", rank: 2 }, SaeKernelError);
  checkTensor(indices, op, "indices", { dtype: "i32", shape: [n, k] }, SaeKernelError);
  const gpu = values.gpu;
  const out = Tensor.empty([n, d], "f32", { gpu });
  if (n * d === 0) return out;
  gpu.clear(out.buffer, out.offset, out.byteLength);
  const pipeline = gpu.pipeline("sae_dense_from_topk", DENSE_WGSL);
  for (const w of spans(gpu, n, d, { error: SaeKernelError })) {
    const y = windowOf(out, w.start * d, w.count * d);
    const uniform = gpu.uniform([w.start, w.count, k, d]);
    dispatch1d(gpu, pipeline, [values, indices, y, uniform], w.count * k, ROW_WG);
  }
  return out;
}
