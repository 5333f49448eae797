/**
 * Deterministic f32 reductions: over the rows of an `[m, n]` matrix (one workgroup per row, or one
 * invocation per row for narrow rows), over its columns (row chunks, then a pass over the chunk
 * partials), and over all elements (a tree of fixed-size blocks). No atomics: the summation order
 * depends only on the shape, so results are bit-for-bit repeatable. Reference: `reduce_ref.ts`.
 * @module
 */

import { type Gpu, GpuError } from "../device.ts";
import {
  asRows,
  checkAlias,
  checkTensor,
  CPU_LOOP_BUDGET,
  grid1d,
  packUniform,
  rowKernelVariant,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_NEG_INF,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { resolveOut } from "./elementwise.ts";
import { REDUCE_OPS, type ReduceOp } from "./reduce_ref.ts";

export { reduceAllRef, reduceColsRef, type ReduceOp, reduceRowsRef } from "./reduce_ref.ts";

/** Invocations per workgroup: row kernel, column kernel, full-reduction kernel. */
const ROW_WG = 128, COL_WG = 64, ALL_WG = 256;
/** Elements per workgroup of the full reduction (ALL_WG invocations × 16 each). */
const ALL_BLOCK = ALL_WG * 16;
/** Rows per chunk of the column reduction when a second pass is needed. */
const COL_CHUNK = 256;
/** Rows narrower than this use one invocation per row. */
const THREAD_ROW_MAX = 64;

/**
 * The default row kernel for rows of `n`. On llvmpipe a workgroup costs tens of µs of barriers
 * and one invocation per row was faster at every measured shape ([70000, 64]: 60 ms vs 3.9 s;
 * [4096, 24576]: 1.3 s vs 2.1 s), as long as the loop budget allows. Real GPUs get a workgroup
 * per row unless rows are narrow.
 */
function rowVariant(gpu: Gpu, n: number): "workgroup" | "thread" {
  return n < THREAD_ROW_MAX ? "thread" : rowKernelVariant(gpu, n, 1);
}

/** One pass of a reduction: the map applied to inputs, the combine, and the finalize. */
interface Stage {
  square: boolean;
  max: boolean;
  fin: "none" | "scale" | "sqrt";
}

function stages(op: ReduceOp): { first: Stage; last: Stage; only: Stage; mid: Stage } {
  if (!REDUCE_OPS.includes(op)) throw new GpuError(`unknown reduction "${op}"`);
  const square = op === "sumsq" || op === "l2";
  const max = op === "max";
  const fin = op === "mean" ? "scale" : op === "l2" ? "sqrt" : "none";
  return {
    only: { square, max, fin },
    first: { square, max, fin: "none" },
    mid: { square: false, max, fin: "none" },
    last: { square: false, max, fin },
  };
}

function stageKey(s: Stage): string {
  return `${s.square ? "sq" : "x"}_${s.max ? "max" : "add"}_${s.fin}`;
}

/** WGSL helpers `mapv`, `comb`, `fin` and the identity `IDENT` of a stage. */
function stageWgsl(s: Stage): string {
  const comb = (t: string) =>
    `fn comb${t}(a: ${t}, b: ${t}) -> ${t} { return ${s.max ? "max(a, b)" : "a + b"}; }`;
  return /* wgsl */ `
fn mapv(x: f32) -> f32 { return ${s.square ? "x * x" : "x"}; }
fn mapv4(x: vec4<f32>) -> vec4<f32> { return ${s.square ? "x * x" : "x"}; }
${comb("f32").replace("combf32", "comb")}
${comb("vec4<f32>").replace("combvec4<f32>", "comb4")}
fn fin(r: f32) -> f32 { return ${
    s.fin === "scale" ? "r * u.scale" : s.fin === "sqrt" ? "sqrt(r)" : "r"
  }; }
fn ident() -> f32 { return ${s.max ? WGSL_NEG_INF : "0.0"}; }
fn horiz(v: vec4<f32>) -> f32 { return comb(comb(v.x, v.y), comb(v.z, v.w)); }`;
}

const IO = `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;`;

/**
 * Row kernel. `perThread`: invocation i sums row i sequentially (no barriers; best for narrow
 * rows and on CPU adapters). Otherwise a workgroup per row with a tree reduction. With `vec4`,
 * rows are read 4 floats at a time (n % 4 == 0) and the 4 lanes are combined at the end.
 */
function rowWgsl(s: Stage, perThread: boolean, vec4: boolean): string {
  const wg = ROW_WG;
  const io = vec4 ? IO.replace("X: array<f32>", "X: array<vec4<f32>>") : IO;
  const load = vec4 ? "mapv4(X[row * nv + j])" : "mapv(X[row * nv + j])";
  const acc = vec4 ? `var acc4 = vec4<f32>(ident());` : "var acc = ident();";
  const step = vec4 ? `acc4 = comb4(acc4, ${load});` : `acc = comb(acc, ${load});`;
  const total = vec4 ? "let acc = horiz(acc4);" : "";
  const nv = `let nv = u.n${vec4 ? " / 4u" : ""};`;
  const body = perThread
    ? `let row = wgIndex(wid, nwg) * ${wg}u + lid;
  if (row >= u.m) { return; }
  ${nv}
  ${acc}
  for (var j = 0u; j < nv; j++) { ${step} }
  ${total}
  Y[u.outBase + row] = fin(acc);`
    : `let row = wgIndex(wid, nwg);
  if (row >= u.m) { return; }
  ${nv}
  ${acc}
  for (var j = lid; j < nv; j += ${wg}u) { ${step} }
  ${total}
  let r = wgReduce(lid, acc);
  if (lid == 0u) { Y[u.outBase + row] = fin(r); }`;
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { m: u32, n: u32, scale: f32, outBase: u32 }
${io}
${perThread ? "" : `var<workgroup> sh: array<f32, ${wg}>;`}
${stageWgsl(s)}
${perThread ? "" : wgslWorkgroupReduce("wgReduce", wg, "comb(a, b)")}
@compute @workgroup_size(${wg})
fn main(${WGSL_MAIN_ARGS}) {
  ${body}
}`;
}

/** Options of {@link reduceRows}. */
export interface ReduceRowsOptions {
  /** Where to write (shape `x.shape` without its last dim). */
  out?: Tensor;
  /** Force a kernel: one workgroup per row, or one invocation per row (default by shape). */
  variant?: "workgroup" | "thread";
  /** Force (true needs n % 4 == 0) or forbid vec4 loads; default: when n % 4 == 0. */
  vec4?: boolean;
}

/**
 * `op` over the last dim of `x` (rows of length `n`); the result drops that dim.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { reduceRows } from "./reduce.ts";
 * await getGpu();
 * using x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
 * using s = reduceRows("sum", x);
 * const r = await s.toArray(); // Float32Array [6, 15]
 * if (r[1] !== 15) throw new Error("unexpected");
 * ```
 */
export function reduceRows(op: ReduceOp, x: Tensor, options: ReduceRowsOptions = {}): Tensor {
  const name = `reduceRows(${op})`;
  checkTensor(x, name, "x", { dtype: "f32" });
  const [m, n] = asRows(x, name, "x");
  const gpu = x.gpu;
  const out = resolveOut(gpu, options.out, x.shape.slice(0, -1), name);
  checkAlias(out, [x], name);
  if (out.buffer === x.buffer) throw new GpuError(`${name}: out must not share x's buffer`);
  const s = stages(op).only;
  const vec4 = options.vec4 ?? (n % 4 === 0 && x.offset % 16 === 0);
  const perThread = (options.variant ?? rowVariant(gpu, n)) === "thread";
  if (perThread && gpu.info.isFallbackAdapter && n / (vec4 ? 4 : 1) > CPU_LOOP_BUDGET) {
    throw new GpuError(
      `${name}: rows of ${n} are too wide for one invocation per row on a CPU adapter ` +
        `(llvmpipe stops shader loops after ${CPU_LOOP_BUDGET} iterations); use "workgroup"`,
    );
  }
  const pipeline = gpu.pipeline(
    `red_rows_${stageKey(s)}_${perThread ? "thread" : "wg"}_${vec4 ? "v4" : "s"}`,
    rowWgsl(s, perThread, vec4),
  );
  // Windows split x only; out (m floats, small) is bound whole and indexed from outBase.
  for (const w of spans(gpu, m, n)) {
    const uni = gpu.uniform(packUniform("uufu", w.count, n, 1 / n, w.start));
    const groups = perThread ? Math.ceil(w.count / ROW_WG) : w.count;
    gpu.dispatch(
      pipeline,
      [windowOf(x, w.start * n, w.count * n), out, uni],
      grid1d(gpu, groups),
    );
  }
  return out;
}

function colWgsl(s: Stage): string {
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { m: u32, n: u32, rows: u32, blocks: u32, chunks: u32, outBase: u32, scale: f32 }
${IO}
${stageWgsl(s)}
@compute @workgroup_size(${COL_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let w = wgIndex(wid, nwg);
  let chunk = w / u.blocks;
  let col = (w % u.blocks) * ${COL_WG}u + lid;
  if (chunk >= u.chunks || col >= u.n) { return; }
  let end = min(u.m, (chunk + 1u) * u.rows);
  var acc = ident();
  for (var i = chunk * u.rows; i < end; i++) { acc = comb(acc, mapv(X[i * u.n + col])); }
  Y[(u.outBase + chunk) * u.n + col] = fin(acc);
}`;
}

/**
 * Records one column pass over `x` (`m` rows of `n`), writing `ceil(rows / chunk)` partial rows
 * per window into `y` from row `outBase`; returns the number of partial rows written.
 */
function colPass(
  x: Tensor,
  m: number,
  n: number,
  y: Tensor,
  chunk: number,
  s: Stage,
  count: number,
): number {
  const gpu = x.gpu;
  const pipeline = gpu.pipeline(`red_cols_${stageKey(s)}`, colWgsl(s));
  const blocks = Math.ceil(n / COL_WG);
  let outBase = 0;
  for (const w of spans(gpu, m, n, { multipleOf: chunk })) {
    const chunks = Math.ceil(w.count / chunk);
    const uni = packUniform("uuuuuuf", w.count, n, chunk, blocks, chunks, outBase, 1 / count);
    gpu.dispatch(
      pipeline,
      [windowOf(x, w.start * n, w.count * n), y, gpu.uniform(uni)],
      grid1d(gpu, blocks * chunks),
    );
    outBase += chunks;
  }
  return outBase;
}

/**
 * `op` over the rows of `x` seen as `[m, n]` (all dims but the last flattened): one value per
 * column, shape `[n]`. Tall inputs take two passes (chunks of rows, then the chunk partials).
 */
export function reduceCols(op: ReduceOp, x: Tensor, options: { out?: Tensor } = {}): Tensor {
  const name = `reduceCols(${op})`;
  checkTensor(x, name, "x", { dtype: "f32" });
  const [m, n] = asRows(x, name, "x");
  const gpu = x.gpu;
  const out = resolveOut(gpu, options.out, [n], name);
  if (out.buffer === x.buffer) throw new GpuError(`${name}: out must not share x's buffer`);
  const st = stages(op);
  const single = m <= 4 * COL_CHUNK && m * n * 4 <= gpu.maxBindingSize;
  if (single) {
    colPass(x, m, n, out, Math.max(1, m), st.only, m);
    return out;
  }
  let cur = x, rows = m, stage = st.first;
  const scratch: Tensor[] = [];
  while (true) {
    const partials = Math.ceil(rows / COL_CHUNK) + spans(gpu, rows, n).length;
    const p = Tensor.empty([partials, n], "f32", { gpu });
    scratch.push(p);
    const written = colPass(cur, rows, n, p, COL_CHUNK, stage, m);
    cur = new Tensor(gpu, p.buffer, [written, n], "f32", 0, false);
    rows = written;
    stage = st.mid;
    if (rows <= 4 * COL_CHUNK) break;
  }
  colPass(cur, rows, n, out, rows, st.last, m);
  // Recorded work runs in order, so the scratch can return to the pool right away.
  for (const t of scratch) t.dispose();
  return out;
}

function allWgsl(s: Stage): string {
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, outBase: u32, scale: f32 }
${IO}
var<workgroup> sh: array<f32, ${ALL_WG}>;
${stageWgsl(s)}
${wgslWorkgroupReduce("wgReduce", ALL_WG, "comb(a, b)")}
@compute @workgroup_size(${ALL_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let w = wgIndex(wid, nwg);
  let base = w * ${ALL_BLOCK}u;
  if (base >= max(u.n, 1u)) { return; }
  var acc = ident();
  for (var k = 0u; k < ${ALL_BLOCK / ALL_WG}u; k++) {
    let j = base + k * ${ALL_WG}u + lid;
    if (j < u.n) { acc = comb(acc, mapv(X[j])); }
  }
  let r = wgReduce(lid, acc);
  if (lid == 0u) { Y[u.outBase + w] = fin(r); }
}`;
}

/** Records one block pass of `x` into `y` from index `outBase`; returns the blocks written. */
function allPass(x: Tensor, y: Tensor, outBase: number, s: Stage, count: number): number {
  const gpu = x.gpu;
  const pipeline = gpu.pipeline(`red_all_${stageKey(s)}`, allWgsl(s));
  let written = 0;
  // An empty x still gets one workgroup, which writes the op's value for no elements.
  const windows = x.size === 0
    ? [{ start: 0, count: 0 }]
    : spans(gpu, x.size, 1, { multipleOf: ALL_BLOCK });
  for (const w of windows) {
    const blocks = Math.max(1, Math.ceil(w.count / ALL_BLOCK));
    const uni = packUniform("uuf", w.count, outBase + written, 1 / count);
    const xb = w.count === 0
      ? { buffer: x.buffer, offset: x.offset, size: 4 }
      : windowOf(x, w.start, w.count);
    gpu.dispatch(pipeline, [xb, y, gpu.uniform(uni)], grid1d(gpu, blocks));
    written += blocks;
  }
  return written;
}

/** Options of {@link reduceAll}. */
export interface ReduceAllOptions {
  /** Where to write: element `outIndex` of this f32 tensor (default: a new `[1]` tensor). */
  out?: Tensor;
  /** Index in `out` (default 0). */
  outIndex?: number;
}

/**
 * `op` over every element of `x`, as a `[1]` tensor (or into `out[outIndex]`). Blocks of 4096
 * elements reduce to partials, repeatedly, until one value remains: a fixed tree, so the result
 * is repeatable.
 */
export function reduceAll(op: ReduceOp, x: Tensor, options: ReduceAllOptions = {}): Tensor {
  const name = `reduceAll(${op})`;
  checkTensor(x, name, "x", { dtype: "f32" });
  const gpu = x.gpu;
  const out = options.out ?? Tensor.empty([1], "f32", { gpu });
  checkTensor(out, name, "out", { dtype: "f32" });
  const outIndex = options.outIndex ?? 0;
  if (!Number.isInteger(outIndex) || outIndex < 0 || outIndex >= out.size) {
    throw new GpuError(`${name}: outIndex ${outIndex} is outside out ${out}`);
  }
  if (out.buffer === x.buffer) throw new GpuError(`${name}: out must not share x's buffer`);
  const st = stages(op);
  const count = x.size;
  let cur = x, stage = st.first;
  const scratch: Tensor[] = [];
  while (cur.size > ALL_BLOCK || spans(gpu, cur.size, 1).length > 1) {
    const blocks = Math.ceil(cur.size / ALL_BLOCK) + spans(gpu, cur.size, 1).length;
    const p = Tensor.empty([blocks], "f32", { gpu });
    scratch.push(p);
    const written = allPass(cur, p, 0, stage, count);
    cur = new Tensor(gpu, p.buffer, [written], "f32", 0, false);
    stage = st.mid;
  }
  allPass(cur, out, outIndex, cur === x ? st.only : st.last, count);
  for (const t of scratch) t.dispose();
  return out;
}
