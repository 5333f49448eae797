/**
 * Matmul variants 1-5, reading both operands straight from storage buffers, numbered from naive
 * to workgroup-tiled in the manner of llm.c. Every variant handles every layout (the operand
 * indexing is specialised per layout at pipeline creation) and any size (edges are clamped on
 * load and masked on store).
 * @module
 */

import type { Gpu } from "../../device.ts";
import { ceilDiv } from "../../kernel.ts";
import {
  layoutOf,
  type MatmulCall,
  type MatmulVariant,
  paramWords,
  rowSlices,
  WGSL_MATMUL_EPILOGUE,
  WGSL_MATMUL_PARAMS,
} from "./common.ts";

function bindingsWgsl(elem: "f32" | "vec4<f32>"): string {
  return /* wgsl */ `
${WGSL_MATMUL_PARAMS}
@group(0) @binding(0) var<storage, read> A: array<${elem}>;
@group(0) @binding(1) var<storage, read> B: array<${elem}>;
@group(0) @binding(2) var<storage, read_write> Cbuf: array<f32>;
@group(0) @binding(3) var<storage, read> biasBuf: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
${WGSL_MATMUL_EPILOGUE}
fn storeC(i: u32, j: u32, acc: f32) {
  if (i >= P.m || j >= P.n) { return; }
  let idx = P.cOff + i * P.ldc + j;
  var old = 0.0;
  if (needsOld()) { old = Cbuf[idx]; }
  Cbuf[idx] = matmulEpilogue(acc, j, old);
}
`;
}

/** Scalar accessors A(i, p) and B(p, j) for a layout. */
function scalarAccessors(transA: boolean, transB: boolean): string {
  const a = transA ? "P.aOff + p * P.lda + i" : "P.aOff + i * P.lda + p";
  const b = transB ? "P.bOff + j * P.ldb + p" : "P.bOff + p * P.ldb + j";
  return /* wgsl */ `
fn aAt(i: u32, p: u32) -> f32 { return A[${a}]; }
fn bAt(p: u32, j: u32) -> f32 { return B[${b}]; }
`;
}

function dispatch(
  gpu: Gpu,
  call: MatmulCall,
  key: string,
  wgsl: (transA: boolean, transB: boolean) => string,
  tileM: number,
  tileN: number,
  extra: number[] = [],
): void {
  const layout = layoutOf(call.transA, call.transB);
  const pipeline = gpu.pipeline(`matmul/${key}/${layout}`, wgsl(call.transA, call.transB));
  for (const part of rowSlices(gpu, call, tileM)) {
    gpu.dispatch(
      pipeline,
      [part.a, part.b, part.c, part.bias, gpu.uniform(paramWords(part, extra))],
      [ceilDiv(part.n, tileN), ceilDiv(part.m, tileM)],
    );
  }
}

const naiveWgsl = (transA: boolean, transB: boolean) => /* wgsl */ `
${bindingsWgsl("f32")}
${scalarAccessors(transA, transB)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.y;
  let j = g.x;
  if (i >= P.m || j >= P.n) { return; }
  var acc = 0.0;
  for (var p = 0u; p < P.k; p++) { acc = fma(aAt(i, p), bAt(p, j), acc); }
  storeC(i, j, acc);
}`;

/** Variant 1: one output per invocation, scalar loads. The baseline. */
export const matmulNaive: MatmulVariant = {
  name: "1_naive",
  description: "one output per invocation, scalar loads (baseline)",
  supports: () => true,
  record: (gpu, call) => dispatch(gpu, call, "1_naive", naiveWgsl, 8, 8),
};

const regblockWgsl = (transA: boolean, transB: boolean) => /* wgsl */ `
${bindingsWgsl("f32")}
${scalarAccessors(transA, transB)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i0 = g.y * 4u;
  let j0 = g.x * 4u;
  if (i0 >= P.m || j0 >= P.n) { return; }
  // Clamped indices keep edge loads inside the operands; their outputs are not stored.
  var ri = array<u32, 4>();
  var cj = array<u32, 4>();
  for (var t = 0u; t < 4u; t++) {
    ri[t] = min(i0 + t, P.m - 1u);
    cj[t] = min(j0 + t, P.n - 1u);
  }
  var acc = array<vec4<f32>, 4>();
  for (var p = 0u; p < P.k; p++) {
    let b = vec4<f32>(bAt(p, cj[0]), bAt(p, cj[1]), bAt(p, cj[2]), bAt(p, cj[3]));
    acc[0] = fma(vec4<f32>(aAt(ri[0], p)), b, acc[0]);
    acc[1] = fma(vec4<f32>(aAt(ri[1], p)), b, acc[1]);
    acc[2] = fma(vec4<f32>(aAt(ri[2], p)), b, acc[2]);
    acc[3] = fma(vec4<f32>(aAt(ri[3], p)), b, acc[3]);
  }
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) { storeC(i0 + r, j0 + c, acc[r][c]); }
  }
}`;

