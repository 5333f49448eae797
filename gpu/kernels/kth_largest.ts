/**
 * BatchTopK on the GPU: `kthLargest` finds the K-th largest entry of a whole tensor (K up to
 * millions) without sorting and without leaving the GPU; `batchTopKMask` keeps exactly the K
 * entries ranking at or above it; `topkRows(x, kMax, { threshold })` (in `topk.ts`) turns the
 * same selection into per-row sparse lists. Order as in `topk_ref.ts` (value descending, ties by
 * lower flat index, NaN lowest), so exactly K entries are kept even with ties, as
 * `torch.topk` over the flattened batch does.
 *
 * Steps: maxima of strided groups of s entries → a lower bound L (4 radix passes over the
 * maxima) → the groups whose maximum is ≥ L → their entries ≥ L as candidates → the exact K-th
 * candidate by radix select on (key, ~index). When the group or candidate lists overflow (heavy
 * ties), the radix select runs over the whole tensor instead (slow, exact).
 * @module
 */

import { type Gpu, GpuError } from "../device.ts";
import {
  checkInt,
  checkTensor,
  grid1d,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  windowOf,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { loDigits, loInit, recordRadix, WG, WGSL_ORDER_KEY } from "./_radix.ts";

export { batchTopKMaskRef, kthLargestRef } from "./topk_ref.ts";

const U = /* wgsl */ `
struct U { a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32 }
@group(0) @binding(0) var<uniform> u: U;
`;

/** Group maxima of one window: a = window length, b = groups in it, c = group offset. */
const GROUP_MAX = /* wgsl */ `${WGSL_WG_INDEX}${U}${WGSL_ORDER_KEY}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> GM: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let g = wgIndex(wid, nwg) * ${WG}u + lid;
  if (g >= u.b) { return; }
  var m = 0u;
  for (var i = g; i < u.a; i += u.b) { m = max(m, orderKey(X[i])); }
  GM[u.c + g] = m;
}`;

/** Writes `S[0] = (a, b, c, d)`. */
const INIT = /* wgsl */ `${U}
@group(0) @binding(1) var<storage, read_write> S: array<vec4<u32>>;
@compute @workgroup_size(1)
fn main() { S[0] = vec4<u32>(u.a, u.b, u.c, u.d); }`;

/** Groups whose maximum is ≥ L (from the bound state) → ACT (atomic count in C[0]). a = G, b = capA. */
const ACTIVE = /* wgsl */ `${WGSL_WG_INDEX}${U}
@group(0) @binding(1) var<storage, read> GM: array<u32>;
@group(0) @binding(2) var<storage, read> SB: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> C: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> ACT: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let g = wgIndex(wid, nwg) * ${WG}u + lid;
  if (g >= u.a) { return; }
  if (GM[g] >= max(SB[0].x, 1u)) {
    let s = atomicAdd(&C[0], 1u);
    if (s < u.b) { ACT[s] = g; }
  }
}`;

/**
 * Entries ≥ L of the active groups in one window → CAND (count in C[1]). a = window length,
 * b = groups in the window, c = its group offset, d = capA, e = capC, f = window start.
 */
const COLLECT = /* wgsl */ `${WGSL_WG_INDEX}${U}${WGSL_ORDER_KEY}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> SB: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> ACT: array<u32>;
@group(0) @binding(4) var<storage, read_write> C: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> CAND: array<vec2<u32>>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let t = wgIndex(wid, nwg) * ${WG}u + lid;
  if (t >= min(atomicLoad(&C[0]), u.d)) { return; }
  let g = ACT[t];
  if (g < u.c || g >= u.c + u.b) { return; }
  let L = max(SB[0].x, 1u);
  for (var i = g - u.c; i < u.a; i += u.b) {
    let key = orderKey(X[i]);
    if (key >= L) {
      let s = atomicAdd(&C[1], 1u);
      if (s < u.e) { CAND[s] = vec2<u32>(key, u.f + i); }
    }
  }
}`;

/** Starts exactly one radix select: on the candidates (SC) or, on overflow, the whole tensor (SF). */
const DECIDE = /* wgsl */ `${U}
@group(0) @binding(1) var<storage, read> C: array<u32>;
@group(0) @binding(2) var<storage, read_write> SC: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> SF: array<vec4<u32>>;
@compute @workgroup_size(1)
fn main() {
  let ok = C[0] <= u.a && C[1] <= u.b;
  let run = vec4<u32>(0u, u.c, u.d, 1u);
  SC[0] = select(vec4<u32>(0u), run, ok);
  SF[0] = select(run, vec4<u32>(0u), ok);
}`;

/** OUT = (key, index, value bits, 0) of the finished select; value read in its window. */
const RESULT = /* wgsl */ `${U}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> SC: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> SF: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> OUT: array<u32>;
@compute @workgroup_size(1)
fn main() {
  let st = select(SF[0], SC[0], SC[0].w >= 2u);
  let index = ~st.y;
  OUT[0] = st.x;
  OUT[1] = index;
  if (index >= u.a && index - u.a < u.b) { OUT[2] = bitcast<u32>(X[index - u.a]); }
}`;

/** Radix chunk of the candidate and whole-tensor selects (under llvmpipe's loop budget). */
const CHUNK = 16384;

/** Options of {@link kthLargest}. */
export interface KthOptions {
  /** Where to write the u32 `[4]` result. */
  out?: Tensor;
  /** Testing: at most this many elements per window (rounded to a multiple of 16384). */
  windowElems?: number;
  /** Testing: group size s (default ≈ √(8·M/K), keeping at least 2K groups). */
  groupSize?: number;
  /** Testing: candidate capacity (small values force the whole-tensor fallback). */
  capacity?: number;
}

/** A uniform of eight u32 (missing values 0). */
function uniform8(gpu: Gpu, values: number[]): GPUBuffer {
  const a = new Uint32Array(8);
  a.set(values.map((v) => v >>> 0));
  return gpu.uniform(a);
}

function windowsOf(gpu: Gpu, m: number, maxElems?: number) {
  const natural = spans(gpu, Math.ceil(m / CHUNK), CHUNK).map((s) => ({
    start: s.start * CHUNK,
    count: Math.min(s.count * CHUNK, m - s.start * CHUNK),
  }));
  if (!maxElems || natural.every((w) => w.count <= maxElems)) return natural;
  const per = Math.max(CHUNK, Math.floor(maxElems / CHUNK) * CHUNK);
  const out = [];
  for (let start = 0; start < m; start += per) out.push({ start, count: Math.min(per, m - start) });
  return out;
}

/**
 * The K-th largest entry of `x` (any shape, f32, seen flat; 1 ≤ K ≤ size < 2³²) as a u32 `[4]`
 * tensor: `[orderKey, flat index, f32 bits of the value, 0]` (decode on the host with
 * {@link decodeKth}). Exactly K entries rank at or above it. Records dispatches only.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { decodeKth, kthLargest } from "./kth_largest.ts";
 * await getGpu();
 * using x = Tensor.from([1, 5, 3, 5], [2, 2]);
 * using kth = kthLargest(x, 2);
 * const { value, index } = decodeKth(await kth.toArray());
 * if (value !== 5 || index !== 3) throw new Error("unexpected");
 * ```
 */
export function kthLargest(x: Tensor, K: number, options: KthOptions = {}): Tensor<"u32"> {
  const op = "kthLargest";
  checkTensor(x, op, "x", { dtype: "f32" });
  const m = x.size;
  checkInt(m, 1, 0xfffffffe, op, "x.size");
  checkInt(K, 1, m, op, "K");
  const gpu = x.gpu;
  const out = (options.out ?? Tensor.empty([4], "u32", { gpu })) as Tensor<"u32">;
  checkTensor(out, op, "out", { dtype: "u32" });
  const s = options.groupSize ??
    Math.max(1, Math.min(2048, Math.round(Math.sqrt((8 * m) / K)), Math.floor(m / (2 * K))));
  const windows = windowsOf(gpu, m, options.windowElems);
  const groups = windows.map((w) => Math.ceil(w.count / s));
  const gTotal = groups.reduce((a, b) => a + b, 0);
  const capA = Math.min(gTotal, 2 * K + 4096);
  const capC = Math.min(m, options.capacity ?? Math.floor(1.5 * K) + 4096);
  const chunksC = Math.ceil(capC / CHUNK);
  const chunksB = Math.ceil(gTotal / CHUNK);
  const chunksF = Math.ceil(m / CHUNK);
  const gm = Tensor.empty([gTotal], "u32", { gpu });
  const act = Tensor.empty([capA], "u32", { gpu });
  const cand = Tensor.empty([capC, 2], "u32", { gpu });
  const counts = Tensor.zeros([4], "u32", { gpu });
  const states = [0, 1, 2].map(() => Tensor.empty([4], "u32", { gpu }));
  const [sb, sc, sf] = states;
  const partial = Tensor.empty([16 * Math.max(chunksC, chunksB, chunksF)], "u32", { gpu });
  const uni = (...v: number[]) => uniform8(gpu, v);
  const pipe = (name: string, code: string) => gpu.pipeline(`kth_${name}`, code);
  const init = (state: Tensor, ...v: number[]) =>
    gpu.dispatch(pipe("init", INIT), [uni(...v), state], [1]);

  let gOff = 0;
  windows.forEach((w, i) => {
    gpu.dispatch(
      pipe("groupmax", GROUP_MAX),
      [uni(w.count, groups[i], gOff), windowOf(x, w.start, w.count), gm],
      grid1d(gpu, Math.ceil(groups[i] / WG)),
    );
    gOff += groups[i];
  });
  init(sb, 0, 0, K, 1);
  const gmSource = {
    key: "kth_gm",
    decl: `@group(0) @binding(3) var<storage, read> GM: array<u32>;
fn srcLen(seg: u32) -> u32 { return q.s0; }
fn srcElem(seg: u32, i: u32) -> vec2<u32> { return vec2<u32>(GM[i], 0u); }`,
    bindings: [gm],
    params: [gTotal, 0, 0, 0] as [number, number, number, number],
  };
  recordRadix(
    gpu,
    sb,
    partial,
    1,
    CHUNK,
    chunksB,
    [{ base: 0, count: chunksB, source: gmSource }],
    4,
    0,
  );
  gpu.dispatch(
    pipe("active", ACTIVE),
    [uni(gTotal, capA), gm, sb, counts, act],
    grid1d(gpu, Math.ceil(gTotal / WG)),
  );
  gOff = 0;
  windows.forEach((w, i) => {
    gpu.dispatch(
      pipe("collect", COLLECT),
      [
        uni(w.count, groups[i], gOff, capA, capC, w.start),
        windowOf(x, w.start, w.count),
        sb,
        act,
        counts,
        cand,
      ],
      grid1d(gpu, Math.ceil(capA / WG)),
    );
    gOff += groups[i];
  });
  gpu.dispatch(pipe("decide", DECIDE), [uni(capA, capC, loInit(m), K), counts, sc, sf], [1]);
  const candSource = {
    key: "kth_cand",
    decl: `@group(0) @binding(3) var<storage, read> CAND: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> C: array<u32>;
fn srcLen(seg: u32) -> u32 { return min(C[1], q.s0); }
fn srcElem(seg: u32, i: u32) -> vec2<u32> { let c = CAND[i]; return vec2<u32>(c.x, ~c.y); }`,
    bindings: [cand, counts],
    params: [capC, 0, 0, 0] as [number, number, number, number],
  };
  recordRadix(
    gpu,
    sc,
    partial,
    1,
    CHUNK,
    chunksC,
    [{ base: 0, count: chunksC, source: candSource }],
    8,
    loDigits(m),
  );
  const fullRanges = windows.map((w) => ({
    base: w.start / CHUNK,
    count: Math.ceil(w.count / CHUNK),
    source: {
      key: "kth_full",
      decl: `@group(0) @binding(3) var<storage, read> X: array<f32>;
${WGSL_ORDER_KEY}
fn srcLen(seg: u32) -> u32 { return q.s0; }
fn srcElem(seg: u32, i: u32) -> vec2<u32> { return vec2<u32>(orderKey(X[i - q.s1]), ~i); }`,
      bindings: [windowOf(x, w.start, w.count)],
      params: [m, w.start, 0, 0] as [number, number, number, number],
    },
  }));
  recordRadix(gpu, sf, partial, 1, CHUNK, chunksF, fullRanges, 8, loDigits(m));
  for (const w of windows) {
    gpu.dispatch(pipe("result", RESULT), [
      uni(w.start, w.count),
      windowOf(x, w.start, w.count),
      sc,
      sf,
      out,
    ], [1]);
  }
  for (const t of [gm, act, cand, counts, partial, ...states]) t.dispose();
  return out;
}

/** Decodes the `[4]` result of {@link kthLargest} read back to the host. */
export function decodeKth(data: Uint32Array): { key: number; index: number; value: number } {
  return {
    key: data[0],
    index: data[1],
    value: new Float32Array(data.buffer, data.byteOffset + 8, 1)[0],
  };
}

/**
 * Keeps entries ranking at or above T: a = window length, b = window start, c = relu, d = number
 * of invocations (each handles entries t, t + d, …: llvmpipe pays per invocation).
 */
const MASK = /* wgsl */ `${WGSL_WG_INDEX}${U}${WGSL_ORDER_KEY}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> T: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let t = wgIndex(wid, nwg) * ${WG}u + lid;
  if (t >= u.d) { return; }
  let th = T[0];
  let ti = T[1];
  for (var i = t; i < u.a; i += u.d) {
    let v = X[i];
    let key = orderKey(v);
    let keep = key > th || (key == th && u.b + i <= ti);
    Y[i] = select(0.0, select(v, select(0.0, v, v > 0.0), u.c == 1u), keep);
  }
}`;

/** Entries per invocation of the mask kernel. */
const MASK_PER_INVOCATION = 16;

/** Options of {@link batchTopKMask}. */
export interface BatchTopKMaskOptions {
  /** Replace kept negatives (and NaN) by 0 after selection. */
  relu?: boolean;
  /** Where to write (f32, same shape as `x`, not `x` itself). */
  out?: Tensor;
}

/**
 * `x` with every entry ranking below the K-th entry `kth` (from {@link kthLargest} on the same
 * tensor) set to 0: exactly K entries are kept. Records dispatches only.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { batchTopKMask, kthLargest } from "./kth_largest.ts";
 * await getGpu();
 * using x = Tensor.from([2, -1, 2, 0.5]);
 * using kth = kthLargest(x, 2);
 * using y = batchTopKMask(x, kth);
 * const r = await y.toArray(); // [2, 0, 2, 0]
 * if (r[2] !== 2 || r[3] !== 0) throw new Error("unexpected");
 * ```
 */
export function batchTopKMask(x: Tensor, kth: Tensor, options: BatchTopKMaskOptions = {}): Tensor {
  const op = "batchTopKMask";
  checkTensor(x, op, "x", { dtype: "f32" });
  checkTensor(kth, op, "kth", { dtype: "u32" });
  checkInt(kth.size, 4, 4, op, "kth.size");
  const gpu = x.gpu;
  const out = options.out ?? Tensor.empty(x.shape, "f32", { gpu });
  checkTensor(out, op, "out", { dtype: "f32" });
  checkInt(out.size, x.size, x.size, op, "out.size");
  if (out.buffer === x.buffer) throw new GpuError(`${op}: out must not share x's buffer`);
  const pipeline = gpu.pipeline("kth_mask", MASK);
  for (const w of spans(gpu, x.size, 1)) {
    const lanes = Math.ceil(w.count / MASK_PER_INVOCATION);
    gpu.dispatch(pipeline, [
      uniform8(gpu, [w.count, w.start, options.relu ? 1 : 0, lanes]),
      windowOf(x, w.start, w.count),
      kth,
      windowOf(out, w.start, w.count),
    ], grid1d(gpu, Math.ceil(lanes / WG)));
  }
  return out;
}
