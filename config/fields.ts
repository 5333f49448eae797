/**
 * Declarative config fields: a field spec says its snake_case name, type, range and default, and
 * {@link readField} checks one value against it with an error that names the field, the bad value
 * and what was expected. The SAE architecture registry and the runner config are built from these.
 * @module
 */

import { ConfigError, describeValue } from "./errors.ts";
import { isPlainObject } from "./naming.ts";

/** The type (and range) a config field accepts. `nullable` also accepts JSON `null`. */
export type FieldKind =
  | { type: "int"; min?: number; max?: number; nullable?: boolean }
  | {
    type: "number";
    min?: number;
    exclusiveMin?: boolean;
    max?: number;
    exclusiveMax?: boolean;
    nullable?: boolean;
  }
  | { type: "bool" }
  | { type: "string"; nullable?: boolean }
  | { type: "enum"; values: readonly (string | null)[] }
  | { type: "intList" }
  | { type: "dict"; nullable?: boolean }
  | { type: "any" };

/**
 * Largest value of a size field (a width, `k`, a context or batch size): 2³¹ − 1, what the WGSL
 * kernels' 32-bit index math can address. Every integer field is also a safe integer (a value
 * such as `1e308` passes `Number.isInteger` but not this).
 */
export const MAX_SIZE_FIELD = 2 ** 31 - 1;

/** One config field: snake_case `name`, accepted `kind`, and a `default` unless `required`. */
export interface FieldSpec {
  /** The snake_case config key. */
  name: string;
  /** The accepted value kind. */
  kind: FieldKind;
  /** Value used when the key is absent (unless `required`). */
  default?: unknown;
  /** Whether the key must be present. */
  required?: boolean;
  /**
   * A saeflow extension (not a SAELens key): written to `runner_cfg.json` only when it differs
   * from its default, so SAELens can read the file.
   */
  saeflow?: boolean;
}

/** Describes what `kind` accepts, for error messages. */
export function describeKind(kind: FieldKind): string {
  const orNull = "nullable" in kind && kind.nullable ? " or null" : "";
  switch (kind.type) {
    case "int": {
      const max = kind.max !== undefined ? ` ≤ ${kind.max}` : " (safe: |n| ≤ 2^53 − 1)";
      if (kind.min === 1) return `a positive integer${max}${orNull}`;
      if (kind.min === 0) return `a non-negative integer${max}${orNull}`;
      const min = kind.min !== undefined ? ` ≥ ${kind.min}` : "";
      return `an integer${min}${max}${orNull}`;
    }
    case "number": {
      const lo = kind.min === undefined ? "" : ` ${kind.exclusiveMin ? ">" : "≥"} ${kind.min}`;
      const hi = kind.max === undefined ? "" : ` ${kind.exclusiveMax ? "<" : "≤"} ${kind.max}`;
      return `a number${lo}${lo && hi ? " and" : ""}${hi}${orNull}`;
    }
    case "bool":
      return "true or false";
    case "string":
      return `a string${orNull}`;
    case "enum":
      return `one of ${kind.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "intList":
      return "a list of integers";
    case "dict":
      return `a JSON object${orNull}`;
    case "any":
      return "any value";
  }
}

/**
 * Checks `value` against `kind`; throws a {@link ConfigError} naming `where` otherwise.
 * Returns the value (arrays are copied).
 *
 * @example
 * ```ts
 * import { checkValue } from "./fields.ts";
 * checkValue(768, { type: "int", min: 1 }, "d_in");
 * let threw = false;
 * try { checkValue(-1, { type: "int", min: 1 }, "d_in"); } catch { threw = true; }
 * if (!threw) throw new Error("unreachable");
 * ```
 */
export function checkValue(value: unknown, kind: FieldKind, where: string): unknown {
  const fail = (): never => {
    throw new ConfigError(`${where} is ${describeValue(value)}, expected ${describeKind(kind)}`);
  };
  if (value === null && "nullable" in kind && kind.nullable) return null;
  switch (kind.type) {
    case "int":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) fail();
      if (kind.min !== undefined && (value as number) < kind.min) fail();
      if (kind.max !== undefined && (value as number) > kind.max) fail();
      return value;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) fail();
      if (kind.min !== undefined) {
        const v = value as number;
        if (kind.exclusiveMin ? v <= kind.min : v < kind.min) fail();
      }
      if (kind.max !== undefined) {
        const v = value as number;
        if (kind.exclusiveMax ? v >= kind.max : v > kind.max) fail();
      }
      return value;
    case "bool":
      if (typeof value !== "boolean") fail();
      return value;
    case "string":
      if (typeof value !== "string") fail();
      return value;
    case "enum":
      if (!kind.values.includes(value as string | null)) fail();
      return value;
    case "intList":
      if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v))) fail();
      return [...(value as number[])];
    case "dict":
      if (!isPlainObject(value)) fail();
      return structuredClone(value);
    case "any":
      return value;
  }
}

/**
 * Reads `spec.name` from a snake_case dict: the checked value, or the spec default when the key
 * is absent (`undefined`). A missing required field throws.
 */
export function readField(
  spec: FieldSpec,
  dict: Record<string, unknown>,
  where: string,
): unknown {
  const value = dict[spec.name];
  if (value === undefined) {
    if (spec.required) {
      throw new ConfigError(
        `${where}: required field ${spec.name} is missing (expected ${describeKind(spec.kind)})`,
      );
    }
    return structuredClone(spec.default);
  }
  return checkValue(value, spec.kind, `${where}: ${spec.name}`);
}
