/**
 * The sparse backward of the TopK family over the entries made by `select.ts`:
 *
 * - `entryDots`: ∂L/∂h_raw of every entry, the dot of its upstream row with W_dec[idx] (with the
 *   decoder-norm rescale the norms cancel: ∂L/∂h_raw = gA exactly as without it);
 * - `sortEntries`: a deterministic counting sort of the entries by latent (per-chunk counts,
 *   chunk offsets per latent, one exclusive scan, stable placement: entry order is kept inside
 *   each latent);
 * - `latentGather`: per latent, ∂W_dec[i] = Σ a_e·U[src_e], ∂W_enc[:, i] = Σ w_e·x̃[row_e],
 *   ∂b_enc[i] = Σ w_e and the firing count, in entry order (no float atomics anywhere).
 *
 * Reference: `sparseBackwardRef` in `sparse_ref.ts`.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import {
  DEFAULT_WG,
  dispatch1d,
  grid1d,
  packUniform,
  uniformStruct,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import { INVALID } from "./select.ts";
import { LEVEL_STRUCT, levelUniform, VALID, vecWidth, wgslVec } from "./_levels.ts";
import { scanU32 } from "./sparse_decode.ts";

export { sparseBackwardRef } from "./sparse_ref.ts";

const DOT_CHUNK = 32;

/**
 * One invocation per token: its main entries (CSR range) then its aux entries, in chunks of
 * DOT_CHUNK with one accumulator each; the token's upstream row is loaded once per column and
 * reused by every entry of the chunk with the same source row (on llvmpipe, where every
 * per-lane load is a gather, this halves the loads of a per-entry kernel).
 */
function dotsWgsl(v: 1 | 4): string {
  return /* wgsl */ `${WGSL_WG_INDEX}${wgslVec(v)}
${LEVEL_STRUCT(["dv", "B", "m", "auxBase", "kA", "useAux", "auxPerLevel", "pad2"])}
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
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let b = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (b >= u.B) { return; }
  let nMain = RP[b + 1u] - RP[b];
  var nAux = 0u;
  if (u.useAux == 1u) { nAux = AUXN[b]; }
  let total = nMain + nAux;
  for (var base = 0u; base < total; base += ${DOT_CHUNK}u) {
    let cnt = min(${DOT_CHUNK}u, total - base);
    // Explicit zeros: naga's translation declares these once per invocation, so without an
    // initializer the second chunk started from the first chunk's sums.
    var acc = array<f32, ${DOT_CHUNK}>();
    var wb = array<u32, ${DOT_CHUNK}>();
    var sb = array<u32, ${DOT_CHUNK}>();
    for (var t = 0u; t < cnt; t++) {
      let slot = base + t;
      let idx = ENT[slotEntry(b, slot, nMain)].x;
      if (slot < nMain && idx == ${INVALID}u) { wb[t] = ${INVALID}u; continue; }
      var src = (u.m + select(0u, levelOf(idx), u.auxPerLevel == 1u)) * u.B + b;
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
  /**
   * Upstream rows: level l's total gradient at rows l·B, aux at m·B (with `auxPerLevel`, the aux
   * group of level l at (m + l)·B).
   */
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
  /** Aux entries of level l take their upstream row from group l (Matryoshka per-level aux). */
  auxPerLevel?: boolean;
}

/** Records ∂L/∂h_raw (`ENT[e].w`) of every entry. */
export function entryDots(gpu: Gpu, a: SparseBackwardArgs): void {
  const v = vecWidth(a.d);
  const p = gpu.pipeline(`tsae_dots_v${v}`, dotsWgsl(v));
  const useAux = a.count > a.auxBase ? 1 : 0;
  const uni = levelUniform(
    [a.d / v, a.B, a.levels.length, a.auxBase, a.kAux, useAux, a.auxPerLevel ? 1 : 0, 0],
    a.levels,
  );
  dispatch1d(gpu, p, [a.ent, a.rowPtr, a.ups, a.wDec, gpu.uniform(uni), a.auxN], a.B);
}

const SORT_SPEC = "uuuuuuu";
const SORT_HEAD = `${WGSL_WG_INDEX}
${uniformStruct(SORT_SPEC, ["count", "n", "chunk", "auxBase", "chunks", "B", "kA"])}
${VALID}`;
const COUNT = /* wgsl */ `${SORT_HEAD}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> RP: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@group(0) @binding(4) var<storage, read> AUXN: array<u32>;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let c = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (c >= u.chunks) { return; }
  let e1 = min(u.count, (c + 1u) * u.chunk);
  for (var e = c * u.chunk; e < e1; e++) {
    if (validEntry(e)) { CNT[c * u.n + ENT[e].x] += 1u; }
  }
}`;
const CHUNKSCAN = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct("uu", ["n", "chunks"])}
@group(0) @binding(0) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(1) var<storage, read_write> TOT: array<u32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
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
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let c = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
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
    packUniform(SORT_SPEC, a.count, a.n, chunk, a.auxBase, chunks, a.B, a.kAux),
  );
  gpu.clear(s.cnt.buffer, s.cnt.offset, s.cnt.byteLength);
  dispatch1d(gpu, gpu.pipeline("tsae_sort_count", COUNT), [
    a.ent,
    a.rowPtr,
    s.cnt,
    uni,
    a.auxN,
  ], chunks);
  dispatch1d(gpu, gpu.pipeline("tsae_sort_chunkscan", CHUNKSCAN), [
    s.cnt,
    s.tot,
    gpu.uniform(packUniform("uu", a.n, chunks)),
  ], a.n);
  scanU32(gpu, s.tot, null, s.start, a.n);
  dispatch1d(gpu, gpu.pipeline("tsae_sort_place", PLACE), [
    a.ent,
    a.rowPtr,
    s.cnt,
    uni,
    a.auxN,
    s.start,
    s.list,
  ], chunks);
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
  return /* wgsl */ `${WGSL_WG_INDEX}${wgslVec(v)}
${LEVEL_STRUCT(["n", "dv", "B", "m", "auxBase", "auxPerLevel", "pad1", "pad2"])}
@group(0) @binding(0) var<storage, read> ENT: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> LIST: array<u32>;
@group(0) @binding(2) var<storage, read> START: array<u32>;
@group(0) @binding(3) var<storage, read> UPS: array<T>;
@group(0) @binding(4) var<storage, read> XT: array<T>;
@group(0) @binding(5) var<storage, read_write> GWDEC: array<T>;
@group(0) @binding(6) var<storage, read_write> GWENC: array<f32>;
@group(0) @binding(7) var<storage, read_write> LAT: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg);
  if (i >= u.n) { return; }
  let lvlRow = levelOf(i) * u.B;
  let auxRow = (u.m + select(0u, levelOf(i), u.auxPerLevel == 1u)) * u.B;
  let s0 = START[i]; let s1 = START[i + 1u];
  for (var c0 = lid * ${jb}u; c0 < u.dv; c0 += ${DEFAULT_WG * jb}u) {
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
  const jb = Math.min(4, Math.max(1, Math.ceil(dv / DEFAULT_WG)));
  const p = gpu.pipeline(`tsae_gather_v${v}_${jb}`, gatherWgsl(v, jb));
  const uni = levelUniform(
    [a.n, dv, a.B, a.levels.length, a.auxBase, a.auxPerLevel ? 1 : 0, 0, 0],
    a.levels,
  );
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
