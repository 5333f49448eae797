/**
 * Hook points of the GPU forward pass, TransformerLens style. A {@link GpuHookContext} knows
 * which hook names are requested (a user hook, a cache filter, or a spliced module such as an
 * SAE); the forward asks {@link GpuHookContext.wants} before materialising a value, so
 * unrequested hooks cost nothing (fused kernels run instead), and passes requested values
 * through {@link GpuHookContext.fire}.
 *
 * Ownership: the forward owns every tensor it creates. A hook may return a replacement, whose
 * ownership passes to the forward (it is disposed once used): to hand in a tensor you keep,
 * return `t.clone()` or a view (`t.reshape(t.shape)`). A value passed to a hook is disposed after
 * use unless it was cached, so a hook that keeps its input must clone it. Cached tensors belong
 * to the caller of the run (free them with {@link disposeCache}).
 * @module
 */

import type { Tensor } from "../../gpu/tensor.ts";
import { type NamesFilter, namesPredicate } from "./reference.ts";
import { ModelError } from "../errors.ts";

/**
 * A forward hook on the GPU model: gets the activation (and its hook name) and may return a
 * same-shape replacement, or mutate it in place with GPU ops, or just read it
 * (`await value.toArray()` — that submits the work recorded so far).
 */
export type ModelHookFn = (
  value: Tensor,
  ctx: { name: string },
) => Tensor | void | undefined | Promise<Tensor | void | undefined>;

/** A hook name, or a predicate over hook names (TL accepts both in `fwd_hooks`). */
export type HookNameMatcher = string | ((name: string) => boolean);

/** One `[name, fn]` pair of `fwdHooks`. */
export type FwdHook = readonly [HookNameMatcher, ModelHookFn];

/** A module spliced in at a hook point (an SAE): it replaces the value flowing through. */
export interface HookSplice {
  /** Computes the replacement of `value` (which it must not dispose). */
  run(value: Tensor, ctx: GpuHookContext): Tensor | Promise<Tensor>;
}

/** Options of {@link GpuHookContext}. */
export interface HookContextOptions {
  /** Hooks active for the run, applied in order at every matching name. */
  fwdHooks?: readonly FwdHook[];
  /** Names to cache; `undefined` caches nothing (unlike TL's run_with_cache default). */
  namesFilter?: NamesFilter;
  /** Modules spliced at hook names. */
  splices?: ReadonlyMap<string, HookSplice>;
}

/** Frees every tensor of a cache returned by a run. */
export function disposeCache(cache: Map<string, Tensor>): void {
  for (const t of new Set(cache.values())) t.dispose();
  cache.clear();
}

/** Hook bookkeeping of one forward pass. */
export class GpuHookContext {
  /** Cached values by hook name, in first-firing order. */
  readonly cache: Map<string, Tensor> = new Map();
  readonly #hooks: { match: (n: string) => boolean; fn: ModelHookFn }[];
  readonly #keep: (name: string) => boolean;
  readonly #splices: ReadonlyMap<string, HookSplice>;
  readonly #cached = new Set<Tensor>();
  readonly #releasedWhileCached = new Set<Tensor>();
  readonly #owners = new Map<Tensor, Tensor>();

  /** A context for one forward pass. */
  constructor(opts: HookContextOptions = {}) {
    this.#hooks = (opts.fwdHooks ?? []).map(([m, fn]) => {
      if (typeof fn !== "function") {
        throw new ModelError(`fwdHooks: the hook for ${String(m)} is not a function`);
      }
      return { match: typeof m === "string" ? (n: string) => n === m : m, fn };
    });
    this.#keep = opts.namesFilter === undefined ? () => false : namesPredicate(opts.namesFilter);
    this.#splices = opts.splices ?? new Map();
  }

  /** True when the value at `name` may change (a user hook or a splice). */
  hooked(name: string): boolean {
    return this.#splices.has(name) || this.#hooks.some((h) => h.match(name));
  }

  /** True when the value at `name` must be materialised (hooked or cached). */
  wants(name: string): boolean {
    return this.hooked(name) || this.#keep(name);
  }

  /** True when `name` is cached (by the names filter). */
  caches(name: string): boolean {
    return this.#keep(name);
  }

  /**
   * Passes `value` (owned by the forward) through hook point `name`: splice or user hooks,
   * then the cache. Returns the value to continue with, owned by the caller.
   */
  async fire(name: string, value: Tensor): Promise<Tensor> {
    if (!this.wants(name)) return value;
    const splice = this.#splices.get(name);
    if (splice) {
      // A spliced module replaces the hook point itself (as in SAELens): `name` does not fire.
      const out = await splice.run(value, this);
      this.#check(name, value, out, "splice output");
      if (out !== value) this.release(value);
      return out;
    }
    let v = value;
    for (const h of this.#hooks) {
      if (!h.match(name)) continue;
      const r = await h.fn(v, { name });
      if (r === undefined || r === null || r === v) continue;
      this.#check(name, v, r, "hook replacement");
      if (r.buffer === v.buffer && !r.owned) this.#owners.set(r, v); // a view keeps v alive
      else this.release(v);
      v = r;
    }
    if (this.#keep(name)) this.#store(name, v);
    return v;
  }

  /**
   * Runs only user hooks and caching (no splice) at `name`, synchronously, for hook points inside
   * spliced modules. An async user hook there is an error.
   */
  fireSync(name: string, value: Tensor, store: (t: Tensor) => Tensor): Tensor {
    let v = value;
    for (const h of this.#hooks) {
      if (!h.match(name)) continue;
      const r = h.fn(v, { name });
      if (r instanceof Promise) {
        throw new ModelError(`hook ${name}: hooks inside a spliced SAE must be synchronous`);
      }
      if (r === undefined || r === null || r === v) continue;
      this.#check(name, v, r, "hook replacement");
      v = r;
    }
    if (this.#keep(name)) this.#store(name, store(v));
    return v;
  }

  #check(name: string, old: Tensor, r: Tensor, what: string): void {
    if (r.disposed) throw new ModelError(`hook ${name}: the ${what} was already disposed`);
    if (
      r.dtype !== old.dtype || r.shape.length !== old.shape.length ||
      r.shape.some((d, i) => d !== old.shape[i])
    ) {
      throw new ModelError(
        `hook ${name}: ${what} ${r} does not match the activation ${old} (same shape and dtype)`,
      );
    }
  }

  #store(name: string, t: Tensor): void {
    const old = this.cache.get(name);
    // A re-fired name keeps its first-firing slot; the value is the latest.
    this.cache.set(name, t);
    this.#cached.add(t);
    if (old && old !== t && ![...this.cache.values()].includes(old)) {
      this.#cached.delete(old);
      if (this.#releasedWhileCached.delete(old)) this.#free(old);
    }
  }

  /** True when `t` is held by the cache. */
  isCached(t: Tensor): boolean {
    return this.#cached.has(t);
  }

  /** Disposes a forward-owned tensor unless the cache holds it. */
  release(t: Tensor | null | undefined): void {
    if (!t) return;
    if (this.#cached.has(t)) {
      this.#releasedWhileCached.add(t);
      return;
    }
    this.#free(t);
  }

  #free(t: Tensor): void {
    t.dispose();
    const owner = this.#owners.get(t);
    if (owner) {
      this.#owners.delete(t);
      this.release(owner);
    }
  }
}
