/**
 * LayerNorm / RMSNorm over the last axis with TransformerLens's hook values (spec
 * transformer_lens.md §1.3): `scale = sqrt(mean(x_c²) + eps)` (x_c = x − mean for LN, x for
 * RMS); `normalized` = x_c/scale (then ·w + b for LN); the module output (RMS: normalized·w).
 * One workgroup per row, two-pass mean/variance. The scale can be written out (hook_scale) or
 * read in (a hook replaced it). The plain-TS reference is {@link normRef}.
 * @module
 */

import { Tensor } from "../../../gpu/tensor.ts";
import type { NormalizationType } from "../../config.ts";
import { ModelError } from "../../errors.ts";
import {
  grid1d,
  packUniform,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../../../gpu/kernel.ts";

/** What {@link norm} computes and returns. */
export interface NormOptions {
  /** Weight `[n]` (LN, RMS). */
  w?: Tensor | null;
  /** Bias `[n]` (LN). */
  b?: Tensor | null;
  /** Also return the scale `[..., 1]`. */
  wantScale?: boolean;
  /** Use this scale `[..., 1]` instead of computing it (a hook replaced hook_scale). */
  scaleIn?: Tensor;
  /** Skip RMS's weight: return hook_normalized (x/scale) as `out`. */
  skipWeight?: boolean;
}

/** Result of {@link norm}. */
export interface NormResult {
  /** The module output `[..., n]` (for RMS with `skipWeight`: x/scale). */
  out: Tensor;
  /** The scale `[..., 1]` when `wantScale` was set. */
  scale: Tensor | null;
}

/** WGSL of one variant; `vec`: rows are read as vec4 (n % 4 = 0: 4× fewer loads). */
function normWgsl(
  centered: boolean,
  affine: "none" | "w" | "wb",
  scaleMode: "none" | "out" | "in",
  vec: boolean,
  NWG: number,
) {
  const decl: string[] = [
    "@group(0) @binding(0) var<storage, read> X: array<V>;",
    "@group(0) @binding(1) var<storage, read_write> Y: array<V>;",
  ];
  let b = 2;
  if (affine !== "none") decl.push(`@group(0) @binding(${b++}) var<storage, read> Wt: array<V>;`);
  if (affine === "wb") decl.push(`@group(0) @binding(${b++}) var<storage, read> Bs: array<V>;`);
  if (scaleMode !== "none") {
    decl.push(
      `@group(0) @binding(${b++}) var<storage, ${
        scaleMode === "out" ? "read_write" : "read"
      }> S: array<f32>;`,
    );
  }
  decl.push(`@group(0) @binding(${b++}) var<uniform> u: U;`);
  const apply = affine === "wb" ? "v * Wt[j] + Bs[j]" : affine === "w" ? "v * Wt[j]" : "v";
  const computeScale = scaleMode === "in"
    ? `${centered ? "" : "let mean = 0.0;"}
  let scale = S[row];`
    : `
  var mean = 0.0;
  ${
      centered
        ? `var s = 0.0;
  for (var j = lid; j < nv; j += ${NWG}u) { s += hsum(X[o + j]); }
  mean = reduce(lid, s) / f32(u.n);`
        : ""
    }
  var ss = 0.0;
  for (var j = lid; j < nv; j += ${NWG}u) { let v = X[o + j] - V(mean); ss += hsum(v * v); }
  let scale = sqrt(reduce(lid, ss) / f32(u.n) + u.eps);
  ${scaleMode === "out" ? "if (lid == 0u) { S[row] = scale; }" : ""}`;
  const needMean = centered && scaleMode === "in";
  return /* wgsl */ `${WGSL_WG_INDEX}
alias V = ${vec ? "vec4<f32>" : "f32"};
fn hsum(v: V) -> f32 { return ${vec ? "v.x + v.y + v.z + v.w" : "v"}; }
struct U { rows: u32, n: u32, eps: f32, pad: u32 }
${decl.join("\n")}
var<workgroup> sh: array<f32, ${NWG}>;
${wgslWorkgroupReduce("reduce", NWG, "a + b")}
@compute @workgroup_size(${NWG})
fn main(${WGSL_MAIN_ARGS}) {
  let row = wgIndex(wid, nwg);
  if (row >= u.rows) { return; }
  let nv = u.n${vec ? " / 4u" : ""};
  let o = row * nv;
  ${
    needMean
      ? `var s0 = 0.0;
  for (var j = lid; j < nv; j += ${NWG}u) { s0 += hsum(X[o + j]); }
  let mean = reduce(lid, s0) / f32(u.n);`
      : ""
  }
  ${computeScale}
  for (var j = lid; j < nv; j += ${NWG}u) {
    let v = (X[o + j] - V(mean)) / scale;
    Y[o + j] = ${apply};
  }
}`;
}

/**
 * Runs one norm module of `kind` over the last axis of `x`. LN needs `w` and `b`, RMS needs `w`
 * (unless `skipWeight`), LNPre/RMSPre take neither. Records dispatches only.
 */
export function norm(
  x: Tensor,
  kind: NormalizationType,
  eps: number,
  opts: NormOptions = {},
): NormResult {
  const op = `norm(${kind})`;
  if (x.disposed || x.dtype !== "f32" || x.rank < 1) {
    throw new ModelError(`${op}: x ${x} must be a live f32 tensor of rank ≥ 1`);
  }
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const centered = kind === "LN" || kind === "LNPre";
  let affine: "none" | "w" | "wb" = "none";
  if (kind === "LN") affine = "wb";
  if (kind === "RMS" && !opts.skipWeight) affine = "w";
  if (affine !== "none" && !opts.w) throw new ModelError(`${op}: needs a weight [${n}]`);
  if (affine === "wb" && !opts.b) throw new ModelError(`${op}: needs a bias [${n}]`);
  for (const [t, name] of [[opts.w, "w"], [opts.b, "b"]] as const) {
    if (t && affine !== "none" && (t.size !== n || t.dtype !== "f32")) {
      throw new ModelError(`${op}: ${name} ${t} must be f32 [${n}]`);
    }
  }
  const gpu = x.gpu;
  const lead = x.shape.slice(0, -1);
  const scaleMode = opts.scaleIn ? "in" : opts.wantScale ? "out" : "none";
  if (opts.scaleIn && (opts.scaleIn.size !== rows || opts.scaleIn.dtype !== "f32")) {
    throw new ModelError(`${op}: scaleIn ${opts.scaleIn} must be f32 [${[...lead, 1]}]`);
  }
  const out = Tensor.empty(x.shape, "f32", { gpu });
  const scale = scaleMode === "out" ? Tensor.empty([...lead, 1], "f32", { gpu }) : null;
  const vec = n % 4 === 0;
  // Barriers dominate on llvmpipe: one SIMD group per row there, 64 lanes on GPUs.
  const wg = gpu.info.isFallbackAdapter ? 8 : 64;
  const key = `lm_norm_${centered}_${affine}_${scaleMode}_${vec}_${wg}`;
  const pipeline = gpu.pipeline(key, normWgsl(centered, affine, scaleMode, vec, wg));
  for (const s of spans(gpu, rows, n, { aligned: [n, 1], error: ModelError })) {
    const bind = [windowOf(x, s.start * n, s.count * n), windowOf(out, s.start * n, s.count * n)];
    if (affine !== "none") bind.push(opts.w!.binding());
    if (affine === "wb") bind.push(opts.b!.binding());
    const sc = opts.scaleIn ?? scale;
    if (sc) bind.push(windowOf(sc, s.start, s.count));
    gpu.dispatch(
      pipeline,
      [...bind, gpu.uniform(packUniform("uuf", s.count, n, eps))],
      grid1d(gpu, s.count),
    );
  }
  return { out, scale };
}

/**
 * Plain-TS reference of {@link norm} over `rows` rows of width `n`: returns the module output
 * and the scale per row (float64 internally).
 */
export function normRef(
  x: Float32Array,
  n: number,
  kind: NormalizationType,
  eps: number,
  w?: Float32Array,
  b?: Float32Array,
): { out: Float32Array; scale: Float32Array } {
  const rows = x.length / n;
  const out = new Float32Array(x.length), scale = new Float32Array(rows);
  const centered = kind === "LN" || kind === "LNPre";
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    if (centered) {
      for (let j = 0; j < n; j++) mean += x[r * n + j];
      mean /= n;
    }
    let ss = 0;
    for (let j = 0; j < n; j++) ss += (x[r * n + j] - mean) ** 2;
    const s = Math.sqrt(ss / n + eps);
    scale[r] = s;
    for (let j = 0; j < n; j++) {
      let v = (x[r * n + j] - mean) / s;
      if (kind === "LN") v = v * w![j] + b![j];
      if (kind === "RMS") v = v * w![j];
      out[r * n + j] = v;
    }
  }
  return { out, scale };
}
