/**
 * Attention kernels with TransformerLens semantics (spec transformer_lens.md §1.2 step 4, §4):
 * scores = q·kᵀ / scale → soft cap → causal / sliding-window mask (−∞) ({@link attnScores});
 * softmax over keys with all-masked rows → 0 ({@link softmaxMasked}); z = pattern·v
 * ({@link attnZ}); and {@link attnFused}, the same three in one kernel with an online softmax,
 * used when neither hook_attn_scores nor hook_pattern is requested (no `[B,H,P,P]` buffers).
 * GQA: query head h reads key/value head ⌊h / (H/Hkv)⌋. Layouts: q `[B,P,H,d]`,
 * k/v `[B,P,Hkv,d]`, scores/pattern `[B,H,P,P]`, z `[B,P,H,d]`. References in
 * `attention_ref.ts`.
 * @module
 */

import { Tensor } from "../../../gpu/tensor.ts";
import { ModelError } from "../../errors.ts";
import {
  checkBindable,
  checkTensor,
  dispatch1d,
  packUniform,
  WGSL_MAIN_ARGS,
  WGSL_NEG_INF,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";
import { WGSL_ACT_FNS } from "./activation_wgsl.ts";

/** Shape and masking parameters of one attention layer. */
export interface AttnDims {
  /** Batch size. */
  B: number;
  /** Positions (queries = keys). */
  P: number;
  /** Query heads. */
  H: number;
  /** Key/value heads (divides H). */
  Hkv: number;
  /** Head width. */
  d: number;
  /** Score divisor (1 when the model does not scale). */
  scale: number;
  /** Soft cap c > 0 (c·tanh(s/c)), else ≤ 0. */
  softcap: number;
  /** Sliding window (key j visible to query i when 0 ≤ i − j < window), or null for global. */
  window: number | null;
}

function uniformOf(a: AttnDims): Uint32Array {
  return packUniform(
    "uuuuuffuuuuu",
    a.B,
    a.P,
    a.H,
    a.Hkv,
    a.d,
    a.scale,
    a.softcap,
    a.window ?? 0,
    0,
    0,
    0,
    0,
  );
}

const U_STRUCT = `struct U { B: u32, P: u32, H: u32, Hkv: u32, d: u32, scale: f32, cap: f32,
  window: u32, extra: u32, p0: u32, p1: u32, p2: u32 }`;

function checkQkv(a: AttnDims, q: Tensor, k: Tensor, v: Tensor | null, op: string) {
  if (a.H % a.Hkv !== 0) throw new ModelError(`${op}: H ${a.H} not divisible by Hkv ${a.Hkv}`);
  checkTensor(q, op, "q", { dtype: "f32", shape: [a.B, a.P, a.H, a.d] }, ModelError);
  checkTensor(k, op, "k", { dtype: "f32", shape: [a.B, a.P, a.Hkv, a.d] }, ModelError);
  if (v) checkTensor(v, op, "v", { dtype: "f32", shape: [a.B, a.P, a.Hkv, a.d] }, ModelError);
}

const SCORES_WGSL = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ACT_FNS}
${U_STRUCT}
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.B * u.H * u.P * u.P) { return; }
  let j = i % u.P;
  let qi = (i / u.P) % u.P;
  let h = (i / (u.P * u.P)) % u.H;
  let b = i / (u.P * u.P * u.H);
  if (j > qi || (u.window > 0u && qi - j >= u.window)) { S[i] = ${WGSL_NEG_INF}; return; }
  let hk = h / (u.H / u.Hkv);
  let qo = ((b * u.P + qi) * u.H + h) * u.d;
  let ko = ((b * u.P + j) * u.Hkv + hk) * u.d;
  var dot = 0.0;
  for (var c = 0u; c < u.d; c++) { dot = fma(Q[qo + c], K[ko + c], dot); }
  var s = dot / u.scale;
  if (u.cap > 0.0) { s = u.cap * tanh_(s / u.cap); }
  S[i] = s;
}`;

/** Masked, scaled, soft-capped scores `[B,H,P,P]` (hook_attn_scores). */
export function attnScores(q: Tensor, k: Tensor, a: AttnDims): Tensor {
  checkQkv(a, q, k, null, "attnScores");
  const gpu = q.gpu;
  const out = Tensor.empty([a.B, a.H, a.P, a.P], "f32", { gpu });
  checkBindable(gpu, out, "attnScores", "scores", ModelError);
  const pipeline = gpu.pipeline("lm_attn_scores", SCORES_WGSL);
  dispatch1d(gpu, pipeline, [q, k, out, gpu.uniform(uniformOf(a))], out.size);
  return out;
}

const SOFTMAX_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { rows: u32, n: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> S: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
fn masked(x: f32) -> bool { return bitcast<u32>(x) == 0xff800000u; }
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let r = wgIndex(wid, nwg) * 64u + lid;
  if (r >= u.rows) { return; }
  let o = r * u.n;
  var m = 0.0;
  var any = false;
  for (var j = 0u; j < u.n; j++) {
    let x = S[o + j];
    if (!masked(x)) { if (!any || x > m) { m = x; } any = true; }
  }
  var sum = 0.0;
  for (var j = 0u; j < u.n; j++) {
    let x = S[o + j];
    if (!masked(x)) { sum += exp(x - m); }
  }
  for (var j = 0u; j < u.n; j++) {
    let x = S[o + j];
    Y[o + j] = select(exp(x - m) / sum, 0.0, masked(x) || !any);
  }
}`;

