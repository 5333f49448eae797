/**
 * Matmul variants 4 and 5: the classic workgroup-tiled kernel for real GPUs. A 16×16 workgroup
 * stages a BK-deep slice of an A tile and a B tile in workgroup memory (coalesced reads along
 * each operand's contiguous dimension), then every invocation accumulates a 4×4 or 8×8 block of
 * outputs from vec4 reads of that memory. Barriers make it slow on llvmpipe; the autotuner
 * decides per adapter.
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

interface TileShape {
  /** Output tile rows and columns per workgroup (multiples of 64). */
  tm: number;
  tn: number;
  /** Depth of the staged k slice. */
  bk: number;
}

function tiledWgsl(s: TileShape, transA: boolean, transB: boolean): string {
  const { tm, tn, bk } = s;
  const rowGroups = tm / 64; // each group: 16 invocations × 4 rows
  const colGroups = tn / 64;
  const loadsA = (tm * bk) / 256;
  const loadsB = (tn * bk) / 256;
  const a = transA ? "P.aOff + p * P.lda + i" : "P.aOff + i * P.lda + p";
  const b = transB ? "P.bOff + j * P.ldb + p" : "P.bOff + p * P.ldb + j";
  // Element e of a staged tile → (row, kk): consecutive invocations read consecutive addresses.
  const aSplit = transA
    ? `let kk = e / ${tm}u; let r = e % ${tm}u;`
    : `let r = e / ${bk}u; let kk = e % ${bk}u;`;
  const bSplit = transB
    ? `let c = e / ${bk}u; let kk = e % ${bk}u;`
    : `let kk = e / ${tn}u; let c = e % ${tn}u;`;
  return /* wgsl */ `
${WGSL_MATMUL_PARAMS}
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Cbuf: array<f32>;
@group(0) @binding(3) var<storage, read> biasBuf: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
${WGSL_MATMUL_EPILOGUE}
var<workgroup> As: array<vec4<f32>, ${(bk * tm) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * tn) / 4}>;

fn loadA(i: u32, p: u32) -> f32 {
  if (i >= P.m || p >= P.k) { return 0.0; }
  return A[${a}];
}
fn loadB(p: u32, j: u32) -> f32 {
  if (p >= P.k || j >= P.n) { return 0.0; }
  return B[${b}];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let t = ty * 16u + tx;
  let i0 = wg.y * ${tm}u;
  let j0 = wg.x * ${tn}u;
  var acc = array<vec4<f32>, ${rowGroups * colGroups * 4}>();
  for (var p0 = 0u; p0 < P.k; p0 += ${bk}u) {
    for (var q = 0u; q < ${loadsA}u; q++) {
      let e = t + q * 256u;
      ${aSplit}
      As[(kk * ${tm}u + r) / 4u][r % 4u] = loadA(i0 + r, p0 + kk);
    }
    for (var q = 0u; q < ${loadsB}u; q++) {
      let e = t + q * 256u;
      ${bSplit}
      Bs[(kk * ${tn}u + c) / 4u][c % 4u] = loadB(p0 + kk, j0 + c);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      for (var g = 0u; g < ${rowGroups}u; g++) {
        let av = As[kk * ${tm / 4}u + g * 16u + ty];
        for (var h = 0u; h < ${colGroups}u; h++) {
          let bv = Bs[kk * ${tn / 4}u + h * 16u + tx];
          let base = (g * 4u) * ${colGroups}u + h;
          acc[base] = fma(vec4<f32>(av.x), bv, acc[base]);
          acc[base + ${colGroups}u] = fma(vec4<f32>(av.y), bv, acc[base + ${colGroups}u]);
          acc[base + ${2 * colGroups}u] = fma(vec4<f32>(av.z), bv, acc[base + ${2 * colGroups}u]);
          acc[base + ${3 * colGroups}u] = fma(vec4<f32>(av.w), bv, acc[base + ${3 * colGroups}u]);
        }
      }
    }
    workgroupBarrier();
  }
  // The store loop's bound comes from the parameters so that it stays a loop: unrolled, its
  // storage accesses (each a per-lane loop on llvmpipe) multiply LLVM's compile time.
  for (var q = 0u; q < P.x2; q++) {
    let g = q / ${4 * colGroups}u;
    let ii = (q / ${colGroups}u) % 4u;
    let h = q % ${colGroups}u;
    let i = i0 + g * 64u + ty * 4u + ii;
    let v = acc[q];
    for (var jj = 0u; jj < 4u; jj++) {
      let j = j0 + h * 64u + tx * 4u + jj;
      if (i < P.m && j < P.n) {
        let idx = P.cOff + i * P.ldc + j;
        var old = 0.0;
        if (needsOld()) { old = Cbuf[idx]; }
        Cbuf[idx] = matmulEpilogue(v[jj], j, old);
      }
    }
  }
}`;
}

function tiledVariant(name: string, shape: TileShape, description: string): MatmulVariant {
  return {
    name,
    description,
    supports: (gpu) =>
      gpu.device.limits.maxComputeInvocationsPerWorkgroup >= 256 &&
      gpu.device.limits.maxComputeWorkgroupStorageSize >= (shape.tm + shape.tn) * shape.bk * 4,
    record(gpu: Gpu, call: MatmulCall) {
      const layout = layoutOf(call.transA, call.transB);
      const pipeline = gpu.pipeline(
        `matmul/${name}/${layout}`,
        tiledWgsl(shape, call.transA, call.transB),
      );
      const accs = (shape.tm / 64) * (shape.tn / 64) * 4;
      for (const part of rowSlices(gpu, call, shape.tm)) {
        gpu.dispatch(
          pipeline,
          [part.a, part.b, part.c, part.bias, gpu.uniform(paramWords(part, [0, 0, accs]))],
          [ceilDiv(part.n, shape.tn), ceilDiv(part.m, shape.tm)],
        );
      }
    },
  };
}

/** Variant 4: 64×64 tiles staged in workgroup memory (BK 16), 4×4 outputs per invocation. */
export const matmulTiled64: MatmulVariant = tiledVariant(
  "4_tiled_64x64",
  { tm: 64, tn: 64, bk: 16 },
  "64×64 workgroup tiles in workgroup memory (BK 16), 4×4 outputs per invocation",
);

/** Variant 5: 128×128 tiles staged in workgroup memory (BK 8), 8×8 outputs per invocation. */
export const matmulTiled128: MatmulVariant = tiledVariant(
  "5_tiled_128x128",
  { tm: 128, tn: 128, bk: 8 },
  "128×128 workgroup tiles in workgroup memory (BK 8), 8×8 outputs per invocation",
);
