/**
 * Small element-wise and per-head kernels of the forward pass when hooks split the fused ones:
 * an activation ({@link applyAct}), the gated-MLP combination `act(gate)·up + b`
 * ({@link gatedCombine}), per-head attention outputs without b_O (`attn.hook_result`,
 * {@link headResult}) and their sum plus b_O ({@link sumHeads}). The references are the
 * model's plain-TS ops (`activation` in model/reference/ops.ts; model/reference/attention.ts
 * for hook_result).
 * @module
 */

import { Tensor } from "../../../gpu/tensor.ts";
import type { ActFn } from "../../config.ts";
import { ModelError } from "../../errors.ts";
import {
  checkTensor,
  dispatch1d,
  packUniform,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  windowOf,
} from "../../../gpu/kernel.ts";
import { WGSL_ACT_FNS, wgslAct } from "./activation_wgsl.ts";

function live(t: Tensor, op: string, name: string) {
  if (t.disposed || t.dtype !== "f32") throw new ModelError(`${op}: ${name} ${t} must be live f32`);
}

const actWgsl = (act: ActFn) =>
  /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ACT_FNS}
struct U { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let x = X[i];
  Y[i] = ${wgslAct(act, "x")};
}`;

/** `act(x)` element-wise into a new tensor. */
export function applyAct(x: Tensor, act: ActFn): Tensor {
  live(x, "applyAct", "x");
  const gpu = x.gpu;
  const out = Tensor.empty(x.shape, "f32", { gpu });
  const pipeline = gpu.pipeline(`lm_act_${act}`, actWgsl(act));
  for (const s of spans(gpu, x.size, 1, { error: ModelError })) {
    dispatch1d(gpu, pipeline, [
      windowOf(x, s.start, s.count),
      windowOf(out, s.start, s.count),
      gpu.uniform([s.count, 0, 0, 0]),
    ], s.count);
  }
  return out;
}

/** An in-place element-wise op: an activation, or a soft cap `c·tanh(x/c)`. */
export type InPlaceOp = ActFn | { softcap: number };

const mapWgsl = (expr: string) =>
  /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ACT_FNS}
struct U { n: u32, c: f32, p1: u32, p2: u32 }
@group(0) @binding(0) var<storage, read_write> Y: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let x = Y[i];
  Y[i] = ${expr};
}`;

/** Applies `op` to every element of `x` in place (returns `x`). */
export function mapInPlace(x: Tensor, op: InPlaceOp): Tensor {
  live(x, "mapInPlace", "x");
  const gpu = x.gpu;
  const cap = typeof op === "object" ? op.softcap : 0;
  const key = typeof op === "object" ? "softcap" : op;
  const expr = typeof op === "object" ? "u.c * tanh_(x / u.c)" : wgslAct(op, "x");
  const pipeline = gpu.pipeline(`lm_map_${key}`, mapWgsl(expr));
  for (const s of spans(gpu, x.size, 1, { error: ModelError })) {
    dispatch1d(gpu, pipeline, [
      windowOf(x, s.start, s.count),
      gpu.uniform(packUniform("ufuu", s.count, cap, 0, 0)),
    ], s.count);
  }
  return x;
}

const gatedWgsl = (act: ActFn) =>
  /* wgsl */ `${WGSL_WG_INDEX}${WGSL_ACT_FNS}
struct U { n: u32, m: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> Up: array<f32>;
@group(0) @binding(2) var<storage, read> Bs: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let g = G[i];
  Y[i] = ${wgslAct(act, "g")} * Up[i] + Bs[i % u.m];
}`;

/** `act(gate) · up + bias` (TL gated MLP hook_post); gate/up `[..., M]`, bias `[M]`. */
export function gatedCombine(gate: Tensor, up: Tensor, bias: Tensor, act: ActFn): Tensor {
  live(gate, "gatedCombine", "gate");
  checkTensor(up, "gatedCombine", "up", { dtype: "f32", shape: gate.shape }, ModelError);
  const M = gate.shape[gate.rank - 1];
  checkTensor(bias, "gatedCombine", "bias", { dtype: "f32", shape: [M] }, ModelError);
  const gpu = gate.gpu;
  const out = Tensor.empty(gate.shape, "f32", { gpu });
  const pipeline = gpu.pipeline(`lm_gated_${act}`, gatedWgsl(act));
  for (const s of spans(gpu, gate.size / M, M, { error: ModelError })) {
    const w = (t: Tensor) => windowOf(t, s.start * M, s.count * M);
    dispatch1d(gpu, pipeline, [
      w(gate),
      w(up),
      bias,
      w(out),
      gpu.uniform([s.count * M, M, 0, 0]),
    ], s.count * M);
  }
  return out;
}

const RESULT_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, H: u32, d: u32, D: u32 }
@group(0) @binding(0) var<storage, read> Z: array<f32>;
@group(0) @binding(1) var<storage, read> WO: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let c = i % u.D;
  let h = (i / u.D) % u.H;
  let r = i / (u.D * u.H);
  let zo = (r * u.H + h) * u.d;
  var acc = 0.0;
  for (var e = 0u; e < u.d; e++) { acc = fma(Z[zo + e], WO[(h * u.d + e) * u.D + c], acc); }
  Y[i] = acc;
}`;

/** Per-head outputs `z_h · W_O[h]` `[B,P,H,D]` without b_O (attn.hook_result). */
export function headResult(z: Tensor, WO: Tensor): Tensor {
  if (z.rank !== 4) throw new ModelError(`headResult: z ${z} must be [B, P, H, d]`);
  const [B, P, H, d] = z.shape;
  const D = WO.size / (H * d);
  checkTensor(WO, "headResult", "W_O", { dtype: "f32", shape: [H, d, D] }, ModelError);
  const gpu = z.gpu;
  const out = Tensor.empty([B, P, H, D], "f32", { gpu });
  const pipeline = gpu.pipeline("lm_head_result", RESULT_WGSL);
  dispatch1d(gpu, pipeline, [z, WO, out, gpu.uniform([out.size, H, d, D])], out.size);
  return out;
}

const SUM_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, H: u32, D: u32, p0: u32 }
@group(0) @binding(0) var<storage, read> R: array<f32>;
@group(0) @binding(1) var<storage, read> Bs: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * 64u + lid;
  if (i >= u.n) { return; }
  let c = i % u.D;
  let r = i / u.D;
  var acc = 0.0;
  for (var h = 0u; h < u.H; h++) { acc += R[(r * u.H + h) * u.D + c]; }
  Y[i] = acc + Bs[c];
}`;

/** `Σ_h result[:, :, h, :] + b_O` → `[B, P, D]`. */
export function sumHeads(result: Tensor, bO: Tensor): Tensor {
  if (result.rank !== 4) throw new ModelError(`sumHeads: result ${result} must be [B, P, H, D]`);
  const [B, P, H, D] = result.shape;
  checkTensor(bO, "sumHeads", "b_O", { dtype: "f32", shape: [D] }, ModelError);
  const gpu = result.gpu;
  const out = Tensor.empty([B, P, D], "f32", { gpu });
  const pipeline = gpu.pipeline("lm_sum_heads", SUM_WGSL);
  dispatch1d(
    gpu,
    pipeline,
    [result, bO, out, gpu.uniform(packUniform("uuuu", out.size, H, D, 0))],
    out.size,
  );
  return out;
}
