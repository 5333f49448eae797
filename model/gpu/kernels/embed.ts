/**
 * Embedding kernels: token rows of `W_E` (optionally plus the learned position rows of
 * `W_pos`), and `W_pos` broadcast over the batch (hook_pos_embed). `W_E` larger than one
 * binding is stored as row windows ({@link EmbedTable}); tokens outside `[0, V)` give zero rows
 * (host token ids are validated before upload; token tensors by {@link checkTokenRange}).
 * References: {@link embedRef}, {@link tokenRangeFlagsRef}.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { ModelError } from "../../errors.ts";
import {
  dispatch1d,
  packUniform,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";

/** `W_E [V, D]` on the GPU as row windows `[v0, v0 + rows)` that each fit one binding. */
export interface EmbedTable {
  /** Vocabulary size. */
  V: number;
  /** Embedding width. */
  D: number;
  /** Row windows: rows `[v0, v0 + rows)` of W_E in `w`. */
  windows: { v0: number; rows: number; w: Tensor }[];
}

/** Uploads `W_E [V, D]` in row windows. */
export function prepareEmbed(gpu: Gpu, WE: Float32Array, V: number, D: number): EmbedTable {
  if (WE.length !== V * D) throw new ModelError(`prepareEmbed: W_E is not [${V}, ${D}]`);
  // Each window is a tensor of its own: no offset to align.
  const windows = spans(gpu, V, D, { aligned: [], error: ModelError }).map((s) => ({
    v0: s.start,
    rows: s.count,
    w: Tensor.from(WE.subarray(s.start * D, (s.start + s.count) * D), [s.count, D], { gpu }),
  }));
  return { V, D, windows };
}

/** Frees an embedding table. */
export function disposeEmbed(t: EmbedTable): void {
  for (const w of t.windows) w.w.dispose();
}

const GATHER_WGSL = (pos: boolean) =>
  /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, D: u32, P: u32, v0: u32, rows: u32, first: u32, V: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> T: array<i32>;
@group(0) @binding(1) var<storage, read> WE: array<f32>;
${pos ? "@group(0) @binding(2) var<storage, read> WP: array<f32>;" : ""}
@group(0) @binding(${pos ? 3 : 2}) var<storage, read_write> Y: array<f32>;
@group(0) @binding(${pos ? 4 : 3}) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let r = i / u.D;
  let c = i % u.D;
  let tok = T[r];
  let rel = tok - i32(u.v0);
  let inside = rel >= 0 && rel < i32(u.rows);
  let valid = tok >= 0 && u32(tok) < u.V;
  // Each row is written by the window holding its token; the first window writes invalid ones.
  if (!inside && !(u.first != 0u && !valid)) { return; }
  var e = 0.0;
  if (inside) { e = WE[u32(rel) * u.D + c]; }
  ${pos ? "e = e + WP[(r % u.P) * u.D + c];" : ""}
  Y[i] = e;
}`;

/**
 * `W_E[tokens]` (`[B, P]` i32 → `[B, P, D]`), plus `W_pos[p]` when `Wpos` is given.
 */
export function embedGather(tokens: Tensor, table: EmbedTable, Wpos: Tensor | null): Tensor {
  if (tokens.dtype !== "i32" || tokens.rank !== 2 || tokens.disposed) {
    throw new ModelError(`embedGather: tokens ${tokens} must be a live i32 [batch, pos]`);
  }
  const [B, P] = tokens.shape;
  const gpu = tokens.gpu;
  const out = Tensor.empty([B, P, table.D], "f32", { gpu });
  const pipeline = gpu.pipeline(`lm_embed_${Wpos !== null}`, GATHER_WGSL(Wpos !== null));
  table.windows.forEach((win, k) => {
    const uni = packUniform(
      "uuuuuuuu",
      out.size,
      table.D,
      P,
      win.v0,
      win.rows,
      k === 0 ? 1 : 0,
      table.V,
      0,
    );
    const bind = [tokens, win.w, ...(Wpos ? [Wpos] : []), out, gpu.uniform(uni)];
    dispatch1d(gpu, pipeline, bind, out.size);
  });
  return out;
}

const RANGE_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, V: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> T: array<i32>;
@group(0) @binding(1) var<storage, read_write> F: array<atomic<u32>, 2>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let tok = T[i];
  if (tok < 0 || u32(tok) >= u.V) {
    atomicAdd(&F[0], 1u);
    atomicMax(&F[1], u.n - i);
  }
}`;

