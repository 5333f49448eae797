/**
 * Numerically stable row softmax (and log-softmax) of `scale · x + mask` over the last dim.
 * One workgroup per row with tree reductions, or one invocation per row on CPU adapters (where
 * barriers are expensive). The optional additive mask has `r` rows and row `i` of `x` uses mask
 * row `i mod r`: `[n]` broadcasts to all rows, `[m, n]` is per row, `[s, s]` repeats over a batch
 * of `s×s` attention blocks.
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
  WGSL_NEG_INF,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../kernel.ts";
import type { Tensor } from "../tensor.ts";
import { resolveOut } from "./elementwise.ts";

/** Options of {@link softmax} and {@link softmaxRef}. */
export interface SoftmaxOptions {
  /** Multiplies x before the mask is added (default 1). */
  scale?: number;
  /** Additive mask `[r, n]` (or `[n]`); row i of x uses mask row i mod r. */
  mask?: Tensor;
  /** Log-softmax instead: `s − max − log Σ exp(s − max)`. */
  log?: boolean;
  /** Where to write (x's shape); may be x itself. */
  out?: Tensor;
  /** Force one workgroup per row or one invocation per row (default by adapter and width). */
  variant?: "workgroup" | "thread";
}

/**
 * Reference of {@link softmax} on a row-major `[m, n]` array, in float64.
 *
 * @example
 * ```ts
 * import { softmaxRef } from "./softmax.ts";
 * const p = softmaxRef(new Float32Array([0, Math.log(3)]), 1, 2);
 * if (Math.abs(p[0] - 0.25) > 1e-6 || Math.abs(p[1] - 0.75) > 1e-6) throw new Error(`${p}`);
 * ```
 */
export function softmaxRef(
  x: Float32Array,
  m: number,
  n: number,
  options: { scale?: number; mask?: Float32Array; log?: boolean } = {},
): Float32Array {
  if (x.length !== m * n) {
    throw new GpuError(`softmaxRef: x has ${x.length} elements, not ${m}×${n}`);
  }
  const scale = options.scale ?? 1;
  const mask = options.mask;
  if (mask && (mask.length === 0 || mask.length % n !== 0)) {
    throw new GpuError(`softmaxRef: mask has ${mask.length} elements, not a multiple of ${n}`);
  }
  const maskRows = mask ? mask.length / n : 1;
  const out = new Float32Array(m * n);
  const s = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) {
      s[j] = x[i * n + j] * scale + (mask ? mask[(i % maskRows) * n + j] : 0);
      mx = Math.max(mx, s[j]);
    }
    let sum = 0;
    for (let j = 0; j < n; j++) sum += Math.exp(s[j] - mx);
    for (let j = 0; j < n; j++) {
      out[i * n + j] = options.log ? s[j] - mx - Math.log(sum) : Math.exp(s[j] - mx) / sum;
    }
  }
  return out;
}

