/**
 * The trainer's GPU-resident state: firing counters (`n_forward_passes_since_fired`,
 * `act_freq_scores`), the dead mask, the bad-step flag, the scaled-input buffers, and the
 * per-step params buffer that one `gpu.write` fills each step:
 *
 * - bytes [0, 256): the Adam region (`ADAM_PARAM_WORDS` f32) and, at word {@link STEP_WORD}, the
 *   step index (u32) the non-finite checks record;
 * - bytes [256, …): the coefficient values (f32, one per coefficient), bound as the
 *   `coefficientValues` tensor of `recordStep`.
 * @module
 */

import type { BufferBinding, Gpu } from "../../gpu/device.ts";
import { readAll, Tensor } from "../../gpu/tensor.ts";
import { destroyBuffer } from "../../gpu/pool.ts";
import { TrainingError } from "./errors.ts";
import {
  checkAndScaleInput,
  checkLoss,
  deadMask,
  firingUpdate,
  NO_BAD_STEP,
  passesStats,
  type StepWord,
} from "./trainer_kernels.ts";
import { ADAM_PARAM_WORDS } from "./trainer_optim.ts";
import type { SnapshotLayout } from "./trainer_log.ts";
import type { StepOutputs } from "./trainer_types.ts";

/** u32 word of the params buffer holding the step index. */
export const STEP_WORD = 16;
/** Byte offset of the coefficient values (a storage/uniform offset alignment). */
const COEF_OFFSET = 256;

/** See the module doc. */
export class TrainerGpuState {
  /** f32 [dSae] `n_forward_passes_since_fired`. */
  readonly passes: Tensor;
  /** f32 [dSae] `act_freq_scores`. */
  readonly actFreq: Tensor;
  /** u32 [dSae] dead mask (1 = dead) computed at the start of each step. */
  readonly deadMask: Tensor;
  /** u32 [2] first bad (input, loss) step, `NO_BAD_STEP` when none. */
  readonly flag: Tensor;
  /** f32 [nCoefficients] view of the params buffer. */
  readonly coefficients: Tensor;
  /** Buffer of the step index and coefficient values kernels read. */
  readonly paramsBuffer: GPUBuffer;
  readonly #host: ArrayBuffer;
  readonly #f32: Float32Array;
  readonly #u32: Uint32Array;
  readonly #scaled = new Map<number, Tensor>();
  #snapshot: Tensor | null = null;

