/**
 * Fused activation kernels of the dense architectures (standard, jumprelu, gated):
 *
 * - `denseForward`: the activation after the encoder GEMM (jumprelu f = h·1[h > θ]; gated f and
 *   ReLU(π_gate) stacked as `[2R, n]` for one decoder GEMM — with `split`, the aux gate's
 *   π_gate comes from its own encoder output, as SAELens recomputes it from the un-normalised
 *   input under run-time normalisation; standard with ghost grads: ReLU and exp(h) on dead
 *   latents).
 * - `denseBackward`: one pass over `[R, n]` that turns ∂L/∂f (from the G·W_decᵀ GEMM, in place)
 *   into ∂L/∂h (the encoder's upstream gradient), adding the sparsity-loss gradient, and
 *   accumulates per-latent partial sums (firing counts, loss terms, bias/θ/decoder-norm
 *   gradients) over a chunk of rows. Invocation (latent i, row chunk c) loops over the chunk's
 *   rows in order and writes `partials[(chunkOff + c), q, i]`; a column reduction over chunks
 *   follows, so no atomics are used and results are bit-for-bit repeatable.
 *
 * References: `dense_acts_ref.ts`.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import { grid1d } from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import { dispatchUnits, pack, TrainSaeError, WG, WGSL_ARGS, WGSL_HEAD } from "./_util.ts";

export {
  DENSE_Q,
  denseBackwardRef,
  type DenseBackwardRefArgs,
  denseForwardRef,
} from "./dense_acts_ref.ts";
import { DENSE_Q } from "./dense_acts_ref.ts";

/** Dense architectures these kernels implement. */
export type DenseArch = "standard" | "jumprelu" | "gated";

/** WGSL tanh that never overflows (exp of a non-positive argument only). */
export const WGSL_TANH = /* wgsl */ `
fn safeTanh(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
`;

const FWD_SPEC = "uuuu";
const FWD_STRUCT = "struct U { count: u32, n: u32, rows: u32, flag: u32 }";

function forwardWgsl(arch: DenseArch): string {
  const idx = `let k = wgIndex(wid, nwg) * ${WG}u + lid;
  if (k >= u.count) { return; }
  let i = k % u.n;`;
  if (arch === "standard") {
    return /* wgsl */ `${WGSL_HEAD}${FWD_STRUCT}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> DEAD: array<u32>;
@group(0) @binding(2) var<storage, read_write> F: array<f32>;
@group(0) @binding(3) var<storage, read_write> ED: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  ${idx}
  let h = H[k];
  F[k] = max(h, 0.0);
  ED[k] = select(0.0, exp(h), DEAD[i] != 0u);
}`;
  }
  if (arch === "jumprelu") {
    return /* wgsl */ `${WGSL_HEAD}${FWD_STRUCT}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> THR: array<f32>;
@group(0) @binding(2) var<storage, read_write> F: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  ${idx}
  let h = H[k];
  F[k] = select(0.0, h, h > max(THR[i], 0.0));
}`;
  }
  return /* wgsl */ `${WGSL_HEAD}${FWD_STRUCT}
@group(0) @binding(0) var<storage, read> Z: array<f32>;
@group(0) @binding(1) var<storage, read> BG: array<f32>;
@group(0) @binding(2) var<storage, read> RM: array<f32>;
@group(0) @binding(3) var<storage, read> BM: array<f32>;
@group(0) @binding(4) var<storage, read_write> FA: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  ${idx}
  let z = Z[k];
  let pg = z + BG[i];
  let pm = z * exp(RM[i]) + BM[i];
  FA[k] = select(0.0, pm, pg > 0.0 && pm > 0.0);
  // Split: the aux gate reads its own pre-activation (un-normalised input) from the second half.
  var pa = pg;
  if (u.flag == 1u) { pa = Z[k + u.count] + BG[i]; }
  FA[k + u.count] = max(pa, 0.0);
}`;
}

/** Inputs of {@link denseForward}, by architecture. */
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
  /** jumprelu: threshold; gated: b_gate, r_mag, b_mag. */
  params?: Tensor[];
  /** standard with ghost grads: the dead mask and the exp(h)·dead output `[rows, n]`. */
  dead?: Tensor;
  expDead?: Tensor;
}

