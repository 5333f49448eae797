/**
 * Binary f32 kernels with numpy broadcasting (add, sub, mul, div, max, min). Shapes are collapsed
 * to at most 4 dims; equal contiguous shapes take a flat (vec4 when possible) kernel, all others
 * a strided kernel. `out` may be either input (bound once, read_write) when it has the output
 * shape. Reference: `binaryRef` in `elementwise_ref.ts`.
 * @module
 */

import { GpuError } from "../device.ts";
import {
  checkAlias,
  checkTensor,
  dispatchFlat,
  FLAT_WG,
  grid1d,
  packUniform,
  sameStorage,
  spans,
  vec4Ok,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  windowOf,
} from "../kernel.ts";
import type { Tensor } from "../tensor.ts";
import { resolveOut } from "./elementwise.ts";
import { type BinaryOp, broadcastShape, broadcastStrides } from "./elementwise_ref.ts";

export { type BinaryOp, binaryRef, broadcastShape } from "./elementwise_ref.ts";

const BINARY_WGSL: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  max: "max(a, b)",
  min: "min(a, b)",
};

/** Which binding the result goes to: a new tensor, or `a` / `b` in place. */
type Target = "out" | "a" | "b";

/**
 * Dims and strides after dropping size-1 dims and merging dims that are contiguous in the output
 * and in both inputs. E.g. [m,n] + [n] stays [m,n]; [m,n] + [m,n] becomes [m·n].
 */
export function collapseBroadcast(
  outShape: readonly number[],
  sa: readonly number[],
  sb: readonly number[],
): { dims: number[]; sa: number[]; sb: number[] } {
  const dims: number[] = [], a: number[] = [], b: number[] = [];
  for (let i = 0; i < outShape.length; i++) {
    if (outShape[i] === 1) continue;
    const last = dims.length - 1;
    if (
      last >= 0 && a[last] === sa[i] * outShape[i] && b[last] === sb[i] * outShape[i]
    ) {
      dims[last] *= outShape[i];
      a[last] = sa[i];
      b[last] = sb[i];
    } else {
      dims.push(outShape[i]);
      a.push(sa[i]);
      b.push(sb[i]);
    }
  }
  return { dims, sa: a, sb: b };
}

function bindingsWgsl(target: Target, bIsA: boolean, vec4: boolean): string {
  const V = vec4 ? "vec4<f32>" : "f32";
  const lines: string[] = [];
  const mode = (name: "a" | "b") => target === name ? "read_write" : "read";
  lines.push(`var<storage, ${mode("a")}> A: array<${V}>;`);
  if (!bIsA) lines.push(`var<storage, ${mode("b")}> B: array<${V}>;`);
  if (target === "out") lines.push(`var<storage, read_write> Y: array<${V}>;`);
  lines.push("var<uniform> u: U;");
  return lines.map((l, i) => `@group(0) @binding(${i}) ${l}`).join("\n");
}

function binaryWgsl(
  op: BinaryOp,
  flat: boolean,
  vec4: boolean,
  target: Target,
  bIsA: boolean,
): string {
  const Y = target === "out" ? "Y" : target === "a" ? "A" : "B";
  const B = bIsA ? "A" : "B";
  const uniform = flat ? "struct U { n: u32 }" : `struct U {
  n: u32, d1: u32, d2: u32, d3: u32, sa: vec4<u32>, sb: vec4<u32>, aBase: u32, bBase: u32,
}`;
  const index = flat ? "let ia = i; let ib = i;" : `let i3 = i % u.d3;
  var r = i / u.d3;
  let i2 = r % u.d2;
  r = r / u.d2;
  let i1 = r % u.d1;
  let i0 = r / u.d1;
  let ia = u.aBase + i0 * u.sa.x + i1 * u.sa.y + i2 * u.sa.z + i3 * u.sa.w;
  let ib = u.bBase + i0 * u.sb.x + i1 * u.sb.y + i2 * u.sb.z + i3 * u.sb.w;`;
  return /* wgsl */ `${WGSL_WG_INDEX}
${uniform}
${bindingsWgsl(target, bIsA, vec4)}
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  ${index}
  let a = A[ia];
  let b = ${B}[ib];
  ${Y}[i] = ${BINARY_WGSL[op]};
}`;
}

/** Options of {@link binary}. */
export interface BinaryOptions {
  /** Where to write (the broadcast shape); may be `a` or `b` when it has that shape. */
  out?: Tensor;
}

