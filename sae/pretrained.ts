/**
 * The registry of pretrained SAE releases (`data/pretrained_saes.yaml`, copied from SAELens 6.18,
 * MIT, © 2023 Joseph Bloom) and SAELens' resolution of `(release, sae_id)` to a Hugging Face repo
 * folder plus config overrides (§2.5, §2.7). The registry is bundled through the module graph as
 * `data/pretrained_saes.json` (generated from the YAML by `deno task gen-registry`), so it loads
 * wherever saeflow is imported from (local files, a URL, JSR); it is checked lazily, once.
 * @module
 */

import REGISTRY from "../data/pretrained_saes.json" with { type: "json" };
import { SaeflowError } from "../util/errors.ts";
import { configWarn } from "../config/errors.ts";
import { isPlainObject } from "../config/naming.ts";

/** A release that isn't known, an unknown SAE id, or a malformed registry entry. */
export class PretrainedLookupError extends SaeflowError {}

/** One release of the registry (SAELens `PretrainedSAELookup`, camelCase). */
export interface PretrainedSAELookup {
  /** Release name (registry key). */
  release: string;
  /** Hugging Face repo id. */
  repoId: string;
  /** TransformerLens / HF model name. */
  model: string;
  /** Loader name (`gemma_2`, `llama_scope`, …); null = the native SAELens format. */
  conversionFunc: string | null;
  /** SAE id → folder (or file) inside the repo; integer paths are given as strings. */
  saesMap: Record<string, string>;
  /** SAE id → expected variance explained (default 1.0). */
  expectedVarExplained: Record<string, number>;
  /** SAE id → expected L0 (default 0.0). */
  expectedL0: Record<string, number>;
  /** SAE id → Neuronpedia id `model/source`, or null. */
  neuronpediaId: Record<string, string | null>;
  /** Merged into every SAE's config of the release (free-form, snake_case keys). */
  configOverrides: Record<string, unknown> | null;
  /** SAE id → norm scaling factor to fold in, for the SAEs that have one. */
  normScalingFactor: Record<string, number>;
  /** Optional links (model, dashboards, publication, …). */
  links: Record<string, unknown> | null;
}

/** Where a `(release, saeId)` pair lives and how to load it. */
export interface ResolvedPretrained {
  /** The registry release, or null when `release` was used as a raw HF repo id. */
  release: string | null;
  /** Hugging Face repo id. */
  repoId: string;
  /** Folder (or file) inside the repo. */
  folder: string;
  /** Release overrides + `neuronpedia_id` (applied to the loaded cfg dict with a shallow update). */
  configOverrides: Record<string, unknown>;
  /** The YAML `norm_scaling_factor`, folded in when the config says "expected_average_only_in". */
  normScalingFactor: number | null;
  /** Loader name: the release's `conversion_func`, or `"sae_lens"` for the native format. */
  conversionFunc: string;
}

let directory: Map<string, PretrainedSAELookup> | null = null;

function bad(release: string, what: string): never {
  throw new PretrainedLookupError(`pretrained_saes.yaml: release ${release}: ${what}`);
}

function parseRelease(release: string, value: unknown): PretrainedSAELookup {
  if (!isPlainObject(value)) bad(release, "expected a mapping");
  if (typeof value.repo_id !== "string") bad(release, "repo_id missing or not a string");
  if (typeof value.model !== "string") bad(release, "model missing or not a string");
  if (!Array.isArray(value.saes)) bad(release, "missing 'saes' list");
  const conv = value.conversion_func ?? null;
  if (conv !== null && typeof conv !== "string") bad(release, "conversion_func not a string");
  const lookup: PretrainedSAELookup = {
    release,
    repoId: value.repo_id,
    model: value.model,
    conversionFunc: conv,
    saesMap: {},
    expectedVarExplained: {},
    expectedL0: {},
    neuronpediaId: {},
    configOverrides: isPlainObject(value.config_overrides) ? value.config_overrides : null,
    normScalingFactor: {},
    links: isPlainObject(value.links) ? value.links : null,
  };
  for (const [i, entry] of value.saes.entries()) {
    // Unknown keys are tolerated (one 6.18 entry accidentally contains a whole nested release).
    if (!isPlainObject(entry) || typeof entry.id !== "string") bad(release, `saes[${i}]: no id`);
    const path = entry.path;
    if (typeof path !== "string" && typeof path !== "number") {
      bad(release, `saes[${i}] (${entry.id}): path missing`);
    }
    const id = entry.id;
    lookup.saesMap[id] = String(path);
    lookup.expectedVarExplained[id] = typeof entry.variance_explained === "number"
      ? entry.variance_explained
      : 1.0;
    lookup.expectedL0[id] = typeof entry.l0 === "number" ? entry.l0 : 0.0;
    lookup.neuronpediaId[id] = typeof entry.neuronpedia === "string" ? entry.neuronpedia : null;
    if (typeof entry.norm_scaling_factor === "number") {
      lookup.normScalingFactor[id] = entry.norm_scaling_factor;
    }
  }
  return lookup;
}

