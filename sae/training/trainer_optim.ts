/**
 * The trainer's optimiser step on the GPU (spec §3.11): global L2 gradient-norm clipping at 1.0
 * (`GradNormClipper` of `gpu/kernels/clip.ts`, torch `clip_grad_norm_` semantics) feeding Adam
 * with torch's single-tensor algorithm (the math and scalar layout of `gpu/kernels/adam.ts`),
 * here in a variant that also reads the trainer's bad-step flag and leaves parameters and moments
 * untouched while it is set (a NaN step must not reach the weights, and `adamStep` has no such
 * input). Per-step scalars come from the trainer's per-step params buffer in `ADAM_SLOTS`
 * layout, so a step needs no upload of its own. Reference: {@link adamSkipRef}.
 * @module
 */

import type { BufferBinding, Gpu } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import {
  dispatchFlat,
  FLAT_WG,
  packUniform,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../../gpu/kernel.ts";
import { ADAM_SLOTS, adamRef, type AdamScalars, adamScalars } from "../../gpu/kernels/adam.ts";
import { GradNormClipper } from "../../gpu/kernels/clip.ts";
import { TrainingError } from "./errors.ts";
import type { AdamState } from "./state.ts";

/** f32 words of the Adam region of the per-step params buffer (`ADAM_SLOTS`). */
export const ADAM_PARAM_WORDS = 8;

/** Maximum global gradient norm (hard-coded in SAELens). */
export const MAX_GRAD_NORM = 1.0;

/** Adam hyper-parameters (SAELens: betas from the config, eps 1e-8, no weight decay). */
export interface AdamOptions {
  /** Adam β₁. */
  beta1: number;
  /** Adam β₂. */
  beta2: number;
  /** Adam epsilon (default 1e-8). */
  eps?: number;
}

const ADAM_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, word: u32 }
@group(0) @binding(0) var<storage, read_write> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> M: array<f32>;
@group(0) @binding(2) var<storage, read_write> V: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read> H: array<f32>;
@group(0) @binding(5) var<storage, read> C: array<f32>;
@group(0) @binding(6) var<storage, read> FLAG: array<u32>;
@group(0) @binding(7) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  if (FLAG[0] != 0xffffffffu || FLAG[1] != 0xffffffffu) { return; }
  let h = u.word;
  let g = G[i] * C[0];
  let m0 = M[i];
  let m = m0 + H[h + ${ADAM_SLOTS.oneMinusBeta1}u] * (g - m0);
  let v = V[i] * H[h + ${ADAM_SLOTS.beta2}u] + H[h + ${ADAM_SLOTS.oneMinusBeta2}u] * g * g;
  M[i] = m;
  V[i] = v;
  let denom = sqrt(v) / H[h + ${ADAM_SLOTS.bc2Sqrt}u] + H[h + ${ADAM_SLOTS.eps}u];
  P[i] = P[i] - H[h + ${ADAM_SLOTS.stepSize}u] * (m / denom);
}`;

/**
 * Reference of one clipped, flag-aware Adam update (in place): nothing changes when `flagged`,
 * otherwise `adamRef` with the clip factor.
 */
export function adamSkipRef(
  param: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  scalars: AdamScalars,
  clipFactor: number,
  flagged: boolean,
): void {
  if (!flagged) adamRef(param, grad, m, v, scalars, { clipFactor });
}

/**
 * Adam moments for a set of parameters plus the GPU clip state; {@link TrainerOptimizer.record}
 * records one clipped update of every parameter.
 */
export class TrainerOptimizer {
  /** Optimiser steps taken (advanced by the trainer after each recorded step). */
  step = 0;
  /** Adam hyper-parameters with defaults filled in. */
  readonly options: Required<AdamOptions>;
  /** First moments by parameter name. */
  readonly expAvg: Map<string, Tensor> = new Map();
  /** Second moments by parameter name. */
  readonly expAvgSq: Map<string, Tensor> = new Map();
  /** Global-norm clipping: its `factor` ([1]) scales the gradients inside the Adam kernel. */
  readonly clipper: GradNormClipper;

  /** Allocates zero moments for `params` and the clipper. */
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
    this.clipper = new GradNormClipper(gpu, Math.max(1, params.size), { maxNorm: MAX_GRAD_NORM });
  }

  /** Host values of the Adam region (`ADAM_SLOTS`) for the next step at learning rate `lr`. */
  scalars(lr: number): Float32Array {
    const o = this.options;
    return adamScalars({ lr, step: this.step + 1, beta1: o.beta1, beta2: o.beta2, eps: o.eps });
  }

  /**
   * Records the clip factor of `grads` and then the clipped Adam update of each parameter
   * (skipped entirely while `flag` holds a bad step). `stepParams` binds the per-step params
   * buffer whose f32 word `adamWord` starts the Adam region.
   */
  record(
    grads: Map<string, Tensor>,
    stepParams: BufferBinding,
    adamWord: number,
    flag: Tensor,
  ): void {
    const gpu = this.gpu;
    const names = [...this.params.keys()];
    const ordered = names.map((name) => {
      const g = grads.get(name);
      const p = this.params.get(name)!;
      if (!g || g.size !== p.size) {
        throw new TrainingError(
          `gradient of ${name} is ${g ?? "missing"}, expected the shape of ${p}`,
        );
      }
      return g;
    });
    const { factor } = this.clipper.record(ordered);
    const pipeline = gpu.pipeline("trainer_adam_skip", ADAM_WGSL);
    names.forEach((name, i) => {
      const p = this.params.get(name)!;
      dispatchFlat(
        gpu,
        pipeline,
        p.size,
        [p, this.expAvg.get(name)!, this.expAvgSq.get(name)!, ordered[i]],
        [stepParams, factor.binding(), flag.binding()],
        (n) => packUniform("uu", n, adamWord),
        false,
      );
    });
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
    for (const t of [...this.expAvg.values(), ...this.expAvgSq.values()]) t.dispose();
    this.clipper.dispose();
  }
}