/** Softmax over the last axis; −∞ entries get 0 and an all-masked row is all zeros. */
export function softmaxMasked(scores: Tensor): Tensor {
  if (scores.disposed || scores.dtype !== "f32" || scores.rank < 1) {
    throw new ModelError(`softmaxMasked: scores ${scores} must be a live f32 tensor`);
  }
  const gpu = scores.gpu;
  checkBindable(gpu, scores, "softmaxMasked", "scores", ModelError);
  const n = scores.shape[scores.rank - 1];
  const out = Tensor.empty(scores.shape, "f32", { gpu });
  const pipeline = gpu.pipeline("lm_softmax_masked", SOFTMAX_WGSL);
  const rows = scores.size / n;
  dispatch1d(gpu, pipeline, [scores, out, gpu.uniform([rows, n, 0, 0])], rows);
  return out;
}

const Z_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
${U_STRUCT}
@group(0) @binding(0) var<storage, read> Pt: array<f32>;
@group(0) @binding(1) var<storage, read> V: array<f32>;
@group(0) @binding(2) var<storage, read_write> Z: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.B * u.P * u.H * u.d) { return; }
  let c = i % u.d;
  let h = (i / u.d) % u.H;
  let qi = (i / (u.d * u.H)) % u.P;
  let b = i / (u.d * u.H * u.P);
  let hk = h / (u.H / u.Hkv);
  let po = ((b * u.H + h) * u.P + qi) * u.P;
  var acc = 0.0;
  for (var j = 0u; j < u.P; j++) {
    let w = Pt[po + j];
    if (w != 0.0) { acc = fma(w, V[((b * u.P + j) * u.Hkv + hk) * u.d + c], acc); }
  }
  Z[i] = acc;
}`;

/** z `[B,P,H,d]` = pattern `[B,H,P,P]` · v (every key, so hook edits of the pattern count). */
export function attnZ(pattern: Tensor, v: Tensor, a: AttnDims): Tensor {
  checkTensor(
    pattern,
    "attnZ",
    "pattern",
    { dtype: "f32", shape: [a.B, a.H, a.P, a.P] },
    ModelError,
  );
  checkTensor(v, "attnZ", "v", { dtype: "f32", shape: [a.B, a.P, a.Hkv, a.d] }, ModelError);
  const gpu = v.gpu;
  const out = Tensor.empty([a.B, a.P, a.H, a.d], "f32", { gpu });
  const pipeline = gpu.pipeline("lm_attn_z", Z_WGSL);
  dispatch1d(gpu, pipeline, [pattern, v, out, gpu.uniform(uniformOf(a))], out.size);
  return out;
}

/**
 * The fused kernel: one invocation per QB consecutive queries of one (batch, head), so every
 * key/value row loaded from storage serves QB queries (storage loads dominate on llvmpipe).
 * Online softmax per query, started at its first visible key (no infinities in the arithmetic).
 */
function fusedWgsl(d: number, qb: number): string {
  const v4 = d % 4 === 0;
  const n = v4 ? d / 4 : d;
  const T = v4 ? "vec4<f32>" : "f32";
  const dot = (a: string, b: string) => (v4 ? `dot(${a}, ${b})` : `${a} * ${b}`);
  const R = Array.from({ length: qb }, (_, r) => r);
  const per = (f: (r: number) => string) => R.map(f).join("\n    ");
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ACT_FNS}
${U_STRUCT}
@group(0) @binding(0) var<storage, read> Q: array<${T}>;
@group(0) @binding(1) var<storage, read> K: array<${T}>;
@group(0) @binding(2) var<storage, read> V: array<${T}>;
@group(0) @binding(3) var<storage, read_write> Z: array<${T}>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let nb = (u.P + ${qb - 1}u) / ${qb}u;
  let t = wgIndex(wid, nwg) * 64u + lid;
  if (t >= u.B * u.H * nb) { return; }
  let ib = t % nb;
  let h = (t / nb) % u.H;
  let b = t / (nb * u.H);
  let hk = h / (u.H / u.Hkv);
  let i0 = ib * ${qb}u;
  var qv = array<${T}, ${qb * n}>();
  var acc = array<${T}, ${qb * n}>();
  var m = array<f32, ${qb}>();
  var l = array<f32, ${qb}>();
  for (var r = 0u; r < ${qb}u; r++) {
    let qo = ((b * u.P + min(i0 + r, u.P - 1u)) * u.H + h) * ${n}u;
    for (var c = 0u; c < ${n}u; c++) { qv[r * ${n}u + c] = Q[qo + c]; acc[r * ${n}u + c] = ${T}(0.0); }
    m[r] = 0.0;
    l[r] = 0.0;
  }
  var j0 = 0u;
  if (u.window > 0u && i0 + 1u > u.window) { j0 = i0 + 1u - u.window; }
  let jEnd = min(i0 + ${qb - 1}u, u.P - 1u);
  for (var j = j0; j <= jEnd; j++) {
    let ko = ((b * u.P + j) * u.Hkv + hk) * ${n}u;
    ${per((r) => `var s${r} = 0.0;`)}
    for (var c = 0u; c < ${n}u; c++) {
      let kv = K[ko + c];
      ${per((r) => `s${r} += ${dot(`qv[${r * n}u + c]`, "kv")};`)}
    }
    ${
    per((r) =>
      `var p${r} = 0.0;
    {
      let i = i0 + ${r}u;
      if (j <= i && i < u.P && (u.window == 0u || i - j < u.window)) {
        var s = s${r} / u.scale;
        if (u.cap > 0.0) { s = u.cap * tanh_(s / u.cap); }
        if (l[${r}] == 0.0) {
          m[${r}] = s;
        } else if (s > m[${r}]) {
          let corr = exp(m[${r}] - s);
          l[${r}] = l[${r}] * corr;
          for (var c = 0u; c < ${n}u; c++) { acc[${r * n}u + c] = acc[${r * n}u + c] * corr; }
          m[${r}] = s;
        }
        p${r} = exp(s - m[${r}]);
        l[${r}] += p${r};
      }
    }`
    )
  }
    for (var c = 0u; c < ${n}u; c++) {
      let vv = V[ko + c];
      ${per((r) => `acc[${r * n}u + c] = fma(${T}(p${r}), vv, acc[${r * n}u + c]);`)}
    }
  }
  for (var r = 0u; r < ${qb}u; r++) {
    let i = i0 + r;
    if (i < u.P) {
      let zo = ((b * u.P + i) * u.H + h) * ${n}u;
      for (var c = 0u; c < ${n}u; c++) { Z[zo + c] = acc[r * ${n}u + c] / l[r]; }
    }
  }
}`;
}

