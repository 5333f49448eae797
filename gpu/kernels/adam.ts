/**
 * Adam, in place, with `torch.optim.Adam` semantics (no weight decay, no amsgrad):
 *
 *     m ← m + (1 − β₁)(g − m)            (torch's lerp_)
 *     v ← β₂·v + (1 − β₂)·g²
 *     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + eps)
 *
 * The per-step scalars live in an 8-float GPU tensor written once per step
 * ({@link writeAdamScalars}), so a training step records one dispatch per parameter tensor and no
 * uniform uploads. Gradients can be pre-multiplied by a clip factor read from a 1-element GPU
 * tensor (see `clip.ts`); `grad` itself is left unchanged.
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import { Tensor } from "../tensor.ts";
import {
  checkTensor,
  dispatchFlat,
  FLAT_WG,
  packUniform,
  vec4Ok,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
} from "../kernel.ts";

/** Hyperparameters of one Adam step. Defaults are torch's (and SAELens'). */
export interface AdamScalars {
  /** Learning rate. */
  lr: number;
  /** The step number t, counting from 1 for the first update. */
  step: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
}

/** Layout of the scalars tensor, in f32 slots. */
export const ADAM_SLOTS = {
  lr: 0,
  beta1: 1,
  beta2: 2,
  eps: 3,
  /** lr / (1 − β₁ᵗ) */
  stepSize: 4,
  /** √(1 − β₂ᵗ) */
  bc2Sqrt: 5,
  /** 1 − β₁ (the lerp weight) */
  oneMinusBeta1: 6,
  /** 1 − β₂ */
  oneMinusBeta2: 7,
} as const;

/**
 * The 8 f32 scalars of one step, computed in float64 as torch does on the host and rounded to
 * f32 as torch does when it applies a Python scalar to an f32 tensor.
 */
export function adamScalars(s: AdamScalars): Float32Array {
  const beta1 = s.beta1 ?? 0.9, beta2 = s.beta2 ?? 0.999, eps = s.eps ?? 1e-8;
  if (!Number.isInteger(s.step) || s.step < 1) {
    throw new GpuError(`adam: step must be an integer ≥ 1, got ${s.step}`);
  }
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
    throw new GpuError(`adam: betas must lie in [0, 1), got (${beta1}, ${beta2})`);
  }
  const out = new Float32Array(8);
  out[ADAM_SLOTS.lr] = s.lr;
  out[ADAM_SLOTS.beta1] = beta1;
  out[ADAM_SLOTS.beta2] = beta2;
  out[ADAM_SLOTS.eps] = eps;
  out[ADAM_SLOTS.stepSize] = s.lr / (1 - beta1 ** s.step);
  out[ADAM_SLOTS.bc2Sqrt] = Math.sqrt(1 - beta2 ** s.step);
  out[ADAM_SLOTS.oneMinusBeta1] = 1 - beta1;
  out[ADAM_SLOTS.oneMinusBeta2] = 1 - beta2;
  return out;
}

/** A new (uninitialised) 8-float scalars tensor for {@link adamStep}. */
export function createAdamScalars(gpu: Gpu): Tensor {
  return Tensor.zeros([8], "f32", { gpu });
}

/** Writes one step's scalars into `scalars` (one small upload per training step). */
export function writeAdamScalars(scalars: Tensor, s: AdamScalars): void {
  checkTensor(scalars, "writeAdamScalars", "scalars", { dtype: "f32" });
  if (scalars.size !== 8) throw new GpuError(`adam: scalars must have 8 elements, got ${scalars}`);
  scalars.gpu.write(scalars.buffer, scalars.offset, adamScalars(s));
}

/** Options of {@link adamStep} and {@link adamRef}. */
export interface AdamStepOptions<F = Tensor> {
  /** Multiplies the gradient first (a global-norm clip coefficient). */
  clipFactor?: F;
  /** Ascend instead of descend (torch's `maximize`); default false. */
  maximize?: boolean;
}

