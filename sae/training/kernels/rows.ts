/**
 * Per-token (row) kernels of the training step: input processing (run-time normalisation,
 * x̃ = x − b_dec, the per-token denormalisation factors and ‖x − x̄‖²), the residual of a
 * reconstruction (denormalise, squared error, upstream gradient, explained-variance terms), the
 * decoder-norm-weighted p-norm of the standard SAE, and the legacy ghost-grads residual.
 *
 * Matrices are bound whole and addressed with row offsets from the uniform, so the same kernel
 * serves a micro-batch window or a half of a stacked `[2R, ·]` workspace. Per-token statistics go
 * to column-major `rowData [RS, B]` (stat `c` of token `t` at `c·B + t`); `rowNorm [2, B]` holds
 * the denormalisation scale s_t and shift μ_t (x̂ = y·s + μ). One invocation per row; sums run
 * in index order (deterministic). References: `rows_ref.ts`.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import {
  DEFAULT_WG,
  dispatch1d,
  packUniform,
  uniformStruct,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";

export {
  ghostRowsRef,
  lpNormRowsRef,
  NORM_MODES,
  prepRowsRef,
  residualRowsRef,
  type ResidualRowsRefArgs,
} from "./rows_ref.ts";
import { NORM_MODES } from "./rows_ref.ts";

/** Row-data columns shared by every architecture: the four §5.2 recon sums' per-token terms. */
export const RD_SQ = 0, RD_VAR = 1, RD_LEG = 2, RD_LEG2 = 3;