/**
 * The whole registry, parsed on first use (then cached): release name → lookup, in file order.
 */
export function getPretrainedDirectory(): ReadonlyMap<string, PretrainedSAELookup> {
  if (directory === null) {
    const data: unknown = REGISTRY;
    if (!isPlainObject(data)) {
      throw new PretrainedLookupError("pretrained_saes.yaml: expected a mapping of releases");
    }
    const parsed = new Map<string, PretrainedSAELookup>();
    for (const [release, value] of Object.entries(data)) {
      parsed.set(release, parseRelease(release, value));
    }
    directory = parsed;
  }
  return directory;
}

/**
 * Names of all releases, in file order.
 *
 * @example
 * ```ts
 * import { listPretrainedReleases } from "./pretrained.ts";
 * if (!listPretrainedReleases().includes("gpt2-small-res-jb")) throw new Error();
 * ```
 */
export function listPretrainedReleases(): string[] {
  return [...getPretrainedDirectory().keys()];
}

/** The lookup of `release`, or null if it isn't in the registry. */
export function getPretrainedRelease(release: string): PretrainedSAELookup | null {
  return getPretrainedDirectory().get(release) ?? null;
}

function suggestReleases(name: string): string {
  const all = listPretrainedReleases();
  const close = all.filter((r) => r.includes(name) || name.includes(r));
  const shown = (close.length > 0 ? close : all).slice(0, 5);
  return shown.join(", ");
}

/**
 * SAELens' resolution of `(release, saeId)` (§2.5): a registry release maps `saeId` to its repo
 * folder, with the release's `config_overrides` plus `neuronpedia_id`; an unknown release that
 * contains "/" is taken as a Hugging Face repo id with `saeId` as the folder; anything else throws
 * a {@link PretrainedLookupError} (an unknown id lists up to 5 valid ones).
 *
 * @example
 * ```ts
 * import { resolvePretrained } from "./pretrained.ts";
 * const r = resolvePretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre");
 * if (r.repoId !== "jbloom/GPT2-Small-SAEs-Reformatted") throw new Error();
 * if (r.configOverrides.neuronpedia_id !== "gpt2-small/8-res-jb") throw new Error();
 * ```
 */
export function resolvePretrained(release: string, saeId: string): ResolvedPretrained {
  const lookup = getPretrainedRelease(release);
  if (lookup === null) {
    if (!release.includes("/")) {
      throw new PretrainedLookupError(
        `release "${release}" is not in the pretrained SAE registry and is not a Hugging Face ` +
          `repo id ("owner/name"). Known releases include: ${suggestReleases(release)} ` +
          `(listPretrainedReleases() lists all ${getPretrainedDirectory().size})`,
      );
    }
    const named = [...getPretrainedDirectory().values()].filter((l) => l.repoId === release);
    if (named.length > 0) {
      configWarn(
        `${release} is registered as release ${named.map((l) => l.release).join(", ")}; ` +
          `loading it as a raw repo skips that release's config overrides`,
      );
    }
    return {
      release: null,
      repoId: release,
      folder: saeId,
      configOverrides: {},
      normScalingFactor: null,
      conversionFunc: "sae_lens",
    };
  }
  if (!Object.hasOwn(lookup.saesMap, saeId)) {
    const valid = Object.keys(lookup.saesMap);
    const shown = valid.slice(0, 5).join(", ") + (valid.length > 5 ? ", ..." : "");
    const canonical = `${release}-canonical`;
    const hint = getPretrainedRelease(canonical) !== null
      ? ` If you don't want to pick an L0, consider release ${canonical} (one SAE per layer).`
      : "";
    throw new PretrainedLookupError(
      `SAE id "${saeId}" not found in release ${release}. Valid ids (${valid.length}) ` +
        `include: ${shown}.${hint}`,
    );
  }
  return {
    release,
    repoId: lookup.repoId,
    folder: lookup.saesMap[saeId],
    configOverrides: {
      ...structuredClone(lookup.configOverrides ?? {}),
      neuronpedia_id: lookup.neuronpediaId[saeId],
    },
    normScalingFactor: Object.hasOwn(lookup.normScalingFactor, saeId)
      ? lookup.normScalingFactor[saeId]
      : null,
    conversionFunc: lookup.conversionFunc ?? "sae_lens",
  };
}

/**
 * What the native loader does with a downloaded `cfg.json` (§2.5): set `device` (if given),
 * then apply the overrides with a plain top-level update. Returns a new dict.
 *
 * @example
 * ```ts
 * import { applyConfigOverrides } from "./pretrained.ts";
 * const cfg = applyConfigOverrides({ d_in: 4, device: "mps" }, { neuronpedia_id: "x/y" }, "cpu");
 * if (cfg.device !== "cpu" || cfg.neuronpedia_id !== "x/y") throw new Error();
 * ```
 */
export function applyConfigOverrides(
  cfgDict: Record<string, unknown>,
  overrides: Record<string, unknown>,
  device?: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfgDict };
  if (device !== undefined) out.device = device;
  return { ...out, ...structuredClone(overrides) };
}