/**
 * `op(a, b)` elementwise with numpy broadcasting of trailing dims (same shape, a row vector `[n]`
 * against `[m, n]`, a column `[m, 1]`, a scalar `[]` or `[1]`, …; at most 4 dims after merging).
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { binary } from "./binary.ts";
 * await getGpu();
 * using x = Tensor.from([1, 2, 3, 4], [2, 2]);
 * using b = Tensor.from([10, 20], [2]);
 * using y = binary("add", x, b);
 * const r = await y.toArray(); // Float32Array [11, 22, 13, 24]
 * if (r[3] !== 24) throw new Error("unexpected");
 * ```
 */
export function binary(op: BinaryOp, a: Tensor, b: Tensor, options: BinaryOptions = {}): Tensor {
  const name = `binary(${op})`;
  if (!(op in BINARY_WGSL)) throw new GpuError(`unknown binary op "${op}"`);
  checkTensor(a, name, "a", { dtype: "f32" });
  checkTensor(b, name, "b", { dtype: "f32" });
  const gpu = a.gpu;
  const shape = broadcastShape(a.shape, b.shape);
  const out = resolveOut(gpu, options.out, shape, name);
  checkAlias(out, [a, b], name);
  const bIsA = sameStorage(a, b);
  const target: Target = sameStorage(out, a) ? "a" : sameStorage(out, b) ? "b" : "out";
  if (target !== "out" && (target === "a" ? a : b).size !== out.size) {
    throw new GpuError(`${name}: out is an input that is broadcast; it cannot hold the result`);
  }
  const n = out.size;
  if (n === 0) return out;
  const col = collapseBroadcast(
    shape,
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  );
  const flat = col.dims.length <= 1 && col.sa[0] !== 0 && col.sb[0] !== 0;
  const windowed = (target === "out" ? [a, b, out] : [a, b]).filter((_t, i) => !(bIsA && i === 1));
  if (flat) {
    const vec4 = vec4Ok(a, b, out);
    const key = `ew_binary_${op}_flat_${vec4 ? "v4" : "s"}_${target}${bIsA ? "_aa" : ""}`;
    const pipeline = gpu.pipeline(key, binaryWgsl(op, true, vec4, target, bIsA));
    dispatchFlat(gpu, pipeline, n, windowed, [], (u) => packUniform("u", u), vec4);
    return out;
  }
  if (col.dims.length > 4) {
    throw new GpuError(
      `${name}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] need ` +
        `${col.dims.length} dims after merging; at most 4 are supported`,
    );
  }
  // Pad after the outermost dim so that windows split the real outermost dim.
  while (col.dims.length < 4) {
    col.dims.splice(1, 0, 1);
    col.sa.splice(1, 0, 0);
    col.sb.splice(1, 0, 0);
  }
  // Broadcast inputs sharing storage are bound twice, read-only (allowed); they cannot be `out`.
  const key = `ew_binary_${op}_bcast_${target}`;
  const pipeline = gpu.pipeline(key, binaryWgsl(op, false, false, target, false));
  const [d0, d1, d2, d3] = col.dims;
  const rowElems = d1 * d2 * d3;
  // Large outputs go in windows over the outermost dim. An input that fits one binding is bound
  // whole with its window start passed as a base index; a larger one is bound as a window too.
  const limit = gpu.maxBindingSize;
  const windowA = target === "a" || a.byteLength > limit;
  const windowB = target === "b" || b.byteLength > limit;
  const other = [windowA ? col.sa[0] : 0, windowB ? col.sb[0] : 0];
  for (const s of spans(gpu, d0, rowElems, { aligned: [rowElems, ...other] })) {
    const bind = (t: Tensor, stride0: number, win: boolean) =>
      win ? windowOf(t, s.start * stride0, s.count * stride0) : t.binding();
    const bindings = [bind(a, col.sa[0], windowA)];
    bindings.push(bind(b, col.sb[0], windowB));
    if (target === "out") bindings.push(windowOf(out, s.start * rowElems, s.count * rowElems));
    const count = s.count * rowElems;
    const aBase = windowA ? 0 : s.start * col.sa[0];
    const bBase = windowB ? 0 : s.start * col.sb[0];
    const uni = packUniform("u".repeat(14), count, d1, d2, d3, ...col.sa, ...col.sb, aBase, bBase);
    const groups = grid1d(gpu, Math.ceil(count / FLAT_WG));
    gpu.dispatch(pipeline, [...bindings, gpu.uniform(uni)], groups);
  }
  return out;
}
