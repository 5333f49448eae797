/**
 * Helpers of the uniform-tile matmul variants: the repacking kernel (any layout → zero-padded
 * row-major T×T tiles), the per-device scratch buffers that hold the packed operands, and the
 * cached tables of per-dispatch parameters bound as storage windows.
 * @module
 */

import type { BufferBinding, Gpu } from "../../device.ts";
import { WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../../kernel.ts";
import { PARAM_WORDS } from "./common.ts";

/**
 * WGSL of the pack kernel. It reads a logical matrix X[rows, cols] stored as
 * `src[off + x·ld + y]` (or `src[off + y·ld + x]` when `trans`) and writes the window of one
 * block row of tiles: tile t holds X[block·T + xr, t·T + yc] at `xr·T + yc`, zeros outside X.
 * Parameters (u32): rows, cols, ld, off, tiles, block. `vec4` reads 4 contiguous values at once
 * (needs !trans and ld, off, cols multiples of 4).
 */
export function packWgsl(trans: boolean, vec4: boolean, tile: number): string {
  const t4 = tile / 4;
  const read = vec4
    ? `if (x < Q.rows && y < Q.cols) { v = S[(Q.off + x * Q.ld + y) / 4u]; }`
    : `for (var e = 0u; e < 4u; e++) {
      if (x < Q.rows && y + e < Q.cols) {
        v[e] = S[${trans ? "Q.off + (y + e) * Q.ld + x" : "Q.off + x * Q.ld + y + e"}];
      }
    }`;
  return /* wgsl */ `
${WGSL_WG_INDEX}
struct PackParams { rows: u32, cols: u32, ld: u32, off: u32, tiles: u32, block: u32 }
@group(0) @binding(0) var<storage, read> S: array<${vec4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read_write> D: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> Q: PackParams;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let v4 = wgIndex(wid, nwg) * 64u + lid;
  if (v4 >= Q.tiles * ${tile * t4}u) { return; }
  let t = v4 / ${tile * t4}u;
  let rem = v4 % ${tile * t4}u;
  let x = Q.block * ${tile}u + rem / ${t4}u;
  let y = t * ${tile}u + (rem % ${t4}u) * 4u;
  var v = vec4<f32>(0.0);
  ${read}
  D[v4] = v;
}`;
}

/** The cached pack pipeline for a source layout. */
export function packPipeline(gpu: Gpu, trans: boolean, vec4: boolean): GPUComputePipeline {
  return gpu.pipeline(`matmul/ubo_pack/${trans}/${vec4}`, packWgsl(trans, vec4, 128));
}

interface Scratch {
  a: GPUBuffer;
  b: GPUBuffer;
}
const scratches = new WeakMap<Gpu, Scratch>();
const SCRATCH_USAGE = GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;

function grow(gpu: Gpu, old: GPUBuffer | undefined, bytes: number): GPUBuffer {
  if (old && old.size >= bytes) return old;
  if (bytes > gpu.maxBufferSize) {
    throw new Error(
      `matmul: packed operand needs ${bytes} bytes, more than maxBufferSize ${gpu.maxBufferSize}`,
    );
  }
  if (old) {
    // Work recorded earlier may still read the old buffer: submit it before destroying.
    gpu.flush();
    old.destroy();
  }
  // New buffers are zero-filled: their first tile, never written, is the padding tile.
  return gpu.device.createBuffer({ size: bytes, usage: SCRATCH_USAGE, label: "matmul packed" });
}

/**
 * The device's packed-operand buffers, grown to at least the given sizes (growth submits the
 * pending work first, then frees the old buffers; it happens on the first large calls only).
 */
export function packedScratch(gpu: Gpu, aBytes: number, bBytes: number): Scratch {
  const old = scratches.get(gpu);
  const s = { a: grow(gpu, old?.a, aBytes), b: grow(gpu, old?.b, bBytes) };
  scratches.set(gpu, s);
  return s;
}

/** Frees the packed-operand buffers of `gpu` (they are re-created on the next call). */
export function releaseMatmulScratch(gpu: Gpu): void {
  const s = scratches.get(gpu);
  if (!s) return;
  gpu.flush();
  s.a.destroy();
  s.b.destroy();
  scratches.delete(gpu);
}

/** Per-dispatch parameter entries in one storage buffer, bound one window per dispatch. */
export interface TileTable {
  entry(index: number): BufferBinding;
}
const tables = new WeakMap<Gpu, Map<string, TileTable>>();

/** The cached table for `key`, built by `build` on first use (created mapped: no upload). */
export function tileTable(gpu: Gpu, key: string, build: () => Uint32Array[]): TileTable {
  let perGpu = tables.get(gpu);
  if (!perGpu) tables.set(gpu, perGpu = new Map());
  const cached = perGpu.get(key);
  if (cached) return cached;
  const entries = build();
  const bytes = PARAM_WORDS * 4;
  const align = gpu.bindingOffsetAlignment;
  const stride = Math.ceil(bytes / align) * align;
  const buffer = gpu.device.createBuffer({
    size: Math.max(stride * entries.length, 16),
    usage: GPUBufferUsage.STORAGE,
    mappedAtCreation: true,
    label: "matmul tile table",
  });
  const words = new Uint32Array(buffer.getMappedRange());
  entries.forEach((e, i) => words.set(e, (i * stride) / 4));
  buffer.unmap();
  const table = { entry: (i: number) => ({ buffer, offset: i * stride, size: bytes }) };
  perGpu.set(key, table);
  return table;
}
