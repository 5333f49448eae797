/**
 * Row layer norm and RMS norm with TransformerLens semantics: `x − mean`, divided by
 * `scale = √(mean((x − mean)²) + eps)` (biased variance), times the optional weight, plus the
 * optional bias; the RMS variant skips the centring (and has no bias in TransformerLens). The
 * per-row `scale` (TransformerLens `hook_scale`) can be written too. Two passes over the row for
 * the statistics, as TransformerLens computes them, then one to write.
 * @module
 */

import { GpuError } from "../device.ts";
import {
  asRows,
  checkAlias,
  checkTensor,
  CPU_LOOP_BUDGET,
  grid1d,
  packUniform,
  rowKernelVariant,
  sameStorage,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { resolveOut } from "./elementwise.ts";

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Per-feature weight `[n]` (TransformerLens `w`). */
  weight?: Tensor;
  /** Per-feature bias `[n]` (TransformerLens `b`). */
  bias?: Tensor;
  /** Added to the variance (default 1e-5, TransformerLens' default `cfg.eps`). */
  eps?: number;
  /** RMS norm: no mean subtraction. */
  rms?: boolean;
  /** Where to write y (x's shape); may be x itself. */
  out?: Tensor;
  /** Also return the per-row scale, shape `[..., 1]` (or write it into this tensor). */
  scale?: boolean | Tensor;
  /** Force one workgroup per row or one invocation per row (default by adapter and width). */
  variant?: "workgroup" | "thread";
}

/** Result of {@link layerNorm}: the normalised tensor and, when asked, the per-row scale. */
export interface LayerNormResult {
  /** The normalised tensor. */
  y: Tensor;
  /** Per-row scale when requested, else null. */
  scale: Tensor | null;
}

/** Options of {@link layerNormRef}. */
export interface LayerNormRefOptions {
  /** Per-column gain (default none). */
  weight?: Float32Array;
  /** Per-column bias (default none). */
  bias?: Float32Array;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** RMSNorm instead of LayerNorm (no mean subtraction). */
  rms?: boolean;
}

/**
 * Reference of {@link layerNorm} on a row-major `[m, n]` array (float64 statistics).
 *
 * @example
 * ```ts
 * import { layerNormRef } from "./layernorm.ts";
 * const { y, scale } = layerNormRef(new Float32Array([1, 3]), 1, 2, { eps: 0 });
 * if (y.join() !== "-1,1" || scale.join() !== "1") throw new Error(`y ${y}, scale ${scale}`);
 * ```
 */
export function layerNormRef(
  x: Float32Array,
  m: number,
  n: number,
  options: LayerNormRefOptions = {},
): { y: Float32Array; scale: Float32Array } {
  if (x.length !== m * n) {
    throw new GpuError(`layerNormRef: x has ${x.length} elements, not ${m}×${n}`);
  }
  const eps = options.eps ?? 1e-5;
  const { weight, bias } = options;
  const y = new Float32Array(m * n), scale = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let mean = 0;
    if (!options.rms) {
      for (let j = 0; j < n; j++) mean += x[i * n + j];
      mean /= n;
    }
    let ss = 0;
    for (let j = 0; j < n; j++) ss += (x[i * n + j] - mean) ** 2;
    const s = Math.sqrt(ss / n + eps);
    scale[i] = s;
    for (let j = 0; j < n; j++) {
      const v = ((x[i * n + j] - mean) / s) * (weight ? weight[j] : 1);
      y[i * n + j] = v + (bias ? bias[j] : 0);
    }
  }
  return { y, scale };
}

interface Flags {
  perThread: boolean;
  wg: number;
  inPlace: boolean;
  weight: boolean;
  bias: boolean;
  scale: boolean;
  rms: boolean;
}

