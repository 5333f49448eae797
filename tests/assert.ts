/** Small assertion helpers for the test suite (JSR's `@std/assert` is unreachable here). */

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function fmt(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<unknown>, y = b as unknown as ArrayLike<unknown>;
    if (a.constructor !== b.constructor || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    return true;
  }
  const ka = Object.keys(a as object), kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) {
      return false;
    }
  }
  return true;
}

/** Deep structural equality (typed arrays compared element-wise with `Object.is`). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  if (!deepEqual(actual, expected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${fmt(expected)}, got ${fmt(actual)}`);
  }
}

/** |actual − expected| ≤ atol + rtol·|expected|. */
export function assertClose(
  actual: number,
  expected: number,
  atol = 1e-6,
  rtol = 0,
  msg?: string,
): void {
  const ok = Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
  if (!ok || Number.isNaN(actual) !== Number.isNaN(expected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${expected} ± ${atol}, got ${actual}`);
  }
}

/** Element-wise {@link assertClose} over two array-likes of equal length. */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol = 1e-6,
  rtol = 0,
  msg?: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${msg ? msg + ": " : ""}length ${actual.length} != ${expected.length}`);
  }
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const bad = err > atol + rtol * Math.abs(expected[i]) || Number.isNaN(actual[i]);
    if (bad && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${msg ? msg + ": " : ""}index ${worst}: expected ${expected[worst]}, got ${
        actual[worst]
      } (atol ${atol}, rtol ${rtol})`,
    );
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass = abstract new (...args: any[]) => Error;

function checkError(err: unknown, cls?: ErrorClass, includes?: string | RegExp): Error {
  if (!(err instanceof Error)) throw new Error(`expected an Error, got ${fmt(err)}`);
  if (cls && !(err instanceof cls)) {
    const e = err as Error;
    throw new Error(`expected ${cls.name}, got ${e.name}: ${e.message}`);
  }
  if (includes !== undefined) {
    const ok = typeof includes === "string"
      ? err.message.includes(includes)
      : includes.test(err.message);
    if (!ok) throw new Error(`error message ${fmt(err.message)} does not match ${includes}`);
  }
  return err;
}

/** Asserts that `fn` throws (optionally an instance of `cls` whose message matches). */
export function assertThrows(
  fn: () => unknown,
  cls?: ErrorClass,
  includes?: string | RegExp,
): Error {
  try {
    fn();
  } catch (err) {
    return checkError(err, cls, includes);
  }
  throw new Error("expected function to throw");
}

/** Asserts that the promise from `fn` rejects (optionally with `cls` / a matching message). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string | RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return checkError(err, cls, includes);
  }
  throw new Error("expected promise to reject");
}
