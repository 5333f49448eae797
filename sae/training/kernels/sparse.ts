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

/**
 * WGSL: whether entry slot e holds a selected latent (main: below RP[B] and not INVALID; aux:
 * within its row's AUXN count). Needs ENT (as `array<vec4<u32>>`), RP, AUXN and
 * u.{auxBase, kA, B}.
 */
const VALID = /* wgsl */ `fn validEntry(e: u32) -> bool {
  if (e >= u.auxBase) {
    let q = e - u.auxBase;
    return (q % u.kA) < AUXN[q / u.kA];
  }
  return e < RP[u.B] && ENT[e].x != ${INVALID}u;
}`;

/**
 * WGSL for vectors of width `v` (4 when d_in is a multiple of 4, else 1): `T`, `vdot` and the
 * zero `T0`. Rows of `[·, d]` matrices are then arrays of d/v values of T.
 */
export function wgslVec(v: 1 | 4): string {
  return v === 4
    ? "alias T = vec4<f32>;\nfn vdot(a: T, b: T) -> f32 { return dot(a, b); }\nconst T0 = vec4<f32>(0.0);"
    : "alias T = f32;\nfn vdot(a: T, b: T) -> f32 { return a * b; }\nconst T0 = 0.0;";
}

/** Vector width for rows of `d` values. */
export function vecWidth(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

/** T-values per invocation of the decode. */
const DEC_JB = 4;

function decodeWgsl(v: 1 | 4): string {
  const q = Array.from({ length: DEC_JB }, (_, i) => i);
  const clamp = q.map((i) => `let cc${i} = min(c0 + ${i}u, u.dv - 1u);`).join(" ");
  const init = q.map((i) => `var a${i} = T0; if (u.bias == 1u) { a${i} = BIAS[cc${i}]; }`).join(
    "\n  ",
  );
  const flush = (lvl: string) =>
    q.map((i) => `if (c0 + ${i}u < u.dv) { OUT[(${lvl} * u.B + b) * u.dv + c0 + ${i}u] = a${i}; }`)
      .join(" ");
  const fma = q.map((i) => `a${i} += w * WDEC[wb + cc${i}];`).join(" ");
  return /* wgsl */ `${WGSL_HEAD}${wgslVec(v)}
${LEVEL_STRUCT(["B", "dv", "csr", "stride", "base", "m", "bias", "blocks"])}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> WDEC: array<T>;
@group(0) @binding(3) var<storage, read> BIAS: array<T>;
@group(0) @binding(4) var<storage, read_write> OUT: array<T>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let k = wgIndex(wid, nwg) * ${WG}u + lid;
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
      lvl++;
    }
    let w = bitcast<f32>(en.z);
    let wb = en.x * u.dv;
    ${fma}
  }
  for (; lvl < u.m; lvl++) { ${flush("lvl")} }
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
}

/** Records the sparse decode (see the module doc). */
export function decodeRows(gpu: Gpu, a: DecodeRowsArgs): void {
  const d = a.wDec.shape[1], v = vecWidth(d), dv = d / v;
  const blocks = Math.ceil(dv / DEC_JB);
  const p = gpu.pipeline(`tsae_decode_v${v}`, decodeWgsl(v));
  const csr = a.stride === undefined;
  const uni = levelUniform(
    [a.B, dv, csr ? 1 : 0, a.stride ?? 0, a.base ?? 0, a.levels.length, a.bias ? 1 : 0, blocks],
    a.levels,
  );
  dispatchUnits(gpu, p, a.B * blocks, [
    a.ent,
    a.rowPtr,
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

/** Entries per chunk of the per-row dot kernel. */
const DOT_CHUNK = 32;

/**
 * One invocation per token: its main entries (CSR range) then its aux entries, in chunks of
 * DOT_CHUNK with one accumulator each; the token's upstream row is loaded once per column and
 * reused by every entry of the chunk with the same source row (on llvmpipe, where every
 * per-lane load is a gather, this halves the loads of a per-entry kernel).
 */
function dotsWgsl(v: 1 | 4): string {
  return /* wgsl */ `${WGSL_HEAD}${wgslVec(v)}
${LEVEL_STRUCT(["dv", "B", "m", "auxBase", "kA", "useAux", "pad1", "pad2"])}
@group(0) @binding(0) var<storage, read_write> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read> UPS: array<T>;
@group(0) @binding(3) var<storage, read> WDEC: array<T>;
@group(0) @binding(4) var<uniform> u: U;
@group(0) @binding(5) var<storage, read> AUXN: array<u32>;
fn slotEntry(b: u32, slot: u32, nMain: u32) -> u32 {
  if (slot < nMain) { return RP[b] + slot; }
  return u.auxBase + b * u.kA + slot - nMain;
}
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let b = wgIndex(wid, nwg) * ${WG}u + lid;
  if (b >= u.B) { return; }
  let nMain = RP[b + 1u] - RP[b];
  var nAux = 0u;
  if (u.useAux == 1u) { nAux = AUXN[b]; }
  let total = nMain + nAux;
  for (var base = 0u; base < total; base += ${DOT_CHUNK}u) {
    let cnt = min(${DOT_CHUNK}u, total - base);
    var acc: array<f32, ${DOT_CHUNK}>;
    var wb: array<u32, ${DOT_CHUNK}>;
    var sb: array<u32, ${DOT_CHUNK}>;
    for (var t = 0u; t < cnt; t++) {
      let slot = base + t;
      let idx = ENT[slotEntry(b, slot, nMain)].x;
      if (slot < nMain && idx == ${INVALID}u) { wb[t] = ${INVALID}u; continue; }
      var src = u.m * u.B + b;
      if (slot < nMain) { src = levelOf(idx) * u.B + b; }
      wb[t] = idx * u.dv; sb[t] = src * u.dv;
    }
    for (var c = 0u; c < u.dv; c++) {
      var last = ${INVALID}u;
      var uv = T0;
      for (var t = 0u; t < cnt; t++) {
        if (wb[t] == ${INVALID}u) { continue; }
        if (sb[t] != last) { last = sb[t]; uv = UPS[last + c]; }
        acc[t] += vdot(uv, WDEC[wb[t] + c]);
      }
    }
    for (var t = 0u; t < cnt; t++) {
      if (wb[t] != ${INVALID}u) { ENT[slotEntry(b, base + t, nMain)].w = bitcast<u32>(acc[t]); }
    }
  }
}`;
}

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
  /** Aux slots per row and the u32 `[B]` number of valid ones per row (from `auxSelect`). */
  kAux: number;
  auxN: Tensor;
  count: number;
  levels: number[];
}

/** Records ∂L/∂h_raw (`ENT[e].w`) of every entry. */
export function entryDots(gpu: Gpu, a: SparseBackwardArgs): void {
  const v = vecWidth(a.d);
  const p = gpu.pipeline(`tsae_dots_v${v}`, dotsWgsl(v));
  const useAux = a.count > a.auxBase ? 1 : 0;
  const uni = levelUniform(
    [a.d / v, a.B, a.levels.length, a.auxBase, a.kAux, useAux, 0, 0],
    a.levels,
  );
  dispatchUnits(gpu, p, a.B, [a.ent, a.rowPtr, a.ups, a.wDec, gpu.uniform(uni), a.auxN]);
}

const SORT_SPEC = "uuuuuuu";
const SORT_HEAD = `${WGSL_HEAD}
${uniformStruct(SORT_SPEC, ["count", "n", "chunk", "auxBase", "chunks", "B", "kA"])}
${VALID}`;
const COUNT = /* wgsl */ `${SORT_HEAD}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@group(0) @binding(4) var<storage, read> AUXN: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let c = wgIndex(wid, nwg) * ${WG}u + lid;
  if (c >= u.chunks) { return; }
  let e1 = min(u.count, (c + 1u) * u.chunk);
  for (var e = c * u.chunk; e < e1; e++) {
    if (validEntry(e)) { CNT[c * u.n + ENT[e].x] += 1u; }
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
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@group(0) @binding(4) var<storage, read> AUXN: array<u32>;
@group(0) @binding(5) var<storage, read> START: array<u32>;
@group(0) @binding(6) var<storage, read_write> LIST: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let c = wgIndex(wid, nwg) * ${WG}u + lid;
  if (c >= u.chunks) { return; }
  let e1 = min(u.count, (c + 1u) * u.chunk);
  for (var e = c * u.chunk; e < e1; e++) {
    if (validEntry(e)) {
      let idx = ENT[e].x;
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
  const uni = gpu.uniform(
    pack(SORT_SPEC, a.count, a.n, chunk, a.auxBase, chunks, a.B, a.kAux),
  );
  gpu.clear(s.cnt.buffer, s.cnt.offset, s.cnt.byteLength);
  dispatchUnits(gpu, gpu.pipeline("tsae_sort_count", COUNT), chunks, [
    a.ent,
    a.rowPtr,
    s.cnt,
    uni,
    a.auxN,
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
    a.auxN,
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

function gatherWgsl(v: 1 | 4, jb: number): string {
  const q = Array.from({ length: jb }, (_, i) => i);
  const clamp = q.map((i) => `let cc${i} = min(c0 + ${i}u, u.dv - 1u);`).join(" ");
  const init = q.map((i) => `var d${i} = T0; var x${i} = T0;`).join(" ");
  const acc = q.map((i) => `d${i} += coef * UPS[sb + cc${i}]; x${i} += w * XT[xb + cc${i}];`).join(
    "\n        ",
  );
  const encStore = (i: number) =>
    v === 4
      ? Array.from(
        { length: 4 },
        (_, r) => `GWENC[((c0 + ${i}u) * 4u + ${r}u) * u.n + i] = x${i}[${r}];`,
      )
        .join(" ")
      : `GWENC[(c0 + ${i}u) * u.n + i] = x${i};`;
  const stores = q.map((i) =>
    `if (c0 + ${i}u < u.dv) { GWDEC[i * u.dv + c0 + ${i}u] = d${i}; ${encStore(i)} }`
  ).join("\n    ");
  return /* wgsl */ `${WGSL_HEAD}${wgslVec(v)}
${LEVEL_STRUCT(["n", "dv", "B", "m", "auxBase", "pad0", "pad1", "pad2"])}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> LIST: array<u32>;
@group(0) @binding(2) var<storage, read> START: array<u32>;
@group(0) @binding(3) var<storage, read> UPS: array<T>;
@group(0) @binding(4) var<storage, read> XT: array<T>;
@group(0) @binding(5) var<storage, read_write> GWDEC: array<T>;
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
  for (var c0 = lid * ${jb}u; c0 < u.dv; c0 += ${WG * jb}u) {
    ${clamp}
    ${init}
    for (var p = s0; p < s1; p++) {
      let e = LIST[p];
      let en = ENT[e];
      let coef = bitcast<f32>(en.z); let w = bitcast<f32>(en.w);
      let sb = (select(auxRow, lvlRow, e < u.auxBase) + en.y) * u.dv;
      let xb = en.y * u.dv;
      ${acc}
    }
    ${stores}
  }
  if (lid == 0u) {
    var benc = 0.0; var fired = 0.0;
    for (var p = s0; p < s1; p++) {
      let e = LIST[p];
      benc += bitcast<f32>(ENT[e].w);
      if (e < u.auxBase) { fired += 1.0; }
    }
    LAT[i] = benc;
    LAT[u.n + i] = fired;
  }
}`;
}

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
  const v = vecWidth(a.d), dv = a.d / v;
  const jb = Math.min(4, Math.max(1, Math.ceil(dv / WG)));
  const p = gpu.pipeline(`tsae_gather_v${v}_${jb}`, gatherWgsl(v, jb));
  const uni = levelUniform([a.n, dv, a.B, a.levels.length, a.auxBase, 0, 0, 0], a.levels);
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

const SCALE = /* wgsl */ `${WGSL_HEAD}
${uniformStruct("uu", ["d", "n"])}
@group(0) @binding(0) var<storage, read> W: array<f32>;
@group(0) @binding(1) var<storage, read> BV: array<f32>;
@group(0) @binding(2) var<storage, read> NORMS: array<f32>;
@group(0) @binding(3) var<storage, read_write> WS: array<f32>;
@group(0) @binding(4) var<storage, read_write> BS: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let k = wgIndex(wid, nwg) * ${WG}u + lid;
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
  dispatchUnits(gpu, p, d * n, [wEnc, bEnc, norms, wOut, bOut, gpu.uniform(pack("uu", d, n))]);
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
