/**
 * Matmul variants 6 and 7, built for Mesa's llvmpipe behind wgpu's GL backend, where every
 * per-invocation storage-buffer load is a scalar loop over the 8 SIMD lanes (~10× the cost of a
 * uniform-buffer gather). The operands are first repacked (any layout, zero padded) into
 * 128×128 tiles in a buffer that is also a uniform buffer; then one dispatch per output tile
 * binds up to P k-tiles of A and of B as 64 KiB uniform windows and accumulates R×C outputs per
 * invocation in registers (P = half the uniform-buffer slots: 6 with WebGPU's default 12, so
 * K ≤ 768 is one pass). K beyond P tiles runs in split-k passes that add into C. Per-dispatch
 * parameters come from a cached table in a storage buffer (one window per dispatch, created
 * mapped, so recording needs no upload).
 * @module
 */

import type { Gpu } from "../../device.ts";
import { grid1d } from "../../kernel.ts";
import {
  type MatmulCall,
  type MatmulRun,
  type MatmulVariant,
  PARAM_WORDS,
  paramWords,
  splitKFlags,
  WGSL_MATMUL_EPILOGUE,
  WGSL_MATMUL_PARAMS,
} from "./common.ts";
import { packedScratch, packPipeline, tileTable } from "./ubo_pack.ts";

/** Tile edge (rows, columns and depth of every packed tile). */
export const UBO_TILE = 128;
const TILE_BYTES = UBO_TILE * UBO_TILE * 4;

/**
 * Most k-tiles one dispatch binds: two uniform windows each. The parameters come from a storage
 * window instead, so that every uniform slot carries tiles: with the WebGPU default of 12 slots
 * K = 768 takes one pass of 6 tiles instead of two passes of 3 (≈ 25 % faster on llvmpipe).
 */
function maxChunks(gpu: Gpu): number {
  return Math.floor(gpu.device.limits.maxUniformBuffersPerShaderStage / 2);
}

function mainWgsl(shape: UboShape, chunks: number): string {
  const { r, c, wg } = shape;
  const t = UBO_TILE, t4 = UBO_TILE / 4, c4 = c / 4, lanesN = UBO_TILE / c, lanesM = UBO_TILE / r;
  let decl = "", body = "", store = "", binds = "";
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c4; j++) {
      decl += `var acc${i}_${j} = vec4<f32>(0.0);\n`;
      store += `accs[${i * c4 + j}] = acc${i}_${j};\n`;
    }
  }
  for (let q = 0; q < chunks; q++) {
    binds += `@group(0) @binding(${3 + q}) var<uniform> A${q}: array<vec4<f32>, ${t * t4}>;\n`;
    binds += `@group(0) @binding(${3 + chunks + q}) var<uniform> B${q}: array<vec4<f32>, ${
      t * t4
    }>;\n`;
    let step = "";
    for (let i = 0; i < r; i++) step += `let a${i} = A${q}[(r0 + ${i}u) * ${t4}u + kq];\n`;
    for (let kk = 0; kk < 4; kk++) {
      for (let j = 0; j < c4; j++) {
        step += `let b${kk}_${j} = B${q}[(kq * 4u + ${kk}u) * ${t4}u + c0q + ${j}u];\n`;
      }
    }
    const fma = (i: number, j: number, kk: number) =>
      `acc${i}_${j} = fma(vec4<f32>(a${i}[${kk}]), b${kk}_${j}, acc${i}_${j});\n`;
    if (shape.order === "acc") {
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < c4; j++) for (let kk = 0; kk < 4; kk++) step += fma(i, j, kk);
      }
    } else {
      for (let kk = 0; kk < 4; kk++) {
        for (let i = 0; i < r; i++) for (let j = 0; j < c4; j++) step += fma(i, j, kk);
      }
    }
    body += `for (var kq = 0u; kq < ${t4}u; kq++) {\n${step}}\n`;
  }
  return /* wgsl */ `
${WGSL_MATMUL_PARAMS}
@group(0) @binding(0) var<storage, read_write> Cbuf: array<f32>;
@group(0) @binding(1) var<storage, read> biasBuf: array<f32>;
@group(0) @binding(2) var<storage, read> Pbuf: Params;
// Read once per invocation: each storage access is a per-lane loop on llvmpipe.
var<private> P: Params;
${binds}
${WGSL_MATMUL_EPILOGUE}
fn storeV(i: u32, j: u32, v: vec4<f32>) {
  if (i >= P.m) { return; }
  for (var e = 0u; e < 4u; e++) {
    let jj = j + e;
    if (jj < P.n) {
      let idx = P.cOff + i * P.ldc + jj;
      var old = 0.0;
      if (needsOld()) { old = Cbuf[idx]; }
      Cbuf[idx] = matmulEpilogue(v[e], jj, old);
    }
  }
}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  P = Pbuf;
  let l = g.x;
  ${
    shape.lanes === "cols"
      ? `let r0 = (l % ${lanesM}u) * ${r}u;\n  let c0q = (l / ${lanesM}u) * ${c4}u;`
      : `let r0 = (l / ${lanesN}u) * ${r}u;\n  let c0q = (l % ${lanesN}u) * ${c4}u;`
  }
  let i0 = P.x0 + r0;
  let j0 = P.x1 + c0q * 4u;
  ${decl}
  ${body}
  var accs = array<vec4<f32>, ${r * c4}>();
  ${store}
  // One copy of the epilogue in a loop (bound from the parameters so that it is not unrolled):
  // llvmpipe expands every storage access into a per-lane loop, and 64 inlined copies of the
  // epilogue took LLVM 15-20 s to compile.
  for (var q = 0u; q < P.x2; q++) {
    storeV(i0 + q / ${c4}u, j0 + (q % ${c4}u) * 4u, accs[q]);
  }
}`;
}