const PREP_SPEC = "uuuuu";
const PREP = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(PREP_SPEC, ["rows", "d", "B", "mode", "apply"])}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> BDEC: array<f32>;
@group(0) @binding(2) var<storage, read> XBAR: array<f32>;
@group(0) @binding(3) var<storage, read_write> XT: array<f32>;
@group(0) @binding(4) var<storage, read_write> RN: array<f32>;
@group(0) @binding(5) var<storage, read_write> RD: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var ss = 0.0; var sum = 0.0; var v = 0.0;
  for (var j = 0u; j < u.d; j++) {
    let xv = X[base + j];
    sum += xv; ss += xv * xv;
    let c = xv - XBAR[j];
    v += c * c;
  }
  RD[${RD_VAR}u * u.B + r] = v;
  var mul = 1.0; var sub = 0.0; var s = 1.0; var mu = 0.0;
  if (u.mode == 1u) {
    let c = sqrt(f32(u.d)) / sqrt(ss);
    mul = c; s = 1.0 / c;
  } else if (u.mode == 2u) {
    mu = sum / f32(u.d);
    var q = 0.0;
    for (var j = 0u; j < u.d; j++) { let t = X[base + j] - mu; q += t * t; }
    let sigma = sqrt(q / f32(u.d - 1u));
    mul = 1.0 / (sigma + 1e-5); sub = mu; s = sigma;
  }
  RN[r] = s;
  RN[u.B + r] = mu;
  let ap = f32(u.apply);
  for (var j = 0u; j < u.d; j++) { XT[base + j] = (X[base + j] - sub) * mul - ap * BDEC[j]; }
}`;

/**
 * Records input processing for all `B` rows of `x [B, d]`: `xt = norm(x) − apply·b_dec`,
 * `rowNorm [2, B]` = (s, μ), and `rowData[RD_VAR]` = ‖x_t − x̄‖² with `xbar [d]` the batch mean.
 * `mode` is one of {@link NORM_MODES}.
 */
export function prepRows(
  gpu: Gpu,
  x: Tensor,
  bDec: Tensor,
  xbar: Tensor,
  xt: Tensor,
  rowNorm: Tensor,
  rowData: Tensor,
  mode: string,
  apply: boolean,
): void {
  const [B, d] = x.shape;
  const code = NORM_MODES.indexOf(mode as typeof NORM_MODES[number]);
  const p = gpu.pipeline("tsae_prep", PREP);
  dispatch1d(gpu, p, [
    x,
    bDec,
    xbar,
    xt,
    rowNorm,
    rowData,
    gpu.uniform(
      packUniform(PREP_SPEC, B, d, B, code === 2 ? 1 : code === 3 ? 2 : 0, apply ? 1 : 0),
    ),
  ], B);
}

const RES_SPEC = "uuuuuuuuuuufuu";
const RES = /* wgsl */ `${WGSL_WG_INDEX}
${
  uniformStruct(RES_SPEC, [
    "rows",
    "d",
    "pOff",
    "xOff",
    "gOff",
    "rOff",
    "B",
    "denorm",
    "recon",
    "col",
    "minus",
    "gscale",
    "wIdx",
    "xhOff",
  ])
}
@group(0) @binding(0) var<storage, read_write> P: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> XH: array<f32>;
@group(0) @binding(3) var<storage, read_write> G: array<f32>;
@group(0) @binding(4) var<storage, read> RN: array<f32>;
@group(0) @binding(5) var<storage, read_write> RD: array<f32>;
@group(0) @binding(6) var<storage, read> SC: array<f32>;
@group(0) @binding(7) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.rOff + r;
  var s = 1.0; var mu = 0.0;
  if (u.denorm == 1u) { s = RN[t]; mu = RN[u.B + t]; }
  var w = 1.0;
  if (u.wIdx != 0xffffffffu) { w = SC[u.wIdx]; }
  let gs = u.gscale * w * s;
  let pb = (u.pOff + r) * u.d; let xb = (u.xOff + r) * u.d; let gb = (u.gOff + r) * u.d;
  let hb = (u.xhOff + r) * u.d;
  var sq = 0.0;
  for (var j = 0u; j < u.d; j++) {
    var p = P[pb + j];
    if (u.denorm == 1u) { p = p * s + mu; P[pb + j] = p; }
    var tgt = X[xb + j];
    if (u.minus == 1u) { tgt = tgt - XH[hb + j]; }
    let e = p - tgt;
    sq += e * e;
    G[gb + j] = gs * e;
  }
  RD[u.col * u.B + t] = sq;
  if (u.recon == 1u) {
    let leg = 1.0 - sq / RD[${RD_VAR}u * u.B + t];
    RD[${RD_LEG}u * u.B + t] = leg;
    RD[${RD_LEG2}u * u.B + t] = leg * leg;
  }
}`;

/** Arguments of {@link residualRows}. */
export interface ResidualRowsArgs {
  /** Prediction rows `[pOff, pOff + rows)` (decoder output y; replaced by y·s + μ when `denorm`). */
  pred: Tensor;
  pOff: number;
  /** Target rows `[xOff, xOff + rows)`: x, or x − xhat when `xhat` is given. */
  x: Tensor;
  xOff: number;
  xhat?: Tensor;
  /** First row of `xhat` (default `xOff`). */
  xhatOff?: number;
  /** Gradient rows `[gOff, gOff + rows)`: gscale · w · (p − target) · s. */
  g: Tensor;
  gOff: number;
  rowNorm: Tensor;
  rowData: Tensor;
  scalars: Tensor;
  rows: number;
  /** Token index of the first row in `rowNorm` / `rowData`. */
  rOff: number;
  B: number;
  denorm: boolean;
  /** Also write the explained-variance terms (needs rowData[RD_VAR]). */
  recon: boolean;
  /** rowData column of Σ_j (p − target)². */
  col: number;
  gscale: number;
  /** Index in `scalars` of a GPU-side gradient weight, or -1 for 1. */
  wIdx: number;
}

/** Records the residual of a reconstruction (see {@link ResidualRowsArgs}). */
export function residualRows(gpu: Gpu, a: ResidualRowsArgs): void {
  const d = a.x.shape[a.x.shape.length - 1];
  const p = gpu.pipeline("tsae_residual", RES);
  const uni = packUniform(
    RES_SPEC,
    a.rows,
    d,
    a.pOff,
    a.xOff,
    a.gOff,
    a.rOff,
    a.B,
    a.denorm ? 1 : 0,
    a.recon ? 1 : 0,
    a.col,
    a.xhat ? 1 : 0,
    a.gscale,
    a.wIdx < 0 ? 0xffffffff : a.wIdx,
    a.xhatOff ?? a.xOff,
  );
  dispatch1d(gpu, p, [
    a.pred,
    a.x,
    a.xhat ?? a.x,
    a.g,
    a.rowNorm,
    a.rowData,
    a.scalars,
    gpu.uniform(uni),
  ], a.rows);
}

const LP_SPEC = "uuuuuf";
const LP = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(LP_SPEC, ["rows", "n", "rOff", "B", "col", "p"])}
@group(0) @binding(0) var<storage, read> F: array<f32>;
@group(0) @binding(1) var<storage, read> NORMS: array<f32>;
@group(0) @binding(2) var<storage, read_write> RD: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  var s = 0.0;
  for (var i = 0u; i < u.n; i++) {
    let v = abs(F[r * u.n + i] * NORMS[i]);
    if (v > 0.0) { s += pow(v, u.p); }
  }
  RD[u.col * u.B + u.rOff + r] = pow(s, 1.0 / u.p);
}`;

