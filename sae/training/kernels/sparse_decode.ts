/**
 * The sparse forward of the TopK family and its small companions: `decodeRows` (x̂_t = b_dec +
 * Σ_{e of t} a_e·W_dec[idx_e], a gather of k rows per token; for Matryoshka every level's prefix
 * reconstruction in one pass, entries of a row being sorted by latent), `cumulativeLevels` (each
 * level's total upstream gradient), `scaleEncoder` (W_enc·diag(n), b_enc·n for the rescale),
 * `scanU32` (exclusive scan), `thresholdUpdate` (BatchTopK EMA) and `densify` (test aid).
 * References: `sparse_ref.ts`.
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
import { INVALID, WGSL_ENT } from "./select.ts";
import { LEVEL_STRUCT, levelUniform, vecWidth, wgslVec } from "./_levels.ts";

export { cumulativeLevelsRef, decodeRowsRef, scanU32Ref } from "./sparse_ref.ts";

const DEC_JB = 4;

function decodeWgsl(v: 1 | 4): string {
  const q = Array.from({ length: DEC_JB }, (_, i) => i);
  const clamp = q.map((i) => `let cc${i} = min(c0 + ${i}u, u.dv - 1u);`).join(" ");
  const init = q.map((i) => `var a${i} = T0; if ((u.flags & 1u) != 0u) { a${i} = BIAS[cc${i}]; }`)
    .join("\n  ");
  const reset = q.map((i) => `a${i} = T0;`).join(" ");
  const flush = (lvl: string) =>
    q.map((i) => `if (c0 + ${i}u < u.dv) { OUT[(${lvl} * u.B + b) * u.dv + c0 + ${i}u] = a${i}; }`)
      .join(" ");
  const fma = q.map((i) => `a${i} += w * WDEC[wb + cc${i}];`).join(" ");
  return /* wgsl */ `${WGSL_WG_INDEX}${wgslVec(v)}
${LEVEL_STRUCT(["B", "dv", "csr", "stride", "base", "m", "flags", "blocks"])}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> WDEC: array<T>;
@group(0) @binding(3) var<storage, read> BIAS: array<T>;
@group(0) @binding(4) var<storage, read_write> OUT: array<T>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let k = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (k >= u.B * u.blocks) { return; }
  let b = k / u.blocks;
  let c0 = (k % u.blocks) * ${DEC_JB}u;
  ${clamp}
  var e0 = u.base + b * u.stride; var e1 = e0 + min(u.stride, RP[b]);
  if (u.csr == 1u) { e0 = RP[b]; e1 = RP[b + 1u]; }
  ${init}
  var lvl = 0u;
  for (var e = e0; e < e1; e++) {
    let en = ENT[e];
    if (en.x == ${INVALID}u) { continue; }
    loop {
      if (lvl + 1u >= u.m || en.x < width(lvl)) { break; }
      ${flush("lvl")}
      if ((u.flags & 2u) != 0u) { ${reset} }
      lvl++;
    }
    let w = bitcast<f32>(en.z);
    let wb = en.x * u.dv;
    ${fma}
  }
  for (; lvl < u.m; lvl++) {
    ${flush("lvl")}
    if ((u.flags & 2u) != 0u) { ${reset} }
  }
}`;
}

/** Arguments of {@link decodeRows}. */
export interface DecodeRowsArgs {
  ent: Tensor;
  /**
   * Row offsets `[B + 1]` (CSR); or, with `stride`, per-row entry counts `[B]` of rows of
   * `stride` slots from `base`.
   */
  rowPtr: Tensor;
  stride?: number;
  base?: number;
  wDec: Tensor;
  /** Added to every row (b_dec), or null. */
  bias: Tensor | null;
  /** Output `[levels.length · B, d]`: level l at rows l·B (one level: the plain decode). */
  out: Tensor;
  B: number;
  /** Level widths (Matryoshka), `[dSae]` for a plain decode. */
  levels: number[];
  /**
   * Each level's output holds only its own latents' sum (no prefix, no bias), for entries whose
   * levels come in increasing order (Matryoshka's per-level aux groups).
   */
  separateLevels?: boolean;
}

