/**
 * Latent selection of the TopK family, producing sparse entries `ENT [E]` of
 * `{ idx, row, coef, w }` (latent, token, decoder weight a, and a slot for ∂L/∂h_raw filled
 * later), with `idx = INVALID` for an unused slot:
 *
 * The pre-activations come in as hs (with the decoder-norm rescale the encoder GEMM already ran
 * with W_enc·diag(n) and b_enc·n, so hs = h·n needs no per-element work here).
 *
 * - `topkSelect`: per token, the k largest of hs, kept in a bounded min-heap
 *   (ties → lower latent index, like the reference's stable sort); only positive ones become
 *   entries (TopK's ReLU), with a = hs/n (rescale) or hs.
 * - `auxSelect`: per token, the top k_aux = d_in // 2 dead latents by hs (raw values, no ReLU);
 *   all dead ones when N_dead ≤ k_aux; nothing when N_dead = 0; â = hs/n or hs.
 * - BatchTopK: the shared `kthLargest` finds the ⌊k·B⌋-th largest hs of the batch (ties by lower
 *   flat index); `batchRowCount` and `batchRowWrite` then emit the selected positive entries in
 *   row-major order, with per-row offsets from an exclusive scan (`scanU32`) and each row's
 *   smallest selected value (for the threshold EMA).
 *
 * Every kernel is one invocation per token. References: `select_ref.ts`.
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

export { auxSelectRef, batchTopKSelectRef, topkSelectRef } from "./select_ref.ts";

/** Marker of an unused entry slot. */
export const INVALID = 0xffffffff;

/** WGSL declaration of one sparse entry (16 bytes). */
export const WGSL_ENT = "struct Ent { idx: u32, row: u32, coef: f32, w: f32 }";

/** Vector width for rows of `n` pre-activations (4 when n is a multiple of 4). */
function widthOf(n: number): 1 | 4 {
  return n % 4 === 0 ? 4 : 1;
}

/**
 * WGSL declarations of H and NORMS as arrays of `vec4<f32>` (v = 4) or f32 and `normAt(i)`;
 * {@link rowScan} runs `body` with `i` and `h` = H[r, i] for i in 0..n.
 */
function scanDecl(v: 1 | 4): string {
  const T = v === 4 ? "vec4<f32>" : "f32";
  return `@group(0) @binding(0) var<storage, read> H: array<${T}>;
@group(0) @binding(1) var<storage, read> NORMS: array<${T}>;
fn normAt(i: u32) -> f32 { return ${v === 4 ? "NORMS[i / 4u][i % 4u]" : "NORMS[i]"}; }`;
}

function rowScan(v: 1 | 4, body: string): string {
  if (v === 1) return `for (var i = 0u; i < u.n; i++) { let h = H[r * u.n + i]; ${body} }`;
  return `for (var i4 = 0u; i4 < u.n / 4u; i4++) {
    let hv4 = H[r * (u.n / 4u) + i4];
    for (var q = 0u; q < 4u; q++) { let i = i4 * 4u + q; let h = hv4[q]; ${body} }
  }`;
}

/** WGSL: a bounded min-heap of (value, index) pairs, worst at the root. */
function heapWgsl(K: number): string {
  return /* wgsl */ `
var<private> hv: array<f32, ${K}>;
var<private> hi: array<u32, ${K}>;
// a is worse than b: smaller value, or equal value and larger index.
fn worse(av: f32, ai: u32, bv: f32, bi: u32) -> bool { return av < bv || (av == bv && ai > bi); }
fn heapPush(cnt: u32, v: f32, i: u32) {
  var c = cnt;
  hv[c] = v; hi[c] = i;
  loop {
    if (c == 0u) { break; }
    let p = (c - 1u) / 2u;
    if (!worse(hv[c], hi[c], hv[p], hi[p])) { break; }
    let tv = hv[c]; let ti = hi[c];
    hv[c] = hv[p]; hi[c] = hi[p]; hv[p] = tv; hi[p] = ti;
    c = p;
  }
}
fn heapReplaceRoot(k: u32, v: f32, i: u32) {
  hv[0] = v; hi[0] = i;
  var c = 0u;
  loop {
    let l = 2u * c + 1u;
    if (l >= k) { break; }
    var m = l;
    let r = l + 1u;
    if (r < k && worse(hv[r], hi[r], hv[l], hi[l])) { m = r; }
    if (!worse(hv[m], hi[m], hv[c], hi[c])) { break; }
    let tv = hv[c]; let ti = hi[c];
    hv[c] = hv[m]; hi[c] = hi[m]; hv[m] = tv; hi[m] = ti;
    c = m;
  }
}
fn heapOffer(cnt: ptr<function, u32>, k: u32, v: f32, i: u32) {
  if (*cnt < k) { heapPush(*cnt, v, i); *cnt = *cnt + 1u; }
  else if (worse(hv[0], hi[0], v, i)) { heapReplaceRoot(k, v, i); }
}`;
}