function softmaxWgsl(opts: {
  perThread: boolean;
  wg: number;
  mask: boolean;
  inPlace: boolean;
  log: boolean;
}): string {
  const { perThread, wg, mask, inPlace, log } = opts;
  const decls = [
    inPlace ? "var<storage, read_write> Y: array<f32>;" : "var<storage, read> X: array<f32>;",
    ...(inPlace ? [] : ["var<storage, read_write> Y: array<f32>;"]),
    ...(mask ? ["var<storage, read> M: array<f32>;"] : []),
    "var<uniform> u: U;",
  ].map((d, i) => `@group(0) @binding(${i}) ${d}`).join("\n");
  const X = inPlace ? "Y" : "X";
  const maskTerm = mask ? " + M[mrow + j]" : "";
  const [first, step] = perThread ? ["0u", "1u"] : ["lid", `${wg}u`];
  const loop = (body: string) => `for (var j = ${first}; j < u.n; j += ${step}) { ${body} }`;
  const reduceMax = perThread ? "" : "mx = wgMax(lid, mx);";
  const reduceSum = perThread ? "" : "sum = wgSum(lid, sum);";
  const write = log ? "s - mx - lsum" : "exp(s - mx) * inv";
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { m: u32, n: u32, scale: f32, rowBase: u32, maskRows: u32 }
${decls}
${
    perThread ? "" : `var<workgroup> sh: array<f32, ${wg}>;
${wgslWorkgroupReduce("wgMax", wg, "max(a, b)")}
${wgslWorkgroupReduce("wgSum", wg, "a + b")}`
  }
@compute @workgroup_size(${wg})
fn main(${WGSL_MAIN_ARGS}) {
  let row = ${perThread ? `wgIndex(wid, nwg) * ${wg}u + lid` : "wgIndex(wid, nwg)"};
  if (row >= u.m) { return; }
  let base = row * u.n;
  let mrow = ((u.rowBase + row) % u.maskRows) * u.n;
  var mx = ${WGSL_NEG_INF};
  ${loop(`mx = max(mx, ${X}[base + j] * u.scale${maskTerm});`)}
  ${reduceMax}
  var sum = 0.0;
  ${loop(`sum += exp(${X}[base + j] * u.scale${maskTerm} - mx);`)}
  ${reduceSum}
  let inv = 1.0 / sum;
  let lsum = log(sum);
  ${loop(`let s = ${X}[base + j] * u.scale${maskTerm}; Y[base + j] = ${write};`)}
}`;
}

/**
 * Softmax over the last dim of `scale · x + mask` (numerically stable: the row max is subtracted
 * before `exp`). Masks should use a large negative finite value (e.g. −1e30) for "excluded";
 * `-Infinity` works on llvmpipe, but WGSL lets implementations assume no infinities.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { softmax } from "./softmax.ts";
 * await getGpu();
 * using x = Tensor.from([0, Math.log(3)], [1, 2]);
 * using p = softmax(x);
 * const r = await p.toArray(); // ≈ [0.25, 0.75]
 * if (Math.abs(r[1] - 0.75) > 1e-6) throw new Error("unexpected");
 * ```
 */
export function softmax(x: Tensor, options: SoftmaxOptions = {}): Tensor {
  const name = options.log ? "logSoftmax" : "softmax";
  checkTensor(x, name, "x", { dtype: "f32" });
  const [m, n] = asRows(x, name, "x");
  const gpu = x.gpu;
  const out = resolveOut(gpu, options.out, x.shape, name);
  const mask = options.mask;
  checkAlias(out, mask ? [x, mask] : [x], name);
  let maskRows = 1;
  if (mask) {
    checkTensor(mask, name, "mask", { dtype: "f32" });
    const mn = mask.rank === 0 ? 1 : mask.shape[mask.rank - 1];
    if (mn !== n || mask.size === 0) {
      throw new GpuError(
        `${name}: mask [${mask.shape.join(", ")}] must have last dim ${n} (x is [${
          x.shape.join(", ")
        }])`,
      );
    }
    if (sameStorage(mask, out)) throw new GpuError(`${name}: out must not be the mask`);
    maskRows = mask.size / n;
  }
  const inPlace = sameStorage(out, x);
  const perThread = (options.variant ?? rowKernelVariant(gpu, n, 3)) === "thread";
  if (perThread && gpu.info.isFallbackAdapter && 3 * n > CPU_LOOP_BUDGET) {
    throw new GpuError(
      `${name}: rows of ${n} are too wide for one invocation per row on a CPU adapter`,
    );
  }
  const wg = perThread ? 64 : n >= 2048 ? 256 : 64;
  const flags = { perThread, wg, mask: !!mask, inPlace, log: !!options.log };
  const key = `softmax_${perThread ? "t" : "wg"}${wg}_${mask ? "m" : ""}${inPlace ? "ip" : ""}` +
    `${options.log ? "log" : ""}`;
  const pipeline = gpu.pipeline(key, softmaxWgsl(flags));
  const scale = options.scale ?? 1;
  for (const w of spans(gpu, m, n)) {
    const xw = windowOf(x, w.start * n, w.count * n);
    const yw = windowOf(out, w.start * n, w.count * n);
    const bindings = inPlace ? [yw] : [xw, yw];
    if (mask) bindings.push(mask.binding());
    const uni = packUniform("uufuu", w.count, n, scale, w.start, maskRows);
    const groups = perThread ? Math.ceil(w.count / wg) : w.count;
    gpu.dispatch(pipeline, [...bindings, gpu.uniform(uni)], grid1d(gpu, groups));
  }
  return out;
}

/** Log-softmax over the last dim: `softmax(x, { ...options, log: true })`. */
export function logSoftmax(x: Tensor, options: Omit<SoftmaxOptions, "log"> = {}): Tensor {
  return softmax(x, { ...options, log: true });
}
