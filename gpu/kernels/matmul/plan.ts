/**
 * Shape checking and planning of a matmul: resolves the layout and the (flattened) dimensions,
 * then splits the product into sub-problems whose operand windows each fit one storage binding.
 * Rows of C (and of A when it is not transposed) split into m-windows; when B is stored `[n, k]`
 * its rows split into n-windows; when A is stored `[k, m]` or B `[k, n]`, their rows split into
 * k-windows that add into C one after another (split-k: the bias goes with the first window and
 * the activation with the last, see {@link splitKFlags}).
 * @module
 */

import { type Gpu, GpuError } from "../../device.ts";
import { type ShiftedWindow, shiftedWindow } from "../../kernel.ts";
import type { Tensor } from "../../tensor.ts";
import {
  ACT_SHIFT,
  activationCode,
  dummyBinding,
  FLAG_BIAS,
  FLAG_LOAD_C,
  layoutOf,
  type MatmulCall,
  type MatmulLayout,
  splitKFlags,
} from "./common.ts";
import type { MatmulActivation } from "./ref.ts";

/** Resolved dimensions of a matmul. */
export interface MatmulShape {
  /** Rows of the product. */
  m: number;
  /** Inner (reduction) dimension. */
  k: number;
  /** Columns of the product. */
  n: number;
  /** Layout derived from the transpose flags. */
  layout: MatmulLayout;
  /** Shape of the result tensor. */
  outShape: number[];
}

const LAYOUT_TEXT: Record<MatmulLayout, string> = {
  nn: "A·B (a [..., m, k], b [k, n])",
  nt: "A·Bᵀ (a [..., m, k], b [n, k])",
  tn: "Aᵀ·B (a [..., k, m], b [..., k, n])",
  tt: "Aᵀ·Bᵀ (a [..., k, m], b [n, k])",
};

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks that `a` and `b` multiply in the given layout and returns m, k, n and the result shape.
 * Leading dims of `a` flatten into rows: into m for A·B and A·Bᵀ (`[batch..., m, k]` with a 2-D
 * `b`), into k for Aᵀ·B (`a [..., k, m]`, `b [..., k, n]`, as in weight gradients).
 * @throws {GpuError} naming both shapes and the layout.
 */
export function resolveShape(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): MatmulShape {
  const layout = layoutOf(transA, transB);
  const fail = (why: string): never => {
    throw new GpuError(
      `matmul ${LAYOUT_TEXT[layout]}: a ${fmt(aShape)} and b ${fmt(bShape)} do not match: ${why}`,
    );
  };
  if (aShape.length < 2) fail(`a must have at least 2 dims`);
  if (bShape.length < 2) fail(`b must have at least 2 dims`);
  const last = (s: readonly number[]) => s[s.length - 1];
  const lead = (s: readonly number[]) => s.slice(0, -1).reduce((x, y) => x * y, 1);
  let m: number, k: number, n: number, outShape: number[];
  if (!transA) {
    if (bShape.length !== 2) fail(`b must be 2-D when a is not transposed`);
    k = last(aShape);
    m = lead(aShape);
    const [b0, b1] = bShape;
    const bk = transB ? b1 : b0;
    n = transB ? b0 : b1;
    if (bk !== k) fail(`a has k = ${k}, b has k = ${bk}`);
    outShape = [...aShape.slice(0, -1), n];
  } else {
    m = last(aShape);
    k = lead(aShape);
    if (transB) {
      if (bShape.length !== 2) fail(`b must be 2-D ([n, k]) when it is transposed`);
      n = bShape[0];
      if (bShape[1] !== k) fail(`a has k = ${k} (leading dims flattened), b has k = ${bShape[1]}`);
    } else {
      n = last(bShape);
      const bk = lead(bShape);
      if (bk !== k) fail(`a has k = ${k}, b has k = ${bk} (leading dims flattened)`);
    }
    outShape = [m, n];
  }
  return { m, k, n, layout, outShape };
}

