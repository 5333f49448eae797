/**
 * Segmented radix select on the GPU, shared by the top-k kernels: per segment, the r-th largest
 * 64-bit composite (hi = order key, lo = ~index) over elements produced by a WGSL "source", four
 * bits per pass, without atomics and without workgroup memory (both slow on llvmpipe):
 * each pass counts, per chunk of a segment, the matching elements whose digit is ≥ d for every d
 * (16 counters), then a finalize kernel per segment picks the digit and narrows the prefix.
 *
 * State per segment (`vec4<u32>`): prefix hi, prefix lo, remaining rank r, status
 * (0 idle: skipped; 1 running; 2 fewer valid elements than r: threshold (1, 0) = all valid;
 * 3 done: the prefix is the exact r-th largest composite). Elements with hi = 0 are absent.
 * @module
 */

import type { BufferBinding, Gpu } from "../device.ts";
import { grid1d, packUniform, WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../kernel.ts";
import type { Tensor } from "../tensor.ts";

/** Invocations per workgroup of every sparse kernel. */
export const WG = 64;

/**
 * WGSL: `orderKey(v)`, the order-preserving u32 of a float (see `topk_ref.ts`): NaN → 1,
 * −0 → key of +0, key 0 reserved for "absent".
 */
export const WGSL_ORDER_KEY = /* wgsl */ `
fn orderKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 1u; }
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, b >= 0x80000000u);
}
`;

/** WGSL: adds one element's digit to the 16 "digit ≥ d" counters c0..c3. */
const WGSL_COUNT_DIGIT = /* wgsl */ `
fn countDigit(dg: u32, c: ptr<function, array<vec4<u32>, 4>>) {
  let dv = vec4<u32>(dg);
  (*c)[0] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(0u, 1u, 2u, 3u));
  (*c)[1] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(4u, 5u, 6u, 7u));
  (*c)[2] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(8u, 9u, 10u, 11u));
  (*c)[3] += select(vec4<u32>(0u), vec4<u32>(1u), dv >= vec4<u32>(12u, 13u, 14u, 15u));
}
`;

/**
 * WGSL: given the 16 "digit ≥ d" counts and the remaining rank r (≥ 1, ≤ count of digit ≥ 0),
 * returns (d, r') with d the largest digit whose count reaches r and r' = r − count(digit > d).
 */
export const WGSL_PICK_DIGIT = /* wgsl */ `
fn pickDigit(c: array<vec4<u32>, 4>, r: u32) -> vec2<u32> {
  var above = 0u;
  var d = 15u;
  loop {
    let cd = c[d / 4u][d % 4u];
    if (cd >= r || d == 0u) { break; }
    above = cd;
    d -= 1u;
  }
  return vec2<u32>(d, r - above);
}
`;

/** A WGSL element source: bindings from @binding(3) on, `srcLen(seg)`, `srcElem(seg, i)`. */
export interface RadixSource {
  /** Cache-key fragment naming the source variant. */
  key: string;
  /** WGSL: the source's bindings (numbered from 3) and helper functions. */
  decl: string;
  /** The bindings themselves, in order. */
  bindings: (BufferBinding | Tensor)[];
  /** Four u32 source parameters, readable in WGSL as `q.s0`..`q.s3`. */
  params: [number, number, number, number];
}

function passWgsl(source: RadixSource): string {
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_COUNT_DIGIT}
struct Q { count: u32, base: u32, chunk: u32, chunks: u32, shift: u32, maskHi: u32, maskLo: u32,
  word: u32, s0: u32, s1: u32, s2: u32, s3: u32 }
@group(0) @binding(0) var<uniform> q: Q;
@group(0) @binding(1) var<storage, read> state: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<u32>>;
${source.decl}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let id = wgIndex(wid, nwg) * ${WG}u + lid;
  if (id >= q.count) { return; }
  let g = q.base + id;
  let seg = g / q.chunks;
  let st = state[seg];
  if (st.w != 1u) { return; }
  var c = array<vec4<u32>, 4>();
  let start = (g % q.chunks) * q.chunk;
  let end = min(start + q.chunk, srcLen(seg));
  for (var i = start; i < end; i++) {
    let e = srcElem(seg, i);
    if (e.x != 0u && (e.x & q.maskHi) == (st.x & q.maskHi) && (e.y & q.maskLo) == (st.y & q.maskLo)) {
      countDigit((select(e.x, e.y, q.word == 1u) >> q.shift) & 15u, &c);
    }
  }
  for (var t = 0u; t < 4u; t++) { partial[g * 4u + t] = c[t]; }
}`;
}

const FINALIZE_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_PICK_DIGIT}
struct F { segs: u32, chunks: u32, shift: u32, word: u32, first: u32, last: u32 }
@group(0) @binding(0) var<uniform> f: F;
@group(0) @binding(1) var<storage, read_write> state: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> partial: array<vec4<u32>>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let seg = wgIndex(wid, nwg) * ${WG}u + lid;
  if (seg >= f.segs) { return; }
  var st = state[seg];
  if (st.w != 1u) { return; }
  var c = array<vec4<u32>, 4>();
  for (var ch = 0u; ch < f.chunks; ch++) {
    let b = (seg * f.chunks + ch) * 4u;
    c[0] += partial[b]; c[1] += partial[b + 1u]; c[2] += partial[b + 2u]; c[3] += partial[b + 3u];
  }
  if (f.first == 1u && c[0].x < st.z) {
    state[seg] = vec4<u32>(1u, 0u, 0u, 2u);
    return;
  }
  let pick = pickDigit(c, st.z);
  if (f.word == 0u) { st.x |= pick.x << f.shift; } else { st.y |= pick.x << f.shift; }
  st.z = pick.y;
  if (f.last == 1u) { st.w = 3u; }
  state[seg] = st;
}`;