/** Records the architecture's activation (see the module doc). */
export function denseForward(gpu: Gpu, arch: DenseArch, a: DenseForwardArgs): void {
  const split = arch === "gated" && !!a.split;
  const [hRows, n] = a.h.shape;
  const rows = split ? hRows / 2 : hRows;
  const count = rows * n;
  const uni = gpu.uniform(pack(FWD_SPEC, count, n, rows, split ? 1 : 0));
  const p = gpu.pipeline(`tsae_fwd_${arch}`, forwardWgsl(arch));
  let bindings: (Tensor | GPUBuffer)[];
  if (arch === "standard") {
    if (!a.dead || !a.expDead) {
      throw new TrainSaeError("denseForward(standard): needs dead and expDead (ghost grads)");
    }
    bindings = [a.h, a.dead, a.out, a.expDead, uni];
  } else if (arch === "jumprelu") bindings = [a.h, a.params![0], a.out, uni];
  else bindings = [a.h, ...a.params!, a.out, uni];
  dispatchUnits(gpu, p, count, bindings);
}

const BWD_SPEC = "uuuuuuuufffffuu";
const BWD_STRUCT = `struct U { rows: u32, n: u32, chunkRows: u32, blocks: u32, chunks: u32,
  chunkOff: u32, rOff: u32, B: u32, invB: f32, p0: f32, p1: f32, p2: f32, p3: f32,
  flags: u32, x0: u32 }`;

function accumulate(q: number, pre: string, body: string): string {
  const vars = Array.from({ length: q }, (_, k) => `var a${k} = 0.0;`).join(" ");
  const writes = Array.from({ length: q }, (_, k) => `PART[pb + ${k}u * u.n] = a${k};`).join(
    "\n  ",
  );
  return `@compute @workgroup_size(${WG})
fn main(${WGSL_ARGS}) {
  let w = wgIndex(wid, nwg);
  let chunk = w / u.blocks;
  let i = (w % u.blocks) * ${WG}u + lid;
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

function backwardWgsl(arch: DenseArch): string {
  const q = DENSE_Q[arch];
  if (arch === "standard") {
    return /* wgsl */ `${WGSL_HEAD}${BWD_STRUCT}
@group(0) @binding(0) var<storage, read> F: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> ED: array<f32>;
@group(0) @binding(3) var<storage, read> GD: array<f32>;
@group(0) @binding(4) var<storage, read> NORMS: array<f32>;
@group(0) @binding(5) var<storage, read> COEF: array<f32>;
@group(0) @binding(6) var<storage, read> RD: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
      accumulate(
        q,
        `let li = COEF[0] * u.invB; let nrm = NORMS[i];`,
        `let f = F[k];
    var gh = 0.0;
    if (f > 0.0) {
      var wt = 1.0;
      if ((u.flags & 1u) == 0u) { wt = pow(f * nrm / RD[u.x0 * u.B + u.rOff + r], u.p0 - 1.0); }
      gh = GF[k] + li * wt * nrm;
      a0 += 1.0; a1 += wt * f;
    }
    if ((u.flags & 2u) != 0u) { gh += ED[k] * GD[k]; }
    GF[k] = gh; a2 += gh;`,
      )
    }`;
  }
  if (arch === "jumprelu") {
    return /* wgsl */ `${WGSL_HEAD}${WGSL_TANH}${BWD_STRUCT}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> THR: array<f32>;
@group(0) @binding(3) var<storage, read> NORMS: array<f32>;
@group(0) @binding(4) var<storage, read> COEF: array<f32>;
@group(0) @binding(5) var<storage, read> DEAD: array<u32>;
@group(0) @binding(6) var<storage, read> SC: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
      accumulate(
        q,
        `let li = COEF[0] * u.invB; let th = max(THR[i], 0.0); let nrm = NORMS[i];
  let eps = u.p0; let c = u.p1; let pc = u.p2 * u.invB;
  let tanhMode = (u.flags & 1u) != 0u; let ste = (u.flags & 2u) != 0u;
  let dead = (u.flags & 4u) != 0u && DEAD[i] != 0u && SC[u.x0] > 0.0;
  let gStep = select(li, 0.0, tanhMode);`,
        `let h = H[k]; var g = GF[k];
    let on = h > th;
    let f = select(0.0, h, on);
    if (tanhMode) {
      let t = safeTanh(c * f * nrm);
      let dd = li * c * (1.0 - t * t);
      g += dd * nrm; a4 += dd * f; a1 += t;
    } else if (on) { a1 += 1.0; }
    var gh = select(0.0, g, on);
    let uu = (h - th) / eps;
    if (uu > -0.5 && uu < 0.5) {
      let tg = (th / eps) * g + gStep / eps;
      a3 -= tg;
      if (ste) { gh += tg; }
    }
    if (dead) {
      let u2 = th - h;
      if (u2 > 0.0) { let wp = pc * nrm; a3 += wp; gh -= wp; a4 += pc * u2; a2 += u2; }
    }
    if (on) { a0 += 1.0; }
    GF[k] = gh; a5 += gh;`,
      )
    }`;
  }
  return /* wgsl */ `${WGSL_HEAD}${BWD_STRUCT}
