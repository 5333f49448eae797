/**
 * The matching-pursuit kernels (one invocation per token row), each with its plain-TS reference:
 *
 * - `pursuitStep`: one greedy iteration after the scores GEMM s = r·W_decᵀ: i* = the first
 *   argmax of ReLU(s), v = ReLU(r·W_dec[i*]) (zero once the row is done), acts[i*] += v,
 *   r −= v·W_dec[i*]; the row is done when its support stops growing (`stop_on_duplicate_support`)
 *   or ‖r‖ < `residual_threshold`. Records (i*, v) of the iteration for the backward and counts
 *   the row's L0.
 * - `pursuitBackStep`: one iteration of the reverse pass: with g = ∂L/∂ŷ and g_r = ∂L/∂r_{t+1},
 *   ∂L/∂v = (g − g_r)·w, ∂L/∂s = ∂L/∂v·1[v > 0]; r_t = r_{t+1} + v·w (rebuilt), ∂L/∂r_t =
 *   g_r + ∂L/∂s·w; the row's ∂W_dec contribution u = ∂L/∂s·r_t − v·g_r goes to row i* of a
 *   one-hot matrix P so that one GEMM Pᵀ·U adds every row's contribution to its latent.
 * - `firedColumns`: per latent, rows with a nonzero activation; `pursuitMetrics`: SAELens's
 *   max_l0, min_l0, residual_norm and residual_threshold_converged_portion.
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

/** Marker of "no latent" in the one-hot bookkeeping. */
export const NO_LATENT = 0xffffffff;

const STEP_SPEC = "uuuuuufuuuu";
const STEP = /* wgsl */ `${WGSL_WG_INDEX}
${
  uniformStruct(STEP_SPEC, [
    "rows",
    "n",
    "d",
    "t",
    "stride",
    "stopDup",
    "thr",
    "record",
    "l0Col",
    "rOff",
    "B",
  ])
}
@group(0) @binding(0) var<storage, read> SC: array<f32>;
@group(0) @binding(1) var<storage, read> WDEC: array<f32>;
@group(0) @binding(2) var<storage, read_write> R: array<f32>;
@group(0) @binding(3) var<storage, read_write> ACTS: array<f32>;
@group(0) @binding(4) var<storage, read_write> DONE: array<u32>;
@group(0) @binding(5) var<storage, read_write> HIDX: array<u32>;
@group(0) @binding(6) var<storage, read_write> HV: array<f32>;
@group(0) @binding(7) var<storage, read_write> RD: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let b = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (b >= u.rows) { return; }
  var best = 0.0; var bi = 0u;
  for (var i = 0u; i < u.n; i++) {
    let s = max(SC[b * u.n + i], 0.0);
    if (s > best) { best = s; bi = i; }
  }
  let live = DONE[b] == 0u;
  let rb = b * u.d; let wb = bi * u.d;
  var dotv = 0.0;
  for (var j = 0u; j < u.d; j++) { dotv += R[rb + j] * WDEC[wb + j]; }
  let v = select(0.0, max(dotv, 0.0), live);
  let old = ACTS[b * u.n + bi];
  ACTS[b * u.n + bi] = old + v;
  var nrm2 = 0.0;
  for (var j = 0u; j < u.d; j++) {
    let r = R[rb + j] - v * WDEC[wb + j];
    R[rb + j] = r;
    nrm2 += r * r;
  }
  let grew = v > 0.0 && old == 0.0;
  var fin = !live;
  if (live && u.stopDup == 1u && !grew) { fin = true; }
  if (live && u.thr > 0.0 && sqrt(nrm2) < u.thr) { fin = true; }
  DONE[b] = select(0u, 1u, fin);
  if (u.record == 1u) {
    HIDX[u.t * u.stride + b] = bi;
    HV[u.t * u.stride + b] = v;
    let at = u.l0Col * u.B + u.rOff + b;
    RD[at] = select(RD[at], 0.0, u.t == 0u) + select(0.0, 1.0, grew);
  }
}`;

/** Options of {@link pursuitStep}. */
export interface PursuitStepArgs {
  /** Scores r·W_decᵀ `[rows, n]`. */
  scores: Tensor;
  wDec: Tensor;
  /** Residual `[rows, d]` (updated). */
  residual: Tensor;
  /** Dense activations `[rows, n]` (updated). */
  acts: Tensor;
  /** u32 `[rows]`: 1 = the row has converged (updated). */
  done: Tensor;
  /** Iteration t. */
  t: number;
  /**
   * The history `[T, stride]` of (i*, v) and the per-row L0 column of `rowStats`
   * (`rowStats[l0Col·B + rOff + row]`), written when `record` (training); inference passes
   * one-element scratch tensors and `record: false`.
   */
  history: { idx: Tensor; value: Tensor; stride: number };
  rowStats: { tensor: Tensor; col: number; rOff: number; B: number };
  record: boolean;
  residualThreshold: number;
  stopOnDuplicateSupport: boolean;
}