/** Number of 4-bit digits of ~index that vary for indices below `n` (≥ 1). */
export function loDigits(n: number): number {
  const bits = Math.max(1, Math.ceil(Math.log2(Math.max(2, n))));
  return Math.min(8, Math.ceil(bits / 4));
}

/** The initial lo prefix for indices below `n`: the constant all-ones top bits of ~index. */
export function loInit(n: number): number {
  const d = loDigits(n);
  return d >= 8 ? 0 : (0xffffffff << (4 * d)) >>> 0;
}

/** One dispatch range of a radix pass: invocations `[base, base + count)` of the chunk grid. */
export interface RadixRange {
  base: number;
  count: number;
  source: RadixSource;
}

/**
 * Records radix passes over `state [segs]` (already initialised): `hiDigits` digits of hi from
 * the top, then `loDigitCount` digits of lo from its varying top. `ranges` gives the dispatches
 * of each pass (one per binding window of the source); `chunks` is the number of chunks per
 * segment and `chunk` their size (≤ the CPU loop budget). `partial` holds segs·chunks·16 u32.
 */
export function recordRadix(
  gpu: Gpu,
  state: Tensor,
  partial: Tensor,
  segs: number,
  chunk: number,
  chunks: number,
  ranges: RadixRange[],
  hiDigits: number,
  loDigitCount: number,
): void {
  const digits: { word: number; shift: number; maskHi: number; maskLo: number }[] = [];
  for (let d = 0; d < hiDigits; d++) {
    const shift = 28 - 4 * d;
    digits.push({
      word: 0,
      shift,
      maskHi: d === 0 ? 0 : (0xffffffff << (shift + 4)) >>> 0,
      maskLo: 0,
    });
  }
  for (let d = 8 - loDigitCount; d < 8; d++) {
    const shift = 28 - 4 * d;
    const maskLo = d === 0 ? 0 : (0xffffffff << (shift + 4)) >>> 0;
    digits.push({ word: 1, shift, maskHi: 0xffffffff, maskLo });
  }
  const finalize = gpu.pipeline("sparse_radix_finalize", FINALIZE_WGSL);
  digits.forEach((dg, p) => {
    for (const r of ranges) {
      const pipeline = gpu.pipeline(`sparse_radix_pass_${r.source.key}`, passWgsl(r.source));
      const q = packUniform(
        "uuuuuuuuuuuu",
        r.count,
        r.base,
        chunk,
        chunks,
        dg.shift,
        dg.maskHi,
        dg.maskLo,
        dg.word,
        ...r.source.params,
      );
      gpu.dispatch(
        pipeline,
        [gpu.uniform(q), state, partial, ...r.source.bindings],
        grid1d(gpu, Math.ceil(r.count / WG)),
      );
    }
    const f = packUniform(
      "uuuuuu",
      segs,
      chunks,
      dg.shift,
      dg.word,
      p === 0 ? 1 : 0,
      p === digits.length - 1 ? 1 : 0,
    );
    gpu.dispatch(finalize, [gpu.uniform(f), state, partial], grid1d(gpu, Math.ceil(segs / WG)));
  });
}