@group(0) @binding(0) var<storage, read> Z: array<f32>;
@group(0) @binding(1) var<storage, read_write> GF: array<f32>;
@group(0) @binding(2) var<storage, read> BG: array<f32>;
@group(0) @binding(3) var<storage, read> RM: array<f32>;
@group(0) @binding(4) var<storage, read> BM: array<f32>;
@group(0) @binding(5) var<storage, read> NORMS: array<f32>;
@group(0) @binding(6) var<storage, read> COEF: array<f32>;
@group(0) @binding(7) var<storage, read_write> PART: array<f32>;
@group(0) @binding(8) var<uniform> u: U;
${
    accumulate(
      q,
      `let li = COEF[0] * u.invB; let bg = BG[i]; let e = exp(RM[i]); let bm = BM[i];
  let nrm = NORMS[i]; let half = u.rows * u.n; let split = (u.flags & 1u) != 0u;`,
      `let z = Z[k];
    let pg = z + bg;
    let pm = z * e + bm;
    let g = GF[k];
    var gz = 0.0;
    if (pg > 0.0 && pm > 0.0) { a0 += 1.0; a2 += g; a3 += g * z * e; gz = g * e; }
    var pa = pg;
    if (split) { pa = Z[k + half] + bg; }
    var gg = 0.0;
    if (pa > 0.0) { gg = GF[k + half] + li * nrm; a1 += pa; }
    a4 += gg;
    let tot = gz + gg;
    a5 += tot;
    if (split) { GF[k] = gz; GF[k + half] = gg; } else { GF[k] = tot; }`,
    )
  }`;
}

/** Inputs of {@link denseBackward}. */
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

/** Records the fused backward/statistics pass (see the module doc). */
export function denseBackward(gpu: Gpu, arch: DenseArch, a: DenseBackwardArgs): void {
  const split = arch === "gated" && !!a.split;
  const [aRows, n] = a.acts.shape;
  const rows = split ? aRows / 2 : aRows;
  const blocks = Math.ceil(n / WG), chunks = Math.ceil(rows / a.chunkRows);
  let p0 = 0, p1 = 0, p2 = 0, flags = 0, x0 = 0;
  if (arch === "standard") {
    p0 = a.lp ?? 1;
    flags = (p0 === 1 ? 1 : 0) | (a.expDead ? 2 : 0);
    x0 = a.lpCol ?? 0;
  } else if (arch === "jumprelu") {
    p0 = a.eps!;
    p1 = a.tanhScale!;
    p2 = a.preCoef ?? 0;
    flags = (a.tanh ? 1 : 0) | (a.ste ? 2 : 0) | (a.preAct ? 4 : 0);
    x0 = a.nDeadIdx ?? 0;
  } else flags = split ? 1 : 0;
  const uni = gpu.uniform(
    pack(
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
  const p = gpu.pipeline(`tsae_bwd_${arch}`, backwardWgsl(arch));
  let bindings: (Tensor | GPUBuffer)[];
  if (arch === "standard") {
    const ed = a.expDead ?? a.acts, gd = a.ghostDot ?? a.acts;
    bindings = [a.acts, a.gf, ed, gd, a.norms, a.coef, a.rowData ?? a.norms, a.partials, uni];
  } else if (arch === "jumprelu") {
    bindings = [
      a.acts,
      a.gf,
      a.params![0],
      a.norms,
      a.coef,
      a.dead ?? a.norms,
      a.scalars ?? a.norms,
      a.partials,
      uni,
    ];
  } else bindings = [a.acts, a.gf, ...a.params!, a.norms, a.coef, a.partials, uni];
  gpu.dispatch(p, bindings, grid1d(gpu, blocks * chunks));
}
