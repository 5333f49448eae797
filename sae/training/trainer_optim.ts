/**
 * The trainer's optimiser step on the GPU (spec §3.11): global L2 gradient-norm clipping at 1.0
 * (torch `clip_grad_norm_`: per-parameter norms, total = ‖norms‖, coef = min(1, 1/(total+1e-6)))
 * fused into Adam (torch's single-tensor algorithm, no weight decay), which skips the update —
 * parameters and moments untouched — when the trainer's bad-step flag is set. Per-step scalars
 * (step size lr/(1−β1^t), √(1−β2^t)) come from the trainer's per-step params buffer, so a step
 * needs no upload of its own. References: {@link clipCoefRef}, {@link adamStepRef}.
 * @module
 */

import type { BufferBinding, Gpu } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import {
  dispatchFlat,
  FLAT_WG,
  packUniform,
  WGSL_MAIN_ARGS,
  WGSL_WG,
} from "../../gpu/kernels/_op_util.ts";
import { reduceAll } from "../../gpu/kernels/reduce.ts";
import { TrainingError } from "../../training/errors.ts";
import type { AdamState } from "./state.ts";

/** f32 words of the Adam region of the per-step params buffer. */
export const ADAM_PARAM_WORDS = 8;

/** Maximum global gradient norm (hard-coded in SAELens). */
export const MAX_GRAD_NORM = 1.0;

/** Adam hyper-parameters (SAELens: betas from the config, eps 1e-8, no weight decay). */
export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps?: number;
}

const CLIP_WGSL = /* wgsl */ `
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> SUMSQ: array<f32>;
@group(0) @binding(1) var<storage, read_write> COEF: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(1)
fn main() {
  var total = 0.0;
  for (var i = 0u; i < u.n; i = i + 1u) {
    let norm = sqrt(SUMSQ[i]);
    total = total + norm * norm;
  }
  let clip = ${MAX_GRAD_NORM.toFixed(1)} / (sqrt(total) + 1e-6);
  COEF[0] = min(clip, 1.0);
  COEF[1] = sqrt(total);
}`;

const ADAM_WGSL = /* wgsl */ `${WGSL_WG}
struct U { n: u32, adamWord: u32 }
@group(0) @binding(0) var<storage, read_write> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> M: array<f32>;
@group(0) @binding(2) var<storage, read_write> V: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<f32>;
@group(0) @binding(5) var<storage, read> COEF: array<f32>;
@group(0) @binding(6) var<storage, read> FLAG: array<u32>;
@group(0) @binding(7) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  let i = wgIndex(wid, nwg) * ${FLAT_WG}u + lid;
  if (i >= u.n) { return; }
  if (FLAG[0] != 0xffffffffu || FLAG[1] != 0xffffffffu) { return; }
  let a = u.adamWord;
  let stepSize = S[a];
  let bc2Sqrt = S[a + 1u];
  let oneMinusBeta1 = S[a + 2u];
  let beta2 = S[a + 3u];
  let oneMinusBeta2 = S[a + 4u];
  let eps = S[a + 5u];
  let g = G[i] * COEF[0];
  let m = M[i] + oneMinusBeta1 * (g - M[i]);
  let v = V[i] * beta2 + oneMinusBeta2 * (g * g);
  M[i] = m;
  V[i] = v;
  P[i] = P[i] - stepSize * (m / (sqrt(v) / bc2Sqrt + eps));
}`;

/**
 * Host values of the Adam region for optimiser step `t` (1-based) at learning rate `lr`:
 * `[lr/(1−β1^t), √(1−β2^t), 1−β1, β2, 1−β2, eps, 0, 0]` (f64 on the host, f32 on the GPU).
 */
export function adamStepScalars(t: number, lr: number, o: AdamOptions): number[] {
  const eps = o.eps ?? 1e-8;
  const bc1 = 1 - o.beta1 ** t, bc2 = 1 - o.beta2 ** t;
  return [lr / bc1, Math.sqrt(bc2), 1 - o.beta1, o.beta2, 1 - o.beta2, eps, 0, 0];
}

/** Reference of the clip coefficient: min(1, 1/(‖(‖g_p‖)_p‖ + 1e-6)) in f32 steps. */
export function clipCoefRef(grads: Float32Array[]): number {
  let total = 0;
  for (const g of grads) {
    let s = 0;
    for (const v of g) s = Math.fround(s + Math.fround(v * v));
    const norm = Math.fround(Math.sqrt(s));
    total = Math.fround(total + Math.fround(norm * norm));
  }
  const clip = Math.fround(MAX_GRAD_NORM / Math.fround(Math.fround(Math.sqrt(total)) + 1e-6));
  return Math.min(clip, 1);
}

/** Reference of one fused clip + Adam update (in place, f32 arithmetic). */
export function adamStepRef(
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  grad: Float32Array,
  clipCoef: number,
  scalars: number[],
): void {
  const f = Math.fround;
  const [stepSize, bc2Sqrt, omb1, beta2, omb2, eps] = scalars.map(f);
  for (let i = 0; i < p.length; i++) {
    const g = f(grad[i] * clipCoef);
    m[i] = f(m[i] + f(omb1 * f(g - m[i])));
    v[i] = f(f(v[i] * beta2) + f(omb2 * f(g * g)));
    p[i] = f(p[i] - f(stepSize * f(m[i] / f(f(f(Math.sqrt(v[i])) / bc2Sqrt) + eps))));
  }
}

