/**
 * Small per-latent and per-step kernels of the training step:
 *
 * - `stepScalars`: the dead count N_dead and the aux-k weight coef·min(N_dead / k_aux, 1) from a
 *   u32 dead mask (integer sum: exact), into `scalars [4]`.
 * - `latentFinalize`: per latent, turns the column sums of the fused backward into loss terms,
 *   firing counts and bias / θ / decoder-norm gradients, as rows of `LO [L, n]` (the rows are
 *   the architecture's {@link LatentSpec}).
 * - `decoderNormGrad`: ∂W_dec[i] += gN_i · W_dec[i] / ‖W_dec[i]‖ (chain rule through the norms).
 * - `bDecGrad`: ∂b_dec = Σ_t G_t − apply · W_enc · v (v = Σ_t ∂L/∂h_t; the vector-matrix product
 *   of the x̃ = x − b_dec path), one workgroup per output with a fixed-order tree.
 * - `assembleLosses`: one invocation writes losses, recon and l0Sum from the row and latent sums.
 *
 * References: `latent_ref.ts`.
 * @module
 */

import type { Gpu } from "../../../gpu/device.ts";
import {
  DEFAULT_WG,
  dispatch1d,
  grid1d,
  packUniform,
  uniformStruct,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../../gpu/kernel.ts";
import type { Tensor } from "../../../gpu/tensor.ts";
import { LEVEL_STRUCT, levelUniform } from "./_levels.ts";

export {
  assembleRef,
  bDecGradRef,
  decoderNormGradRef,
  finalizeRows,
  type FinCtx,
  type FinRow,
  latentFinalizeRef,
  type LatentSpec,
  levelScalarsRef,
  stepScalarsRef,
} from "./latent_ref.ts";
import type { LatentSpec } from "./latent_ref.ts";

/** Index of the dead count and of the aux-k weight in the step scalars. */
export const SC_NDEAD = 0, SC_AUXW = 1;

const SCAL_SPEC = "uff";
const SCAL = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(SCAL_SPEC, ["n", "auxCoef", "kAux"])}
@group(0) @binding(0) var<storage, read> DEAD: array<u32>;
@group(0) @binding(1) var<storage, read_write> SC: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> sh: array<u32, ${DEFAULT_WG}>;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  var c = 0u;
  for (var i = lid; i < u.n; i += ${DEFAULT_WG}u) { c += select(0u, 1u, DEAD[i] != 0u); }
  sh[lid] = c;
  workgroupBarrier();
  for (var s = ${DEFAULT_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let nd = f32(sh[0]);
    SC[${SC_NDEAD}] = nd;
    SC[${SC_AUXW}] = u.auxCoef * min(nd / u.kAux, 1.0);
    SC[2] = 0.0; SC[3] = 0.0;
  }
}`;

/**
 * Records the step scalars from `dead` (u32 `[n]`) or zeros when `dead` is null; `kAux` is the
 * aux-k width d_in // 2 (TopK family; pass 1 otherwise).
 */
export function stepScalars(
  gpu: Gpu,
  dead: Tensor | null,
  scalars: Tensor,
  auxCoef: number,
  kAux: number,
): void {
  if (!dead) {
    gpu.clear(scalars.buffer, scalars.offset, 16);
    return;
  }
  const p = gpu.pipeline("tsae_scalars", SCAL);
  gpu.dispatch(p, [dead, scalars, gpu.uniform(packUniform(SCAL_SPEC, dead.size, auxCoef, kAux))], [
    1,
  ]);
}

const LEVEL_SCAL = /* wgsl */ `${WGSL_WG_INDEX}
${LEVEL_STRUCT(["m", "auxCoef", "kAux", "pad0", "pad1", "pad2", "pad3", "pad4"])}
@group(0) @binding(0) var<storage, read> DEAD: array<u32>;
@group(0) @binding(1) var<storage, read_write> SC: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> sh: array<u32, ${DEFAULT_WG}>;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let j = wgIndex(wid, nwg);
  if (j >= u.m) { return; }
  var c = 0u;
  let lo = select(width(j - 1u), 0u, j == 0u);
  for (var i = lo + lid; i < width(j); i += ${DEFAULT_WG}u) {
    c += select(0u, 1u, DEAD[i] != 0u);
  }
  sh[lid] = c;
  workgroupBarrier();
  for (var s = ${DEFAULT_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let nd = f32(sh[0]);
    SC[4u + 2u * j] = nd;
    SC[5u + 2u * j] = bitcast<f32>(u.auxCoef) * min(nd / bitcast<f32>(u.kAux), 1.0);
  }
}`;

/**
 * Records, for each level j of `widths` (latents `[widths[j−1], widths[j])`), its dead count at
 * `scalars[4 + 2j]` and its aux-k weight coef·min(N_dead_j / k_aux, 1) at `scalars[5 + 2j]`
 * (Matryoshka's per-level aux loss); zeros when `dead` is null.
 */
export function levelScalars(
  gpu: Gpu,
  dead: Tensor | null,
  scalars: Tensor,
  auxCoef: number,
  kAux: number,
  widths: readonly number[],
): void {
  const m = widths.length;
  if (!dead) {
    gpu.clear(scalars.buffer, scalars.offset + 16, 8 * m);
    return;
  }
  const bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0];
  const uni = levelUniform([m, bits(auxCoef), bits(kAux), 0, 0, 0, 0, 0], widths as number[]);
  const p = gpu.pipeline("tsae_level_scalars", LEVEL_SCAL);
  gpu.dispatch(p, [dead, scalars, gpu.uniform(uni)], grid1d(gpu, m));
}

const FIN_SPEC = "ufffuu";
function finalizeWgsl(spec: LatentSpec): string {
  const reads = Array.from({ length: spec.q }, (_, k) => `let a${k} = CS[${k}u * u.n + i];`).join(
    " ",
  );
  const writes = spec.rows.map((r, k) => `LO[${k}u * u.n + i] = ${r.wgsl};`).join("\n  ");
  return /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(FIN_SPEC, ["n", "invB", "p0", "p1", "flags", "x0"])}
@group(0) @binding(0) var<storage, read> CS: array<f32>;
@group(0) @binding(1) var<storage, read> NORMS: array<f32>;
@group(0) @binding(2) var<storage, read> COEF: array<f32>;
@group(0) @binding(3) var<storage, read> SC: array<f32>;
@group(0) @binding(4) var<storage, read> EXTRA: array<f32>;
@group(0) @binding(5) var<storage, read_write> LO: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (i >= u.n) { return; }
  ${reads}
  let nrm = NORMS[i]; let li = COEF[0] * u.invB; let xv = EXTRA[i];
  // Keeps every binding in the auto layout whatever the architecture's rows use.
  if (u.n == 0xffffffffu) { LO[0] = SC[0] + xv; }
  ${writes}
}`;
}