/** Variant 2: 4×4 outputs per invocation held in registers, scalar loads. */
export const matmulRegblock: MatmulVariant = {
  name: "2_regblock_4x4",
  description: "4×4 outputs per invocation in registers, scalar loads",
  supports: () => true,
  record: (gpu, call) => dispatch(gpu, call, "2_regblock_4x4", regblockWgsl, 32, 32),
};

/**
 * Variant 3's block loads: `ablk(r0, p)` is the 4×4 block A[r0..r0+3, p..p+3] as a matrix whose
 * column t is A[·, p+t]; `bblk(p, j0)` is B[p..p+3, j0..j0+3] with column t = B[·, j0+t]. Reads
 * are vec4 along each operand's contiguous dimension; the other one is clamped.
 */
function vec4Accessors(transA: boolean, transB: boolean): string {
  const aBlock = transA
    ? `let r = min(r0, (P.m - 1u) & ~3u);
  let base = (P.aOff + p * P.lda + r) / 4u;
  let s = P.lda / 4u;
  return mat4x4<f32>(A[base], A[base + s], A[base + 2u * s], A[base + 3u * s]);`
    : `var rows = array<u32, 4>();
  for (var t = 0u; t < 4u; t++) { rows[t] = (P.aOff + min(r0 + t, P.m - 1u) * P.lda + p) / 4u; }
  return transpose(mat4x4<f32>(A[rows[0]], A[rows[1]], A[rows[2]], A[rows[3]]));`;
  const bBlock = transB
    ? `var cols = array<u32, 4>();
  for (var t = 0u; t < 4u; t++) { cols[t] = (P.bOff + min(j0 + t, P.n - 1u) * P.ldb + p) / 4u; }
  return mat4x4<f32>(B[cols[0]], B[cols[1]], B[cols[2]], B[cols[3]]);`
    : `let j = min(j0, (P.n - 1u) & ~3u);
  let base = (P.bOff + p * P.ldb + j) / 4u;
  let s = P.ldb / 4u;
  return transpose(mat4x4<f32>(B[base], B[base + s], B[base + 2u * s], B[base + 3u * s]));`;
  return `
fn ablk(r0: u32, p: u32) -> mat4x4<f32> {
  ${aBlock}
}
fn bblk(p: u32, j0: u32) -> mat4x4<f32> {
  ${bBlock}
}`;
}

const vec4Wgsl = (transA: boolean, transB: boolean) => /* wgsl */ `
${bindingsWgsl("vec4<f32>")}
${vec4Accessors(transA, transB)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i0 = g.y * 8u;
  let j0 = g.x * 8u;
  if (i0 >= P.m || j0 >= P.n) { return; }
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var p = 0u; p < P.k; p += 4u) {
    let a0 = ablk(i0, p);
    let a1 = ablk(i0 + 4u, p);
    let b0 = bblk(p, j0);
    let b1 = bblk(p, j0 + 4u);
    c00 += a0 * b0;
    c01 += a0 * b1;
    c10 += a1 * b0;
    c11 += a1 * b1;
  }
  // Column t of a block holds output column j0 + t. The bound P.x2 (= 16) keeps this a loop:
  // unrolled, its storage accesses multiply llvmpipe's compile time.
  for (var q = 0u; q < P.x2; q++) {
    let r = q / 4u;
    let c = q % 4u;
    storeC(i0 + r, j0 + c, c00[c][r]);
    storeC(i0 + r, j0 + 4u + c, c01[c][r]);
    storeC(i0 + 4u + r, j0 + c, c10[c][r]);
    storeC(i0 + 4u + r, j0 + 4u + c, c11[c][r]);
  }
}`;

/** Variant 3: 8×8 outputs per invocation as four 4×4 blocks, vec4 loads, mat4 products. */
export const matmulVec4: MatmulVariant = {
  name: "3_vec4_8x8",
  description: "8×8 outputs per invocation as 4×4 blocks, vec4 loads along contiguous dims",
  supports: (_gpu, c) =>
    c.k % 4 === 0 && c.lda % 4 === 0 && c.aOff % 4 === 0 && c.ldb % 4 === 0 &&
    c.bOff % 4 === 0 && (c.a.offset ?? 0) % 16 === 0 && (c.b.offset ?? 0) % 16 === 0,
  record: (gpu, call) => dispatch(gpu, call, "3_vec4_8x8", vec4Wgsl, 64, 64, [0, 0, 16]),
};