/** Records T_t = (Σ_i |f_ti · n_i|^p)^{1/p} for the rows of `f [rows, n]` into rowData[col]. */
export function lpNormRows(
  gpu: Gpu,
  f: Tensor,
  norms: Tensor,
  rowData: Tensor,
  rOff: number,
  B: number,
  col: number,
  p: number,
): void {
  const [rows, n] = f.shape;
  const pl = gpu.pipeline("tsae_lpnorm", LP);
  dispatch1d(gpu, pl, [
    f,
    norms,
    rowData,
    gpu.uniform(packUniform(LP_SPEC, rows, n, rOff, B, col, p)),
  ], rows);
}

const GHOST_SPEC = "uuuuuuf";
const GHOST = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(GHOST_SPEC, ["rows", "d", "xOff", "B", "col", "nDeadIdx", "invBD"])}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> XH: array<f32>;
@group(0) @binding(2) var<storage, read_write> RAW: array<f32>;
@group(0) @binding(3) var<storage, read_write> RD: array<f32>;
@group(0) @binding(4) var<storage, read> SC: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.xOff + r;
  let xb = t * u.d; let rb = r * u.d;
  if (SC[u.nDeadIdx] == 0.0) {
    for (var j = 0u; j < u.d; j++) { RAW[rb + j] = 0.0; }
    RD[u.col * u.B + t] = 0.0;
    return;
  }
  var rr = 0.0; var gg = 0.0;
  for (var j = 0u; j < u.d; j++) {
    let res = X[xb + j] - XH[xb + j];
    rr += res * res;
    gg += RAW[rb + j] * RAW[rb + j];
  }
  let nu = sqrt(rr) / (1e-6 + 2.0 * sqrt(gg));
  var loss = 0.0;
  for (var j = 0u; j < u.d; j++) {
    let res = X[xb + j] - XH[xb + j];
    let diff = RAW[rb + j] * nu - res;
    let m = diff * diff;
    let s = res * res / (m + 1e-6);
    loss += s * m;
    RAW[rb + j] = nu * 2.0 * s * diff * u.invBD;
  }
  RD[u.col * u.B + t] = loss;
}`;

/**
 * Records the legacy ghost-grads residual (spec §3.9) for rows `[xOff, xOff + rows)`: `raw`
 * `[rows, d]` holds exp(h_dead)·W_dec on entry and ∂loss/∂raw on exit; rowData[col] gets the
 * per-token loss sum (divide by B·d). Zero when `scalars[nDeadIdx]` (the dead count) is 0.
 */
export function ghostRows(
  gpu: Gpu,
  x: Tensor,
  xhat: Tensor,
  raw: Tensor,
  rowData: Tensor,
  scalars: Tensor,
  xOff: number,
  B: number,
  col: number,
  nDeadIdx: number,
): void {
  const [rows, d] = raw.shape;
  const pl = gpu.pipeline("tsae_ghost", GHOST);
  dispatch1d(gpu, pl, [
    x,
    xhat,
    raw,
    rowData,
    scalars,
    gpu.uniform(packUniform(GHOST_SPEC, rows, d, xOff, B, col, nDeadIdx, 1 / (B * d))),
  ], rows);
}