/** Geometry of a uniform-tile variant. */
export interface UboShape {
  /** Output rows and columns per invocation (divisors of 128; `c` a multiple of 4). */
  r: number;
  c: number;
  /** Invocations per workgroup. */
  wg: number;
  /** FMA order in the unrolled k-step: by k then output (default) or by accumulator. */
  order?: "k" | "acc";
  /** Consecutive invocations take consecutive column blocks (default) or row blocks. */
  lanes?: "rows" | "cols";
}

/** A uniform-tile variant with the given geometry (variants 6 and 7 are two of them). */
export function uboVariant(name: string, shape: UboShape, description: string): MatmulVariant {
  const lanes = (UBO_TILE / shape.r) * (UBO_TILE / shape.c);
  return {
    name,
    description,
    supports(gpu, call) {
      const limits = gpu.device.limits;
      if (limits.maxUniformBufferBindingSize < TILE_BYTES || maxChunks(gpu) < 1) return false;
      if (limits.maxStorageBuffersPerShaderStage < 3) return false;
      if (limits.minUniformBufferOffsetAlignment > TILE_BYTES) return false;
      const kTiles = Math.ceil(call.k / UBO_TILE);
      return splitKFlags(call.flags, Math.ceil(kTiles / maxChunks(gpu))) !== null;
    },
    record(gpu: Gpu, call: MatmulCall, run: MatmulRun) {
      const T = UBO_TILE;
      const nI = Math.ceil(call.m / T), nJ = Math.ceil(call.n / T), nK = Math.ceil(call.k / T);
      if (nI === 0 || nJ === 0) return;
      const passes = Math.max(1, Math.ceil(nK / maxChunks(gpu)));
      const chunks = Math.max(1, Math.ceil(nK / passes));
      const flags = splitKFlags(call.flags, passes);
      if (!flags) throw new Error(`${name}: cannot split k for flags ${call.flags}`);
      const scratch = packedScratch(gpu, (nI * nK + 1) * TILE_BYTES, (nK * nJ + 1) * TILE_BYTES);
      recordPack(gpu, call, run, scratch.a, scratch.b, nI, nJ, nK);
      // Tile 0 of each scratch buffer stays zero: it pads the last pass when P ∤ nK.
      const pipeline = gpu.pipeline(
        `matmul/${name}/${chunks}`,
        mainWgsl(shape, chunks),
      );
      const tableKey = [name, ...paramWords(call), passes].join();
      const table = tileTable(gpu, tableKey, () => {
        const entries: Uint32Array[] = [];
        for (let pass = 0; pass < passes; pass++) {
          for (let ib = 0; ib < nI; ib++) {
            for (let jb = 0; jb < nJ; jb++) {
              entries.push(
                paramWords({ ...call, flags: flags[pass] }, [
                  ib * T,
                  jb * T,
                  shape.r * shape.c / 4,
                ]),
              );
            }
          }
        }
        return entries;
      });
      let entry = 0;
      for (let pass = 0; pass < passes; pass++) {
        for (let ib = 0; ib < nI; ib++) {
          for (let jb = 0; jb < nJ; jb++) {
            const bindings = [call.c, call.bias, table.entry(entry++)];
            for (let q = 0; q < chunks; q++) {
              const kb = pass * chunks + q;
              const offset = kb < nK ? (1 + ib * nK + kb) * TILE_BYTES : 0;
              bindings.push({ buffer: scratch.a, offset, size: TILE_BYTES });
            }
            for (let q = 0; q < chunks; q++) {
              const kb = pass * chunks + q;
              const offset = kb < nK ? (1 + kb * nJ + jb) * TILE_BYTES : 0;
              bindings.push({ buffer: scratch.b, offset, size: TILE_BYTES });
            }
            gpu.dispatch(pipeline, bindings, [lanes / shape.wg]);
          }
        }
      }
    },
  };
}

