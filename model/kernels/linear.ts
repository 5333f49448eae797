/**
 * `y = epilogue(x · W + b)` for the language model: x `[rows, K]`, W `[K, N]` (TL's
 * right-multiplying layout) prepared once as padded column blocks ({@link prepareLinear}), with
 * fused epilogues: an activation, a gated pair `act(x·W_gate) · (x·W_in) + b`, and a soft cap
 * `c·tanh(y/c)`. Each invocation computes a TR×TC register tile (no workgroup memory: fast on
 * llvmpipe, fine on real GPUs). Large weights are split into column blocks and large
 * activations into row windows so that every binding fits `maxStorageBufferBindingSize`.
 * The plain-TS reference is {@link linearRef}.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import type { ActFn } from "../config.ts";
import { ModelError } from "../tensor.ts";
import { activation } from "../ops.ts";
import {
  dispatchN,
  packUniform,
  rowSpans,
  WGSL_ACT_FNS,
  WGSL_ARGS,
  WGSL_HEAD,
  wgslAct,
  windowOf,
} from "./_util.ts";

/** Columns of every weight block are padded to a multiple of this (covers every tile width). */
const COL_PAD = 16;

/** One column block of a prepared weight: columns `[colStart, colStart + cols)`. */
export interface LinearBlock {
  /** `[K, padCols]` weights (zero padded). */
  w: Tensor;
  /** Second weight of a gated pair (`W_in`, multiplied by act(x·w)), same layout. */
  w2: Tensor | null;
  /** `[padCols]` bias (zero padded), or null. */
  bias: Tensor | null;
  colStart: number;
  cols: number;
  padCols: number;
}

/** A weight matrix `[K, N]` on the GPU in the layout {@link linear} reads. */
export interface LinearWeight {
  K: number;
  N: number;
  blocks: LinearBlock[];
}

/** Host data of a weight: `[K, N]` row-major (`W[k * N + n]`). */
export interface HostLinear {
  W: Float32Array;
  /** Optional `[N]` bias. */
  bias?: Float32Array | null;
  /** Optional second matrix of a gated pair, `[K, N]`. */
  W2?: Float32Array | null;
}

function padBlock(src: Float32Array, K: number, N: number, c0: number, cols: number, pad: number) {
  const out = new Float32Array(K * pad);
  for (let k = 0; k < K; k++) out.set(src.subarray(k * N + c0, k * N + c0 + cols), k * pad);
  return out;
}

/**
 * Uploads `[K, N]` weights (and bias / gated partner) as column blocks that each fit one
 * storage binding, columns padded to a multiple of 16.
 */
export function prepareLinear(gpu: Gpu, host: HostLinear, K: number, N: number): LinearWeight {
  if (host.W.length !== K * N) {
    throw new ModelError(`prepareLinear: W has ${host.W.length} elements, expected ${K}×${N}`);
  }
  if (host.bias && host.bias.length !== N) {
    throw new ModelError(`prepareLinear: bias has ${host.bias.length} elements, expected ${N}`);
  }
  if (host.W2 && host.W2.length !== K * N) {
    throw new ModelError(`prepareLinear: W2 has ${host.W2.length} elements, expected ${K}×${N}`);
  }
  const maxCols = Math.floor(gpu.maxBindingSize / 4 / K / COL_PAD) * COL_PAD;
  if (maxCols === 0) {
    throw new ModelError(
      `prepareLinear: ${COL_PAD} columns of ${K} rows exceed maxStorageBufferBindingSize`,
    );
  }
  const blocks: LinearBlock[] = [];
  for (let c0 = 0; c0 < N; c0 += maxCols) {
    const cols = Math.min(maxCols, N - c0);
    const pad = Math.ceil(cols / COL_PAD) * COL_PAD;
    const upload = (a: Float32Array) =>
      Tensor.from(padBlock(a, K, N, c0, cols, pad), [K, pad], { gpu });
    let bias: Tensor | null = null;
    if (host.bias) {
      const b = new Float32Array(pad);
      b.set(host.bias.subarray(c0, c0 + cols));
      bias = Tensor.from(b, [pad], { gpu });
    }
    blocks.push({
      w: upload(host.W),
      w2: host.W2 ? upload(host.W2) : null,
      bias,
      colStart: c0,
      cols,
      padCols: pad,
    });
  }
  return { K, N, blocks };
}

/** Frees a prepared weight. */
export function disposeLinear(w: LinearWeight): void {
  for (const b of w.blocks) {
    b.w.dispose();
    b.w2?.dispose();
    b.bias?.dispose();
  }
}

