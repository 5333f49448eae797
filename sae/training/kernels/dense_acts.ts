/**
 * The shared frame of the dense architectures' fused activation kernels (each architecture's
 * WGSL and its plain-TS twin live in its folder, `sae/architectures/<name>/training.ts`):
 *
 * - a forward kernel: the activation after the encoder GEMM, one invocation per element of the
 *   `[rows, n]` encoder output (`recordDenseForward`);
 * - a backward kernel: one pass over `[rows, n]` that turns ∂L/∂f (from the ∂L/∂ŷ·W_decᵀ GEMM,
 *   in place) into ∂L/∂h, adding the sparsity-loss gradient, and accumulates per-latent partial
 *   sums (firing counts, loss terms, bias/θ/decoder-norm gradients) over a chunk of rows.
 *   Invocation (latent i, row chunk c) loops over the chunk's rows in order and writes
 *   `partials[(chunkOff + c), q, i]` (`latentPass`, `recordDenseBackward`); a column reduction
 *   over chunks follows, so no atomics are used and results are bit-for-bit repeatable.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import {
  DEFAULT_WG,
  dispatch1d,
  grid1d,
  packUniform,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";

/** WGSL tanh that never overflows (exp of a non-positive argument only). */
export const WGSL_TANH = /* wgsl */ `
fn safeTanh(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
`;

/** Inputs of an architecture's fused forward (each architecture reads the fields it needs). */
export interface DenseForwardArgs {
  /**
   * Encoder output `[rows, n]`: h (standard, jumprelu) or z = x̃·W_enc (gated); gated with
   * `split`: `[2·rows, n]`, z then z_aux = x_aux·W_enc (the aux path's own input).
   */
  h: Tensor;
  /** gated: the aux gate has its own pre-activations (second half of `h`). */
  split?: boolean;
  /** Output: f `[rows, n]` (gated: `[2·rows, n]`, f then ReLU(π_gate)). */
  out: Tensor;
  /** The architecture's per-latent parameters (jumprelu: threshold; gated: b_gate, r_mag, b_mag). */
  params?: Tensor[];
  /** standard with ghost grads: the dead mask and the exp(h)·dead output `[rows, n]`. */
  dead?: Tensor;
  expDead?: Tensor;
}

/** Per-latent parameters of a forward reference (each architecture reads its own). */
export interface DenseForwardRefParams {
  dead?: Uint32Array;
  threshold?: Float32Array;
  b_gate?: Float32Array;
  r_mag?: Float32Array;
  b_mag?: Float32Array;
  /** gated split mode: the aux gate's own encoder output `[rows, n]`. */
  hAux?: Float32Array;
}

/** Inputs of an architecture's fused backward (each architecture reads the fields it needs). */
export interface DenseBackwardArgs {
  /** standard: f `[rows, n]`; jumprelu: h; gated: z (with `split`: `[2·rows, n]`, z then z_aux). */
  acts: Tensor;
  /**
   * ∂L/∂f from the decoder GEMM (gated: `[2·rows, n]`, main then aux); ∂L/∂h on exit (first
   * `rows`; gated with `split`: ∂L/∂z then ∂L/∂z_aux, one per encoder input).
   */
  gf: Tensor;
  /** gated: the aux path has its own encoder input (see {@link DenseForwardArgs.split}). */
  split?: boolean;
  norms: Tensor;
  coef: Tensor;
  /** jumprelu: [threshold]; gated: [b_gate, r_mag, b_mag]. */
  params?: Tensor[];
  /** standard: rowData (T_t for lp ≠ 1); ghost: expDead and the ghost dot GEMM output. */
  rowData?: Tensor;
  expDead?: Tensor;
  ghostDot?: Tensor;
  /** jumprelu pre-act loss: dead mask and the step scalars (dead count at `nDeadIdx`). */
  dead?: Tensor;
  scalars?: Tensor;
  partials: Tensor;
  chunkRows: number;
  chunkOff: number;
  rOff: number;
  B: number;
  /** standard: lp, lpCol (rowData column of T); jumprelu: eps, c, preCoef, tanh, ste, preAct. */
  lp?: number;
  lpCol?: number;
  eps?: number;
  tanhScale?: number;
  preCoef?: number;
  tanh?: boolean;
  ste?: boolean;
  preAct?: boolean;
  nDeadIdx?: number;
}

/** Arguments of a backward reference (all rows at once). */
export interface DenseBackwardRefArgs {
  rows: number;
  n: number;
  B: number;
  /** standard: f; jumprelu: h; gated: z. */
  acts: Float32Array;
  /** gated split mode: z_aux, the aux gate's own encoder output (∂L/∂z_aux then follows ∂L/∂z). */
  actsAux?: Float32Array;
  /** ∂L/∂f (gated: `[2·rows, n]`). */
  gf: Float32Array;
  norms: Float32Array;
  coef: number;
  lp?: number;
  /** standard, lp ≠ 1: T per row. */
  tokenNorm?: Float32Array;
  expDead?: Float32Array;
  ghostDot?: Float32Array;
  threshold?: Float32Array;
  eps?: number;
  tanhScale?: number;
  tanh?: boolean;
  ste?: boolean;
  /** jumprelu: pre-act loss active (coefficient set and some latent dead) and its mask. */
  preCoef?: number;
  dead?: Uint32Array;
  b_gate?: Float32Array;
  r_mag?: Float32Array;
  b_mag?: Float32Array;
}

