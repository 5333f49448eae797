/**
 * WGSL of the per-row top-k (`topk.ts`). Each row is cut into G strided groups (group g holds
 * entries g, g + G, …, so neighbouring invocations read neighbouring floats):
 *
 * 1. `groupMax`: the largest order key of each group;
 * 2. `bound`: per row, a lower bound L of the k-th largest key — the k-th largest group maximum
 *    (exact to 16 bits, rounded down) — and, in place, the list of groups whose maximum is ≥ L
 *    (only those can hold a top-k entry: usually about k of the G groups);
 * 3. `collect`: the entries ≥ L of those groups, appended to a per-row candidate list
 *    (integer atomics; the order does not matter);
 * 4. rows whose candidates overflow the list (heavy ties) get the exact threshold from the
 *    radix select of `_radix.ts` and `collect` runs again over all their groups;
 * 5. `rank`: each candidate's rank among the row's candidates (value descending, index
 *    ascending: a total order) is its output slot; slots past the candidates get (0, −1).
 *
 * No workgroup memory (llvmpipe zero-initialises it per workgroup at a high cost) and every
 * per-invocation loop stays under llvmpipe's 65535-iteration budget.
 * @module
 */

import { WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../kernel.ts";
import { WG, WGSL_ORDER_KEY, WGSL_PICK_DIGIT } from "./_radix.ts";

/** Uniform of the per-row kernels. `rowBase`: first row of the window (batch threshold mode). */
const WGSL_P = /* wgsl */ `
struct P { rows: u32, n: u32, k: u32, g: u32, cap: u32, relu: u32, rowBase: u32, loInit: u32,
  lanes: u32, s: u32, w: u32, p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
`;

/** WGSL variant switches of the per-row kernels. */
export interface TopkVariant {
  /** A `[n]` mask binding (entries with mask 0 are excluded). */
  mask: boolean;
  /**
   * A batch threshold binding `T` (u32 [4]: key, flat index): entries ranking below the K-th
   * entry of the flattened batch are excluded (BatchTopK to sparse rows).
   */
  threshold: boolean;
}

/** Cache-key fragment of a variant. */
export function variantKey(v: TopkVariant): string {
  return `${v.mask ? "m" : "nm"}_${v.threshold ? "t" : "nt"}`;
}

/**
 * WGSL: the source bindings (from `first`) and `keyAt(row, j)`: the order key of X[row, j], or
 * 0 when masked out or below the batch threshold. `n` is a WGSL expression for the row length.
 */
export function keySource(v: TopkVariant, first: number, n: string, rowBase: string): string {
  let b = first;
  let decl = `@group(0) @binding(${b++}) var<storage, read> X: array<f32>;\n`;
  if (v.mask) decl += `@group(0) @binding(${b++}) var<storage, read> Msk: array<u32>;\n`;
  if (v.threshold) decl += `@group(0) @binding(${b++}) var<storage, read> T: array<u32>;\n`;
  return /* wgsl */ `${decl}${WGSL_ORDER_KEY}
fn keyAt(row: u32, j: u32) -> u32 {
  ${v.mask ? "if (Msk[j] == 0u) { return 0u; }" : ""}
  let key = orderKey(X[row * ${n} + j]);
  ${
    v.threshold
      ? `let flat = (${rowBase} + row) * ${n} + j;
  if (key < T[0] || (key == T[0] && flat > T[1])) { return 0u; }`
      : ""
  }
  return key;
}
`;
}

/**
 * Bindings: P, GM (w), then the key source. One invocation per (row, t) for t < `p.lanes`,
 * each handling groups t, t + lanes, … (llvmpipe pays per invocation, so not one per group).
 */
export function groupMaxWgsl(v: TopkVariant): string {
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}
@group(0) @binding(1) var<storage, read_write> GM: array<u32>;
${keySource(v, 2, "p.n", "p.rowBase")}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let id = wgIndex(wid, nwg) * ${WG}u + lid;
  if (id >= p.rows * p.lanes) { return; }
  let row = id / p.lanes;
  for (var grp = id - row * p.lanes; grp < p.g; grp += p.lanes) {
    var m0 = 0u;
    var m1 = 0u;
    var j = grp;
    for (; j + p.g < p.n; j += 2u * p.g) {
      m0 = max(m0, keyAt(row, j));
      m1 = max(m1, keyAt(row, j + p.g));
    }
    if (j < p.n) { m0 = max(m0, keyAt(row, j)); }
    GM[row * p.g + grp] = max(m0, m1);
  }
}`;
}

/**
 * Bindings: P, GM (rw: group maxima in, active group list out), RS (w: row state
 * (L, 0, active count, 0)), CNT (w: candidate counters, reset). One invocation per row.
 */
export const BOUND_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}${WGSL_PICK_DIGIT}
@group(0) @binding(1) var<storage, read_write> GM: array<u32>;
@group(0) @binding(2) var<storage, read_write> RS: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> CNT: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg) * ${WG}u + lid;
  if (row >= p.rows) { return; }
  let gb = row * p.g;
  var prefix = 0u;
  var r = p.k;
  var all = false;
  for (var d = 0u; d < 4u; d++) {
    let sh = 28u - 4u * d;
    let above = select(0xffffffffu << ((sh + 4u) & 31u), 0u, d == 0u);
    var c = array<vec4<u32>, 4>();
    for (var t = 0u; t < p.g; t++) {
      let v = GM[gb + t];
      if (v != 0u && (v & above) == prefix) {
        let dv = vec4<u32>((v >> sh) & 15u);
        c[0] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(0u, 1u, 2u, 3u));
        c[1] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(4u, 5u, 6u, 7u));
        c[2] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(8u, 9u, 10u, 11u));
        c[3] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(12u, 13u, 14u, 15u));
      }
    }
    if (d == 0u && c[0].x < r) { all = true; break; }
    let pick = pickDigit(c, r);
    prefix |= pick.x << sh;
    r = pick.y;
  }
  let L = select(max(prefix, 1u), 1u, all);
  var a = 0u;
  for (var t = 0u; t < p.g; t++) {
    if (GM[gb + t] >= L) { GM[gb + a] = t; a++; }
  }
  RS[row] = vec4<u32>(L, 0u, a, 0u);
  CNT[row] = 0u;
}`;

