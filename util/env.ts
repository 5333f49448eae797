/**
 * Reading environment variables the same way everywhere: unset, empty and not permitted (no
 * `--allow-env`) all read as `undefined`, so library code never fails for lack of a permission.
 * The variables themselves are read where they belong (`hub/env.ts` for Hugging Face's).
 * @module
 */

import { join } from "./path.ts";

/**
 * The variable `name`, or `undefined` when it is unset, blank or not readable.
 *
 * @example
 * ```ts
 * import { readEnv } from "./env.ts";
 * const home = readEnv("HOME"); // string | undefined
 * if (home !== undefined && home.trim() === "") throw new Error("a blank value reads as unset");
 * if (readEnv("SAEFLOW_SURELY_UNSET_VARIABLE") !== undefined) throw new Error("unset is undefined");
 * ```
 */
export function readEnv(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    return v === undefined || v.trim() === "" ? undefined : v;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/** The user's home directory: `HOME`, else `USERPROFILE`, else `.`. */
export function homeDir(): string {
  return readEnv("HOME") ?? readEnv("USERPROFILE") ?? ".";
}

/** The user cache root: `$XDG_CACHE_HOME`, else `~/.cache` (Python's tools use the same). */
export function userCacheDir(): string {
  return readEnv("XDG_CACHE_HOME") ?? join(homeDir(), ".cache");
}

/**
 * For programs (the CLI, the demo): on Linux, when `XDG_RUNTIME_DIR` is unset, sets it to `/tmp`
 * before the GPU opens, so Mesa does not print "XDG_RUNTIME_DIR is invalid or not set" to
 * stderr. Needs `--allow-env`; without it (or elsewhere) nothing changes. The library itself
 * never sets environment variables.
 */
export function quietMesaRuntimeDir(): void {
  try {
    if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
      Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
    }
  } catch { /* no env permission: leave it */ }
}