function adamWgsl(vec4: boolean, clip: boolean, maximize: boolean): string {
  const V = vec4 ? "vec4<f32>" : "f32";
  const g = `G[i]${clip ? " * C[0]" : ""}`;
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32 }
@group(0) @binding(0) var<storage, read_write> P: array<${V}>;
@group(0) @binding(1) var<storage, read> G: array<${V}>;
@group(0) @binding(2) var<storage, read_write> M: array<${V}>;
@group(0) @binding(3) var<storage, read_write> Vs: array<${V}>;
@group(0) @binding(4) var<storage, read> H: array<f32>;
${clip ? "@group(0) @binding(5) var<storage, read> C: array<f32>;" : ""}
@group(0) @binding(${clip ? 6 : 5}) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  let g = ${maximize ? `-(${g})` : g};
  let m0 = M[i];
  let m = m0 + H[${ADAM_SLOTS.oneMinusBeta1}] * (g - m0);
  let v = Vs[i] * H[${ADAM_SLOTS.beta2}] + H[${ADAM_SLOTS.oneMinusBeta2}] * g * g;
  M[i] = m;
  Vs[i] = v;
  let denom = sqrt(v) / H[${ADAM_SLOTS.bc2Sqrt}] + H[${ADAM_SLOTS.eps}];
  P[i] = P[i] - H[${ADAM_SLOTS.stepSize}] * (m / denom);
}`;
}

/**
 * Records one in-place Adam update of `param` (and its moments `m`, `v`) from `grad`, reading the
 * step's scalars from `scalars` (see {@link writeAdamScalars}).
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { adamStep, createAdamScalars, writeAdamScalars } from "./adam.ts";
 * const gpu = await getGpu();
 * using p = Tensor.from([1]), g = Tensor.from([0.5]), m = Tensor.zeros([1]), v = Tensor.zeros([1]);
 * using h = createAdamScalars(gpu);
 * writeAdamScalars(h, { lr: 0.1, step: 1 });
 * adamStep(p, g, m, v, h);
 * const [r] = await p.toArray(); // 1 − 0.1 · 0.5 / (0.5 + 1e-8) ≈ 0.9
 * if (Math.abs(r - 0.9) > 1e-6) throw new Error("unexpected");
 * ```
 */
export function adamStep(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  scalars: Tensor,
  options: AdamStepOptions = {},
): void {
  const named: [string, Tensor][] = [["param", param], ["grad", grad], ["m", m], ["v", v]];
  for (const [name, t] of named) {
    checkTensor(t, "adamStep", name, { dtype: "f32" });
    if (t.size !== param.size) {
      throw new GpuError(`adamStep: ${name} ${t} has ${t.size} elements, param has ${param.size}`);
    }
  }
  checkTensor(scalars, "adamStep", "scalars", { dtype: "f32" });
  if (scalars.size !== 8) throw new GpuError(`adamStep: scalars must have 8 elements`);
  const clip = options.clipFactor;
  if (clip) {
    checkTensor(clip, "adamStep", "clipFactor", { dtype: "f32" });
    if (clip.size !== 1) throw new GpuError(`adamStep: clipFactor must have 1 element`);
  }
  const all = [...named, ["scalars", scalars], ...(clip ? [["clipFactor", clip]] : [])] as [
    string,
    Tensor,
  ][];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const writable = i < 4 && i !== 1;
      // A writable binding may not share its buffer with any other binding of the dispatch.
      if ((writable || (j < 4 && j !== 1)) && all[i][1].buffer === all[j][1].buffer) {
        throw new GpuError(`adamStep: ${all[i][0]} and ${all[j][0]} share a GPU buffer`);
      }
    }
  }
  const gpu = param.gpu;
  const vec4 = vec4Ok(param, grad, m, v);
  const maximize = !!options.maximize;
  const key = `adam_${vec4 ? "v4" : "s"}${clip ? "_clip" : ""}${maximize ? "_max" : ""}`;
  const pipeline = gpu.pipeline(key, adamWgsl(vec4, !!clip, maximize));
  dispatchFlat(
    gpu,
    pipeline,
    param.size,
    [param, grad, m, v],
    clip ? [scalars, clip] : [scalars],
    (units) => packUniform("u", units),
    vec4,
  );
}

/**
 * Reference of {@link adamStep}: updates `param`, `m`, `v` in place, rounding every torch op to
 * f32 as torch does on f32 tensors.
 */
