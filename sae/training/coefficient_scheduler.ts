/**
 * Coefficient warm-up of the SAELens trainer (`CoefficientScheduler`, spec §3.11); one per entry
 * of the SAE's `get_coefficients()` (l1, l0, …).
 * @module
 */

import { _requireInt, TrainingError } from "./errors.ts";

/**
 * Linear warm-up of one loss coefficient (`CoefficientScheduler`, spec §3.11): `value` is 0 before
 * the first step when `warmUpSteps > 0` (else `finalValue`); after t calls to `step()` it is
 * finalValue·min(t, W)/W. So train step 0 uses 0, step 1 uses final/W, …, step W uses final.
 *
 * @example
 * ```ts
 * import { CoefficientScheduler } from "./coefficient_scheduler.ts";
 * const c = new CoefficientScheduler(8, 4);
 * const seen = [c.value, c.step(), c.step(), c.step(), c.step(), c.step()];
 * if (seen.join() !== "0,2,4,6,8,8") throw new Error(seen.join());
 * ```
 */
export class CoefficientScheduler {
  /** Coefficient after warm-up. */
  readonly finalValue: number;
  /** Steps of linear warm-up from 0 (0 = none). */
  readonly warmUpSteps: number;
  /** Number of `step()` calls so far. */
  currentStep = 0;
  /** Value to use for the current train step. */
  value: number;

  /** Note the argument order (final value first), unlike SAELens' keyword-only constructor. */
  constructor(finalValue: number, warmUpSteps = 0) {
    if (!Number.isFinite(finalValue)) {
      throw new TrainingError(`coefficient final value is ${finalValue}, expected a number`);
    }
    if (!(warmUpSteps >= 0)) {
      throw new TrainingError(`coefficient warmUpSteps is ${warmUpSteps}, expected >= 0`);
    }
    this.finalValue = finalValue;
    this.warmUpSteps = warmUpSteps;
    this.value = warmUpSteps > 0 ? 0 : finalValue;
  }

  /** Advances one train step and returns the new value. */
  step(): number {
    this.value = this.currentStep < this.warmUpSteps
      ? this.finalValue * ((this.currentStep + 1) / this.warmUpSteps)
      : this.finalValue;
    this.currentStep++;
    return this.value;
  }

  /** `{currentStep}` (SAELens saves `{"current_step"}`). */
  stateDict(): { currentStep: number } {
    return { currentStep: this.currentStep };
  }

  /**
   * Restores `currentStep` and recomputes `value` from it. Deliberate fix: SAELens 6.18 only
   * restores `current_step`, so the first step after a resume used the initial value (0 during
   * warm-up) instead of the warmed-up one.
   */
  loadStateDict(state: { currentStep: number }): void {
    _requireInt(state.currentStep, "coefficient scheduler currentStep", 0);
    this.currentStep = state.currentStep;
    const t = state.currentStep;
    // The value the t-th step() call produced (same branch test as step()).
    this.value = t === 0
      ? (this.warmUpSteps > 0 ? 0 : this.finalValue)
      : t - 1 < this.warmUpSteps
      ? this.finalValue * (t / this.warmUpSteps)
      : this.finalValue;
  }
}