const TOPK_SPEC = "uuuuuu";
function topkWgsl(K: number, v: 1 | 4): string {
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ENT}
${uniformStruct(TOPK_SPEC, ["rows", "n", "rOff", "B", "rescale", "pad"])}
${scanDecl(v)}
@group(0) @binding(2) var<storage, read_write> ENT: array<Ent>;
@group(0) @binding(3) var<storage, read_write> RP: array<u32>;
@group(0) @binding(4) var<uniform> u: U;
${heapWgsl(K)}
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.rOff + r;
  var cnt = 0u;
  ${rowScan(v, `heapOffer(&cnt, ${K}u, h, i);`)}
  for (var s = 0u; s < ${K}u; s++) {
    let v = hv[s]; let i = hi[s];
    var e = Ent();
    e.row = t; e.w = 0.0; e.idx = ${INVALID}u; e.coef = 0.0;
    if (v > 0.0) {
      e.idx = i;
      e.coef = select(v, v / normAt(i), u.rescale == 1u);
    }
    ENT[t * ${K}u + s] = e;
  }
  RP[t] = t * ${K}u;
  if (t + 1u == u.B) { RP[u.B] = u.B * ${K}u; }
}`;
}

/**
 * Records TopK selection for the rows of `h [rows, n]` (tokens `rOff…`): entries
 * `ent[t·k + s]` and the fixed row offsets `rowPtr [B + 1]` (= t·k).
 */
export function topkSelect(
  gpu: Gpu,
  h: Tensor,
  norms: Tensor,
  ent: Tensor,
  rowPtr: Tensor,
  k: number,
  rOff: number,
  B: number,
  rescale: boolean,
): void {
  const [rows, n] = h.shape;
  const v = widthOf(n);
  const p = gpu.pipeline(`tsae_topk_${k}_v${v}`, topkWgsl(k, v));
  const uni = packUniform(TOPK_SPEC, rows, n, rOff, B, rescale ? 1 : 0, 0);
  dispatch1d(gpu, p, [h, norms, ent, rowPtr, gpu.uniform(uni)], rows);
}

const AUX_SPEC = "uuuuuuuuuu";
function auxWgsl(K: number, v: 1 | 4): string {
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ENT}
${
    uniformStruct(AUX_SPEC, [
      "rows",
      "n",
      "rOff",
      "base",
      "rescale",
      "nDeadIdx",
      "lo",
      "hi",
      "stride",
      "append",
    ])
  }
${scanDecl(v)}
@group(0) @binding(2) var<storage, read> DEAD: array<u32>;
@group(0) @binding(3) var<storage, read> SC: array<f32>;
@group(0) @binding(4) var<storage, read_write> ENT: array<Ent>;
@group(0) @binding(5) var<uniform> u: U;
@group(0) @binding(6) var<storage, read_write> AUXN: array<u32>;
${heapWgsl(K)}
fn put(t: u32, s: u32, i: u32, hs: f32) {
  var e = Ent();
  e.row = t; e.w = 0.0; e.idx = i;
  e.coef = select(hs, hs / normAt(i), u.rescale == 1u);
  ENT[u.base + t * u.stride + s] = e;
}
fn dead(i: u32) -> bool { return DEAD[i] != 0u && i >= u.lo && i < u.hi; }
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.rOff + r;
  let nd = u32(SC[u.nDeadIdx]);
  let s0 = select(0u, AUXN[t], u.append == 1u);
  var s = s0;
  if (nd > 0u && nd <= ${K}u) {
    ${rowScan(v, "if (dead(i)) { put(t, s, i, h); s++; }")}
  } else if (nd > ${K}u) {
    var cnt = 0u;
    ${
    rowScan(
      v,
      `if (dead(i)) { heapOffer(&cnt, ${K}u, h, i); }`,
    )
  }
    for (var q = 0u; q < ${K}u; q++) { put(t, s, hi[q], hv[q]); s++; }
  }
  // Only the first AUXN[t] slots of the row are written and valid.
  AUXN[t] = s;
}`;
}

/**
 * Where {@link auxSelect} looks and writes: dead latents in `[lo, hi)` only (default all),
 * rows of `stride` slots (default `kAux`), and with `append` after the `auxN[t]` entries an
 * earlier call wrote (Matryoshka's per-level groups).
 */
export interface AuxSelectRange {
  lo: number;
  hi: number;
  stride: number;
  append: boolean;
}

/**
 * Records the aux-k selection for the rows of `h [rows, n]`: up to `kAux` entries per token at
 * `ent[base + t·stride + s]`, their number in `auxN[t]` (u32 `[B]`); the dead count (of the
 * range) is read from `scalars[nDeadIdx]` on the GPU.
 */
