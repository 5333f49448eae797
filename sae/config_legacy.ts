/**
 * SAELens' `handle_config_defaulting`: turns a `cfg.json` written before SAELens 6.0 (flat v3–v5
 * configs, whole flat runner configs, pre-3.0 mats_sae_training configs) into the v6 shape
 * (architecture fields + a `metadata` dict + `architecture`).
 * @module
 */

import { ConfigError, describeValue } from "../config/errors.ts";
import { isPlainObject } from "../config/naming.ts";
import { BASE_FIELDS, getArchitecture } from "./registry.ts";

/** Top-level keys a pre-6 config keeps in `metadata` (SAELens `LLM_METADATA_KEYS`). */
export const LLM_METADATA_KEYS: ReadonlySet<string> = new Set([
  "model_name",
  "hook_name",
  "model_class_name",
  "hook_head_index",
  "model_from_pretrained_kwargs",
  "prepend_bos",
  "exclude_special_tokens",
  "neuronpedia_id",
  "context_size",
  "seqpos_slice",
  "dataset_path",
  "sae_lens_version",
  "sae_lens_training_version",
  "hook_name_out",
  "hook_head_index_out",
]);

const RENAMES: ReadonlyMap<string, string> = new Map([
  ["hook_point", "hook_name"],
  ["hook_point_head_index", "hook_head_index"],
  ["activation_fn_str", "activation_fn"],
]);

interface ParsedVersion {
  release: number[];
  /** Pre-release rank: [kind 0=a 1=b 2=rc, number]; null for a final release. */
  pre: [number, number] | null;
}

function parseVersion(text: string, where: string): ParsedVersion {
  const m =
    /^\s*v?(\d+(?:\.\d+)*)(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?(?:[-_.]?(?:post|dev)[-_.]?\d*)*(?:\+[a-z0-9.]+)?\s*$/i
      .exec(text);
  if (!m) {
    throw new ConfigError(`${where} is ${describeValue(text)}, expected a version like 6.49.2`);
  }
  const kinds: Record<string, number> = { a: 0, alpha: 0, b: 1, beta: 1, c: 2, rc: 2, pre: 2 };
  const kind = m[2]?.toLowerCase();
  return {
    release: m[1].split(".").map(Number),
    pre: kind === undefined ? null : [kinds[kind] ?? 2, Number(m[3] || 0)],
  };
}

/**
 * Compares two PEP 440 versions as `packaging.version.Version` does for the cases SAELens meets
 * (release numbers, `a`/`b`/`rc` pre-releases; post/dev/local parts are ignored). Returns <0, 0
 * or >0.
 *
 * @example
 * ```ts
 * import { compareVersions } from "./config_legacy.ts";
 * if (!(compareVersions("6.0.0-rc.0", "6.0.0") < 0)) throw new Error();
 * if (!(compareVersions("5.9.0", "6.0.0-rc.0") < 0)) throw new Error();
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a, "version"), vb = parseVersion(b, "version");
  const n = Math.max(va.release.length, vb.release.length);
  for (let i = 0; i < n; i++) {
    const d = (va.release[i] ?? 0) - (vb.release[i] ?? 0);
    if (d !== 0) return d;
  }
  if (va.pre === null || vb.pre === null) {
    return (va.pre === null ? 1 : 0) - (vb.pre === null ? 1 : 0);
  }
  return va.pre[0] - vb.pre[0] || va.pre[1] - vb.pre[1];
}

/**
 * The SAELens version a snake_case cfg dict declares (top level, else `metadata`), or null.
 * Empty strings count as absent, as in Python (`not sae_lens_version`).
 */
export function declaredVersion(dict: Record<string, unknown>): string | null {
  let version = dict.sae_lens_version;
  if (!version && isPlainObject(dict.metadata)) {
    version = dict.metadata.sae_lens_version ?? dict.metadata.saeLensVersion;
  }
  if (!version) return null;
  if (typeof version !== "string") {
    throw new ConfigError(`sae_lens_version is ${describeValue(version)}, expected a string`);
  }
  return version;
}

/** True when SAELens would run the pre-6.0 conversion on this snake_case cfg dict. */
export function isPre6Config(dict: Record<string, unknown>): boolean {
  const version = declaredVersion(dict);
  return version === null || compareVersions(version, "6.0.0-rc.0") < 0;
}

/**
 * SAELens' `handle_pre_6_0_config` on a snake_case dict: renames (`hook_point→hook_name`,
 * `hook_point_head_index→hook_head_index`, `activation_fn_str→activation_fn`), defaults,
 * TopK detection from `activation_fn="topk"` + `activation_fn_kwargs.k`, boolean/null
 * `normalize_activations`, then keeps only the architecture's inference fields, a `metadata` dict
 * of {@link LLM_METADATA_KEYS} and `architecture`.
 *
 * Deviation: if the dict already carries a `metadata` object (SAELens would drop it), its entries
 * are kept underneath the top-level metadata keys.
 */
export function handlePre6Config(dict: Record<string, unknown>): Record<string, unknown> {
  const cfg: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dict)) {
    cfg[RENAMES.get(key) ?? key] = value; // as Python's dict comprehension: the later key wins
  }
  const setDefault = (key: string, value: unknown) => {
    if (!(key in cfg)) cfg[key] = value;
  };
  setDefault("prepend_bos", true);
  setDefault("dataset_trust_remote_code", true);
  setDefault("apply_b_dec_to_input", true);
  setDefault("finetuning_scaling_factor", false);
  setDefault("sae_lens_training_version", null);
  setDefault("activation_fn", "relu");
  setDefault("architecture", "standard");
  setDefault("neuronpedia_id", null);
  const hookName = typeof cfg.hook_name === "string" ? cfg.hook_name : "";
  setDefault("reshape_activations", hookName.includes("hook_z") ? "hook_z" : "none");
  const kwargs = isPlainObject(cfg.activation_fn_kwargs) ? cfg.activation_fn_kwargs : {};
  if (cfg.activation_fn === "topk" && kwargs.k !== undefined && kwargs.k !== null) {
    cfg.architecture = "topk";
    cfg.k = kwargs.k;
  }
  if (typeof cfg.normalize_activations === "boolean") {
    cfg.normalize_activations = cfg.normalize_activations ? "expected_average_only_in" : "none";
  }
  if (cfg.normalize_activations === undefined || cfg.normalize_activations === null) {
    cfg.normalize_activations = "none";
  }
  setDefault("device", "cpu");

  const architecture = cfg.architecture;
  const spec = getArchitecture(architecture, "legacy (pre-6.0) config");
  if (spec.inferenceFields === null) {
    throw new ConfigError(
      `legacy (pre-6.0) config: architecture ${architecture} has no inference config`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const field of [...BASE_FIELDS, ...spec.inferenceFields]) {
    if (field.name in cfg) out[field.name] = cfg[field.name];
  }
  if (architecture === "topk" && kwargs.k !== undefined) out.k = kwargs.k;
  const metadata: Record<string, unknown> = isPlainObject(dict.metadata)
    ? { ...dict.metadata }
    : {};
  for (const [key, value] of Object.entries(cfg)) {
    if (LLM_METADATA_KEYS.has(key)) metadata[key] = value;
  }
  out.metadata = metadata;
  out.architecture = architecture;
  return out;
}
