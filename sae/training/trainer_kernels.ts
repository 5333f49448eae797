/**
 * The trainer's own small GPU kernels (spec §3.10, §5.1): input scaling with a non-finite check
 * that records the first bad step in a flag buffer, the dead-feature mask, the firing-statistics
 * update, a non-finite loss check, and the per-log-step reduction of the firing counters. Each
 * has a plain-TS reference (`*Ref`). Ops only record dispatches.
 *
 * The flag buffer is u32 `[2]`: `[first step with a non-finite input, first step with a
 * non-finite loss]`, `NO_BAD_STEP` when none; kernels `atomicMin` the step index into it, which
 * they read from a storage word of the trainer's per-step params buffer.
 * @module
 */

import type { BufferBinding, Gpu } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/device.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import {
  dispatchFlat,
  FLAT_WG,
  packUniform,
  WGSL_FLAT_INDEX,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX,
  wgslWorkgroupReduce,
} from "../../gpu/kernel.ts";

/** Flag value meaning "no bad step yet". */
export const NO_BAD_STEP = 0xffffffff;

/** WGSL: true for ±Inf and NaN (exponent bits all set); immune to fast-math assumptions. */
const WGSL_NONFINITE = /* wgsl */ `
fn nonFinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }
`;

function checkInputWgsl(scaled: boolean): string {
  const io = scaled
    ? `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;
@group(0) @binding(3) var<storage, read_write> FLAG: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> u: U;`
    : `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> P: array<u32>;
@group(0) @binding(2) var<storage, read_write> FLAG: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> u: U;`;
  return /* wgsl */ `${WGSL_WG_INDEX}${WGSL_NONFINITE}
struct U { n: u32, scale: f32, stepWord: u32 }
${io}
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  let v = X[i];
  if (nonFinite(v)) { atomicMin(&FLAG[0], P[u.stepWord]); }
  ${scaled ? "Y[i] = v * u.scale;" : ""}
}`;
}

/** Where kernels read the current step index: word `word` of `buffer`. */
export interface StepWord {
  /** The params buffer (bound read-only). */
  params: BufferBinding;
  /** Index of the u32 holding the step. */
  word: number;
}

/**
 * Records: flags `x` (any shape) when it holds a NaN/±Inf (`flag[0] = min(flag[0], step)`), and,
 * when `out` is given, writes `out = x · scale` (f32 product, like torch's `acts * s`).
 */
export function checkAndScaleInput(
  x: Tensor,
  out: Tensor | null,
  scale: number,
  step: StepWord,
  flag: Tensor,
): void {
  const gpu = x.gpu;
  if (out && out.size !== x.size) {
    throw new GpuError(`checkAndScaleInput: out ${out} does not match x ${x}`);
  }
  const scaled = out !== null;
  const pipeline = gpu.pipeline(
    `trainer_check_input_${scaled ? "scale" : "check"}`,
    checkInputWgsl(scaled),
  );
  dispatchFlat(
    gpu,
    pipeline,
    x.size,
    scaled ? [x, out] : [x],
    [step.params, flag.binding()],
    (n) => packUniform("ufu", n, scale, step.word),
    false,
  );
}

/** Reference of {@link checkAndScaleInput}: the scaled copy (f32) and whether x was non-finite. */
export function checkAndScaleInputRef(
  x: Float32Array,
  scale: number | null,
): { out: Float32Array; nonFinite: boolean } {
  const s = scale === null ? 1 : Math.fround(scale);
  const out = new Float32Array(x.length);
  let bad = false;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) bad = true;
    out[i] = scale === null ? x[i] : x[i] * s;
  }
  return { out, nonFinite: bad };
}