/**
 * Records the per-latent finalisation of `spec` (see {@link LatentSpec} for the rows of `lo`).
 * `p0`: standard lp (1 → l1 from column sums), jumprelu pre-act coefficient; `flags` bit 0:
 * jumprelu pre-act active; `x0`: index of N_dead in `scalars`; `extra`: jumprelu threshold.
 */
export function latentFinalize(
  gpu: Gpu,
  spec: LatentSpec,
  colSums: Tensor,
  norms: Tensor,
  coef: Tensor,
  scalars: Tensor,
  extra: Tensor | null,
  lo: Tensor,
  B: number,
  p0 = 0,
  flags = 0,
): void {
  const n = norms.size;
  const p = gpu.pipeline(`tsae_fin_${spec.name}`, finalizeWgsl(spec));
  dispatch1d(gpu, p, [
    colSums,
    norms,
    coef,
    scalars,
    extra ?? norms,
    lo,
    gpu.uniform(packUniform(FIN_SPEC, n, 1 / B, p0, 0, flags, 0)),
  ], n);
}

const DNG_SPEC = "uuu";
const DNG = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(DNG_SPEC, ["n", "d", "row"])}
@group(0) @binding(0) var<storage, read_write> GW: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read> LO: array<f32>;
@group(0) @binding(3) var<storage, read> NORMS: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let k = wgIndex(wid, nwg) * ${DEFAULT_WG}u + lid;
  if (k >= u.n * u.d) { return; }
  let i = k / u.d;
  let g = LO[u.row * u.n + i];
  let nrm = NORMS[i];
  if (nrm > 0.0 && g != 0.0) { GW[k] = GW[k] + (g / nrm) * W[k]; }
}`;

/** Records ∂W_dec[i] += (gN_i / n_i)·W_dec[i] with gN = row `row` of `lo [L, n]`. */
export function decoderNormGrad(
  gpu: Gpu,
  gWDec: Tensor,
  wDec: Tensor,
  lo: Tensor,
  row: number,
  norms: Tensor,
): void {
  const [n, d] = wDec.shape;
  const p = gpu.pipeline("tsae_decnorm", DNG);
  dispatch1d(
    gpu,
    p,
    [gWDec, wDec, lo, norms, gpu.uniform(packUniform(DNG_SPEC, n, d, row))],
    n * d,
  );
}

const BDEC_SPEC = "uuuuu";
const BDEC = /* wgsl */ `${WGSL_WG_INDEX}
${uniformStruct(BDEC_SPEC, ["d", "n", "row", "apply", "transposed"])}
@group(0) @binding(0) var<storage, read> WENC: array<f32>;
@group(0) @binding(1) var<storage, read> LO: array<f32>;
@group(0) @binding(2) var<storage, read> CSG: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
var<workgroup> sh: array<f32, ${DEFAULT_WG}>;
@compute @workgroup_size(${DEFAULT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let j = wgIndex(wid, nwg);
  if (j >= u.d) { return; }
  var acc = 0.0;
  if (u.apply == 1u) {
    for (var i = lid; i < u.n; i += ${DEFAULT_WG}u) {
      let w = select(WENC[j * u.n + i], WENC[i * u.d + j], u.transposed == 1u);
      acc += w * LO[u.row * u.n + i];
    }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = ${DEFAULT_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { OUT[j] = CSG[j] - sh[0]; }
}`;

/**
 * Records ∂b_dec = `colSumG` − apply · W_enc · v, v = row `row` of `lo [L, n]`; `wEnc` is
 * `[d, n]` (SAELens) or, with `transposed`, `[n, d]`.
 */
export function bDecGrad(
  gpu: Gpu,
  wEnc: Tensor,
  transposed: boolean,
  lo: Tensor,
  row: number,
  colSumG: Tensor,
  out: Tensor,
  apply: boolean,
): void {
  const d = out.size, n = wEnc.size / d;
  const p = gpu.pipeline("tsae_bdec", BDEC);
  gpu.dispatch(p, [
    wEnc,
    lo,
    colSumG,
    out,
    gpu.uniform(packUniform(BDEC_SPEC, d, n, row, apply ? 1 : 0, transposed ? 1 : 0)),
  ], grid1d(gpu, d));
}

const ASM_SPEC = "ufff";

/**
 * Records the loss assembly: `losses = [Σ terms, ...terms]`, `recon = rowSums[0..3]`,
 * `l0Sum = latSums[1]`. Each term is a WGSL expression over `RS[k]` (row sums), `LS[k]` (latent
 * sums), `COEF[k]`, `SC[k]` and `u.invB`, `u.invBD`, `u.p0`.
 */
export function assembleLosses(
  gpu: Gpu,
  terms: string[],
  rowSums: Tensor,
  latSums: Tensor,
  coef: Tensor,
  scalars: Tensor,
  losses: Tensor,
  recon: Tensor,
  l0Sum: Tensor,
  B: number,
  d: number,
  p0 = 0,
): void {
  const body = terms.map((t, k) => `let t${k} = ${t};\n  LOSSES[${k + 1}] = t${k};`).join("\n  ");
  const total = terms.length ? terms.map((_, k) => `t${k}`).join(" + ") : "0.0";
  const code = /* wgsl */ `
${uniformStruct(ASM_SPEC, ["B", "invB", "invBD", "p0"])}
@group(0) @binding(0) var<storage, read> RS: array<f32>;
@group(0) @binding(1) var<storage, read> LS: array<f32>;
@group(0) @binding(2) var<storage, read> COEF: array<f32>;
@group(0) @binding(3) var<storage, read> SC: array<f32>;
@group(0) @binding(4) var<storage, read_write> LOSSES: array<f32>;
@group(0) @binding(5) var<storage, read_write> RECON: array<f32>;
@group(0) @binding(6) var<storage, read_write> L0: array<f32>;
@group(0) @binding(7) var<uniform> u: U;
@compute @workgroup_size(1)
fn main() {
  if (u.B == 0xffffffffu) { LOSSES[0] = COEF[0] + SC[0] + LS[0] + RS[0]; }
  ${body}
  LOSSES[0] = ${total};
  for (var k = 0u; k < 4u; k++) { RECON[k] = RS[k]; }
  L0[0] = LS[1];
}`;
  const p = gpu.pipeline(`tsae_asm_${terms.join("|")}`, code);
  gpu.dispatch(p, [
    rowSums,
    latSums,
    coef,
    scalars,
    losses,
    recon,
    l0Sum,
    gpu.uniform(packUniform(ASM_SPEC, B, 1 / B, 1 / (B * d), p0)),
  ], [1]);
}
