/**
 * Next-token cross-entropy per position on the GPU (TL `lm_cross_entropy_loss(per_token=True)`):
 * loss[b, p] = logsumexp(logits[b, p]) − logits[b, p, t[b, p+1]] for p < P−1. One workgroup per
 * row; logits larger than one binding are processed in row windows. Reference:
 * `lmCrossEntropyLoss` (model/reference/loss.ts).
 * @module
 */

import {
  checkTensor,
  grid1d,
  packUniform,
  spans,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
  windowOf,
} from "../../../gpu/kernel.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { ModelError } from "../../errors.ts";

const WGN = 64;

const LOSS_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { rows: u32, V: u32, P: u32, rowStart: u32 }
@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read> T: array<i32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> sh: array<f32, ${WGN}>;
${wgslWorkgroupReduce("reduceMax", WGN, "max(a, b)")}
${wgslWorkgroupReduce("reduceSum", WGN, "a + b")}
@compute @workgroup_size(${WGN})
fn main(${WGSL_MAIN_ARGS}) {
  let lr = wgIndex(wid, nwg);
  if (lr >= u.rows) { return; }
  let row = u.rowStart + lr;           // global row b·P + p
  let p = row % u.P;
  let o = lr * u.V;
  var m = L[o];
  for (var j = lid; j < u.V; j += ${WGN}u) { m = max(m, L[o + j]); }
  m = reduceMax(lid, m);
  var s = 0.0;
  for (var j = lid; j < u.V; j += ${WGN}u) { s += exp(L[o + j] - m); }
  s = reduceSum(lid, s);
  if (lid == 0u && p + 1u < u.P) {
    let b = row / u.P;
    let t = u32(clamp(T[row + 1u], 0, i32(u.V) - 1));
    Y[b * (u.P - 1u) + p] = m + log(s) - L[o + t];
  }
}`;

/** Per-token losses `[B, P−1]` from logits `[B, P, V]` and i32 tokens `[B, P]`. */
export function lmLossPerToken(logits: Tensor, tokens: Tensor): Tensor {
  if (logits.rank !== 3) throw new ModelError(`lmLossPerToken: logits ${logits} must be [B,P,V]`);
  const [B, P, V] = logits.shape;
  checkTensor(tokens, "lmLossPerToken", "tokens", { dtype: "i32", shape: [B, P] }, ModelError);
  const gpu = logits.gpu;
  const out = Tensor.zeros([B, Math.max(P - 1, 0)], "f32", { gpu });
  const pipeline = gpu.pipeline("lm_loss_per_token", LOSS_WGSL);
  for (const s of spans(gpu, B * P, V, { error: ModelError })) {
    gpu.dispatch(pipeline, [
      windowOf(logits, s.start * V, s.count * V),
      tokens,
      out,
      gpu.uniform(packUniform("uuuu", s.count, V, P, s.start)),
    ], grid1d(gpu, s.count));
  }
  return out;
}
