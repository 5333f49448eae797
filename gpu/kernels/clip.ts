/**
 * Global gradient-norm clipping without readback, with `torch.nn.utils.clip_grad_norm_`
 * semantics: per-tensor L2 norms, total = ‖(norms)‖₂, coefficient = maxNorm / (total + 1e-6),
 * clamped to at most 1 (so it only ever shrinks gradients). The per-tensor norms go to slots of a
 * small GPU tensor (deterministic reductions, no atomics), a one-invocation kernel turns them into
 * the total and the factor, and the factor is consumed on the GPU by `adamStep` (or
 * {@link applyClip}). The total norm stays on the GPU as a 1-element tensor for logging.
 * @module
 */

import type { Gpu } from "../device.ts";
import { GpuError } from "../device.ts";
import { Tensor } from "../tensor.ts";
import { checkTensor, packUniform } from "../kernel.ts";
import { scaleByTensor } from "./elementwise.ts";
import { reduceAll } from "./reduce.ts";

/** The total gradient norm and the factor to multiply gradients by, both `[1]` GPU tensors. */
export interface ClipResult {
  /** Global L2 norm of all gradients, `[1]`. */
  totalNorm: Tensor;
  /** Factor to scale gradients by, `[1]`. */
  factor: Tensor;
}

/**
 * Reference of the clipping computation on host arrays (float64, torch's formula).
 *
 * @example
 * ```ts
 * import { clipGradNormRef } from "./clip.ts";
 * const r = clipGradNormRef([new Float32Array([3, 4]), new Float32Array([12])], 1);
 * if (r.totalNorm !== 13 || r.factor !== 1 / (13 + 1e-6)) throw new Error(JSON.stringify(r));
 * ```
 */
export function clipGradNormRef(
  grads: Float32Array[],
  maxNorm = 1,
): { totalNorm: number; factor: number; norms: number[] } {
  const norms = grads.map((g) => Math.sqrt(g.reduce((s, x) => s + x * x, 0)));
  const totalNorm = Math.sqrt(norms.reduce((s, x) => s + x * x, 0));
  return { totalNorm, factor: Math.min(maxNorm / (totalNorm + 1e-6), 1), norms };
}

const FINALIZE_WGSL = /* wgsl */ `
struct U { count: u32, maxNorm: f32 }
@group(0) @binding(0) var<storage, read> norms: array<f32>;
@group(0) @binding(1) var<storage, read_write> total: array<f32>;
@group(0) @binding(2) var<storage, read_write> factor: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(1)
fn main() {
  var s = 0.0;
  for (var k = 0u; k < u.count; k++) { s += norms[k] * norms[k]; }
  let t = sqrt(s);
  total[0] = t;
  factor[0] = min(u.maxNorm / (t + 1e-6), 1.0);
}`;

/**
 * Clipping state for a fixed number of gradient tensors: reusable slots and outputs, so a
 * training step allocates nothing.
 *
 * @example
 * ```ts
 * import { getGpu } from "../device.ts";
 * import { Tensor } from "../tensor.ts";
 * import { GradNormClipper } from "./clip.ts";
 * const gpu = await getGpu();
 * using a = Tensor.from([3, 4]), b = Tensor.from([12]);
 * const clipper = new GradNormClipper(gpu, 2, { maxNorm: 1 });
 * const { totalNorm } = clipper.record([a, b]);
 * const [t] = await totalNorm.toArray(); // 13
 * if (Math.abs(t - 13) > 1e-5) throw new Error("unexpected");
 * clipper.dispose();
 * ```
 */
export class GradNormClipper {
  /** Per-tensor L2 norms, `[count]`. */
  readonly norms: Tensor;
  /** Total norm, `[1]`. */
  readonly totalNorm: Tensor;
  /** min(maxNorm / (total + 1e-6), 1), `[1]`. */
  readonly factor: Tensor;
  /** The clipping threshold (SAELens uses 1.0). */
  readonly maxNorm: number;

  /** Allocates the slots for `count` gradient tensors. */
  constructor(readonly gpu: Gpu, readonly count: number, options: { maxNorm?: number } = {}) {
    if (!Number.isInteger(count) || count < 1) {
      throw new GpuError(`GradNormClipper: count must be an integer ≥ 1, got ${count}`);
    }
    this.maxNorm = options.maxNorm ?? 1;
    if (!(this.maxNorm > 0)) {
      throw new GpuError(`GradNormClipper: maxNorm must be > 0, got ${this.maxNorm}`);
    }
    this.norms = Tensor.zeros([count], "f32", { gpu });
    this.totalNorm = Tensor.zeros([1], "f32", { gpu });
    this.factor = Tensor.zeros([1], "f32", { gpu });
  }

  /**
   * Records the norm computation for `grads` (exactly `count` f32 tensors): after it runs,
   * {@link totalNorm} and {@link factor} hold this step's values. Gradients are not modified.
   */
  record(grads: Tensor[]): ClipResult {
    if (grads.length !== this.count) {
      throw new GpuError(`GradNormClipper: ${grads.length} gradients, expected ${this.count}`);
    }
    grads.forEach((g, k) => {
      checkTensor(g, "GradNormClipper", `grads[${k}]`, { dtype: "f32" });
      reduceAll("l2", g, { out: this.norms, outIndex: k });
    });
    const pipeline = this.gpu.pipeline("clip_finalize", FINALIZE_WGSL);
    const uni = this.gpu.uniform(packUniform("uf", this.count, this.maxNorm));
    this.gpu.dispatch(pipeline, [this.norms, this.totalNorm, this.factor, uni], [1]);
    return { totalNorm: this.totalNorm, factor: this.factor };
  }

  /** Frees the slots and outputs. */
  dispose(): void {
    for (const t of [this.norms, this.totalNorm, this.factor]) t.dispose();
  }
}

/** Multiplies every gradient in place by the 1-element `factor` tensor. */
export function applyClip(grads: Tensor[], factor: Tensor): void {
  for (const g of grads) scaleByTensor(g, factor, g);
}

/**
 * One-shot `clip_grad_norm_`: computes the total norm and factor into new `[1]` tensors and, when
 * `apply` is true (the default, as in torch), scales the gradients in place. Training loops
 * should keep a {@link GradNormClipper} and let `adamStep` consume its factor instead.
 */
export function clipGradNorm(
  grads: Tensor[],
  options: { maxNorm?: number; apply?: boolean } = {},
): ClipResult {
  if (grads.length === 0) throw new GpuError("clipGradNorm: no gradients");
  const clipper = new GradNormClipper(grads[0].gpu, grads.length, options);
  clipper.record(grads);
  if (options.apply ?? true) applyClip(grads, clipper.factor);
  clipper.norms.dispose();
  return { totalNorm: clipper.totalNorm, factor: clipper.factor };
}