/** Records the sparse decode (see the module doc). */
export function decodeRows(gpu: Gpu, a: DecodeRowsArgs): void {
  const d = a.wDec.shape[1], v = vecWidth(d), dv = d / v;
  const blocks = Math.ceil(dv / DEC_JB);
  const p = gpu.pipeline(`tsae_decode_v${v}`, decodeWgsl(v));
  const csr = a.stride === undefined;
  const uni = levelUniform(
    [
      a.B,
      dv,
      csr ? 1 : 0,
      a.stride ?? 0,
      a.base ?? 0,
      a.levels.length,
      (a.bias ? 1 : 0) | (a.separateLevels ? 2 : 0),
      blocks,
    ],
    a.levels,
  );
  dispatch1d(gpu, p, [
    a.ent,
    a.rowPtr,
    a.wDec,
    a.bias ?? a.wDec,
    a.out,
    gpu.uniform(uni),
  ], a.B * blocks);
}

const CUM_SPEC = "uuu";
const CUM = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(CUM_SPEC, ["count", "m", "pad"])}
@group(0) @binding(0) var<storage, read_write> G: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let k = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (k >= u.count) { return; }
  var acc = G[(u.m - 1u) * u.count + k];
  for (var l = i32(u.m) - 2; l >= 0; l--) {
    let at = u32(l) * u.count + k;
    acc += G[at];
    G[at] = acc;
  }
}`;

/** Records G_l ← Σ_{l' ≥ l} G_l' over the `m` level blocks of `count` values of `g`. */
export function cumulativeLevels(gpu: Gpu, g: Tensor, m: number, count: number): void {
  if (m < 2) return;
  const p = gpu.pipeline("tsae_cumlevels", CUM);
  dispatch1d(gpu, p, [g, gpu.uniform(packUniform(CUM_SPEC, count, m, 0))], count);
}

/** Entries per chunk of the per-row dot kernel. */
const SCAN_WG = 256;
const SCAN = /* wgsl */ `
${uniformStruct("uuu", ["len", "two", "pad"])}
@group(0) @binding(0) var<storage, read> IN: array<u32>;
@group(0) @binding(1) var<storage, read> IN2: array<u32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> sh: array<u32, ${SCAN_WG}>;
fn at(i: u32) -> u32 { return IN[i] + select(0u, IN2[i], u.two == 1u); }
@compute @workgroup_size(${SCAN_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let seg = (u.len + ${SCAN_WG - 1}u) / ${SCAN_WG}u;
  let a = min(u.len, lid * seg);
  let b = min(u.len, a + seg);
  var s = 0u;
  for (var i = a; i < b; i++) { s += at(i); }
  sh[lid] = s;
  workgroupBarrier();
  for (var off = 1u; off < ${SCAN_WG}u; off = off << 1u) {
    var t = sh[lid];
    if (lid >= off) { t += sh[lid - off]; }
    workgroupBarrier();
    sh[lid] = t;
    workgroupBarrier();
  }
  var run = sh[lid] - s;
  for (var i = a; i < b; i++) { OUT[i] = run; run += at(i); }
  if (lid == ${SCAN_WG - 1}u) { OUT[u.len] = sh[lid]; }
}`;

/** Records OUT[i] = Σ_{i' < i} (IN + IN2)[i'] for i ≤ len (exclusive scan with the total). */
export function scanU32(gpu: Gpu, input: Tensor, input2: Tensor | null, out: Tensor, len: number) {
  const p = gpu.pipeline("tsae_scan", SCAN);
  gpu.dispatch(p, [
    input,
    input2 ?? input,
    out,
    gpu.uniform(packUniform("uuu", len, input2 ? 1 : 0, 0)),
  ], [1]);
}

const SCALE = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct("uu", ["d", "n"])}
@group(0) @binding(0) var<storage, read> W: array<f32>;
@group(0) @binding(1) var<storage, read> BV: array<f32>;
@group(0) @binding(2) var<storage, read> NORMS: array<f32>;
@group(0) @binding(3) var<storage, read_write> WS: array<f32>;
@group(0) @binding(4) var<storage, read_write> BS: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let k = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (k >= u.d * u.n) { return; }
  let i = k % u.n;
  WS[k] = W[k] * NORMS[i];
  if (k < u.n) { BS[k] = BV[k] * NORMS[k]; }
}`;

/**
 * Records W_enc·diag(n) `[d, n]` and b_enc·n `[n]`: with them the encoder GEMM yields the
 * rescaled pre-activations hs = (x̃·W_enc + b_enc)·n directly.
 */
export function scaleEncoder(
  gpu: Gpu,
  wEnc: Tensor,
  bEnc: Tensor,
  norms: Tensor,
  wOut: Tensor,
  bOut: Tensor,
): void {
  const [d, n] = wEnc.shape;
  const p = gpu.pipeline("tsae_scale_enc", SCALE);
  dispatch1d(gpu, p, [wEnc, bEnc, norms, wOut, bOut, gpu.uniform(packUniform("uu", d, n))], d * n);
}

const THR = /* wgsl */ `
${uniformStruct("uf", ["B", "lr"])}
@group(0) @binding(0) var<storage, read> RMIN: array<f32>;
@group(0) @binding(1) var<storage, read_write> THR: array<f32>;
@group(0) @binding(2) var<storage, read_write> MET: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> sh: array<f32, ${DEFAULT_WG}>;
@compute @workgroup_size(${DEFAULT_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var mn = bitcast<f32>(0x7f800000u);
  for (var t = lid; t < u.B; t += ${DEFAULT_WG}u) { mn = min(mn, RMIN[t]); }
  sh[lid] = mn;
  workgroupBarrier();
  for (var s = ${DEFAULT_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = min(sh[lid], sh[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let m = sh[0];
    if (m < bitcast<f32>(0x7f800000u)) { THR[0] = (1.0 - u.lr) * THR[0] + u.lr * m; }
    MET[0] = THR[0];
  }
}`;

/** Records θ ← (1 − lr)·θ + lr·min_t rowMin_t (skipped when nothing fired) and metrics[0] = θ. */
export function thresholdUpdate(
  gpu: Gpu,
  rowMin: Tensor,
  threshold: Tensor,
  metrics: Tensor,
  lr: number,
): void {
  const p = gpu.pipeline("tsae_threshold", THR);
  gpu.dispatch(p, [rowMin, threshold, metrics, gpu.uniform(packUniform("uf", rowMin.size, lr))], [
    1,
  ]);
}

const DENSE = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ENT}
${uniformStruct("uuuu", ["count", "n", "rescale", "B"])}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> NORMS: array<f32>;
@group(0) @binding(3) var<storage, read_write> F: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let e = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (e >= u.count || e >= RP[u.B]) { return; }
  let en = ENT[e];
  if (en.idx == ${INVALID}u) { return; }
  F[en.row * u.n + en.idx] = select(en.coef, en.coef * NORMS[en.idx], u.rescale == 1u);
}`;

/** Records the dense feature acts `f [B, n]` (zeroed here) from the main entries (test aid). */
export function densify(
  gpu: Gpu,
  ent: Tensor,
  rowPtr: Tensor,
  norms: Tensor,
  f: Tensor,
  count: number,
  rescale: boolean,
): void {
  const [B, n] = f.shape;
  gpu.clear(f.buffer, f.offset, f.byteLength);
  const p = gpu.pipeline("tsae_densify", DENSE);
  dispatch1d(gpu, p, [
    ent,
    rowPtr,
    norms,
    f,
    gpu.uniform(packUniform("uuuu", count, n, rescale ? 1 : 0, B)),
  ], count);
}
