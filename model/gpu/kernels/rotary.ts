/**
 * Rotary position embedding on `[B, P, nH, d]` (TL `apply_rotary`): the first `rotaryDim`
 * components of each head become x·cos + rotate(x)·sin at their position, the rest pass
 * through. NeoX/Llama half-split rotation, or GPT-J adjacent pairs. The sin/cos tables are
 * `[nPos ≥ P, rotaryDim]` from `rotaryTables` (model/reference/ops.ts), which is also the
 * reference (`applyRotary`).
 * @module
 */

import { Tensor } from "../../../gpu/tensor.ts";
import { ModelError } from "../../errors.ts";
import { dispatch1d, packUniform, WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../../../gpu/kernel.ts";

const ROTARY_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, P: u32, nH: u32, d: u32, rd: u32, adjacent: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> SIN: array<f32>;
@group(0) @binding(2) var<storage, read> COS: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let j = i % u.d;
  let x = X[i];
  if (j >= u.rd) { Y[i] = x; return; }
  let p = (i / (u.d * u.nH)) % u.P;
  let half = u.rd / 2u;
  var rot = 0.0;
  if (u.adjacent != 0u) {
    rot = select(X[i - 1u], -X[i + 1u], j % 2u == 0u);
  } else {
    rot = select(X[i - half], -X[i + half], j < half);
  }
  let t = p * u.rd + j;
  Y[i] = x * COS[t] + rot * SIN[t];
}`;

/** Rotates `x` `[B, P, nH, d]` with tables `sin`/`cos` `[≥P, rotaryDim]`; returns a new tensor. */
export function rotary(
  x: Tensor,
  sin: Tensor,
  cos: Tensor,
  rotaryDim: number,
  adjacentPairs: boolean,
): Tensor {
  if (x.rank !== 4 || x.dtype !== "f32" || x.disposed) {
    throw new ModelError(`rotary: x ${x} must be a live f32 [B, P, heads, d]`);
  }
  const [, P, nH, d] = x.shape;
  if (rotaryDim > d || rotaryDim % 2 !== 0) {
    throw new ModelError(`rotary: rotaryDim ${rotaryDim} must be even and ≤ d ${d}`);
  }
  if (sin.size < P * rotaryDim || cos.size < P * rotaryDim) {
    throw new ModelError(`rotary: tables ${sin} cover fewer than ${P} positions`);
  }
  const gpu = x.gpu;
  const out = Tensor.empty(x.shape, "f32", { gpu });
  const pipeline = gpu.pipeline("lm_rotary", ROTARY_WGSL);
  const uni = packUniform("uuuuuuuu", x.size, P, nH, d, rotaryDim, adjacentPairs ? 1 : 0, 0, 0);
  dispatch1d(gpu, pipeline, [x, sin, cos, out, gpu.uniform(uni)], x.size);
  return out;
}
