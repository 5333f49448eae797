/**
 * Base class of every error saeflow throws on purpose. Each subsystem subclasses it
 * (`SafetensorsError`, `GpuError`, `ConfigError`, …) so callers can tell saeflow's
 * validation errors from bugs, and every message names what was wrong and what was expected.
 *
 * @example
 * ```ts
 * import { SaeflowError } from "./errors.ts";
 * const err = new SaeflowError("d_in is 512, expected 768");
 * if (!(err instanceof Error)) throw new Error("unreachable");
 * ```
 */
export class SaeflowError extends Error {
  /** Creates the error; `name` is set to the concrete subclass's name. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
