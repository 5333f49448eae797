/**
 * Conversion loaders by name (SAELens `NAMED_PRETRAINED_SAE_LOADERS`), for the registry's
 * `conversion_func` and the `converter` option.
 * @module
 */

import { SaeLoadError } from "../errors.ts";
import { saeLensDiskLoader, saeLensLoader } from "./sae_lens.ts";
import { sparsifyDiskLoader, sparsifyLoader } from "./sparsify.ts";
import { llamaScopeLoader, llamaScopeR1DistillLoader } from "./llama_scope.ts";
import { gemma2Loader, gemma3Loader } from "./gemma.ts";
import type { SaeDiskLoader, SaeLoader } from "./types.ts";

const hubLoaders = new Map<string, SaeLoader>();
const diskLoaders = new Map<string, SaeDiskLoader>();

/** SAELens conversion formats saeflow does not read yet (torch pickles, CLT layouts, …). */
export const UNSUPPORTED_CONVERSIONS: readonly string[] = [
  "connor_rob_hook_z",
  "dictionary_learning_1",
  "deepseek_r1",
  "gemma_2_transcoder",
  "mwhanna_transcoder",
  "mntss_clt_layer_transcoder",
  "temporal",
  "goodfire",
];

/**
 * Registers a conversion loader under `name` (hub loader, and optionally a disk loader for
 * `SAE.loadFromDisk(dir, { converter: name })`). Duplicate names throw.
 */
export function registerSaeLoader(name: string, loader: SaeLoader, disk?: SaeDiskLoader): void {
  if (hubLoaders.has(name)) {
    throw new SaeLoadError(`conversion loader ${JSON.stringify(name)} is already registered`);
  }
  hubLoaders.set(name, loader);
  if (disk) diskLoaders.set(name, disk);
}

function missing(name: string, kind: string, known: Iterable<string>): SaeLoadError {
  if (UNSUPPORTED_CONVERSIONS.includes(name)) {
    return new SaeLoadError(
      `conversion ${name} not supported yet (${kind} loaders: ${[...known].join(", ")})`,
    );
  }
  return new SaeLoadError(
    `unknown conversion ${JSON.stringify(name)} (${kind} loaders: ${[...known].join(", ")})`,
  );
}

/** The hub loader `name`; a clear error for SAELens formats not supported yet. */
export function getSaeLoader(name: string): SaeLoader {
  const l = hubLoaders.get(name);
  if (!l) throw missing(name, "hub", hubLoaders.keys());
  return l;
}

/** The disk loader `name` (`sae_lens`, `sparsify`). */
export function getSaeDiskLoader(name: string): SaeDiskLoader {
  const l = diskLoaders.get(name);
  if (!l) throw missing(name, "disk", diskLoaders.keys());
  return l;
}

/** Names of the registered hub loaders. */
export function listSaeLoaders(): string[] {
  return [...hubLoaders.keys()];
}

registerSaeLoader("sae_lens", saeLensLoader, saeLensDiskLoader);
registerSaeLoader("sparsify", sparsifyLoader, sparsifyDiskLoader);
registerSaeLoader("llama_scope", llamaScopeLoader);
registerSaeLoader("llama_scope_r1_distill", llamaScopeR1DistillLoader);
registerSaeLoader("gemma_2", gemma2Loader);
registerSaeLoader("gemma_3", gemma3Loader);
