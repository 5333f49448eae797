/**
 * The GPU ops the SAE forward pass needs, behind one small interface, so the SAE code does not
 * depend on which kernel family provides them: affine maps (`x·W + b`, `x·Wᵀ`), per-row top-k,
 * decoder row norms, elementwise arithmetic.
 *
 * Products go to the shared tuned matmul (`gpu/kernels/matmul/`, bias epilogue); `topkActs`
 * uses the shared per-row top-k (`gpu/kernels/topk.ts`) up to its largest k, else a rank kernel
 * here.
 * @module
 */

import {
  checkInt,
  checkTensor,
  DEFAULT_WG,
  dispatch1d,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { binary } from "../gpu/kernels/binary.ts";
import { matmul } from "../gpu/kernels/matmul/mod.ts";
import { reduceRows } from "../gpu/kernels/reduce.ts";
import { TOPK_MAX_K, topkRows } from "../gpu/kernels/topk.ts";
import { denseFromTopk } from "./kernels/activations.ts";
import { SaeKernelError } from "./kernels/errors.ts";

function dims(t: Tensor, op: string, name: string): readonly number[] {
  return checkTensor(t, op, name, { dtype: "f32", rank: 2 }, SaeKernelError);
}

/** `x [n, k] · W [k, m] (+ bias [m])` → `[n, m]` (shared tuned matmul, bias epilogue). */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  dims(x, "linear", "x");
  dims(w, "linear", "W");
  return matmul(x, w, bias ? { bias } : {});
}

/** `x [n, k] · Wᵀ` with `W [m, k]` → `[n, m]`. */
export function linearT(x: Tensor, w: Tensor): Tensor {
  dims(x, "linearT", "x");
  dims(w, "linearT", "W");
  return matmul(x, w, { transB: true });
}

const TOPK_RANK_WGSL = /* wgsl */ `
struct U { n: u32, d: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${WGSL_WG_INDEX}
// One invocation per entry: its rank in the row (larger first, ties → lower index first); the
// entry is kept, ReLU'd, when the rank is below k. d iterations per invocation, so rows must stay
// under llvmpipe's per-invocation loop budget (65535).
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let idx = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (idx >= u.n * u.d) { return; }
  let base = idx - idx % u.d;
  let j = idx % u.d;
  let v = H[idx];
  var rank = 0u;
  for (var i = 0u; i < u.d; i++) {
    let w = H[base + i];
    if (w > v || (w == v && i < j)) { rank++; }
  }
  Y[idx] = select(0.0, max(v, 0.0), rank < u.k);
}`;

/**
 * SAELens `TopK(k)` on `h [n, d]`: per row the k largest values (ties → lower index), ReLU'd,
 * zeros elsewhere.
 */
export function topkActs(h: Tensor, k: number): Tensor {
  const [n, d] = dims(h, "topkActs", "h");
  checkInt(k, 1, d, "topkActs", "k", SaeKernelError);
  if (k <= TOPK_MAX_K) {
    const { values, indices } = topkRows(h, k, { relu: true });
    const out = denseFromTopk(values, indices, d);
    values.dispose();
    indices.dispose();
    return out;
  }
  // k beyond the shared kernel's limit: rank every entry within its row.
  if (d > 65535) {
    throw new SaeKernelError(
      `topkActs: k ${k} > ${TOPK_MAX_K} needs rows of at most 65535, got ${d}`,
    );
  }
  const gpu = h.gpu;
  const out = Tensor.empty([n, d], "f32", { gpu });
  if (n === 0) return out;
  const pipeline = gpu.pipeline("sae_topk_rank", TOPK_RANK_WGSL);
  dispatch1d(gpu, pipeline, [h, out, gpu.uniform([n, d, k, 0])], n * d);
  return out;
}

/** L2 norm of each row of `w [r, c]` → `[r]`. */
export function rowNorms(w: Tensor): Tensor {
  return reduceRows("l2", w);
}

/** Elementwise `a op b` with numpy broadcasting (see `gpu/kernels/binary.ts`). */
export function ew(op: "add" | "sub" | "mul" | "div" | "max", a: Tensor, b: Tensor): Tensor {
  return binary(op, a, b);
}

/** In place `a ← a op b` (b broadcast to a's shape). */
export function ewInPlace(op: "add" | "sub" | "mul" | "div" | "max", a: Tensor, b: Tensor): void {
  binary(op, a, b, { out: a });
}