/**
 * The candidate collection. First run (`again` false) — bindings: P, GM (active group lists),
 * RS (row state), CNT (atomic), CAND (w), then the key source; it scans each row's active groups
 * for keys ≥ L. Second run (`again`) — bindings: P, ST (radix state), CNT, CAND, source; rows
 * whose radix status is 2 or 3 scan all their groups against the exact threshold.
 * One workgroup per row.
 */
export function collectWgsl(v: TopkVariant, again: boolean): string {
  const head = again
    ? `@group(0) @binding(1) var<storage, read> ST: array<vec4<u32>>;`
    : `@group(0) @binding(1) var<storage, read> GM: array<u32>;
@group(0) @binding(2) var<storage, read> RS: array<vec4<u32>>;`;
  const first = again ? 2 : 3;
  // again: the whole row, entry j by lane j % WG; first: the active groups, group t by lane t % WG.
  const body = again
    ? `let st = ST[row];
  if (st.w < 2u) { return; }
  for (var j = lid; j < p.n; j += ${WG}u) { visit(row, j, st.x, st.y); }`
    : `let rs = RS[row];
  for (var t = lid; t < rs.z; t += ${WG}u) {
    for (var j = GM[row * p.g + t]; j < p.n; j += p.g) { visit(row, j, rs.x, 0u); }
  }`;
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}
${head}
@group(0) @binding(${first}) var<storage, read_write> CNT: array<atomic<u32>>;
@group(0) @binding(${first + 1}) var<storage, read_write> CAND: array<vec2<u32>>;
${keySource(v, first + 2, "p.n", "p.rowBase")}
fn visit(row: u32, j: u32, th: u32, tl: u32) {
  let key = keyAt(row, j);
  if (key > th || (key == th && key != 0u && ~j >= tl)) {
    let s = atomicAdd(&CNT[row], 1u);
    if (s < p.cap) { CAND[row * p.p2 + s] = vec2<u32>(key, j); }
  }
}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= p.rows) { return; }
  ${body}
}`;
}

/**
 * Bindings: P, CNT (rw), ST (w: radix state). Rows whose candidates overflowed start a radix
 * select for the exact k-th entry (counter reset); the others are marked idle.
 */
export const OVERFLOW_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}
@group(0) @binding(1) var<storage, read_write> CNT: array<u32>;
@group(0) @binding(2) var<storage, read_write> ST: array<vec4<u32>>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg) * ${WG}u + lid;
  if (row >= p.rows) { return; }
  if (CNT[row] > p.cap) {
    ST[row] = vec4<u32>(0u, p.loInit, p.k, 1u);
    CNT[row] = 0u;
  } else {
    ST[row] = vec4<u32>(0u);
  }
}`;

/**
 * Bindings: P, CNT, CAND, OV (w, values), OI (w, i32 indices), X. One workgroup per row; each
 * candidate's rank among the row's candidates is its output slot.
 */
