import { SaeflowError } from "../../util/errors.ts";
import { GpuError } from "../../gpu/device.ts";

/**
 * Thrown by the training pieces (LR/coefficient schedules, the activation scaler, firing
 * statistics, the trainer) when an argument or a state dict is invalid.
 *
 * @example
 * ```ts
 * import { TrainingError } from "./errors.ts";
 * const err = new TrainingError("batchSize is 0, expected a positive integer");
 * if (err.name !== "TrainingError") throw new Error("unreachable");
 * ```
 */
export class TrainingError extends SaeflowError {}

/**
 * Thrown by the training SAE and its step kernels: bad shapes, unsupported options, an
 * architecture that cannot be trained. A `GpuError`, as the step's device-side checks are.
 */
export class TrainSaeError extends GpuError {}

/** Throws a {@link TrainingError} unless `value` is an integer ≥ `min`. @internal */
export function _requireInt(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new TrainingError(`${name} is ${value}, expected a safe integer >= ${min}`);
  }
}