/** What {@link planMatmul} needs besides the tensors. */
export interface PlanInput {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  bias?: Tensor;
  shape: MatmulShape;
  transA: boolean;
  transB: boolean;
  activation: MatmulActivation;
  accumulate: boolean;
  alpha: number;
  /** Largest binding in bytes (the device's maxStorageBufferBindingSize unless overridden). */
  maxBindingBytes: number;
}

interface Axis {
  start: number;
  count: number;
}

function splitAxis(total: number, rowBytes: number[], limit: number, align: number, what: string) {
  const widest = Math.max(0, ...rowBytes);
  // Windows start at an aligned-down offset, so up to `align` bytes more than the rows.
  let per = widest === 0 ? total : Math.floor((limit - align) / widest);
  if (per < 1) {
    throw new GpuError(
      `matmul: one row of ${what} (${widest} bytes) does not fit a storage binding of ` +
        `${limit} bytes (maxStorageBufferBindingSize)`,
    );
  }
  if (per >= 64) per -= per % 64;
  else if (per >= 4) per -= per % 4;
  const out: Axis[] = [];
  for (let s = 0; s < total; s += per) out.push({ start: s, count: Math.min(per, total - s) });
  return out.length ? out : [{ start: 0, count: 0 }];
}

/** The binding of rows `[start, start + count)` of a row-major tensor and its element offset. */
function window(t: Tensor, start: number, count: number, rowElems: number): ShiftedWindow {
  return shiftedWindow(t, start * rowElems, count * rowElems);
}

/** Splits the product into sub-problems that each fit the binding limit, in recording order. */
export function planMatmul(gpu: Gpu, p: PlanInput): MatmulCall[] {
  const { m, k, n } = p.shape;
  const { transA, transB } = p;
  const align = gpu.bindingOffsetAlignment;
  const limit = p.maxBindingBytes;
  const mAxis = splitAxis(m, [n * 4, transA ? 0 : k * 4], limit, align, "C or A");
  const nAxis = transB ? splitAxis(n, [k * 4], limit, align, "B") : [{ start: 0, count: n }];
  const kAxis = splitAxis(k, [transA ? m * 4 : 0, transB ? 0 : n * 4], limit, align, "A or B");
  let flags = (p.accumulate ? FLAG_LOAD_C : 0) | (p.bias ? FLAG_BIAS : 0);
  flags |= activationCode(p.activation) << ACT_SHIFT;
  const kFlags = splitKFlags(flags, kAxis.length);
  if (!kFlags) {
    throw new GpuError(
      `matmul: accumulate with activation "${p.activation}" cannot be split into ` +
        `${kAxis.length} k-windows (operands larger than a ${limit}-byte binding)`,
    );
  }
  const bias = p.bias ? p.bias.binding() : dummyBinding(gpu);
  const calls: MatmulCall[] = [];
  for (const mw of mAxis) {
    const c = window(p.out, mw.start, mw.count, n);
    for (const nw of nAxis) {
      kAxis.forEach((kw, ki) => {
        const a = transA ? window(p.a, kw.start, kw.count, m) : window(p.a, mw.start, mw.count, k);
        const b = transB ? window(p.b, nw.start, nw.count, k) : window(p.b, kw.start, kw.count, n);
        calls.push({
          m: mw.count,
          n: nw.count,
          k: kw.count,
          transA,
          transB,
          a: a.binding,
          lda: transA ? m : k,
          aOff: a.shift + (transA ? mw.start : kw.start),
          b: b.binding,
          ldb: transB ? k : n,
          bOff: b.shift + (transB ? kw.start : nw.start),
          c: c.binding,
          ldc: n,
          cOff: c.shift + nw.start,
          bias,
          biasOff: nw.start,
          flags: kFlags[ki],
          alpha: p.alpha,
        });
      });
    }
  }
  return calls;
}
