/**
 * Turning the GPU snapshot of a logged step into SAELens' per-step log dict (§5.2), and the
 * bad-step flag into an error. On a logging step the trainer copies the step's outputs (losses,
 * reconstruction sums, Σ L0, metrics), the firing-counter reduction and the flag into one small
 * buffer inside the step's submit and reads it back later, so logging never stalls a step.
 * @module
 */

import { TrainingError } from "./errors.ts";
import { type ReconstructionStats, sparsityWindowLogDict, trainStepLogDict } from "./metrics.ts";
import { NO_BAD_STEP } from "./trainer_kernels.ts";

/** Thrown when a step saw NaN/±Inf in its input batch or its loss; `step` is that step. */
export class NonFiniteStepError extends TrainingError {
  /** `step`: the bad step; `kind`: whether the input or the loss was non-finite. */
  constructor(readonly step: number, readonly kind: "input" | "loss") {
    super(
      `training step ${step}: ${
        kind === "input" ? "the input batch contains NaN or ±Inf values" : "the loss is NaN or ±Inf"
      }; this step and every later one were skipped, so the weights are those after step ${
        step - 1
      } (no checkpoint was written after it)`,
    );
  }
}

/** Offsets (in f32 words) of the parts of a log snapshot. */
export interface SnapshotLayout {
  /** Start of the losses (overall loss, then the parts). */
  losses: number;
  /** Start of the 4 reconstruction statistics. */
  recon: number;
  /** The L0 sum word. */
  l0Sum: number;
  /** Start of the metrics. */
  metrics: number;
  /** Σ passes since fired, then the dead-feature count. */
  passes: number;
  /** The two flag words (u32 bits). */
  flag: number;
  /** Total words. */
  size: number;
}

/** The snapshot layout for `nLosses` loss parts (plus the overall loss) and `nMetrics` metrics. */
export function snapshotLayout(nLosses: number, nMetrics: number): SnapshotLayout {
  const losses = 0, recon = 1 + nLosses, l0Sum = recon + 4, metrics = l0Sum + 1;
  const passes = metrics + nMetrics, flag = passes + 2;
  return { losses, recon, l0Sum, metrics, passes, flag, size: flag + 2 };
}

/**
 * §5.2 statistics from the reconstruction sums of `n` tokens: [Σ‖x̂−x‖², Σ‖x−x̄‖², Σ legacy,
 * Σ legacy²]. The legacy std is the unbiased one-pass estimate (NaN for one token, like torch).
 */
export function statsFromSums(
  recon: ArrayLike<number>,
  l0Sum: number,
  n: number,
): ReconstructionStats {
  const [l2, variance, legacy, legacySq] = [recon[0], recon[1], recon[2], recon[3]];
  const mean = legacy / n;
  return {
    explainedVariance: 1 - (l2 / n) / (variance / n),
    explainedVarianceLegacy: mean,
    explainedVarianceLegacyStd: n > 1
      ? Math.sqrt(Math.max(0, (legacySq - n * mean * mean) / (n - 1)))
      : NaN,
    l0: l0Sum / n,
  };
}

/** Host-side values of the log dict of one step (known without any readback). */
export interface StepLogContext {
  /** Rows of the step's batch. */
  nRows: number;
  dSae: number;
  lossKeys: string[];
  metricKeys: string[];
  /** The optimiser's lr after the scheduler step (what SAELens logs). */
  lr: number;
  nTrainingSamples: number;
  /** Coefficient values after the coefficient schedulers' step (what SAELens logs). */
  coefficients: Record<string, number>;
}

/** The first bad step recorded in the two flag words, or null. */
export function badStepOf(words: ArrayLike<number>): NonFiniteStepError | null {
  const input = words[0] >>> 0, loss = words[1] >>> 0;
  if (input === NO_BAD_STEP && loss === NO_BAD_STEP) return null;
  return input <= loss
    ? new NonFiniteStepError(input, "input")
    : new NonFiniteStepError(loss, "loss");
}

/** SAELens' train-step log dict from a snapshot (throws the step's NonFiniteStepError if flagged). */
export function trainLogFromSnapshot(
  snapshot: ArrayBuffer,
  layout: SnapshotLayout,
  ctx: StepLogContext,
): Record<string, number> {
  const f = new Float32Array(snapshot), u = new Uint32Array(snapshot);
  const bad = badStepOf(u.subarray(layout.flag, layout.flag + 2));
  if (bad) throw bad;
  const stats = statsFromSums(
    f.subarray(layout.recon, layout.recon + 4),
    f[layout.l0Sum],
    ctx.nRows,
  );
  return trainStepLogDict({
    stats,
    loss: f[layout.losses],
    losses: Object.fromEntries(ctx.lossKeys.map((k, i) => [k, f[layout.losses + 1 + i]])),
    metrics: Object.fromEntries(ctx.metricKeys.map((k, i) => [k, f[layout.metrics + i]])),
    lr: ctx.lr,
    nTrainingSamples: ctx.nTrainingSamples,
    coefficients: ctx.coefficients,
    meanPassesSinceFired: f[layout.passes] / ctx.dSae,
    deadFeatures: f[layout.passes + 1],
  });
}

/** Receives log dicts: train metrics (§5.2), sparsity windows (§5.3) and eval results. */
export type TrainerLogger = (
  step: number,
  logDict: Record<string, unknown>,
) => void | Promise<void>;

/** A readback recorded in some step's submit, waiting to be logged. */
export interface PendingLog {
  step: number;
  /** `train`: a log snapshot; `sparsity`: act_freq_scores at a window start; `flag`: flag words. */
  kind: "train" | "sparsity" | "flag";
  data: Promise<ArrayBuffer>;
  /** `train` entries: the host-side values of the dict. */
  ctx?: StepLogContext;
  /** `sparsity` entries: n_frac_active_samples of the window that ended. */
  nFrac?: number;
}

/**
 * Pending log readbacks in step order. {@link LogQueue.drain} awaits and delivers them; a
 * flagged bad step throws its {@link NonFiniteStepError} instead.
 */
export class LogQueue {
  #pending: PendingLog[] = [];

  constructor(readonly layout: SnapshotLayout) {}

  /** Number of entries not yet delivered. */
  get size(): number {
    return this.#pending.length;
  }

  push(entry: PendingLog): void {
    this.#pending.push(entry);
  }

  /** Delivers the entries recorded before step `before` (all with Infinity), in order. */
  async drain(before: number, logger: TrainerLogger | undefined): Promise<void> {
    while (this.#pending.length > 0 && this.#pending[0].step < before) {
      const entry = this.#pending.shift()!;
      const data = await entry.data;
      if (entry.kind === "flag") {
        const bad = badStepOf(new Uint32Array(data));
        if (bad) throw bad;
      } else if (entry.kind === "train") {
        await logger?.(entry.step, trainLogFromSnapshot(data, this.layout, entry.ctx!));
      } else {
        const n = Math.fround(entry.nFrac!);
        const sparsity = new Float32Array(data).map((v) => v / n);
        await logger?.(entry.step, { ...sparsityWindowLogDict(sparsity) });
      }
    }
  }
}
