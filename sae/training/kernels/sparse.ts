/**
 * The sparse half of the TopK-family step, over the entries `ENT` made by `select.ts`:
 *
 * - `decodeRows`: x̂_t = b_dec + Σ_{e of t} a_e·W_dec[idx_e] (a gather of k rows per token), and
 *   for Matryoshka every level's prefix reconstruction in one pass (entries of a row are sorted
 *   by latent); `cumulativeLevels` turns per-level gradients into each level's total upstream.
 * - `entryDots`: ∂L/∂h_raw of every entry, the dot of its upstream row with W_dec[idx] (with the
 *   decoder-norm rescale the norms cancel: ∂L/∂h_raw = gA exactly as without it).
 * - a deterministic counting sort of the entries by latent (per-chunk counts, chunk offsets per
 *   latent, one exclusive scan, stable placement: entry order is kept inside each latent),
 * - `latentGather`: per latent, ∂W_dec[i] = Σ a_e·U[src_e], ∂W_enc[:, i] = Σ w_e·x̃[row_e],
 *   ∂b_enc[i] = Σ w_e and the firing count, in entry order (no float atomics anywhere),
 * - `thresholdUpdate` (BatchTopK EMA), `densify` (test aid) and `scanU32` (exclusive scan).
 *
 * References: `sparse_ref.ts`.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import { grid1d } from "../../../gpu/kernel.ts";
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
import { INVALID, WGSL_ENT } from "./select.ts";

export { cumulativeLevelsRef, decodeRowsRef, scanU32Ref, sparseBackwardRef } from "./sparse_ref.ts";

/** Most Matryoshka levels the kernels accept. */
export const MAX_LEVELS = 16;

/** Uniform with 8 u32 fields then 16 level widths. */
const LEVEL_STRUCT = (names: string[]) =>
  `struct U { ${names.map((n) => `${n}: u32`).join(", ")}, lev: array<vec4<u32>, ${
    MAX_LEVELS / 4
  }> }
fn width(l: u32) -> u32 { return u.lev[l / 4u][l % 4u]; }
fn levelOf(i: u32) -> u32 {
  var l = 0u;
  loop { if (l + 1u >= u.m || i < width(l)) { break; } l++; }
  return l;
}`;

function levelUniform(fields: number[], widths: number[]): Uint32Array {
  if (fields.length !== 8) throw new TrainSaeError("levelUniform: 8 fields expected");
  if (widths.length > MAX_LEVELS) {
    throw new TrainSaeError(`matryoshka: at most ${MAX_LEVELS} levels, got ${widths.length}`);
  }
  const w = new Uint32Array(8 + MAX_LEVELS);
  w.set(fields);
  w.set(widths, 8);
  return w;
}

const DECODE = /* wgsl */ `${WGSL_HEAD}${WGSL_ENT}
${LEVEL_STRUCT(["B", "d", "csr", "stride", "base", "m", "bias", "pad"])}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> WDEC: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let k = wgIndex(wid, nwg) * ${WG}u + lid;
  if (k >= u.B * u.d) { return; }
  let b = k / u.d; let j = k % u.d;
  var e0 = u.base + b * u.stride; var e1 = e0 + u.stride;
  if (u.csr == 1u) { e0 = RP[b]; e1 = RP[b + 1u]; }
  var acc = 0.0;
  if (u.bias == 1u) { acc = BIAS[j]; }
  var lvl = 0u;
  for (var e = e0; e < e1; e++) {
    let en = ENT[e];
    if (en.idx == ${INVALID}u) { continue; }
    loop {
      if (lvl + 1u >= u.m || en.idx < width(lvl)) { break; }
      OUT[(lvl * u.B + b) * u.d + j] = acc;
      lvl++;
    }
    acc += en.coef * WDEC[en.idx * u.d + j];
  }
  for (; lvl < u.m; lvl++) { OUT[(lvl * u.B + b) * u.d + j] = acc; }
}`;