  /** Allocates the firing counters, flags and params buffer for `dSae` features. */
  constructor(readonly gpu: Gpu, readonly dSae: number, readonly nCoefficients: number) {
    this.passes = Tensor.zeros([dSae], "f32", { gpu });
    this.actFreq = Tensor.zeros([dSae], "f32", { gpu });
    this.deadMask = Tensor.zeros([dSae], "u32", { gpu });
    this.flag = Tensor.empty([2], "u32", { gpu });
    const bytes = COEF_OFFSET + Math.ceil(Math.max(16, 4 * nCoefficients) / 16) * 16;
    this.paramsBuffer = gpu.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST |
        GPUBufferUsage.COPY_SRC,
    });
    this.coefficients = new Tensor(
      gpu,
      this.paramsBuffer,
      [nCoefficients],
      "f32",
      COEF_OFFSET,
      false,
    );
    this.#host = new ArrayBuffer(bytes);
    this.#f32 = new Float32Array(this.#host);
    this.#u32 = new Uint32Array(this.#host);
    this.resetFlag();
  }

  /** Clears the bad-step flag (one upload). */
  resetFlag(): void {
    this.gpu.write(this.flag.buffer, this.flag.offset, Uint32Array.of(NO_BAD_STEP, NO_BAD_STEP));
  }

  /** Where kernels read the step index. */
  get stepWord(): StepWord {
    return { params: { buffer: this.paramsBuffer, offset: 0, size: COEF_OFFSET }, word: STEP_WORD };
  }

  /** The Adam region as a storage binding (f32 words from 0). */
  get adamBinding(): BufferBinding {
    return { buffer: this.paramsBuffer, offset: 0, size: COEF_OFFSET };
  }

  /** Uploads the step's scalars: the only `gpu.write` of a step. */
  writeStep(step: number, adamScalars: ArrayLike<number>, coefficients: number[]): void {
    if (adamScalars.length > ADAM_PARAM_WORDS || coefficients.length !== this.nCoefficients) {
      throw new TrainingError(
        `step params: ${adamScalars.length} Adam words and ${coefficients.length} coefficients, ` +
          `expected <= ${ADAM_PARAM_WORDS} and ${this.nCoefficients}`,
      );
    }
    this.#f32.set(adamScalars, 0);
    this.#u32[STEP_WORD] = step >>> 0;
    this.#f32.set(coefficients, COEF_OFFSET / 4);
    this.gpu.write(this.paramsBuffer, 0, this.#f32);
  }

  /**
   * Records the non-finite check of `batch` and, when `scale` is not null, the scaled copy the
   * SAE trains on (a reused buffer per row count); returns the SAE input.
   */
  prepareInput(batch: Tensor, scale: number | null): Tensor {
    if (scale === null) {
      checkAndScaleInput(batch, null, 1, this.stepWord, this.flag);
      return batch;
    }
    const rows = batch.shape[0];
    let out = this.#scaled.get(rows);
    if (!out || out.shape[1] !== batch.shape[1]) {
      out?.dispose();
      out = Tensor.empty(batch.shape, "f32", { gpu: this.gpu });
      this.#scaled.set(rows, out);
    }
    checkAndScaleInput(batch, out, scale, this.stepWord, this.flag);
    return out;
  }

  /** Records `deadMask = passes > window`. */
  recordDeadMask(window: number): void {
    deadMask(this.passes, window, this.deadMask);
  }

  /** Records the loss check and the firing update from a step's outputs. */
  recordAfterStep(out: StepOutputs): void {
    checkLoss(out.losses, this.stepWord, this.flag);
    firingUpdate(out.firedCounts, this.passes, this.actFreq);
  }

  /** Records a zeroing of `act_freq_scores` (sparsity-window start). */
  resetWindow(): void {
    this.gpu.clear(this.actFreq.buffer, this.actFreq.offset, this.actFreq.byteLength);
  }

  /** Records a readback of `act_freq_scores` as it is now (resolves after the next flush). */
  readActFreqLater(): Promise<ArrayBuffer> {
    return this.gpu.readLater(this.actFreq.buffer, this.actFreq.offset, this.actFreq.byteLength);
  }

  /** Records a readback of the flag words. */
  readFlagLater(): Promise<ArrayBuffer> {
    return this.gpu.readLater(this.flag.buffer, this.flag.offset, this.flag.byteLength);
  }

  /**
   * Records the log snapshot of a step (see `trainer_log.ts`) and its readback; resolves after
   * the step's flush.
   */
  snapshotLater(out: StepOutputs, layout: SnapshotLayout, window: number): Promise<ArrayBuffer> {
    const gpu = this.gpu;
    if (!this.#snapshot || this.#snapshot.size !== layout.size) {
      this.#snapshot?.dispose();
      this.#snapshot = Tensor.empty([layout.size], "f32", { gpu });
    }
    const snap = this.#snapshot;
    const put = (t: Tensor, word: number, count: number) => {
      if (count > 0) gpu.copy(t.buffer, t.offset, snap.buffer, snap.offset + word * 4, count * 4);
    };
    put(out.losses, layout.losses, layout.recon - layout.losses);
    put(out.recon, layout.recon, 4);
    put(out.l0Sum, layout.l0Sum, 1);
    put(out.metrics, layout.metrics, layout.passes - layout.metrics);
    passesStats(this.passes, window, snap, layout.passes);
    put(this.flag, layout.flag, 2);
    return gpu.readLater(snap.buffer, snap.offset, layout.size * 4);
  }

  /** Host copies of the firing counters and the flag (one submit). */
  async read(): Promise<{ passes: Float32Array; actFreq: Float32Array; flag: Uint32Array }> {
    const [passes, actFreq, flag] = await readAll([this.passes, this.actFreq, this.flag]);
    return {
      passes: passes as Float32Array,
      actFreq: actFreq as Float32Array,
      flag: flag as Uint32Array,
    };
  }

  /** Uploads firing counters (resume). */
  loadFiring(passes: Float32Array, actFreq: Float32Array): void {
    if (passes.length !== this.dSae || actFreq.length !== this.dSae) {
      throw new TrainingError(
        `firing counters have ${passes.length} and ${actFreq.length} values, expected dSae = ${this.dSae}`,
      );
    }
    this.gpu.write(this.passes.buffer, this.passes.offset, passes);
    this.gpu.write(this.actFreq.buffer, this.actFreq.offset, actFreq);
  }

  /** Frees the GPU tensors and buffers. */
  dispose(): void {
    for (
      const t of [this.passes, this.actFreq, this.deadMask, this.flag, ...this.#scaled.values()]
    ) {
      t.dispose();
    }
    this.#snapshot?.dispose();
    destroyBuffer(this.paramsBuffer);
  }
}
