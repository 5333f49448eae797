/**
 * The GPU ops the SAE forward pass needs, behind one small interface, so the SAE code does not
 * depend on which kernel family provides them: affine maps (`x·W + b`, `x·Wᵀ`), per-row top-k,
 * decoder row norms, elementwise arithmetic.
 *
 * `topkActs` uses the shared per-row top-k (`gpu/kernels/topk.ts`) up to its largest k, else a
 * simple kernel here. STOPGAP: `linear` and `linearT` use a simple kernel written here until the
 * shared matmul (`gpu/kernels/matmul*.ts`) lands.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { grid1d } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { binary } from "../gpu/kernels/binary.ts";
import { reduceRows } from "../gpu/kernels/reduce.ts";
import { TOPK_MAX_K, topkRows } from "../gpu/kernels/topk.ts";
import { denseFromTopk } from "./kernels/activations.ts";
import { SaeKernelError } from "./kernels/errors.ts";

const WG = 64;
const WG_INDEX =
  "fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }";

function dims(t: Tensor, op: string, name: string): [number, number] {
  if (t.rank !== 2 || t.dtype !== "f32") {
    throw new SaeKernelError(`${op}: ${name} must be an f32 matrix, got ${t}`);
  }
  return [t.shape[0], t.shape[1]];
}

function matmulWgsl(transB: boolean, bias: boolean): string {
  const bIndex = transB ? "j * u.k + t" : "t * u.m + j";
  return /* wgsl */ `
struct U { n: u32, k: u32, m: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${bias ? "@group(0) @binding(3) var<storage, read> C: array<f32>;" : ""}
@group(0) @binding(${bias ? 4 : 3}) var<uniform> u: U;
${WG_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = wgIndex(wid, nwg) * ${WG}u + lid;
  if (idx >= u.n * u.m) { return; }
  let i = idx / u.m;
  let j = idx % u.m;
  var s = ${bias ? "C[j]" : "0.0"};
  for (var t = 0u; t < u.k; t++) { s = fma(A[i * u.k + t], B[${bIndex}], s); }
  Y[idx] = s;
}`;
}

function matmul(gpu: Gpu, x: Tensor, w: Tensor, bias: Tensor | null, transB: boolean): Tensor {
  const op = transB ? "linearT" : "linear";
  const [n, k] = dims(x, op, "x");
  const [r, c] = dims(w, op, "W");
  const m = transB ? r : c;
  if ((transB ? c : r) !== k) {
    throw new SaeKernelError(
      `${op}: x is [${n}, ${k}] but W is [${r}, ${c}] (expected ${
        transB ? `[m, ${k}]` : `[${k}, m]`
      })`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== m)) {
    throw new SaeKernelError(`${op}: bias has shape [${bias.shape.join(", ")}], expected [${m}]`);
  }
  const out = Tensor.empty([n, m], "f32", { gpu });
  if (n * m === 0) return out;
  const key = `sae_stopgap_mm_${transB ? "nt" : "nn"}_${bias ? "b" : "nb"}`;
  const pipeline = gpu.pipeline(key, matmulWgsl(transB, bias !== null));
  gpu.dispatch(
    pipeline,
    [x, w, out, ...(bias ? [bias] : []), gpu.uniform([n, k, m, 0])],
    grid1d(gpu, Math.ceil((n * m) / WG)),
  );
  return out;
}

/** `x [n, k] · W [k, m] (+ bias [m])` → `[n, m]`. */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  return matmul(x.gpu, x, w, bias, false);
}

/** `x [n, k] · Wᵀ` with `W [m, k]` → `[n, m]`. */
export function linearT(x: Tensor, w: Tensor): Tensor {
  return matmul(x.gpu, x, w, null, true);
}

const TOPK_RANK_WGSL = /* wgsl */ `
struct U { n: u32, d: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${WG_INDEX}
// One invocation per entry: its rank in the row (larger first, ties → lower index first); the
// entry is kept, ReLU'd, when the rank is below k. d iterations per invocation, so rows must stay
// under llvmpipe's per-invocation loop budget (65535).
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = wgIndex(wid, nwg) * ${WG}u + lid;
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
  if (!Number.isInteger(k) || k < 1 || k > d) {
    throw new SaeKernelError(`topkActs: k is ${k}, expected an integer in [1, ${d}]`);
  }
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
  gpu.dispatch(
    gpu.pipeline("sae_topk_rank", TOPK_RANK_WGSL),
    [h, out, gpu.uniform([n, d, k, 0])],
    grid1d(gpu, Math.ceil((n * d) / WG)),
  );
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
