/**
 * Hook points, TransformerLens style: named places in a forward pass where a caller can read a
 * tensor (to cache it) or replace it (to intervene). SAEs and language models both run their
 * forward through a {@link HookRunner}, so a language model can expose an attached SAE's hooks
 * under `<hook>.hook_sae_acts_post` and the like by prefixing names.
 * @module
 */

import type { Tensor } from "./tensor.ts";

/**
 * A hook function. It receives the tensor at the hook point and may return a replacement
 * (which flows on through the forward pass) or nothing (the value is kept). A replacement must
 * have the same shape; ownership of the returned tensor passes to the forward pass.
 */
export type HookFn = (value: Tensor, context: { name: string }) => Tensor | void;

/** Something a forward pass calls at each hook point. Returns the value to continue with. */
export type HookRunner = (name: string, value: Tensor) => Tensor;

/** A runner that changes nothing (the fast path when no hook is attached). */
export const noHooks: HookRunner = (_name, value): Tensor => value;

/**
 * Named hook functions, several per name, run in the order they were added.
 *
 * @example
 * ```ts
 * import { HookRegistry } from "./hooks.ts";
 * import { getGpu } from "./device.ts";
 * import { Tensor } from "./tensor.ts";
 * await getGpu();
 * const hooks = new HookRegistry();
 * const seen: string[] = [];
 * const remove = hooks.add("hook_sae_acts_post", (_t, { name }) => void seen.push(name));
 * using x = Tensor.from([1, 2]);
 * const out = hooks.run("hook_sae_acts_post", x); // a hook that returns nothing keeps the value
 * if (out !== x || seen.join() !== "hook_sae_acts_post") throw new Error(`seen: ${seen}`);
 * remove();
 * if (hooks.has("hook_sae_acts_post")) throw new Error("the hook was not removed");
 * ```
 */
export class HookRegistry {
  #hooks = new Map<string, HookFn[]>();

  /** Adds `fn` at hook `name`; returns a function that removes it again. */
  add(name: string, fn: HookFn): () => void {
    const list = this.#hooks.get(name) ?? [];
    list.push(fn);
    this.#hooks.set(name, list);
    return () => {
      const current = this.#hooks.get(name);
      if (!current) return;
      const i = current.indexOf(fn);
      if (i >= 0) current.splice(i, 1);
      if (current.length === 0) this.#hooks.delete(name);
    };
  }

  /** True when at least one hook is attached at `name`. */
  has(name: string): boolean {
    return this.#hooks.has(name);
  }

  /** Names with hooks attached. */
  names(): string[] {
    return [...this.#hooks.keys()];
  }

  /** Removes the hooks at `name`, or every hook when `name` is omitted. */
  clear(name?: string): void {
    if (name === undefined) this.#hooks.clear();
    else this.#hooks.delete(name);
  }

  /** Runs the hooks attached at `name` on `value` and returns the value to continue with. */
  run(name: string, value: Tensor): Tensor {
    const list = this.#hooks.get(name);
    if (!list) return value;
    let current = value;
    for (const fn of [...list]) {
      const replaced = fn(current, { name });
      if (replaced) current = replaced;
    }
    return current;
  }

  /** A {@link HookRunner} over this registry, with names prefixed by `prefix` (e.g. `"blocks.8.hook_resid_pre."`). */
  runner(prefix = ""): HookRunner {
    return (name, value) => this.run(prefix + name, value);
  }
}

/** Chains runners: each sees the value the previous one returned. */
export function chainHooks(...runners: HookRunner[]): HookRunner {
  const active = runners.filter((r) => r !== noHooks);
  if (active.length === 0) return noHooks;
  if (active.length === 1) return active[0];
  return (name, value) => active.reduce((v, r) => r(name, v), value);
}