/** Options of {@link linear}. */
export interface LinearOptions {
  /** Activation applied after the bias (ignored with a gated weight, which uses it on the gate). */
  act?: ActFn | "none";
  /** Soft cap c > 0: y ← c·tanh(y/c) after everything else. */
  softcap?: number;
  /** Where to write `[..., N]`. */
  out?: Tensor;
  /** Shape of the new output (same element count as `[..., N]`), e.g. `[B, P, H, d]`. */
  outShape?: readonly number[];
}

/** Register tile per invocation: TR rows × TC columns (TC ∈ {4, 8, 16}). */
export interface LinearTile {
  tr: number;
  tc: number;
}

let tileOverride: LinearTile | null = null;

/** Forces a tile shape (benchmarks); `null` restores the per-adapter default. */
export function setLinearTile(tile: LinearTile | null): void {
  if (tile && (![4, 8, 16].includes(tile.tc) || tile.tr < 1 || tile.tr > 16)) {
    throw new ModelError(`setLinearTile: tc must be 4, 8 or 16 and tr in 1..16, got ${tile}`);
  }
  tileOverride = tile;
}

function tileFor(gpu: Gpu): LinearTile {
  if (tileOverride) return tileOverride;
  // llvmpipe: more FMAs per (gathered) load wins; real GPUs: smaller tiles, more parallelism.
  return gpu.info.isFallbackAdapter || /llvmpipe|lavapipe/i.test(gpu.info.description)
    ? { tr: 8, tc: 16 }
    : { tr: 4, tc: 8 };
}

function linearWgsl(
  tr: number,
  tc: number,
  vecX: boolean,
  gated: boolean,
  act: string,
  cap: boolean,
) {
  const tc4 = tc / 4;
  const L: string[] = [];
  const accs = (p: string) => {
    for (let r = 0; r < tr; r++) {
      for (let c = 0; c < tc4; c++) L.push(`var ${p}${r}_${c} = vec4<f32>(0.0);`);
    }
  };
  accs("a");
  if (gated) accs("g");
  for (let r = 0; r < tr; r++) L.push(`let xr${r} = min(r0 + ${r}u, u.rows - 1u) * u.kx;`);
  const body: string[] = [];
  const fmas = (kk: string, aval: (r: number) => string) => {
    for (let c = 0; c < tc4; c++) {
      body.push(`let b${c} = W[${kk} * u.ldw4 + c4 + ${c}u];`);
      if (gated) body.push(`let h${c} = W2[${kk} * u.ldw4 + c4 + ${c}u];`);
    }
    for (let r = 0; r < tr; r++) {
      for (let c = 0; c < tc4; c++) {
        body.push(`a${r}_${c} = fma(vec4<f32>(${aval(r)}), b${c}, a${r}_${c});`);
        if (gated) body.push(`g${r}_${c} = fma(vec4<f32>(${aval(r)}), h${c}, g${r}_${c});`);
      }
    }
  };
  if (vecX) {
    for (let r = 0; r < tr; r++) body.push(`let x${r} = X[xr${r} + k];`);
    const comps = ["x", "y", "z", "w"];
    for (let kk = 0; kk < 4; kk++) {
      body.push("{");
      fmas(`(k * 4u + ${kk}u)`, (r) => `x${r}.${comps[kk]}`);
      body.push("}");
    }
  } else {
    for (let r = 0; r < tr; r++) body.push(`let x${r} = X[xr${r} + k];`);
    fmas("k", (r) => `x${r}`);
  }
  const store: string[] = [];
  for (let r = 0; r < tr; r++) {
    store.push(`if (r0 + ${r}u < u.rows) {`);
    for (let c = 0; c < tc4; c++) {
      for (let e = 0; e < 4; e++) {
        const comp = ["x", "y", "z", "w"][e];
        const col = `(c4 + ${c}u) * 4u + ${e}u`;
        const acc = `a${r}_${c}.${comp}`;
        let v = gated ? `${wgslAct(act as ActFn, acc)} * g${r}_${c}.${comp}` : acc;
        v = `(${v} + bias(${col}))`;
        if (!gated) v = wgslAct(act as ActFn, v);
        if (cap) v = `(u.cap * tanh_(${v} / u.cap))`;
        store.push(
          `if (${col} < u.n) { Y[(r0 + ${r}u) * u.ldo + u.colOff + ${col}] = ${v}; }`,
        );
      }
    }
    store.push("}");
  }
  return /* wgsl */ `${WGSL_HEAD}${WGSL_ACT_FNS}
struct U { rows: u32, kx: u32, kLoop: u32, n: u32, ldw4: u32, ldo: u32, colOff: u32,
  colTiles: u32, tiles: u32, hasBias: u32, cap: f32, pad: u32 }
@group(0) @binding(0) var<storage, read> X: array<${vecX ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;
${gated ? "@group(0) @binding(2) var<storage, read> W2: array<vec4<f32>>;" : ""}
@group(0) @binding(${gated ? 3 : 2}) var<storage, read> B: array<f32>;
@group(0) @binding(${gated ? 4 : 3}) var<storage, read_write> Y: array<f32>;
@group(0) @binding(${gated ? 5 : 4}) var<uniform> u: U;
fn bias(col: u32) -> f32 { return select(0.0, B[col], u.hasBias != 0u); }
@compute @workgroup_size(64)
fn main(${WGSL_ARGS}) {
  let t = wgIndex(wid, nwg) * 64u + lid;
  if (t >= u.tiles) { return; }
  let ct = t % u.colTiles;
  let r0 = (t / u.colTiles) * ${tr}u;
  let c4 = ct * ${tc4}u;
  ${L.join("\n  ")}
  for (var k = 0u; k < u.kLoop; k++) {
    ${body.join("\n    ")}
  }
  ${store.join("\n  ")}
}`;
}

