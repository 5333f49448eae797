/**
 * Learning-rate and coefficient schedules of the SAELens trainer (spec §3.11).
 *
 * The LR schedule re-creates `get_lr_scheduler`: a torch `SequentialLR` of [LinearLR warm-up] →
 * main (LambdaLR constant | CosineAnnealingLR | CosineAnnealingWarmRestarts) → [LinearLR decay].
 * torch's schedulers are *chained*: most steps multiply the optimiser's current lr by a ratio
 * rather than evaluating a closed form, and `SequentialLR` switches to the next scheduler with
 * `step(0)`, which uses the closed form. The two agree mathematically but not bit-for-bit
 * (CosineAnnealingLR's ratio form drifts ~1e-17 relative per step), so this module replays
 * torch's exact recurrences, including which branch is taken at each step, to get the same
 * doubles torch produces (up to libm differences in `cos`).
 * @module
 */

import { _requireInt, TrainingError } from "./errors.ts";

export { CoefficientScheduler } from "./coefficient_scheduler.ts";

/** Options of {@link createLrScheduler} (SAELens runner-config names in camelCase). */
export interface LrSchedulerOptions {
  /** Base learning rate (`lr`). */
  lr: number;
  /** `constant` | `cosineannealing` | `cosineannealingwarmrestarts`, case-insensitive. */
  lrSchedulerName?: string;
  /** Linear warm-up steps (`lr_warm_up_steps`, default 0). */
  lrWarmUpSteps?: number;
  /** Linear decay-to-zero steps at the end (`lr_decay_steps`, default 0). */
  lrDecaySteps?: number;
  /** Cosine floor and decay start (`lr_end`); null/undefined → lr/10 like the runner config. */
  lrEnd?: number | null;
  /** Restart cycles of `cosineannealingwarmrestarts` (`n_restart_cycles`, default 1). */
  nRestartCycles?: number;
  /** Total optimiser steps (`total_training_steps`). */
  totalSteps: number;
}

/** Serializable state of an {@link LrScheduler} (JSON-safe). */
export interface LrSchedulerState {
  /** SequentialLR's `last_epoch`. */
  lastEpoch: number;
  /** The optimiser's current lr (torch keeps it in the optimiser's param group). */
  lr: number;
  /** Per sub-scheduler: `last_epoch`, `_step_count`, and `T_cur`/`T_i` for warm restarts. */
  schedulers: { lastEpoch: number; stepCount: number; tCur?: number; tI?: number }[];
}

/** A stepped learning-rate schedule; `lr` is the value to use for the next optimiser step. */
export interface LrScheduler {
  /** Current learning rate (torch's `get_last_lr()[0]`). */
  readonly lr: number;
  /** Advances one step (call after each optimiser step); returns the new lr. */
  step(): number;
  /** Snapshot for checkpoints. */
  stateDict(): LrSchedulerState;
  /** Restores a snapshot taken from a scheduler built with the same options. */
  loadStateDict(state: LrSchedulerState): void;
}

/** One torch scheduler inside the SequentialLR. */
interface SubScheduler {
  lastEpoch: number;
  stepCount: number;
  tCur?: number;
  tI?: number;
  /** torch `step()`: last_epoch += 1, then the (chained) `get_lr`. */
  step(groupLr: number): number;
  /** torch `step(epoch)`: jump to `epoch` via the closed form. */
  stepTo(epoch: number, groupLr: number): number;
}

function linearLr(
  baseLr: number,
  startFactor: number,
  endFactor: number,
  totalIters: number,
): SubScheduler {
  if (startFactor > 1 || startFactor <= 0) {
    throw new TrainingError(
      `LinearLR start factor is ${startFactor}, expected a value in (0, 1] (is lrEnd > lr?)`,
    );
  }
  if (endFactor > 1 || endFactor < 0) {
    throw new TrainingError(`LinearLR end factor is ${endFactor}, expected a value in [0, 1]`);
  }
  const delta = endFactor - startFactor;
  return {
    lastEpoch: -1,
    stepCount: 1,
    step(groupLr) {
      this.stepCount++;
      const e = ++this.lastEpoch;
      if (e === 0) return groupLr * startFactor;
      if (e > totalIters) return groupLr;
      return groupLr * (1.0 + delta / (totalIters * startFactor + (e - 1) * delta));
    },
    stepTo(epoch) {
      this.stepCount++;
      this.lastEpoch = epoch;
      return baseLr * (startFactor + delta * Math.min(totalIters, epoch) / totalIters);
    },
  };
}

