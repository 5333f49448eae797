/**
 * What every matmul variant shares: the description of one dispatchable sub-problem
 * ({@link MatmulCall}), its uniform parameters, the WGSL parameter struct and fused epilogue,
 * and the variant interface.
 * @module
 */

import type { BufferBinding, Gpu } from "../../device.ts";
import type { MatmulActivation } from "./ref.ts";

/** Storage layout of the operands: `n` = as stored, `t` = transposed ("nt" is A·Bᵀ). */
export type MatmulLayout = "nn" | "nt" | "tn" | "tt";

/** The layout name of a `(transA, transB)` pair. */
export function layoutOf(transA: boolean, transB: boolean): MatmulLayout {
  return `${transA ? "t" : "n"}${transB ? "t" : "n"}` as MatmulLayout;
}

/** Epilogue flag: add the values already in C. */
export const FLAG_LOAD_C = 1;
/** Epilogue flag: add the bias (per column). */
export const FLAG_BIAS = 2;
/** Epilogue flag: add C before the activation (last pass of a split-k product). */
export const FLAG_PRE_ACT = 4;
/** Epilogue flags: activation code at bits 3-4 (0 none, 1 relu, 2 gelu_tanh). */
export const ACT_SHIFT = 3;

/** The activation's code in the epilogue flags. */
export function activationCode(activation: MatmulActivation): number {
  return activation === "relu" ? 1 : activation === "gelu_tanh" ? 2 : 0;
}

/**
 * One sub-problem, dispatchable as is: C[i, j] (+)= epilogue(alpha·Σₚ A(i, p)·B(p, j)) for
 * i < m, j < n, p < k, every operand a binding window plus an element offset and a row stride.
 * A(i, p) = a[aOff + i·lda + p] (or a[aOff + p·lda + i] with `transA`); B(p, j) likewise;
 * C(i, j) = c[cOff + i·ldc + j].
 */
export interface MatmulCall {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** Inner (reduction) dimension. */
  k: number;
  /** True when A is stored transposed. */
  transA: boolean;
  /** True when B is stored transposed. */
  transB: boolean;
  /** The A operand binding. */
  a: BufferBinding;
  /** Row stride of A in elements. */
  lda: number;
  /** Element offset of A within its binding. */
  aOff: number;
  /** The B operand binding. */
  b: BufferBinding;
  /** Row stride of B in elements. */
  ldb: number;
  /** Element offset of B within its binding. */
  bOff: number;
  /** The output C binding. */
  c: BufferBinding;
  /** Row stride of C in elements. */
  ldc: number;
  /** Element offset of C within its binding. */
  cOff: number;
  /** The bias binding (a 4-byte dummy when there is no bias). */
  bias: BufferBinding;
  /** Element offset of the bias within its binding. */
  biasOff: number;
  /** FLAG_* bits and the activation code. */
  flags: number;
  /** Scale applied to the product A·B. */
  alpha: number;
}

/** State shared by the sub-problems of one `matmul` call (variants may memoise in it). */
export interface MatmulRun {
  /** Per-call memo; keys are prefixed by the variant (e.g. `"ubo/packedB"`). */
  memo: Map<string, unknown>;
}

/** A matmul implementation. */
export interface MatmulVariant {
  /** Numbered name in the llm.c manner, e.g. `"3_vec4_8x8"`. */
  readonly name: string;
  /** One line on how it works and where it should be fast. */
  readonly description: string;
  /** True when this variant can run `call` on `gpu` (alignment, limits). */
  supports(gpu: Gpu, call: MatmulCall): boolean;
  /** Records the dispatches computing `call` (no flush, no readback). */
  record(gpu: Gpu, call: MatmulCall, run: MatmulRun): void;
}

/** Number of u32 words in the parameter struct (`Params` in {@link WGSL_MATMUL_PARAMS}). */
export const PARAM_WORDS = 16;

/**
 * The parameter words of `call`: m, n, k, lda, ldb, ldc, aOff, bOff, cOff, biasOff, flags,
 * alpha (f32 bits), then `extra` (up to 4 variant-specific words).
 */
export function paramWords(call: MatmulCall, extra: number[] = []): Uint32Array {
  const words = new Uint32Array(PARAM_WORDS);
  words.set([
    call.m,
    call.n,
    call.k,
    call.lda,
    call.ldb,
    call.ldc,
    call.aOff,
    call.bOff,
    call.cOff,
    call.biasOff,
    call.flags,
  ]);
  new Float32Array(words.buffer, 11 * 4, 1)[0] = call.alpha;
  words.set(extra.slice(0, 4), 12);
  return words;
}