/**
 * `epilogue(x · W + b)` over the last axis of `x` (`[..., K]` → `[..., N]`). With a gated
 * weight (`w2` set): `act(x·W) · (x·W2) + b`. Records dispatches only.
 */
export function linear(x: Tensor, w: LinearWeight, opts: LinearOptions = {}): Tensor {
  const op = "linear";
  if (x.disposed) throw new ModelError(`${op}: x ${x} was used after dispose()`);
  if (x.dtype !== "f32" || x.rank < 1 || x.shape[x.rank - 1] !== w.K) {
    throw new ModelError(`${op}: x ${x} must be f32 [..., ${w.K}]`);
  }
  const gpu = x.gpu;
  const rows = x.size / w.K;
  const outShape = opts.outShape ?? [...x.shape.slice(0, -1), w.N];
  const out = opts.out ?? Tensor.empty(outShape, "f32", { gpu });
  if (out.size !== rows * w.N || out.dtype !== "f32") {
    throw new ModelError(`${op}: out ${out} must be f32 with ${rows}×${w.N} elements`);
  }
  const { tr, tc } = tileFor(gpu);
  const vecX = w.K % 4 === 0;
  const act = opts.act ?? "none";
  const cap = (opts.softcap ?? 0) > 0;
  const spans = rowSpans(gpu, rows, [w.K, w.N], tr);
  for (const blk of w.blocks) {
    const gated = blk.w2 !== null;
    const key = `lm_linear_${tr}x${tc}_${vecX ? "v" : "s"}_${gated ? "g" : "p"}_${act}_${cap}`;
    const pipeline = gpu.pipeline(key, linearWgsl(tr, tc, vecX, gated, act, cap));
    const colTiles = Math.ceil(blk.cols / tc);
    for (const s of spans) {
      const tiles = Math.ceil(s.count / tr) * colTiles;
      const uni = packUniform(
        "uuuuuuuuuufu",
        s.count,
        vecX ? w.K / 4 : w.K,
        vecX ? w.K / 4 : w.K,
        blk.cols,
        blk.padCols / 4,
        w.N,
        blk.colStart,
        colTiles,
        tiles,
        blk.bias ? 1 : 0,
        opts.softcap ?? 0,
        0,
      );
      dispatchN(gpu, pipeline, [
        windowOf(x, s.start * w.K, s.count * w.K),
        blk.w,
        ...(blk.w2 ? [blk.w2] : []),
        blk.bias ?? blk.w,
        windowOf(out, s.start * w.N, s.count * w.N),
        gpu.uniform(uni),
      ], tiles);
    }
  }
  return out;
}

/**
 * Plain-TS reference of {@link linear}: `x [rows, K] · W [K, N]` with bias, activation (or the
 * gated pair with `W2`) and soft cap; float64 accumulation, float32 result.
 */
export function linearRef(
  x: Float32Array,
  rows: number,
  K: number,
  N: number,
  host: HostLinear,
  opts: { act?: ActFn | "none"; softcap?: number } = {},
): Float32Array {
  const act = !opts.act || opts.act === "none" ? (v: number) => v : activation(opts.act);
  const out = new Float32Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let a = 0, g = 0;
      for (let k = 0; k < K; k++) {
        const xv = x[r * K + k];
        a += xv * host.W[k * N + n];
        if (host.W2) g += xv * host.W2[k * N + n];
      }
      const b = host.bias ? host.bias[n] : 0;
      let v = host.W2 ? act(a) * g + b : act(a + b);
      const c = opts.softcap ?? 0;
      if (c > 0) v = c * Math.tanh(v / c);
      out[r * N + n] = v;
    }
  }
  return out;
}