/** Records one matching-pursuit iteration of every row (see the module doc). */
export function pursuitStep(gpu: Gpu, a: PursuitStepArgs): void {
  const [rows, n] = a.scores.shape, d = a.wDec.shape[1];
  const h = a.history, rs = a.rowStats;
  const uni = packUniform(
    STEP_SPEC,
    rows,
    n,
    d,
    a.t,
    h.stride,
    a.stopOnDuplicateSupport ? 1 : 0,
    a.residualThreshold,
    a.record ? 1 : 0,
    rs.col,
    rs.rOff,
    rs.B,
  );
  dispatch1d(gpu, gpu.pipeline("mp_step", STEP), [
    a.scores,
    a.wDec,
    a.residual,
    a.acts,
    a.done,
    h.idx,
    h.value,
    rs.tensor,
    gpu.uniform(uni),
  ], rows);
}

/** Reference of {@link pursuitStep} on host arrays (updated in place); returns (i*, v) per row. */
export function pursuitStepRef(
  scores: Float32Array,
  wDec: Float32Array,
  residual: Float32Array,
  acts: Float32Array,
  done: Uint32Array,
  rows: number,
  n: number,
  d: number,
  residualThreshold: number,
  stopOnDuplicateSupport: boolean,
): { idx: Uint32Array; value: Float32Array } {
  const idx = new Uint32Array(rows), value = new Float32Array(rows);
  for (let b = 0; b < rows; b++) {
    let best = 0, bi = 0;
    for (let i = 0; i < n; i++) {
      const s = Math.max(scores[b * n + i], 0);
      if (s > best) [best, bi] = [s, i];
    }
    const active = done[b] === 0;
    let dot = 0;
    for (let j = 0; j < d; j++) dot += residual[b * d + j] * wDec[bi * d + j];
    const v = active ? Math.max(dot, 0) : 0;
    const old = acts[b * n + bi];
    acts[b * n + bi] = old + v;
    let nrm2 = 0;
    for (let j = 0; j < d; j++) {
      residual[b * d + j] -= v * wDec[bi * d + j];
      nrm2 += residual[b * d + j] ** 2;
    }
    const grew = v > 0 && old === 0;
    let fin = !active;
    if (active && stopOnDuplicateSupport && !grew) fin = true;
    if (active && residualThreshold > 0 && Math.sqrt(nrm2) < residualThreshold) fin = true;
    done[b] = fin ? 1 : 0;
    idx[b] = bi;
    value[b] = Math.fround(v);
  }
  return { idx, value };
}