/**
 * Range flags of i32 token ids `tokens` against `[0, V)`: a u32 `[2]` tensor holding the count of
 * ids outside the range and `n − i` for the first such flat index `i` (0 when none), n = size.
 * Reference: {@link tokenRangeFlagsRef}.
 */
export function tokenRangeFlags(tokens: Tensor, V: number): Tensor {
  if (tokens.dtype !== "i32" || tokens.disposed) {
    throw new ModelError(`tokenRangeFlags: tokens ${tokens} must be a live i32 tensor`);
  }
  const gpu = tokens.gpu;
  const flags = Tensor.zeros([2], "u32", { gpu });
  const pipeline = gpu.pipeline("lm_token_range", RANGE_WGSL);
  dispatch1d(gpu, pipeline, [tokens, flags, gpu.uniform([tokens.size, V, 0, 0])], tokens.size);
  return flags;
}

/** Plain-TS reference of {@link tokenRangeFlags}. */
export function tokenRangeFlagsRef(ids: ArrayLike<number>, V: number): Uint32Array {
  const n = ids.length;
  const out = new Uint32Array(2);
  for (let i = 0; i < n; i++) {
    const t = ids[i];
    if (!(t >= 0 && t < V)) {
      if (out[0] === 0) out[1] = n - i;
      out[0]++;
    }
  }
  return out;
}

/**
 * Checks i32 token ids `[B, P]` against `[0, V)` on the GPU, without a sync: the flags are read
 * with the next read-back, and that read (`toArray`, `gpu.read`, `gpu.sync`, a loss) throws a
 * {@link ModelError} naming the count and the first position of the bad ids.
 */
export function checkTokenRange(tokens: Tensor, V: number, op = "forward"): void {
  const flags = tokenRangeFlags(tokens, V);
  const [B, P] = tokens.rank === 2 ? tokens.shape : [1, tokens.size];
  const n = tokens.size, desc = `${tokens}`;
  try {
    tokens.gpu.checkLater(flags.buffer, flags.offset, 8, (bytes) => {
      const [count, rev] = new Uint32Array(bytes);
      if (count === 0) return null;
      const i = n - rev;
      return new ModelError(
        `${op}: ${count} token id${count === 1 ? "" : "s"} in ${desc} outside [0, ${V}) ` +
          `(d_vocab); the first at [${Math.floor(i / P) % B}, ${i % P}]`,
      );
    });
  } finally {
    flags.dispose();
  }
}

const POS_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, PD: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> WP: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  Y[i] = WP[i % u.PD];
}`;

/** `W_pos[0:P]` broadcast to `[B, P, D]` (hook_pos_embed). */
export function posBroadcast(Wpos: Tensor, B: number, P: number): Tensor {
  const D = Wpos.shape[Wpos.rank - 1];
  if (Wpos.size < P * D) {
    throw new ModelError(`posBroadcast: W_pos ${Wpos} has fewer than ${P} rows`);
  }
  const gpu = Wpos.gpu;
  const out = Tensor.empty([B, P, D], "f32", { gpu });
  const pipeline = gpu.pipeline("lm_pos_broadcast", POS_WGSL);
  dispatch1d(gpu, pipeline, [Wpos, out, gpu.uniform([out.size, P * D, 0, 0])], out.size);
  return out;
}

/** Plain-TS reference: `W_E[t] (+ W_pos[p])` rows for `tokens` `[B][P]`. */
export function embedRef(
  tokens: number[][],
  WE: Float32Array,
  D: number,
  Wpos: Float32Array | null,
): Float32Array {
  const B = tokens.length, P = tokens[0]?.length ?? 0;
  const out = new Float32Array(B * P * D);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < P; p++) {
      const t = tokens[b][p], o = (b * P + p) * D;
      for (let c = 0; c < D; c++) {
        out[o + c] = WE[t * D + c] + (Wpos ? Wpos[p * D + c] : 0);
      }
    }
  }
  return out;
}