function layerNormWgsl(f: Flags): string {
  const decls = [
    ...(f.inPlace ? [] : ["X: array<f32>"]),
    "Y: array<f32>",
    ...(f.weight ? ["W: array<f32>"] : []),
    ...(f.bias ? ["Bb: array<f32>"] : []),
    ...(f.scale ? ["S: array<f32>"] : []),
  ].map((d, i) => {
    const rw = d.startsWith("Y") || d.startsWith("S") ? "read_write" : "read";
    return `@group(0) @binding(${i}) var<storage, ${rw}> ${d};`;
  });
  decls.push(`@group(0) @binding(${decls.length}) var<uniform> u: U;`);
  const X = f.inPlace ? "Y" : "X";
  const [first, step] = f.perThread ? ["0u", "1u"] : ["lid", `${f.wg}u`];
  const loop = (body: string) => `for (var j = ${first}; j < u.n; j += ${step}) { ${body} }`;
  const sum = (v: string) => f.perThread ? "" : `${v} = wgSum(lid, ${v});`;
  const mean = f.rms ? "let mean = 0.0;" : `var total = 0.0;
  ${loop(`total += ${X}[base + j];`)}
  ${sum("total")}
  let mean = total / f32(u.n);`;
  const w = f.weight ? " * W[j]" : "";
  const b = f.bias ? " + Bb[j]" : "";
  const writeScale = f.scale
    ? (f.perThread
      ? "S[u.rowBase + row] = scale;"
      : "if (lid == 0u) { S[u.rowBase + row] = scale; }")
    : "";
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { m: u32, n: u32, eps: f32, rowBase: u32 }
${decls.join("\n")}
${
    f.perThread ? "" : `var<workgroup> sh: array<f32, ${f.wg}>;
${wgslWorkgroupReduce("wgSum", f.wg, "a + b")}`
  }
@compute @workgroup_size(${f.wg})
fn main(${WGSL_MAIN_ARGS}) {
  let row = ${f.perThread ? `wgIndex(wid, nwg) * ${f.wg}u + lid` : "wgIndex(wid, nwg)"};
  if (row >= u.m) { return; }
  let base = row * u.n;
  ${mean}
  var ss = 0.0;
  ${loop(`let d = ${X}[base + j] - mean; ss += d * d;`)}
  ${sum("ss")}
  let scale = sqrt(ss / f32(u.n) + u.eps);
  ${writeScale}
  ${loop(`Y[base + j] = ((${X}[base + j] - mean) / scale)${w}${b};`)}
}`;
}

function checkVector(t: Tensor | undefined, n: number, op: string, name: string): void {
  if (!t) return;
  checkTensor(t, op, name, { dtype: "f32" });
  if (t.size !== n) throw new GpuError(`${op}: ${name} has ${t.size} elements, expected ${n}`);
}

/**
 * Layer norm (or RMS norm) over the last dim of `x`.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { layerNorm } from "./layernorm.ts";
 * await getGpu();
 * using x = Tensor.from([1, 3], [1, 2]);
 * const { y, scale } = layerNorm(x, { eps: 0, scale: true });
 * const [r, s] = [await y.toArray(), await scale!.toArray()]; // [-1, 1], [1]
 * if (r[1] !== 1 || s[0] !== 1) throw new Error("unexpected");
 * y.dispose();
 * scale!.dispose();
 * ```
 */
export function layerNorm(x: Tensor, options: LayerNormOptions = {}): LayerNormResult {
  const name = options.rms ? "rmsNorm" : "layerNorm";
  checkTensor(x, name, "x", { dtype: "f32" });
  const [m, n] = asRows(x, name, "x");
  const gpu = x.gpu;
  const { weight, bias } = options;
  checkVector(weight, n, name, "weight");
  checkVector(bias, n, name, "bias");
  const y = resolveOut(gpu, options.out, x.shape, name);
  const readOnly = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  checkAlias(y, readOnly, name);
  if ((weight && sameStorage(y, weight)) || (bias && sameStorage(y, bias))) {
    throw new GpuError(`${name}: out must not be the weight or bias`);
  }
  let scale: Tensor | null = null;
  const scaleShape = [...x.shape.slice(0, -1), 1];
  if (options.scale instanceof Tensor) {
    scale = options.scale;
    checkTensor(scale, name, "scale", { dtype: "f32", shape: scaleShape });
    if ([y, ...readOnly].some((t) => t.buffer === scale!.buffer)) {
      throw new GpuError(`${name}: scale must not share a buffer with x, out, weight or bias`);
    }
  } else if (options.scale) {
    scale = Tensor.empty(scaleShape, "f32", { gpu });
  }
  const perThread = (options.variant ?? rowKernelVariant(gpu, n, 3)) === "thread";
  if (perThread && gpu.info.isFallbackAdapter && 3 * n > CPU_LOOP_BUDGET) {
    throw new GpuError(`${name}: rows of ${n} are too wide for one invocation per row here`);
  }
  const flags: Flags = {
    perThread,
    wg: perThread ? 64 : n >= 2048 ? 256 : 64,
    inPlace: sameStorage(y, x),
    weight: !!weight,
    bias: !!bias,
    scale: !!scale,
    rms: !!options.rms,
  };
  const key = "layernorm_" +
    Object.entries(flags).map(([k, v]) => typeof v === "number" ? `${v}` : v ? k : "").join("_");
  const pipeline = gpu.pipeline(key, layerNormWgsl(flags));
  const eps = options.eps ?? 1e-5;
  for (const w of spans(gpu, m, n)) {
    const bindings = [windowOf(y, w.start * n, w.count * n)];
    if (!flags.inPlace) bindings.unshift(windowOf(x, w.start * n, w.count * n));
    for (const t of [weight, bias, scale]) if (t) bindings.push(t.binding());
    const uni = gpu.uniform(packUniform("uufu", w.count, n, eps, w.start));
    const groups = perThread ? Math.ceil(w.count / flags.wg) : w.count;
    gpu.dispatch(pipeline, [...bindings, uni], grid1d(gpu, groups));
  }
  return { y, scale };
}

/** RMS norm: `layerNorm(x, { ...options, rms: true })` (no centring, weight only). */
export function rmsNorm(
  x: Tensor,
  options: Omit<LayerNormOptions, "rms" | "bias"> = {},
): LayerNormResult {
  return layerNorm(x, { ...options, rms: true });
}