/** WGSL: the `Params` struct matching {@link paramWords}. */
export const WGSL_MATMUL_PARAMS = /* wgsl */ `
struct Params {
  m: u32, n: u32, k: u32, lda: u32,
  ldb: u32, ldc: u32, aOff: u32, bOff: u32,
  cOff: u32, biasOff: u32, flags: u32, alphaBits: u32,
  x0: u32, x1: u32, x2: u32, x3: u32,
}
`;

/**
 * WGSL: `matmulEpilogue(acc, j, old) -> f32`, the fused epilogue (alpha, bias, activation,
 * accumulation into the old value of C). Needs `P: Params` and `biasBuf: array<f32>` in scope.
 * `old` is only read when FLAG_LOAD_C is set (callers load it lazily through `needsOld()`).
 */
export const WGSL_MATMUL_EPILOGUE = /* wgsl */ `
fn geluTanh(x: f32) -> f32 {
  // tanh saturates long before |u| = 15; clamping keeps exp-based tanh free of inf/inf.
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(u));
}
fn needsOld() -> bool {
  return (P.flags & ${FLAG_LOAD_C}u) != 0u;
}
fn matmulEpilogue(acc: f32, j: u32, old: f32) -> f32 {
  let f = P.flags;
  var v = bitcast<f32>(P.alphaBits) * acc;
  if ((f & ${FLAG_BIAS}u) != 0u) { v += biasBuf[P.biasOff + j]; }
  let loadC = (f & ${FLAG_LOAD_C}u) != 0u;
  let preAct = (f & ${FLAG_PRE_ACT}u) != 0u;
  if (loadC && preAct) { v += old; }
  let act = (f >> ${ACT_SHIFT}u) & 3u;
  if (act == 1u) { v = max(v, 0.0); } else if (act == 2u) { v = geluTanh(v); }
  if (loadC && !preAct) { v += old; }
  return v;
}
`;

/** A cached zero-filled 16-byte storage buffer, bound as the bias when there is none. */
const dummies = new WeakMap<Gpu, GPUBuffer>();
export function dummyBinding(gpu: Gpu): BufferBinding {
  let buffer = dummies.get(gpu);
  if (!buffer) {
    buffer = gpu.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    buffer.unmap();
    dummies.set(gpu, buffer);
  }
  return { buffer };
}

/** The sub-problem of rows `[r0, r0 + rows)` of `call`'s C (same bindings, shifted offsets). */
export function shiftRows(call: MatmulCall, r0: number, rows: number): MatmulCall {
  return {
    ...call,
    m: rows,
    aOff: call.aOff + (call.transA ? r0 : r0 * call.lda),
    cOff: call.cOff + r0 * call.ldc,
  };
}

/**
 * Splits `call` into row slices whose grid of `rowsPerGroup`-row workgroups fits the
 * per-dimension dispatch limit (65535 on most devices).
 */
export function rowSlices(gpu: Gpu, call: MatmulCall, rowsPerGroup: number): MatmulCall[] {
  const maxRows = gpu.maxWorkgroupsPerDimension * rowsPerGroup;
  if (call.m <= maxRows) return [call];
  const out: MatmulCall[] = [];
  for (let r = 0; r < call.m; r += maxRows) {
    out.push(shiftRows(call, r, Math.min(maxRows, call.m - r)));
  }
  return out;
}

/**
 * Epilogue flags of each of `passes` split-k passes that together compute `flags`: the first
 * pass keeps the bias and the original LOAD_C, later ones add to C, and an activation moves to
 * the last pass (applied to the completed sum). Returns null when the split is impossible: an
 * activation applied before accumulating into existing values of C.
 */
export function splitKFlags(flags: number, passes: number): number[] | null {
  if (passes === 1) return [flags];
  const act = flags & (3 << ACT_SHIFT);
  const loadC = (flags & FLAG_LOAD_C) !== 0;
  if (act && loadC && !(flags & FLAG_PRE_ACT)) return null;
  const out: number[] = [];
  for (let p = 0; p < passes; p++) {
    let f = p === 0 ? flags & (FLAG_LOAD_C | FLAG_BIAS) : FLAG_LOAD_C;
    if (p === passes - 1 && act) f |= act | FLAG_PRE_ACT | (p === 0 ? 0 : FLAG_LOAD_C);
    out.push(f);
  }
  return out;
}
