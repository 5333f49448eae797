/**
 * A counting sort of the (row, slot) entries of a sparse index list `idx [rows, k]` by latent id,
 * on the GPU, deterministic and without atomics: rows are cut into B blocks; one invocation per
 * block counts its latents (histogram `H [B, dSae]`), one per latent turns its column of H into
 * running offsets (block order), a multi-level exclusive scan over latents gives each latent's
 * start, and one invocation per block places its entries in (row, slot) order. Within a latent
 * the entries are therefore in (row, slot) order: the scatter-adds of `scatter.ts` sum in a
 * fixed order and give bit-identical results run after run. One sort serves every scatter of a
 * training step (∂W_dec, ∂W_enc, ∂b_enc, firing counts).
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import {
  checkInt,
  checkTensor,
  CPU_LOOP_BUDGET,
  grid1d,
  packUniform,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { WG } from "./_radix.ts";

export { type CountingSortRef, countingSortRef } from "./scatter_ref.ts";

const WGSL_U = /* wgsl */ `
struct U { rows: u32, k: u32, dSae: u32, blocks: u32, rowsPerBlock: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> u: U;
`;

/** Per block: H[b, j] += 1 for each valid entry. Bindings: U, IDX, H. */
const HIST = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_U}
@group(0) @binding(1) var<storage, read> IDX: array<i32>;
@group(0) @binding(2) var<storage, read_write> H: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let b = wgIndex(wid, nwg) * ${WG}u + lid;
  if (b >= u.blocks) { return; }
  let end = min((b + 1u) * u.rowsPerBlock, u.rows) * u.k;
  for (var p = b * u.rowsPerBlock * u.k; p < end; p++) {
    let j = IDX[p];
    if (j >= 0 && u32(j) < u.dSae) { H[b * u.dSae + u32(j)] += 1u; }
  }
}`;

/** Per latent: H[·, j] → running offsets over blocks; CNT[j] = total. Bindings: U, H, CNT. */
const COLUMNS = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_U}
@group(0) @binding(1) var<storage, read_write> H: array<u32>;
@group(0) @binding(2) var<storage, read_write> CNT: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let j = wgIndex(wid, nwg) * ${WG}u + lid;
  if (j >= u.dSae) { return; }
  var run = 0u;
  for (var b = 0u; b < u.blocks; b++) {
    let c = H[b * u.dSae + j];
    H[b * u.dSae + j] = run;
    run += c;
  }
  CNT[j] = run;
}`;

/** Per block: ORDER[OFF[j] + H[b, j]++] = p in (row, slot) order. Bindings: U, IDX, H, OFF, ORDER. */
const PLACE = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_U}
@group(0) @binding(1) var<storage, read> IDX: array<i32>;
@group(0) @binding(2) var<storage, read_write> H: array<u32>;
@group(0) @binding(3) var<storage, read> OFF: array<u32>;
@group(0) @binding(4) var<storage, read_write> ORDER: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let b = wgIndex(wid, nwg) * ${WG}u + lid;
  if (b >= u.blocks) { return; }
  let end = min((b + 1u) * u.rowsPerBlock, u.rows) * u.k;
  for (var p = b * u.rowsPerBlock * u.k; p < end; p++) {
    let j = IDX[p];
    if (j >= 0 && u32(j) < u.dSae) {
      let h = b * u.dSae + u32(j);
      ORDER[OFF[j] + H[h]] = p;
      H[h] += 1u;
    }
  }
}`;

/** Elements per chunk of the scan (one invocation scans one chunk). */
const SCAN_CHUNK = 1024;

/**
 * Per chunk: OUT[i] = exclusive prefix within the chunk of IN (IN[i] = 0 for i ≥ a, the input
 * length), SUMS[chunk] = chunk total. a = input length, b = output length. Bindings: U, IN, OUT, SUMS.
 */
const SCAN_CHUNKS = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_U}
@group(0) @binding(1) var<storage, read> IN: array<u32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(3) var<storage, read_write> SUMS: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let c = wgIndex(wid, nwg) * ${WG}u + lid;
  let start = c * ${SCAN_CHUNK}u;
  if (start >= u.b) { return; }
  var run = 0u;
  for (var i = start; i < min(start + ${SCAN_CHUNK}u, u.b); i++) {
    OUT[i] = run;
    if (i < u.a) { run += IN[i]; }
  }
  SUMS[c] = run;
}`;

/** OUT[i] += BASE[i / chunk] for i < b. Bindings: U, OUT, BASE. */
const SCAN_ADD = /* wgsl */ `${WGSL_WG_INDEX}${WGSL_U}
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(2) var<storage, read> BASE: array<u32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${WG}u + lid;
  if (i >= u.b) { return; }
  OUT[i] += BASE[i / ${SCAN_CHUNK}u];
}`;

function uni(gpu: Gpu, ...v: number[]): GPUBuffer {
  const a = new Uint32Array(8);
  a.set(v.map((x) => x >>> 0));
  return gpu.uniform(a);
}

/**
 * Records an exclusive prefix sum of `input` (u32, first `n` elements) into `out` (u32, `n + 1`
 * elements: `out[n]` is the total), with as many levels as needed (1024 elements per chunk).
 */