const DEAD_MASK_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32, window: f32 }
@group(0) @binding(0) var<storage, read> PASSES: array<f32>;
@group(0) @binding(1) var<storage, read_write> MASK: array<u32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  MASK[i] = select(0u, 1u, PASSES[i] > u.window);
}`;

/** Records `mask[i] = passes[i] > window ? 1 : 0` (u32 mask, SAELens `dead_neurons`). */
export function deadMask(passes: Tensor, window: number, mask: Tensor): void {
  const gpu = passes.gpu;
  if (mask.dtype !== "u32" || mask.size !== passes.size) {
    throw new GpuError(`deadMask: mask ${mask} must be u32 with ${passes.size} elements`);
  }
  dispatchFlat(
    gpu,
    gpu.pipeline("trainer_dead_mask", DEAD_MASK_WGSL),
    passes.size,
    [passes, mask],
    [],
    (n) => packUniform("uf", n, window),
    false,
  );
}

/** Reference of {@link deadMask}. */
export function deadMaskRef(passes: Float32Array, window: number): Uint32Array {
  const w = Math.fround(window);
  return Uint32Array.from(passes, (p) => (p > w ? 1 : 0));
}

const FIRING_WGSL = /* wgsl */ `${WGSL_WG_INDEX}
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> COUNTS: array<f32>;
@group(0) @binding(1) var<storage, read_write> PASSES: array<f32>;
@group(0) @binding(2) var<storage, read_write> FREQ: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${FLAT_WG})
fn main(${WGSL_MAIN_ARGS}) {
  ${WGSL_FLAT_INDEX}
  let c = COUNTS[i];
  PASSES[i] = select(PASSES[i] + 1.0, 0.0, c != 0.0);
  FREQ[i] = FREQ[i] + c;
}`;

/**
 * Records the §3.10 update from per-feature firing counts of one batch:
 * `passes = counts ≠ 0 ? 0 : passes + 1`, `actFreq += counts`.
 */
export function firingUpdate(counts: Tensor, passes: Tensor, actFreq: Tensor): void {
  const gpu = counts.gpu;
  if (passes.size !== counts.size || actFreq.size !== counts.size) {
    throw new GpuError(
      `firingUpdate: counts ${counts}, passes ${passes} and actFreq ${actFreq} must have the same size`,
    );
  }
  dispatchFlat(
    gpu,
    gpu.pipeline("trainer_firing_update", FIRING_WGSL),
    counts.size,
    [counts, passes, actFreq],
    [],
    (n) => packUniform("u", n),
    false,
  );
}

/** Reference of {@link firingUpdate} (in place, f32 like torch). */
export function firingUpdateRef(
  counts: Float32Array,
  passes: Float32Array,
  actFreq: Float32Array,
): void {
  for (let i = 0; i < counts.length; i++) {
    passes[i] = counts[i] !== 0 ? 0 : passes[i] + 1;
    actFreq[i] += counts[i];
  }
}

const LOSS_CHECK_WGSL = /* wgsl */ `${WGSL_NONFINITE}
struct U { stepWord: u32 }
@group(0) @binding(0) var<storage, read> LOSSES: array<f32>;
@group(0) @binding(1) var<storage, read> P: array<u32>;
@group(0) @binding(2) var<storage, read_write> FLAG: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(1)
fn main() {
  if (nonFinite(LOSSES[0])) { atomicMin(&FLAG[1], P[u.stepWord]); }
}`;

/** Records `flag[1] = min(flag[1], step)` when `losses[0]` (the overall loss) is NaN/±Inf. */
export function checkLoss(losses: Tensor, step: StepWord, flag: Tensor): void {
  const gpu = losses.gpu;
  gpu.dispatch(
    gpu.pipeline("trainer_loss_check", LOSS_CHECK_WGSL),
    [losses, step.params, flag, gpu.uniform(packUniform("u", step.word))],
    [1],
  );
}

const STATS_WG = 256;
const PASSES_STATS_WGSL = /* wgsl */ `
struct U { n: u32, window: f32, outIndex: u32 }
@group(0) @binding(0) var<storage, read> PASSES: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> sh: array<f32, ${STATS_WG}>;
${wgslWorkgroupReduce("reduce", STATS_WG, "a + b")}
@compute @workgroup_size(${STATS_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  var dead = 0.0;
  for (var i = lid; i < u.n; i = i + ${STATS_WG}u) {
    let p = PASSES[i];
    sum = sum + p;
    dead = dead + select(0.0, 1.0, p > u.window);
  }
  let total = reduce(lid, sum);
  let count = reduce(lid, dead);
  if (lid == 0u) { OUT[u.outIndex] = total; OUT[u.outIndex + 1u] = count; }
}`;

/**
 * Records `out[outIndex] = Σ passes`, `out[outIndex + 1] = #(passes > window)` (one workgroup,
 * fixed summation order, so repeatable).
 */
export function passesStats(passes: Tensor, window: number, out: Tensor, outIndex: number): void {
  const gpu: Gpu = passes.gpu;
  if (passes.byteLength > gpu.maxBindingSize) {
    throw new GpuError(
      `passesStats: ${passes} exceeds maxStorageBufferBindingSize (${gpu.maxBindingSize} bytes)`,
    );
  }
  if (outIndex + 2 > out.size) {
    throw new GpuError(`passesStats: out ${out} has no room at index ${outIndex}`);
  }
  gpu.dispatch(
    gpu.pipeline("trainer_passes_stats", PASSES_STATS_WGSL),
    [passes, out, gpu.uniform(packUniform("ufu", passes.size, window, outIndex))],
    [1],
  );
}

/** Reference of {@link passesStats}: `[Σ passes, #(passes > window)]`. */
export function passesStatsRef(passes: Float32Array, window: number): [number, number] {
  let sum = 0, dead = 0;
  const w = Math.fround(window);
  for (const p of passes) {
    sum += p;
    if (p > w) dead++;
  }
  return [sum, dead];
}