let fusedQueriesOverride: number | null = null;

/** Forces the queries per invocation of {@link attnFused} (benchmarks); null: per adapter. */
export function setFusedQueryBlock(qb: number | null): void {
  if (qb !== null && !(Number.isInteger(qb) && qb >= 1 && qb <= 16)) {
    throw new ModelError(`setFusedQueryBlock: ${qb} is not an integer in 1..16`);
  }
  fusedQueriesOverride = qb;
}

/** z `[B,P,H,d]` from q, k, v in one kernel (scores and pattern never stored). */
export function attnFused(q: Tensor, k: Tensor, v: Tensor, a: AttnDims): Tensor {
  checkQkv(a, q, k, v, "attnFused");
  const gpu = q.gpu;
  const out = Tensor.empty([a.B, a.P, a.H, a.d], "f32", { gpu });
  // llvmpipe: reuse each loaded key/value row for several queries; GPUs: more parallelism.
  const qb = fusedQueriesOverride ?? (gpu.info.isFallbackAdapter ? 4 : 1);
  const pipeline = gpu.pipeline(`lm_attn_fused_${a.d}_${qb}`, fusedWgsl(a.d, qb));
  const blocks = Math.ceil(a.P / qb);
  dispatch1d(gpu, pipeline, [q, k, v, out, gpu.uniform(uniformOf(a))], a.B * a.H * blocks);
  return out;
}
