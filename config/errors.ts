/**
 * The error every configuration check throws, and the one place configuration warnings go.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/**
 * A configuration value was missing, of the wrong type, out of range or inconsistent with another
 * field. The message names the field, the bad value and what was expected.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 * const err = new ConfigError("d_in is -1, expected a positive integer");
 * if (!(err instanceof ConfigError)) throw new Error("unreachable");
 * ```
 */
export class ConfigError extends SaeflowError {}

/** Receives configuration warnings (SAELens emits these with `warnings.warn`). */
export type ConfigWarnHandler = (message: string) => void;

let handler: ConfigWarnHandler = (message) => console.warn(`saeflow config: ${message}`);

/**
 * Emits a configuration warning through the current handler (default: `console.warn`).
 *
 * @example
 * ```ts
 * import { configWarn, setConfigWarnHandler } from "./errors.ts";
 * const seen: string[] = [];
 * const previous = setConfigWarnHandler((m) => seen.push(m));
 * configWarn("hook_eval is deprecated");
 * setConfigWarnHandler(previous);
 * if (seen.length !== 1) throw new Error("unreachable");
 * ```
 */
export function configWarn(message: string): void {
  handler(message);
}

/** Replaces the warning handler (tests capture warnings this way); returns the previous one. */
export function setConfigWarnHandler(next: ConfigWarnHandler): ConfigWarnHandler {
  const previous = handler;
  handler = next;
  return previous;
}

export { describeValue } from "../util/errors.ts";