function constantLr(baseLr: number): SubScheduler {
  return {
    lastEpoch: -1,
    stepCount: 1,
    step() {
      this.stepCount++;
      this.lastEpoch++;
      return baseLr;
    },
    stepTo(epoch) {
      this.stepCount++;
      this.lastEpoch = epoch;
      return baseLr;
    },
  };
}

function requireNonZeroPeriod(tMax: number): void {
  // Python raises ZeroDivisionError here; JS would silently produce NaN.
  if (tMax === 0) {
    throw new TrainingError(
      "cosineannealing main phase has T_max = totalSteps - lrWarmUpSteps - lrDecaySteps = 0",
    );
  }
}

function cosineAnnealingLr(baseLr: number, tMax: number, etaMin: number): SubScheduler {
  return {
    lastEpoch: -1,
    stepCount: 1,
    step(groupLr) {
      this.stepCount++;
      const e = ++this.lastEpoch;
      if (e === 0) return groupLr;
      requireNonZeroPeriod(tMax);
      // torch's `_step_count == 1 and last_epoch > 0` branch only triggers for schedulers built
      // with last_epoch >= 0, which SAELens never does; the other branches are replayed exactly.
      const m = 2 * tMax;
      if ((((e - 1 - tMax) % m) + m) % m === 0) { // Python's non-negative modulo
        return groupLr + (baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2;
      }
      return (1 + Math.cos(Math.PI * e / tMax)) / (1 + Math.cos(Math.PI * (e - 1) / tMax)) *
          (groupLr - etaMin) + etaMin;
    },
    stepTo(epoch) {
      this.stepCount++;
      this.lastEpoch = epoch;
      requireNonZeroPeriod(tMax);
      return etaMin + (baseLr - etaMin) * (1 + Math.cos(Math.PI * epoch / tMax)) / 2;
    },
  };
}

function cosineWarmRestartsLr(baseLr: number, t0: number, etaMin: number): SubScheduler {
  // Closed form in T_cur/T_i (T_mult = 1); torch's own constructor already ran step(0).
  const lrAt = (tCur: number, tI: number) =>
    etaMin + (baseLr - etaMin) * (1 + Math.cos(Math.PI * tCur / tI)) / 2;
  return {
    lastEpoch: -1,
    stepCount: 1,
    tCur: 0,
    tI: t0,
    step() {
      this.stepCount++;
      if (this.lastEpoch < 0) return this.stepTo(0, 0);
      this.lastEpoch++;
      this.tCur = this.tCur! + 1;
      if (this.tCur >= this.tI!) this.tCur -= this.tI!;
      return lrAt(this.tCur, this.tI!);
    },
    stepTo(epoch) {
      this.lastEpoch = epoch;
      this.tI = t0;
      this.tCur = epoch >= t0 ? epoch % t0 : epoch;
      return lrAt(this.tCur, this.tI);
    },
  };
}

function mainScheduler(
  name: string,
  lr: number,
  steps: number,
  lrEnd: number,
  cycles: number,
): SubScheduler {
  if (name === "constant") return constantLr(lr);
  if (name === "cosineannealing") return cosineAnnealingLr(lr, steps, lrEnd);
  if (name === "cosineannealingwarmrestarts") {
    const t0 = Math.floor(steps / cycles);
    if (t0 <= 0) {
      throw new TrainingError(
        `cosineannealingwarmrestarts period T_0 = floor(${steps} main steps / ${cycles} ` +
          `nRestartCycles) = ${t0}, expected a positive integer`,
      );
    }
    return cosineWarmRestartsLr(lr, t0, lrEnd);
  }
  throw new TrainingError(`Unsupported scheduler: ${name}`);
}

/**
 * Builds the SAELens LR schedule (spec §3.11): main steps S = totalSteps − warm-up − decay;
 * [LinearLR 1/W → 1 over W−1 steps] → main → [LinearLR lrEnd/lr → 0 over decay steps], with
 * milestones [W, totalSteps − decay]. `constant` ignores `lrEnd` (decay then starts from lr).
 * Throws `Unsupported scheduler: <name>` for unknown names and when decay is asked for with
 * lrEnd = 0.
 *
 * @example
 * ```ts
 * import { createLrScheduler } from "./schedulers.ts";
 * const s = createLrScheduler({ lr: 0.1, lrWarmUpSteps: 2, lrDecaySteps: 4, totalSteps: 6 });
 * const seen = [s.lr];
 * for (let i = 0; i < 6; i++) seen.push(s.step());
 * // seen ≈ [0.05, 0.1, 0.1, 0.075, 0.05, 0.025, 0]
 * if (seen[6] !== 0) throw new Error("decays to 0");
 * ```
 */
export function createLrScheduler(options: LrSchedulerOptions): LrScheduler {
  const { lr, totalSteps } = options;
  const warmUp = options.lrWarmUpSteps ?? 0;
  const decay = options.lrDecaySteps ?? 0;
  const cycles = options.nRestartCycles ?? 1;
  let lrEnd = options.lrEnd ?? lr / 10;
  if (!Number.isFinite(lr) || lr < 0) throw new TrainingError(`lr is ${lr}, expected >= 0`);
  _requireInt(totalSteps, "totalSteps", 0);
  _requireInt(warmUp, "lrWarmUpSteps", 0);
  _requireInt(decay, "lrDecaySteps", 0);
  _requireInt(cycles, "nRestartCycles", 1);
  const name = (options.lrSchedulerName ?? "constant").toLowerCase();
  const main = mainScheduler(name, lr, totalSteps - warmUp - decay, lrEnd, cycles);
  if (name === "constant") lrEnd = lr; // decay has to start at lr

  const schedulers: SubScheduler[] = [];
  const milestones: number[] = [];
  if (warmUp > 0) {
    schedulers.push(linearLr(lr, 1 / warmUp, 1.0, warmUp - 1));
    milestones.push(warmUp);
  }
  schedulers.push(main);
  if (decay > 0) {
    if (lrEnd === 0) {
      throw new TrainingError(
        "Cannot have decay_steps with lr_end=0.0, this would decay from 0 to 0 and be a waste.",
      );
    }
    schedulers.push(linearLr(lr, lrEnd / lr, 0.0, decay));
    milestones.push(totalSteps - decay);
  }
  return new SequentialLr(lr, schedulers, milestones);
}

class SequentialLr implements LrScheduler {
  #lr: number;
  #lastEpoch = 0;
  readonly #schedulers: SubScheduler[];
  readonly #milestones: number[];

  constructor(baseLr: number, schedulers: SubScheduler[], milestones: number[]) {
    this.#schedulers = schedulers;
    this.#milestones = milestones;
    // SequentialLR resets the lr to initial_lr and re-runs only the first scheduler's
    // initial step (its `_step_count` is reset to 0 first, so it ends at 1 like the others).
    schedulers[0].stepCount = 0;
    this.#lr = schedulers[0].step(baseLr);
  }

  get lr(): number {
    return this.#lr;
  }

  step(): number {
    const epoch = ++this.#lastEpoch;
    let idx = 0; // bisect_right(milestones, epoch)
    while (idx < this.#milestones.length && this.#milestones[idx] <= epoch) idx++;
    const scheduler = this.#schedulers[idx];
    this.#lr = idx > 0 && this.#milestones[idx - 1] === epoch
      ? scheduler.stepTo(0, this.#lr)
      : scheduler.step(this.#lr);
    return this.#lr;
  }

  stateDict(): LrSchedulerState {
    return {
      lastEpoch: this.#lastEpoch,
      lr: this.#lr,
      schedulers: this.#schedulers.map((s) => ({
        lastEpoch: s.lastEpoch,
        stepCount: s.stepCount,
        ...(s.tCur === undefined ? {} : { tCur: s.tCur, tI: s.tI }),
      })),
    };
  }

  loadStateDict(state: LrSchedulerState): void {
    if (state.schedulers?.length !== this.#schedulers.length) {
      throw new TrainingError(
        `LR scheduler state has ${state.schedulers?.length} sub-schedulers, expected ` +
          `${this.#schedulers.length} (was it saved with different warm-up/decay options?)`,
      );
    }
    this.#lastEpoch = state.lastEpoch;
    this.#lr = state.lr;
    state.schedulers.forEach((s, i) => {
      const target = this.#schedulers[i];
      target.lastEpoch = s.lastEpoch;
      target.stepCount = s.stepCount;
      if (target.tCur !== undefined) {
        target.tCur = s.tCur;
        target.tI = s.tI;
      }
    });
  }
}