const BACK_SPEC = "uuuuu";
const BACK = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(BACK_SPEC, ["rows", "n", "d", "t", "stride"])}
@group(0) @binding(0) var<storage, read> WDEC: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> R: array<f32>;
@group(0) @binding(3) var<storage, read_write> GR: array<f32>;
@group(0) @binding(4) var<storage, read_write> UC: array<f32>;
@group(0) @binding(5) var<storage, read_write> P: array<f32>;
@group(0) @binding(6) var<storage, read_write> PREV: array<u32>;
@group(0) @binding(7) var<storage, read> HIDX: array<u32>;
@group(0) @binding(8) var<storage, read> HV: array<f32>;
@group(0) @binding(9) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let b = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (b >= u.rows) { return; }
  let i = HIDX[u.t * u.stride + b];
  let v = HV[u.t * u.stride + b];
  let rb = b * u.d; let wb = i * u.d;
  var gv = 0.0;
  for (var j = 0u; j < u.d; j++) { gv += (G[rb + j] - GR[rb + j]) * WDEC[wb + j]; }
  let gs = select(0.0, gv, v > 0.0);
  for (var j = 0u; j < u.d; j++) {
    let w = WDEC[wb + j];
    let rt = R[rb + j] + v * w;
    let gr = GR[rb + j];
    UC[rb + j] = gs * rt - v * gr;
    GR[rb + j] = gr + gs * w;
    R[rb + j] = rt;
  }
  let p = PREV[b];
  if (p != ${NO_LATENT}u) { P[b * u.n + p] = 0.0; }
  P[b * u.n + i] = 1.0;
  PREV[b] = i;
}`;

/** Options of {@link pursuitBackStep}. */
export interface PursuitBackArgs {
  wDec: Tensor;
  /** ∂L/∂ŷ `[rows, d]` (before denormalisation). */
  gradOut: Tensor;
  /** r_{t+1} on entry, r_t on exit `[rows, d]`. */
  residual: Tensor;
  /** ∂L/∂r_{t+1} on entry, ∂L/∂r_t on exit `[rows, d]`. */
  gradResidual: Tensor;
  /** Each row's ∂W_dec contribution `[rows, d]` (written). */
  contribution: Tensor;
  /** One-hot `[≥rows, n]` of each row's latent, and u32 `[≥rows]` where its 1 was. */
  oneHot: Tensor;
  previous: Tensor;
  t: number;
  history: { idx: Tensor; value: Tensor; stride: number };
}

/** Records one reverse iteration (see the module doc). */
export function pursuitBackStep(gpu: Gpu, a: PursuitBackArgs): void {
  const [rows, d] = a.residual.shape, n = a.wDec.shape[0];
  const uni = packUniform(BACK_SPEC, rows, n, d, a.t, a.history.stride);
  dispatch1d(gpu, gpu.pipeline("mp_back", BACK), [
    a.wDec,
    a.gradOut,
    a.residual,
    a.gradResidual,
    a.contribution,
    a.oneHot,
    a.previous,
    a.history.idx,
    a.history.value,
    gpu.uniform(uni),
  ], rows);
}

/**
 * Reference of {@link pursuitBackStep} (updates `residual` and `gradResidual` in place);
 * returns the contributions `[rows, d]`.
 */
export function pursuitBackStepRef(
  wDec: Float32Array,
  gradOut: Float32Array,
  residual: Float32Array,
  gradResidual: Float32Array,
  idx: Uint32Array,
  value: Float32Array,
  rows: number,
  d: number,
): Float32Array {
  const u = new Float32Array(rows * d);
  for (let b = 0; b < rows; b++) {
    const i = idx[b], v = value[b];
    let gv = 0;
    for (let j = 0; j < d; j++) {
      gv += (gradOut[b * d + j] - gradResidual[b * d + j]) * wDec[i * d + j];
    }
    const gs = v > 0 ? gv : 0;
    for (let j = 0; j < d; j++) {
      const k = b * d + j, w = wDec[i * d + j];
      const rt = residual[k] + v * w, gr = gradResidual[k];
      u[k] = gs * rt - v * gr;
      gradResidual[k] = gr + gs * w;
      residual[k] = rt;
    }
  }
  return u;
}

const FIRED_SPEC = "uuu";
const FIRED = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(FIRED_SPEC, ["rows", "n", "accumulate"])}
@group(0) @binding(0) var<storage, read> ACTS: array<f32>;
@group(0) @binding(1) var<storage, read_write> FC: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (i >= u.n) { return; }
  var c = 0.0;
  for (var b = 0u; b < u.rows; b++) { if (ACTS[b * u.n + i] != 0.0) { c += 1.0; } }
  FC[i] = select(c, FC[i] + c, u.accumulate == 1u);
}`;

/** Records per latent the rows of `acts [rows, n]` where it is nonzero, into or onto `fired`. */
export function firedColumns(gpu: Gpu, acts: Tensor, fired: Tensor, accumulate: boolean): void {
  const [rows, n] = acts.shape;
  const uni = packUniform(FIRED_SPEC, rows, n, accumulate ? 1 : 0);
  dispatch1d(gpu, gpu.pipeline("mp_fired", FIRED), [acts, fired, gpu.uniform(uni)], n);
}

const METRICS_SPEC = "uuuf";
const METRICS = /* wgsl */ `
${uniformStruct(METRICS_SPEC, ["B", "sqCol", "l0Col", "thr"])}
@group(0) @binding(0) var<storage, read> RD: array<f32>;
@group(0) @binding(1) var<storage, read_write> M: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(1)
fn main() {
  var mx = 0.0; var mn = 3.4e38; var norms = 0.0; var conv = 0.0;
  for (var b = 0u; b < u.B; b++) {
    let l0 = RD[u.l0Col * u.B + b];
    mx = max(mx, l0); mn = min(mn, l0);
    let r = sqrt(RD[u.sqCol * u.B + b]);
    norms += r;
    if (r < u.thr) { conv += 1.0; }
  }
  let inv = 1.0 / f32(u.B);
  M[0] = mx; M[1] = mn; M[2] = norms * inv; M[3] = conv * inv;
}`;

/**
 * Records SAELens's matching-pursuit metrics from the per-token statistics: max and min L0 over
 * the batch, the mean ‖x − x̂‖ and the fraction of tokens with ‖x − x̂‖ < the threshold.
 */
export function pursuitMetrics(
  gpu: Gpu,
  rowStats: Tensor,
  B: number,
  sqCol: number,
  l0Col: number,
  threshold: number,
  metrics: Tensor,
): void {
  const uni = packUniform(METRICS_SPEC, B, sqCol, l0Col, threshold);
  gpu.dispatch(gpu.pipeline("mp_metrics", METRICS), [rowStats, metrics, gpu.uniform(uni)], [1]);
}
