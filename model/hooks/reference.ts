/**
 * Hook-point mechanics of the reference forward pass: each named activation goes through the
 * user hook (which may replace it; the replacement flows on) and is then cached if the names
 * filter accepts it. Mirrors TL's `HookPoint` + `run_with_cache`.
 * @module
 */

import { type HostTensor, sameShape, shapeStr } from "../../util/host_tensor.ts";
import { ModelError } from "../errors.ts";

/**
 * A forward hook: called with every hook point's name and value, in firing order. Return a
 * tensor of the same shape to replace the activation, or nothing to keep it. Mutating
 * `value.data` in place also changes what flows on (as with a PyTorch hook).
 */
export type HookFn = (name: string, value: HostTensor) => HostTensor | void | undefined;

/** Which hook values to cache: an exact name, a list of names, or a predicate. */
export type NamesFilter = string | readonly string[] | ((name: string) => boolean);

/** Turns a {@link NamesFilter} (undefined = everything) into a predicate. */
export function namesPredicate(filter: NamesFilter | undefined): (name: string) => boolean {
  if (filter === undefined) return () => true;
  if (typeof filter === "string") return (n) => n === filter;
  if (typeof filter === "function") return filter;
  if (!Array.isArray(filter) || !filter.every((n) => typeof n === "string")) {
    throw new ModelError(
      `namesFilter is ${typeof filter}, expected a hook name, a list of names or a predicate`,
    );
  }
  const set = new Set(filter);
  return (n) => set.has(n);
}

/** Fires hook points: applies the user hook, validates replacements, fills the cache. */
export class HookRunner {
  /** Cached values by hook name, in first-firing order (a re-fired name keeps its slot). */
  readonly cache = new Map<string, HostTensor>();
  private readonly keep: (name: string) => boolean;

  /** @param hook user hook (optional); @param filter which names to cache (default all). */
  constructor(private readonly hook?: HookFn, filter?: NamesFilter) {
    this.keep = namesPredicate(filter);
  }

  /** Passes `value` through hook point `name` and returns what flows on. */
  fire(name: string, value: HostTensor): HostTensor {
    let v = value;
    if (this.hook) {
      const r = this.hook(name, v);
      if (r !== undefined && r !== null) {
        if (!(r.data instanceof Float32Array)) {
          throw new ModelError(`hook ${name}: replacement data must be a Float32Array`);
        }
        if (!sameShape(r.shape, v.shape) || r.data.length !== v.data.length) {
          throw new ModelError(
            `hook ${name}: replacement has shape ${shapeStr(r.shape)}, expected ${
              shapeStr(v.shape)
            }`,
          );
        }
        v = r;
      }
    }
    if (this.keep(name)) this.cache.set(name, v);
    return v;
  }

  /** Convenience: fires `name` with `{data, shape}` and returns the resulting data. */
  fireData(name: string, data: Float32Array, shape: number[]): Float32Array {
    return this.fire(name, { data, shape }).data;
  }
}