export const RANK_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}
@group(0) @binding(1) var<storage, read> CNT: array<u32>;
@group(0) @binding(2) var<storage, read> CAND: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> OV: array<f32>;
@group(0) @binding(4) var<storage, read_write> OI: array<i32>;
@group(0) @binding(5) var<storage, read> X: array<f32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= p.rows) { return; }
  let s = min(CNT[row], p.cap);
  let cb = row * p.p2;
  for (var c = lid; c < s; c += ${WG}u) {
    let e = CAND[cb + c];
    var rank = 0u;
    for (var o = 0u; o < s; o++) {
      let f = CAND[cb + o];
      rank += select(0u, 1u, f.x > e.x || (f.x == e.x && f.y < e.y));
    }
    if (rank < p.k) {
      let v = X[row * p.n + e.y];
      OV[row * p.k + rank] = select(v, select(0.0, v, v > 0.0), p.relu == 1u);
      OI[row * p.k + rank] = i32(e.y);
    }
  }
  for (var r = s + lid; r < p.k; r += ${WG}u) {
    OV[row * p.k + r] = 0.0;
    OI[row * p.k + r] = -1;
  }
}`;

const WGSL_BEFORE = /* wgsl */ `
fn before(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x > b.x || (a.x == b.x && a.y < b.y); }
`;

/**
 * Merge sort of each row's candidates for large capacities (the rank kernel costs S² per row).
 * Row stride `p.p2` (a power of two ≥ 16). Slots ≥ S hold sentinels (key 0, index 2³¹ + slot),
 * which rank after every candidate and never move, so only the S candidates are processed.
 * `SORT_BLOCK_WGSL` — bindings: P, CNT, A (rw: candidates; sentinels written), B (w): sorts
 * blocks of 16 into B. `SORT_MERGE_WGSL` — bindings: P, CNT, SRC, DST: merges sorted blocks of
 * `p.w` pairwise (binary search in the sibling block). One workgroup per row.
 */
export const SORT_BLOCK_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}${WGSL_BEFORE}
@group(0) @binding(1) var<storage, read> CNT: array<u32>;
@group(0) @binding(2) var<storage, read_write> A: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> B: array<vec2<u32>>;
fn elem(cb: u32, s: u32, q: u32) -> vec2<u32> {
  return select(vec2<u32>(0u, 0x80000000u + q), A[cb + q], q < s);
}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= p.rows) { return; }
  let s = min(CNT[row], p.cap);
  let cb = row * p.p2;
  for (var i = lid; i < p.p2; i += ${WG}u) {
    if (i >= s) {
      let e = vec2<u32>(0u, 0x80000000u + i);
      A[cb + i] = e;
      B[cb + i] = e;
      continue;
    }
    let e = A[cb + i];
    let b0 = i & ~15u;
    var rank = 0u;
    for (var q = b0; q < b0 + 16u; q++) { rank += select(0u, 1u, before(elem(cb, s, q), e)); }
    B[cb + b0 + rank] = e;
  }
}`;

/**
 * See {@link SORT_BLOCK_WGSL}. Merge path: lane t writes output slots [t·C, (t + 1)·C) of the row
 * (C = ⌈S / 64⌉); per merged block it finds how many of its first outputs come from the upper
 * half by one binary search, then merges sequentially (S + 64·log w steps per level instead of
 * S·log w).
 */
export const SORT_MERGE_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}${WGSL_BEFORE}
@group(0) @binding(1) var<storage, read> CNT: array<u32>;
@group(0) @binding(2) var<storage, read> SRC: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> DST: array<vec2<u32>>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= p.rows) { return; }
  let s = min(CNT[row], p.cap);
  let cb = row * p.p2;
  let w = p.w;
  let per = (s + ${WG - 1}u) / ${WG}u;
  var o = lid * per;
  let oEnd = min(o + per, s);
  while (o < oEnd) {
    let base = o & ~(2u * w - 1u);
    let a = cb + base;
    let b = a + w;
    let d = o - base;
    let stop = min(oEnd, base + 2u * w) - base;
    var lo = select(0u, d - w, d > w);
    var hi = min(d, w);
    while (lo < hi) {
      let mid = (lo + hi) / 2u;
      if (before(SRC[a + mid], SRC[b + d - mid - 1u])) { lo = mid + 1u; } else { hi = mid; }
    }
    var i = lo;
    var j = d - lo;
    for (var t = d; t < stop; t++) {
      let takeA = j >= w || (i < w && before(SRC[a + i], SRC[b + j]));
      if (takeA) { DST[a + t] = SRC[a + i]; i++; } else { DST[a + t] = SRC[b + j]; j++; }
    }
    o = base + stop;
  }
}`;

/** Bindings: P, CNT, F (sorted candidates), OV (w), OI (w), X. Writes the first k slots. */
export const SORT_OUT_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_P}
@group(0) @binding(1) var<storage, read> CNT: array<u32>;
@group(0) @binding(2) var<storage, read> F: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> OV: array<f32>;
@group(0) @binding(4) var<storage, read_write> OI: array<i32>;
@group(0) @binding(5) var<storage, read> X: array<f32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= p.rows) { return; }
  let s = min(CNT[row], p.cap);
  for (var r = lid; r < p.k; r += ${WG}u) {
    if (r < s) {
      let e = F[row * p.p2 + r];
      let v = X[row * p.n + e.y];
      OV[row * p.k + r] = select(v, select(0.0, v, v > 0.0), p.relu == 1u);
      OI[row * p.k + r] = i32(e.y);
    } else {
      OV[row * p.k + r] = 0.0;
      OI[row * p.k + r] = -1;
    }
  }
}`;
