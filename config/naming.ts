/**
 * THE mapping between SAELens' snake_case names (`apply_b_dec_to_input`, on disk and in Python
 * configs) and saeflow's camelCase API names (`applyBDecToInput`). Every loader that accepts a
 * config goes through here, so both spellings work everywhere.
 *
 * Rule: a key is converted only when it is canonical in its own spelling, so that
 * `toSnake(toCamel(k)) === k` for every snake key and `toCamel(toSnake(k)) === k` for every camel
 * key:
 * - `toCamel` converts keys matching `^[a-z][a-z0-9]*(_[a-z0-9]+)*$`; each `_x` becomes `X`, but a
 *   part starting with a digit keeps its underscore (`layer_0` stays `layer_0`, `adam_beta1` →
 *   `adamBeta1`).
 * - `toSnake` converts keys that start lower-case, contain only letters/digits/underscores, and
 *   have no `__`, no trailing `_` and no `_` before a capital; each capital `X` becomes `_x`.
 * - Anything else (dotted hook names, `W_enc`, keys with `-` or `/`) is returned verbatim.
 * - {@link NAME_EXCEPTIONS} pins names whose generic conversion would be wrong (tensor names).
 * @module
 */

import { ConfigError, describeValue } from "./errors.ts";

/**
 * Names kept identical in both spellings: SAELens math tensor names, which the project style
 * keeps verbatim in the camelCase API too (`sae.W_enc`, `sae.b_dec`).
 */
export const NAME_EXCEPTIONS: ReadonlyMap<string, string> = new Map([
  ["b_enc", "b_enc"],
  ["b_dec", "b_dec"],
  ["b_gate", "b_gate"],
  ["b_mag", "b_mag"],
  ["r_mag", "r_mag"],
  ["W_enc", "W_enc"],
  ["W_dec", "W_dec"],
  ["W_skip", "W_skip"],
  ["log_threshold", "log_threshold"],
  ["topk_threshold", "topk_threshold"],
]);

const CAMEL_EXCEPTIONS: ReadonlyMap<string, string> = new Map(
  [...NAME_EXCEPTIONS].map(([snake, camel]) => [camel, snake]),
);

const STRICT_SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const CAMEL_LIKE = /^[a-z][A-Za-z0-9_]*$/;

/**
 * snake_case → camelCase (see the module doc for the exact rule).
 *
 * @example
 * ```ts
 * import { toCamel } from "./naming.ts";
 * if (toCamel("apply_b_dec_to_input") !== "applyBDecToInput") throw new Error();
 * if (toCamel("n_batches_in_buffer") !== "nBatchesInBuffer") throw new Error();
 * if (toCamel("blocks.0.hook_resid_pre") !== "blocks.0.hook_resid_pre") throw new Error();
 * ```
 */
export function toCamel(key: string): string {
  const pinned = NAME_EXCEPTIONS.get(key);
  if (pinned !== undefined) return pinned;
  if (!STRICT_SNAKE.test(key)) return key;
  const [head, ...rest] = key.split("_");
  let out = head;
  for (const part of rest) {
    out += /^[a-z]/.test(part) ? part[0].toUpperCase() + part.slice(1) : `_${part}`;
  }
  return out;
}

/**
 * camelCase → snake_case (see the module doc for the exact rule).
 *
 * @example
 * ```ts
 * import { toSnake } from "./naming.ts";
 * if (toSnake("applyBDecToInput") !== "apply_b_dec_to_input") throw new Error();
 * if (toSnake("l1Coefficient") !== "l1_coefficient") throw new Error();
 * if (toSnake("W_enc") !== "W_enc") throw new Error();
 * ```
 */