export function auxSelect(
  gpu: Gpu,
  h: Tensor,
  norms: Tensor,
  dead: Tensor,
  scalars: Tensor,
  ent: Tensor,
  auxN: Tensor,
  kAux: number,
  base: number,
  rOff: number,
  rescale: boolean,
  nDeadIdx: number,
  range?: AuxSelectRange,
): void {
  const [rows, n] = h.shape;
  const v = widthOf(n);
  const p = gpu.pipeline(`tsae_aux_${kAux}_v${v}`, auxWgsl(kAux, v));
  const r = range ?? { lo: 0, hi: n, stride: kAux, append: false };
  const uni = packUniform(
    AUX_SPEC,
    rows,
    n,
    rOff,
    base,
    rescale ? 1 : 0,
    nDeadIdx,
    r.lo,
    r.hi,
    r.stride,
    r.append ? 1 : 0,
  );
  dispatch1d(gpu, p, [h, norms, dead, scalars, ent, gpu.uniform(uni), auxN], rows);
}

/**
 * WGSL: whether hs = v at flat index f is one of the ⌊k·B⌋ largest of the batch, given the K-th
 * entry from `kthLargest` (KTH = [order key, flat index, value bits, 0]; ties by lower flat
 * index), and positive (BatchTopK's ReLU).
 */
const WGSL_BATCH_SEL = /* wgsl */ `
fn batchSel(v: f32, f: u32) -> bool {
  let kv = bitcast<f32>(KTH[2]);
  return v > 0.0 && (v > kv || (v == kv && f <= KTH[1]));
}`;

const ROWCNT_SPEC = "uuuu";
const rowCountWgsl = (v: 1 | 4) =>
  /* wgsl */ `${WGSL_WG_INDEX}${WGSL_BATCH_SEL}
${uniformStruct(ROWCNT_SPEC, ["rows", "n", "rOff", "pad"])}
@group(0) @binding(0) var<storage, read> H: array<${v === 4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> KTH: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.rOff + r;
  var c = 0u;
  ${rowScan(v, "if (batchSel(h, t * u.n + i)) { c++; }")}
  CNT[t] = c;
}`;

/**
 * Records, per token of the windowed hs `h [rows, n]` (tokens `rOff…`), how many of its latents
 * BatchTopK selects, given `kth` (u32 `[4]` from `kthLargest` over the whole batch).
 */
export function batchRowCount(
  gpu: Gpu,
  h: Tensor,
  kth: Tensor,
  counts: Tensor,
  rOff: number,
): void {
  const [rows, n] = h.shape;
  const v = widthOf(n);
  const p = gpu.pipeline(`tsae_batch_rowcount_v${v}`, rowCountWgsl(v));
  dispatch1d(
    gpu,
    p,
    [h, kth, counts, gpu.uniform(packUniform(ROWCNT_SPEC, rows, n, rOff, 0))],
    rows,
  );
}

const WRITE_SPEC = "uuuu";
const writeWgsl = (v: 1 | 4) =>
  /* wgsl */ `${WGSL_WG_INDEX}${WGSL_BATCH_SEL}${WGSL_ENT}
${uniformStruct(WRITE_SPEC, ["rows", "n", "rOff", "rescale"])}
${scanDecl(v)}
@group(0) @binding(2) var<storage, read> KTH: array<u32>;
@group(0) @binding(3) var<storage, read> RP: array<u32>;
@group(0) @binding(4) var<storage, read_write> ENT: array<Ent>;
@group(0) @binding(5) var<storage, read_write> RMIN: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (r >= u.rows) { return; }
  let t = u.rOff + r;
  var p = RP[t];
  var mn = bitcast<f32>(0x7f800000u);
  ${
    rowScan(
      v,
      `if (batchSel(h, t * u.n + i)) {
      var e = Ent();
      e.idx = i; e.row = t; e.w = 0.0;
      e.coef = select(h, h / normAt(i), u.rescale == 1u);
      ENT[p] = e;
      p++;
      mn = min(mn, h);
    }`,
    )
  }
  RMIN[t] = mn;
}`;

/**
 * Records the BatchTopK entries of the rows of `h` at `ent[rowPtr[t]…]` (column order) and each
 * row's smallest selected value (∞ if none), for the threshold EMA.
 */
export function batchRowWrite(
  gpu: Gpu,
  h: Tensor,
  norms: Tensor,
  kth: Tensor,
  rowPtr: Tensor,
  ent: Tensor,
  rowMin: Tensor,
  rOff: number,
  rescale: boolean,
): void {
  const [rows, n] = h.shape;
  const v = widthOf(n);
  const p = gpu.pipeline(`tsae_batch_write_v${v}`, writeWgsl(v));
  dispatch1d(gpu, p, [
    h,
    norms,
    kth,
    rowPtr,
    ent,
    rowMin,
    gpu.uniform(packUniform(WRITE_SPEC, rows, n, rOff, rescale ? 1 : 0)),
  ], rows);
}