export function adamRef(
  param: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamScalars,
  options: AdamStepOptions<number> = {},
): void {
  const h = adamScalars(s);
  const f = Math.fround;
  for (let i = 0; i < param.length; i++) {
    let g = options.clipFactor === undefined ? grad[i] : f(grad[i] * options.clipFactor);
    if (options.maximize) g = -g;
    m[i] = f(m[i] + f(h[ADAM_SLOTS.oneMinusBeta1] * f(g - m[i])));
    v[i] = f(f(v[i] * h[ADAM_SLOTS.beta2]) + f(f(h[ADAM_SLOTS.oneMinusBeta2] * g) * g));
    const denom = f(f(f(Math.sqrt(v[i])) / h[ADAM_SLOTS.bc2Sqrt]) + h[ADAM_SLOTS.eps]);
    param[i] = f(param[i] - f(h[ADAM_SLOTS.stepSize] * f(m[i] / denom)));
  }
}

/** Options of {@link Adam}. */
export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Ascend the gradient instead of descending (default false). */
  maximize?: boolean;
}

/**
 * Adam over a list of parameter tensors: owns the moments (zeros) and the scalars tensor, counts
 * steps, and per {@link Adam.update} writes the scalars once and records one dispatch per tensor.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { Adam } from "./adam.ts";
 * await getGpu();
 * using w = Tensor.from([1, 2]), g = Tensor.from([0.5, -0.5]);
 * const opt = new Adam([w], { lr: 0.1 });
 * opt.update([g]);
 * const r = await w.toArray(); // ≈ [0.9, 2.1]
 * if (Math.abs(r[1] - 2.1) > 1e-5) throw new Error("unexpected");
 * opt.dispose();
 * ```
 */
export class Adam {
  /** First moments, one per parameter (zeros at the start). */
  readonly m: Tensor[];
  /** Second moments, one per parameter. */
  readonly v: Tensor[];
  /** The 8-float scalars tensor ({@link ADAM_SLOTS}). */
  readonly scalars: Tensor;
  /** Number of updates done so far (torch's `state["step"]`). */
  step = 0;

  /** Allocates zero moments for `params` (all f32, on one device). */
  constructor(readonly params: Tensor[], readonly options: AdamOptions) {
    if (params.length === 0) throw new GpuError("Adam: no parameters");
    const gpu = params[0].gpu;
    this.m = params.map((p) => Tensor.zeros(p.shape, "f32", { gpu }));
    this.v = params.map((p) => Tensor.zeros(p.shape, "f32", { gpu }));
    this.scalars = createAdamScalars(gpu);
  }

  #prepared = false;

  /**
   * Writes the scalars of the next step (one small upload). The upload submits the work recorded
   * so far, so call this at the start of a training step, before recording its forward pass, to
   * keep the step in one submit. `lr` overrides the learning rate for this step (schedules).
   */
  prepare(opts: { lr?: number } = {}): void {
    const o = this.options;
    writeAdamScalars(this.scalars, {
      lr: opts.lr ?? o.lr,
      step: this.step + 1,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
    });
    this.#prepared = true;
  }

  /**
   * Records one optimisation step from `grads` (same order and sizes as the parameters), calling
   * {@link Adam.prepare} first unless it already ran for this step. `clipFactor` (a 1-element
   * GPU tensor) scales every gradient first.
   */
  update(grads: Tensor[], opts: { lr?: number; clipFactor?: Tensor } = {}): void {
    if (grads.length !== this.params.length) {
      throw new GpuError(`Adam: ${grads.length} gradients for ${this.params.length} parameters`);
    }
    if (!this.#prepared) this.prepare({ lr: opts.lr });
    else if (opts.lr !== undefined) {
      throw new GpuError("Adam.update: pass lr to prepare() when prepare() is called");
    }
    this.#prepared = false;
    this.step++;
    for (let i = 0; i < grads.length; i++) {
      adamStep(this.params[i], grads[i], this.m[i], this.v[i], this.scalars, {
        clipFactor: opts.clipFactor,
        maximize: this.options.maximize,
      });
    }
  }

  /** Frees the moments and the scalars tensor (not the parameters). */
  dispose(): void {
    for (const t of [...this.m, ...this.v, this.scalars]) t.dispose();
  }
}