export function toSnake(key: string): string {
  const pinned = CAMEL_EXCEPTIONS.get(key);
  if (pinned !== undefined) return pinned;
  if (!CAMEL_LIKE.test(key) || key.includes("__") || key.endsWith("_") || /_[A-Z]/.test(key)) {
    return key;
  }
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Options of {@link camelizeKeys} / {@link snakeizeKeys}. */
export interface ConvertKeysOptions {
  /** Recurse into nested plain objects and arrays (default false: top level only). */
  deep?: boolean;
  /**
   * Keys (either spelling) whose values are free-form dicts copied verbatim, keys included,
   * e.g. `model_from_pretrained_kwargs`. Defaults to {@link FREEFORM_KEYS}.
   */
  keepInner?: ReadonlySet<string>;
  /**
   * Keys (either spelling) whose value is a dict whose own keys are converted but whose values
   * are copied verbatim. Defaults to {@link KEEP_VALUES_KEYS} (`metadata`).
   */
  keepValuesOf?: ReadonlySet<string>;
  /** Used in error messages to say where the keys came from (e.g. a file name). */
  context?: string;
}

/** Config keys whose values are free-form dicts that keep their keys verbatim. */
export const FREEFORM_KEYS: ReadonlySet<string> = new Set([
  "model_from_pretrained_kwargs",
  "model_kwargs",
  "activation_fn_kwargs",
  "config_overrides",
  "training_architecture_details",
]);

/** Config keys whose dict value has converted keys but verbatim values. */
export const KEEP_VALUES_KEYS: ReadonlySet<string> = new Set(["metadata"]);

/** True for `{...}` objects (not arrays, not null, not class instances like Map or Date). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Copies `obj` with every key converted to camelCase. Two source keys that map to the same name
 * (`d_in` and `dIn`) are accepted only if their values are equal, otherwise a
 * {@link ConfigError} names both.
 *
 * @example
 * ```ts
 * import { camelizeKeys } from "./naming.ts";
 * const out = camelizeKeys({ d_in: 768, model_kwargs: { use_cache: true } }, { deep: true });
 * if (out.dIn !== 768) throw new Error();
 * if (!("use_cache" in (out.modelKwargs as object))) throw new Error();
 * ```
 */
export function camelizeKeys(
  obj: Record<string, unknown>,
  options: ConvertKeysOptions = {},
): Record<string, unknown> {
  return convertKeys(obj, toCamel, options, options.context ?? "config");
}

/**
 * Copies `obj` with every key converted to snake_case; the mirror of {@link camelizeKeys}.
 *
 * @example
 * ```ts
 * import { snakeizeKeys } from "./naming.ts";
 * const out = snakeizeKeys({ nBatchesInBuffer: 20, d_in: 4 });
 * if (out.n_batches_in_buffer !== 20 || out.d_in !== 4) throw new Error();
 * ```
 */
export function snakeizeKeys(
  obj: Record<string, unknown>,
  options: ConvertKeysOptions = {},
): Record<string, unknown> {
  return convertKeys(obj, toSnake, options, options.context ?? "config");
}

function inSet(set: ReadonlySet<string>, key: string): boolean {
  return set.has(key) || set.has(toSnake(key)) || set.has(toCamel(key));
}

function convertKeys(
  obj: Record<string, unknown>,
  convert: (key: string) => string,
  options: ConvertKeysOptions,
  where: string,
): Record<string, unknown> {
  const keepInner = options.keepInner ?? FREEFORM_KEYS;
  const keepValuesOf = options.keepValuesOf ?? KEEP_VALUES_KEYS;
  const out: Record<string, unknown> = {};
  const sourceOf = new Map<string, string>();
  for (const [key, value] of Object.entries(obj)) {
    const target = convert(key);
    let converted = value;
    if (options.deep && !inSet(keepInner, key)) {
      if (inSet(keepValuesOf, key) && isPlainObject(value)) {
        converted = convertKeys(value, convert, { keepValuesOf: new Set() }, `${where}.${key}`);
      } else {
        converted = convertValue(value, convert, options, `${where}.${key}`);
      }
    }
    const previous = sourceOf.get(target);
    if (previous !== undefined) {
      if (!deepEqual(out[target], converted)) {
        throw new ConfigError(
          `${where}: conflicting keys "${previous}" (${describeValue(out[target])}) and ` +
            `"${key}" (${describeValue(converted)}) name the same setting; give only one`,
        );
      }
      continue;
    }
    sourceOf.set(target, key);
    out[target] = converted;
  }
  return out;
}

function convertValue(
  value: unknown,
  convert: (key: string) => string,
  options: ConvertKeysOptions,
  where: string,
): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => convertValue(v, convert, options, `${where}[${i}]`));
  }
  if (isPlainObject(value)) return convertKeys(value, convert, options, where);
  return value;
}

/** Structural equality of JSON-like values (used to accept harmless duplicate spellings). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}