/** The fused kernels of one dense architecture, each with its plain-TS reference. */
export interface DenseKernels {
  /** Name of the pipelines (`tsae_fwd_<name>`, `tsae_bwd_<name>`). */
  name: string;
  /** Number of per-latent sums the backward accumulates per chunk. */
  q: number;
  /** Records the activation (see {@link DenseForwardArgs}). */
  forward(gpu: Gpu, a: DenseForwardArgs): void;
  /** Reference of `forward`: f (and the architecture's second output, if any). */
  forwardRef(h: Float32Array, rows: number, n: number, p: DenseForwardRefParams): Float32Array[];
  /** Records the fused backward/statistics pass (see {@link DenseBackwardArgs}). */
  backward(gpu: Gpu, a: DenseBackwardArgs): void;
  /** Reference of `backward`: ∂L/∂h `[rows, n]` and the per-latent sums `[q, n]`. */
  backwardRef(a: DenseBackwardRefArgs): { gh: Float32Array; sums: Float32Array };
}

const FWD_SPEC = "uuuu";

/** WGSL head of a forward kernel: `wgIndex` and the uniform `u` (count, n, rows, flag). */
export const FORWARD_PRELUDE = /* wgsl */ `${WGSL_WG_INDEX}
struct U { count: u32, n: u32, rows: u32, flag: u32 }`;

/** WGSL: element `k` of the invocation and its latent `i` (returns past the end). */
export const FORWARD_INDEX = /* wgsl */ `let k = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (k >= u.count) { return; }
  let i = k % u.n;`;

/** `@compute` header of a forward kernel. */
export const FORWARD_MAIN = `@compute @workgroup_size(${DEFAULT_WG})\nfn main(${WGSL_MAIN_ARGS})`;

/**
 * Records a forward kernel over `rows × n` elements; `flag` is the uniform's fourth word
 * (gated: split mode). The uniform must be the last binding.
 */
export function recordDenseForward(
  gpu: Gpu,
  name: string,
  code: string,
  rows: number,
  n: number,
  flag: number,
  bindings: (Tensor | GPUBuffer)[],
): void {
  const count = rows * n;
  const uni = gpu.uniform(packUniform(FWD_SPEC, count, n, rows, flag));
  dispatch1d(gpu, gpu.pipeline(`tsae_fwd_${name}`, code), [...bindings, uni], count);
}

const BWD_SPEC = "uuuuuuuufffffuu";

/** WGSL head of a backward kernel: `wgIndex` and the uniform `u`. */
export const BACKWARD_PRELUDE = /* wgsl */ `${WGSL_WG_INDEX}
struct U { rows: u32, n: u32, chunkRows: u32, blocks: u32, chunks: u32,
  chunkOff: u32, rOff: u32, B: u32, invB: f32, p0: f32, p1: f32, p2: f32, p3: f32,
  flags: u32, x0: u32 }`;

/**
 * WGSL `main` of a backward kernel: invocation (latent `i`, chunk) runs `pre` once, then `body`
 * for each row `r` of its chunk (element `k = r·n + i`), accumulating into `a0 … a{q−1}`, which
 * it writes to its slot of `PART` (a binding the kernel must declare).
 */
export function latentPass(q: number, pre: string, body: string): string {
  const vars = Array.from({ length: q }, (_, k) => `var a${k} = 0.0;`).join(" ");
  const writes = Array.from({ length: q }, (_, k) => `PART[pb + ${k}u * u.n] = a${k};`).join(
    "\n  ",
  );
  return `@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let w = wgIndex(wid, nwg);
  let chunk = w / u.blocks;
  let i = (w % u.blocks) * ${DEFAULT_WG}u + lid;
  if (chunk >= u.chunks || i >= u.n) { return; }
  let r0 = chunk * u.chunkRows;
  let r1 = min(u.rows, r0 + u.chunkRows);
  ${vars}
  ${pre}
  for (var r = r0; r < r1; r++) {
    let k = r * u.n + i;
    ${body}
  }
  let pb = (u.chunkOff + chunk) * ${q}u * u.n + i;
  ${writes}
}`;
}

/** The architecture-specific uniforms of a backward kernel (`u.p0 … u.p2`, `u.flags`, `u.x0`). */
export interface BackwardUniforms {
  p0?: number;
  p1?: number;
  p2?: number;
  flags?: number;
  x0?: number;
}

/**
 * Records a backward kernel over `rows` rows of `n` latents in chunks of `a.chunkRows`; the
 * uniform is appended as the last binding.
 */
export function recordDenseBackward(
  gpu: Gpu,
  name: string,
  code: string,
  a: DenseBackwardArgs,
  rows: number,
  n: number,
  uniforms: BackwardUniforms,
  bindings: (Tensor | GPUBuffer)[],
): void {
  const blocks = Math.ceil(n / DEFAULT_WG), chunks = Math.ceil(rows / a.chunkRows);
  const { p0 = 0, p1 = 0, p2 = 0, flags = 0, x0 = 0 } = uniforms;
  const uni = gpu.uniform(
    packUniform(
      BWD_SPEC,
      rows,
      n,
      a.chunkRows,
      blocks,
      chunks,
      a.chunkOff,
      a.rOff,
      a.B,
      1 / a.B,
      p0,
      p1,
      p2,
      0,
      flags,
      x0,
    ),
  );
  const p = gpu.pipeline(`tsae_bwd_${name}`, code);
  gpu.dispatch(p, [...bindings, uni], grid1d(gpu, blocks * chunks));
}