export function exclusiveScanU32(input: Tensor, n: number, out: Tensor): void {
  const gpu = input.gpu;
  checkInt(out.size, n + 1, Infinity, "exclusiveScanU32", "out.size");
  const len = n + 1;
  const chunks = Math.ceil(len / SCAN_CHUNK);
  const sums = Tensor.empty([chunks], "u32", { gpu });
  gpu.dispatch(
    gpu.pipeline("scan_chunks", SCAN_CHUNKS),
    [uni(gpu, 0, 0, 0, 0, 0, n, len), input, out, sums],
    grid1d(gpu, Math.ceil(chunks / WG)),
  );
  if (chunks > 1) {
    const base = Tensor.empty([chunks + 1], "u32", { gpu });
    exclusiveScanU32(sums, chunks, base);
    gpu.dispatch(
      gpu.pipeline("scan_add", SCAN_ADD),
      [uni(gpu, 0, 0, 0, 0, 0, 0, len), out, base],
      grid1d(gpu, Math.ceil(len / WG)),
    );
    base.dispose();
  }
  sums.dispose();
}

/** Options of {@link CountingSort}. */
export interface CountingSortOptions {
  /**
   * The caller guarantees that no row names a latent twice (true for top-k outputs): a latent
   * then has at most `rows` entries, which bounds the scatter loops (see `scatter.ts`).
   */
  distinctPerRow?: boolean;
  /** Testing: number of row blocks (default: ~256, within memory and loop limits). */
  blocks?: number;
}

/**
 * The slots of `idx [rows, k]` (i32 latent ids; ids outside `[0, dSae)` such as −1 are left
 * out) sorted by latent, stably. Construction records the GPU work; `dispose()` frees it.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { readAll, Tensor } from "../tensor.ts";
 * import { CountingSort } from "./counting_sort.ts";
 * await getGpu();
 * using idx = Tensor.from(new Int32Array([2, 0, 2, -1]), [2, 2]);
 * using sort = new CountingSort(idx, 3);
 * const [offsets, order] = await readAll([sort.offsets, sort.order]);
 * // offsets [0, 1, 1, 3]; order [1, 0, 2] (slots r·k + s)
 * if (offsets[3] !== 3 || order[2] !== 2) throw new Error("unexpected");
 * ```
 */
export class CountingSort {
  /** u32 `[dSae + 1]`: entries of latent j are `order[offsets[j] .. offsets[j + 1])`. */
  readonly offsets: Tensor<"u32">;
  /** u32 `[rows·k]`: flat slots `r·k + s` by latent (the first `offsets[dSae]` are used). */
  readonly order: Tensor<"u32">;
  /** u32 `[dSae]`: entries per latent (firing counts). */
  readonly counts: Tensor<"u32">;
  /** Rows and slots of the sorted index list. */
  readonly rows: number;
  /** Slots per row. */
  readonly k: number;
  /** Number of latents. */
  readonly dSae: number;
  /** Upper bound on the entries of one latent (`rows`, or `rows·k` without `distinctPerRow`). */
  readonly maxSegment: number;

  /** Sorts `idx [rows, k]` (i32) over `dSae` latents. */
  constructor(idx: Tensor, dSae: number, options: CountingSortOptions = {}) {
    const op = "CountingSort";
    checkTensor(idx, op, "idx", { dtype: "i32", rank: 2 });
    checkInt(dSae, 1, 0x7fffffff, op, "dSae");
    const gpu = idx.gpu;
    const [rows, k] = idx.shape;
    this.rows = rows;
    this.k = k;
    this.dSae = dSae;
    this.maxSegment = options.distinctPerRow ? rows : rows * k;
    const entryBudget = CPU_LOOP_BUDGET >> 2;
    if (k > entryBudget) throw new GpuError(`${op}: k is ${k}, expected at most ${entryBudget}`);
    const minBlocks = Math.ceil((rows * k) / entryBudget);
    const memBlocks = Math.max(1, Math.floor((1 << 23) / dSae));
    const blocks = Math.max(
      1,
      Math.min(rows, options.blocks ?? Math.max(minBlocks, Math.min(256, memBlocks))),
    );
    const rowsPerBlock = Math.ceil(rows / blocks);
    const used = Math.ceil(rows / rowsPerBlock);
    if (used * dSae * 4 > gpu.maxBindingSize) {
      throw new GpuError(
        `${op}: the block histogram [${used}, ${dSae}] exceeds maxStorageBufferBindingSize ` +
          `(${gpu.maxBindingSize} bytes); sort fewer rows at a time`,
      );
    }
    this.offsets = Tensor.empty([dSae + 1], "u32", { gpu }) as Tensor<"u32">;
    this.order = Tensor.empty([Math.max(1, rows * k)], "u32", { gpu }) as Tensor<"u32">;
    this.counts = Tensor.empty([dSae], "u32", { gpu }) as Tensor<"u32">;
    if (idx.size * 4 > gpu.maxBindingSize) {
      throw new GpuError(`${op}: idx ${idx} exceeds maxStorageBufferBindingSize`);
    }
    const h = Tensor.zeros([used * dSae], "u32", { gpu });
    const u = gpu.uniform(packUniform("uuuuu", rows, k, dSae, used, rowsPerBlock));
    const perBlock = grid1d(gpu, Math.ceil(used / WG));
    gpu.dispatch(gpu.pipeline("csort_hist", HIST), [u, idx, h], perBlock);
    gpu.dispatch(
      gpu.pipeline("csort_columns", COLUMNS),
      [u, h, this.counts],
      grid1d(gpu, Math.ceil(dSae / WG)),
    );
    exclusiveScanU32(this.counts, dSae, this.offsets);
    gpu.dispatch(
      gpu.pipeline("csort_place", PLACE),
      [u, idx, h, this.offsets, this.order],
      perBlock,
    );
    h.dispose();
  }

  /** Frees the GPU buffers. */
  dispose(): void {
    this.offsets.dispose();
    this.order.dispose();
    this.counts.dispose();
  }

  /** `using sort = new CountingSort(…)` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
