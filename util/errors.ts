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

/**
 * Short, bounded rendering of a value for error messages (JSON, cut at 80 characters).
 * Non-finite numbers print as `NaN`, `Infinity`, `-Infinity` (JSON would print them as `null`),
 * also inside arrays and objects.
 *
 * @example
 * ```ts
 * import { describeValue } from "./errors.ts";
 * if (describeValue([1, NaN, Infinity]) !== "[1,NaN,Infinity]") throw new Error();
 * if (describeValue("x") !== '"x"') throw new Error();
 * ```
 */
export function describeValue(value: unknown): string {
  let text: string;
  if (value === undefined) return "undefined";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  try {
    const marker = "@@saeflow-nonfinite:";
    text = JSON.stringify(
      value,
      (_k, v) => typeof v === "number" && !Number.isFinite(v) ? marker + String(v) : v,
    )?.replaceAll(new RegExp(`"${marker}([^"]*)"`, "g"), "$1") ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