/**
 * Adam moments for a set of parameters plus the GPU clip state; {@link TrainerOptimizer.record}
 * records one clipped update of every parameter.
 */
export class TrainerOptimizer {
  /** Optimiser steps taken (advanced by the trainer after each recorded step). */
  step = 0;
  readonly options: Required<AdamOptions>;
  readonly expAvg = new Map<string, Tensor>();
  readonly expAvgSq = new Map<string, Tensor>();
  /** f32 [nParams] per-parameter Σg². */
  readonly #sumsq: Tensor;
  /** f32 [2]: clip coefficient, total norm (the latter for debugging). */
  readonly clip: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly params: Map<string, Tensor>,
    options: AdamOptions,
  ) {
    this.options = { eps: 1e-8, ...options };
    for (const [name, p] of params) {
      if (p.dtype !== "f32") {
        throw new TrainingError(`parameter ${name} is ${p.dtype}, expected f32`);
      }
      this.expAvg.set(name, Tensor.zeros(p.shape, "f32", { gpu }));
      this.expAvgSq.set(name, Tensor.zeros(p.shape, "f32", { gpu }));
    }
    this.#sumsq = Tensor.zeros([Math.max(1, params.size)], "f32", { gpu });
    this.clip = Tensor.zeros([2], "f32", { gpu });
  }

  /** Host values of the Adam region for the next step at learning rate `lr`. */
  scalars(lr: number): number[] {
    return adamStepScalars(this.step + 1, lr, this.options);
  }

  /**
   * Records: per-parameter Σg², the clip coefficient, then the fused clipped Adam update of each
   * parameter (skipped entirely while `flag` holds a bad step). `stepParams` is the f32 view of
   * the per-step params buffer whose word `adamWord` starts the Adam region.
   */
  record(
    grads: Map<string, Tensor>,
    stepParams: BufferBinding,
    adamWord: number,
    flag: Tensor,
  ): void {
    const gpu = this.gpu;
    const names = [...this.params.keys()];
    names.forEach((name, i) => {
      const g = grads.get(name);
      const p = this.params.get(name)!;
      if (!g || g.size !== p.size) {
        throw new TrainingError(
          `gradient of ${name} is ${g ?? "missing"}, expected the shape of ${p}`,
        );
      }
      reduceAll("sumsq", g, { out: this.#sumsq, outIndex: i });
    });
    gpu.dispatch(
      gpu.pipeline("trainer_clip_coef", CLIP_WGSL),
      [this.#sumsq, this.clip, gpu.uniform(packUniform("u", names.length))],
      [1],
    );
    const pipeline = gpu.pipeline("trainer_adam_clip", ADAM_WGSL);
    for (const name of names) {
      const p = this.params.get(name)!;
      dispatchFlat(
        gpu,
        pipeline,
        p.size,
        [p, this.expAvg.get(name)!, this.expAvgSq.get(name)!, grads.get(name)!],
        [stepParams, this.clip.binding(), flag.binding()],
        (n) => packUniform("uu", n, adamWord),
        false,
      );
    }
  }

  /** Host copy of the moments and step count. */
  async state(): Promise<AdamState> {
    const names = [...this.params.keys()];
    const data = await readAll([
      ...names.map((n) => this.expAvg.get(n)!),
      ...names.map((n) => this.expAvgSq.get(n)!),
    ]);
    const k = names.length;
    return {
      step: this.step,
      beta1: this.options.beta1,
      beta2: this.options.beta2,
      eps: this.options.eps,
      expAvg: new Map(names.map((n, i) => [n, data[i] as Float32Array])),
      expAvgSq: new Map(names.map((n, i) => [n, data[k + i] as Float32Array])),
      shapes: new Map(names.map((n) => [n, [...this.params.get(n)!.shape]])),
    };
  }

  /** Restores {@link TrainerOptimizer.state}'s output (names and sizes must match). */
  load(state: AdamState, where = "optimizer state"): void {
    const names = [...this.params.keys()].sort().join(", ");
    const saved = [...state.expAvg.keys()].sort().join(", ");
    if (names !== saved) {
      throw new TrainingError(`${where}: moments for [${saved}], expected [${names}]`);
    }
    for (const [name, p] of this.params) {
      for (
        const [kind, src, dst] of [
          ["exp_avg", state.expAvg, this.expAvg],
          ["exp_avg_sq", state.expAvgSq, this.expAvgSq],
        ] as const
      ) {
        const data = src.get(name)!;
        if (data.length !== p.size) {
          throw new TrainingError(
            `${where}: ${kind} of ${name} has ${data.length} values, expected ${p.size} (${p})`,
          );
        }
        const t = dst.get(name)!;
        this.gpu.write(t.buffer, t.offset, data);
      }
    }
    this.step = state.step;
  }

  /** Frees the moments and clip buffers. */
  dispose(): void {
    for (const t of [...this.expAvg.values(), ...this.expAvgSq.values(), this.#sumsq, this.clip]) {
      t.dispose();
    }
  }
}