/** Records the repacking of `call`'s A and B into tile order (B skipped when already packed). */
function recordPack(
  gpu: Gpu,
  call: MatmulCall,
  run: MatmulRun,
  packedA: GPUBuffer,
  packedB: GPUBuffer,
  nI: number,
  nJ: number,
  nK: number,
): void {
  const T = UBO_TILE;
  const vec4PerTile = (T * T) / 4;
  const vecA = !call.transA && call.lda % 4 === 0 && call.aOff % 4 === 0 && call.k % 4 === 0;
  const vecB = !call.transB && call.ldb % 4 === 0 && call.bOff % 4 === 0 && call.n % 4 === 0;
  const packA = packPipeline(gpu, call.transA, vecA);
  const packB = packPipeline(gpu, call.transB, vecB);
  for (let ib = 0; ib < nI; ib++) {
    const words = packWords(call.m, call.k, call.lda, call.aOff, nK, ib);
    const size = nK * T * T * 4;
    gpu.dispatch(packA, [
      call.a,
      { buffer: packedA, offset: TILE_BYTES + ib * size, size },
      gpu.uniform(words),
    ], [
      ...grid1d(gpu, Math.ceil((nK * vec4PerTile) / 64)),
    ] as [number, number, number]);
  }
  const bId = [call.k, call.n, call.ldb, call.bOff, call.transB, call.b.offset, call.b.size].join();
  if (run.memo.get("ubo/packedB") === call.b.buffer && run.memo.get("ubo/packedBKey") === bId) {
    return;
  }
  for (let kb = 0; kb < nK; kb++) {
    const words = packWords(call.k, call.n, call.ldb, call.bOff, nJ, kb);
    const size = nJ * T * T * 4;
    gpu.dispatch(packB, [
      call.b,
      { buffer: packedB, offset: TILE_BYTES + kb * size, size },
      gpu.uniform(words),
    ], [
      ...grid1d(gpu, Math.ceil((nJ * vec4PerTile) / 64)),
    ] as [number, number, number]);
  }
  run.memo.set("ubo/packedB", call.b.buffer);
  run.memo.set("ubo/packedBKey", bId);
}

function packWords(
  rows: number,
  cols: number,
  ld: number,
  off: number,
  tiles: number,
  block: number,
): Uint32Array {
  const words = new Uint32Array(PARAM_WORDS);
  words.set([rows, cols, ld, off, tiles, block]);
  return words;
}

/** Variant 6: packed uniform tiles, 8×16 outputs per invocation (llvmpipe/GL fast path). */
export const matmulUbo8x16: MatmulVariant = uboVariant(
  "6_ubo_8x16",
  { r: 8, c: 16, wg: 16 },
  "operands repacked into 128×128 uniform-buffer tiles, 8×16 outputs per invocation",
);

/** Variant 7: packed uniform tiles, 16×16 outputs per invocation (llvmpipe/GL fast path). */
export const matmulUbo16x16: MatmulVariant = uboVariant(
  "7_ubo_16x16",
  { r: 16, c: 16, wg: 8 },
  "operands repacked into 128×128 uniform-buffer tiles, 16×16 outputs per invocation",
);