/** Arguments of {@link decodeRows}. */
export interface DecodeRowsArgs {
  ent: Tensor;
  /** Row offsets `[B + 1]` (CSR), or null for fixed `stride` entries per row from `base`. */
  rowPtr: Tensor | null;
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
}

/** Records the sparse decode (see the module doc). */
export function decodeRows(gpu: Gpu, a: DecodeRowsArgs): void {
  const d = a.wDec.shape[1];
  const p = gpu.pipeline("tsae_decode", DECODE);
  const uni = levelUniform(
    [a.B, d, a.rowPtr ? 1 : 0, a.stride ?? 0, a.base ?? 0, a.levels.length, a.bias ? 1 : 0, 0],
    a.levels,
  );
  dispatchUnits(gpu, p, a.B * d, [
    a.ent,
    a.rowPtr ?? a.ent,
    a.wDec,
    a.bias ?? a.wDec,
    a.out,
    gpu.uniform(uni),
  ]);
}

const CUM_SPEC = "uuu";
const CUM = /* wgsl */ `${WGSL_HEAD}
${uniformStruct(CUM_SPEC, ["count", "m", "pad"])}
@group(0) @binding(0) var<storage, read_write> G: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let k = wgIndex(wid, nwg) * ${WG}u + lid;
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
  dispatchUnits(gpu, p, count, [g, gpu.uniform(pack(CUM_SPEC, count, m, 0))]);
}

const DOTS = /* wgsl */ `${WGSL_HEAD}${WGSL_ENT}
${LEVEL_STRUCT(["count", "d", "B", "m", "auxBase", "pad0", "pad1", "pad2"])}
@group(0) @binding(0) var<storage, read_write> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> UPS: array<f32>;
@group(0) @binding(3) var<storage, read> WDEC: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let e = wgIndex(wid, nwg) * ${WG}u + lid;
  if (e >= u.count) { return; }
  let idx = ENT[e].idx;
  if (idx == ${INVALID}u || (e < u.auxBase && e >= RP[u.B])) { ENT[e].w = 0.0; return; }
  var src = u.m * u.B;
  if (e < u.auxBase) { src = levelOf(idx) * u.B; }
  src = (src + ENT[e].row) * u.d;
  let wb = idx * u.d;
  var s = 0.0;
  for (var j = 0u; j < u.d; j++) { s += UPS[src + j] * WDEC[wb + j]; }
  ENT[e].w = s;
}`;

/** Arguments shared by the sparse backward kernels. */
export interface SparseBackwardArgs {
  ent: Tensor;
  /** Main-entry row offsets `[B + 1]` (entries at or after `rowPtr[B]` and before `auxBase` are unused). */
  rowPtr: Tensor;
  /** Upstream rows `[(m + 1)·B, d]`: level l's total gradient at rows l·B, aux at m·B. */
  ups: Tensor;
  wDec: Tensor;
  B: number;
  d: number;
  n: number;
  /** First aux entry (= capacity of the main entries); `count` = all entry slots. */
  auxBase: number;
  count: number;
  levels: number[];
}

/** Records ∂L/∂h_raw (`ENT[e].w`) of every entry. */
export function entryDots(gpu: Gpu, a: SparseBackwardArgs): void {
  const p = gpu.pipeline("tsae_dots", DOTS);
  const uni = levelUniform([a.count, a.d, a.B, a.levels.length, a.auxBase, 0, 0, 0], a.levels);
  dispatchUnits(gpu, p, a.count, [a.ent, a.rowPtr, a.ups, a.wDec, gpu.uniform(uni)]);
}

const SORT_SPEC = "uuuuuu";
const SORT_HEAD = `${WGSL_HEAD}${WGSL_ENT}
${uniformStruct(SORT_SPEC, ["count", "n", "chunk", "auxBase", "chunks", "B"])}
fn valid(e: u32, idx: u32) -> bool {
  return idx != ${INVALID}u && !(e < u.auxBase && e >= RP[u.B]);
}`;
const COUNT = /* wgsl */ `${SORT_HEAD}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let c = wgIndex(wid, nwg) * ${WG}u + lid;
  if (c >= u.chunks) { return; }
  let e1 = min(u.count, (c + 1u) * u.chunk);
  for (var e = c * u.chunk; e < e1; e++) {
    let idx = ENT[e].idx;
    if (valid(e, idx)) { CNT[c * u.n + idx] += 1u; }
  }
}`;
const CHUNKSCAN = /* wgsl */ `${WGSL_HEAD}
${uniformStruct("uu", ["n", "chunks"])}
@group(0) @binding(0) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(1) var<storage, read_write> TOT: array<u32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let i = wgIndex(wid, nwg) * ${WG}u + lid;
  if (i >= u.n) { return; }
  var run = 0u;
  for (var c = 0u; c < u.chunks; c++) {
    let t = CNT[c * u.n + i];
    CNT[c * u.n + i] = run;
    run += t;
  }
  TOT[i] = run;
}`;
const PLACE = /* wgsl */ `${SORT_HEAD}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@group(0) @binding(4) var<storage, read> START: array<u32>;
@group(0) @binding(5) var<storage, read_write> LIST: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let c = wgIndex(wid, nwg) * ${WG}u + lid;
  if (c >= u.chunks) { return; }
  let e1 = min(u.count, (c + 1u) * u.chunk);
  for (var e = c * u.chunk; e < e1; e++) {
    let idx = ENT[e].idx;
    if (valid(e, idx)) {
      let at = c * u.n + idx;
      LIST[START[idx] + CNT[at]] = e;
      CNT[at] += 1u;
    }
  }
}`;

/** Scratch of the entry sort, sized by {@link sortScratchShape}. */
export interface SortScratch {
  /** u32 `[chunks, n]` per-chunk counts, then offsets. */
  cnt: Tensor;
  /** u32 `[n]` entries per latent. */
  tot: Tensor;
  /** u32 `[n + 1]` first list position of each latent. */
  start: Tensor;
  /** u32 `[count]` entry ids grouped by latent. */
  list: Tensor;
}

/** Entries per chunk and number of chunks of the sort (at most 256 chunks). */
export function sortChunks(count: number): { chunk: number; chunks: number } {
  const chunk = Math.max(256, Math.ceil(count / 256));
  return { chunk, chunks: Math.max(1, Math.ceil(count / chunk)) };
}

/** Records the stable counting sort of the valid entries by latent into `s.list`. */
export function sortEntries(gpu: Gpu, a: SparseBackwardArgs, s: SortScratch): void {
  const { chunk, chunks } = sortChunks(a.count);
  const uni = gpu.uniform(pack(SORT_SPEC, a.count, a.n, chunk, a.auxBase, chunks, a.B));
  gpu.clear(s.cnt.buffer, s.cnt.offset, s.cnt.byteLength);
  dispatchUnits(gpu, gpu.pipeline("tsae_sort_count", COUNT), chunks, [
    a.ent,
    a.rowPtr,
    s.cnt,
    uni,
  ]);
  dispatchUnits(gpu, gpu.pipeline("tsae_sort_chunkscan", CHUNKSCAN), a.n, [
    s.cnt,
    s.tot,
    gpu.uniform(pack("uu", a.n, chunks)),
  ]);
  scanU32(gpu, s.tot, null, s.start, a.n);
  dispatchUnits(gpu, gpu.pipeline("tsae_sort_place", PLACE), chunks, [
    a.ent,
    a.rowPtr,
    s.cnt,
    uni,
    s.start,
    s.list,
  ]);
}

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
    gpu.uniform(pack("uuu", len, input2 ? 1 : 0, 0)),
  ], [1]);
}

const GATHER = /* wgsl */ `${WGSL_HEAD}${WGSL_ENT}
${LEVEL_STRUCT(["n", "d", "B", "m", "auxBase", "pad0", "pad1", "pad2"])}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> LIST: array<u32>;
@group(0) @binding(2) var<storage, read> START: array<u32>;
@group(0) @binding(3) var<storage, read> UPS: array<f32>;
@group(0) @binding(4) var<storage, read> XT: array<f32>;
@group(0) @binding(5) var<storage, read_write> GWDEC: array<f32>;
@group(0) @binding(6) var<storage, read_write> GWENC: array<f32>;
@group(0) @binding(7) var<storage, read_write> LAT: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let i = wgIndex(wid, nwg);
  if (i >= u.n) { return; }
  let lvlRow = levelOf(i) * u.B;
  let auxRow = u.m * u.B;
  let s0 = START[i]; let s1 = START[i + 1u];
  for (var j = lid; j < u.d; j += ${WG}u) {
    var accD = 0.0; var accE = 0.0;
    for (var p = s0; p < s1; p++) {
      let e = LIST[p];
      let en = ENT[e];
      let src = select(auxRow, lvlRow, e < u.auxBase) + en.row;
      accD += en.coef * UPS[src * u.d + j];
      accE += en.w * XT[en.row * u.d + j];
    }
    GWDEC[i * u.d + j] = accD;
    GWENC[j * u.n + i] = accE;
  }
  if (lid == 0u) {
    var benc = 0.0; var fired = 0.0;
    for (var p = s0; p < s1; p++) {
      let e = LIST[p];
      benc += ENT[e].w;
      if (e < u.auxBase) { fired += 1.0; }
    }
    LAT[i] = benc;
    LAT[u.n + i] = fired;
  }
}`;

/**
 * Records, per latent, ∂W_dec rows, ∂W_enc columns (`gWEnc [d, n]`) and `lat [2, n]` =
 * (∂b_enc, firing count) from the sorted entries.
 */
export function latentGather(
  gpu: Gpu,
  a: SparseBackwardArgs,
  s: SortScratch,
  xt: Tensor,
  gWDec: Tensor,
  gWEnc: Tensor,
  lat: Tensor,
): void {
  const p = gpu.pipeline("tsae_gather", GATHER);
  const uni = levelUniform([a.n, a.d, a.B, a.levels.length, a.auxBase, 0, 0, 0], a.levels);
  gpu.dispatch(p, [
    a.ent,
    s.list,
    s.start,
    a.ups,
    xt,
    gWDec,
    gWEnc,
    lat,
    gpu.uniform(uni),
  ], grid1d(gpu, a.n));
}

const THR = /* wgsl */ `
${uniformStruct("uf", ["B", "lr"])}
@group(0) @binding(0) var<storage, read> RMIN: array<f32>;
@group(0) @binding(1) var<storage, read_write> THR: array<f32>;
@group(0) @binding(2) var<storage, read_write> MET: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var mn = bitcast<f32>(0x7f800000u);
  for (var t = lid; t < u.B; t += ${WG}u) { mn = min(mn, RMIN[t]); }
  sh[lid] = mn;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
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
  gpu.dispatch(p, [rowMin, threshold, metrics, gpu.uniform(pack("uf", rowMin.size, lr))], [1]);
}

const DENSE = /* wgsl */ `${WGSL_HEAD}${WGSL_ENT}
${uniformStruct("uuuu", ["count", "n", "rescale", "B"])}
@group(0) @binding(0) var<storage, read> ENT: array<Ent>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> NORMS: array<f32>;
@group(0) @binding(3) var<storage, read_write> F: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let e = wgIndex(wid, nwg) * ${WG}u + lid;
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
  dispatchUnits(gpu, p, count, [
    ent,
    rowPtr,
    norms,
    f,
    gpu.uniform(pack("uuuu", count, n, rescale ? 1 : 0, B)),
  ]);
}
