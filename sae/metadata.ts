/**
 * `SAEMetadata`: SAELens' free-form bag describing how an SAE was trained and should be used
 * (model, hook, context size, …). Keys live in snake_case, in insertion order, exactly as in
 * `cfg.json`; known keys also have typed camelCase accessors; unknown keys are kept verbatim and
 * written back.
 * @module
 */

import { toSnake } from "../config/naming.ts";
import { ConfigError, describeValue } from "../config/errors.ts";
import { SAE_LENS_VERSION, SAEFLOW_VERSION } from "../util/version.ts";

/**
 * The SAELens version whose behaviour and file formats saeflow follows (6.49.2, see
 * `util/version.ts`). It is written as `sae_lens_version` / `sae_lens_training_version` in new
 * metadata (SAELens treats any config with a version below 6.0.0, or none, as a legacy config
 * and converts it).
 */
export const SAE_LENS_COMPAT_VERSION: string = SAE_LENS_VERSION;

/**
 * The metadata key saeflow records its own version under (`SAEFLOW_VERSION`), beside SAELens's
 * version keys, in the metadata of SAEs it creates. SAELens keeps unknown metadata keys, so the
 * files stay readable by it.
 */
export const SAEFLOW_VERSION_KEY = "saeflow_version";

/** Special token choice for sequence separators: a token id, a named special token, or none. */
export type SpecialToken = number | "bos" | "eos" | "sep" | null;

/** The metadata keys SAELens itself writes (snake_case, as on disk). */
export const KNOWN_METADATA_KEYS: readonly string[] = [
  "sae_lens_version",
  "sae_lens_training_version",
  "model_name",
  "hook_name",
  "hook_head_index",
  "model_class_name",
  "context_size",
  "prepend_bos",
  "seqpos_slice",
  "dataset_path",
  "model_from_pretrained_kwargs",
  "exclude_special_tokens",
  "sequence_separator_token",
  "disable_concat_sequences",
  "neuronpedia_id",
  "hook_name_out",
  "hook_head_index_out",
];

const KNOWN = new Set(KNOWN_METADATA_KEYS);

/**
 * SAELens' `SAEMetadata`. Reading an unset key gives `null` (Python's `None`), never throws;
 * `has` is true only for keys explicitly set.
 *
 * @example
 * ```ts
 * import { SAEMetadata } from "./metadata.ts";
 * import { SAEFLOW_VERSION } from "../util/version.ts";
 * const m = SAEMetadata.fromDict({ model_name: "gpt2-small", hook_name: "blocks.8.hook_resid_pre" });
 * if (m.hookName !== "blocks.8.hook_resid_pre" || m.hookHeadIndex !== null) throw new Error();
 * const d = m.toDict();
 * if (d.sae_lens_version !== "6.49.2" || d.saeflow_version !== SAEFLOW_VERSION) throw new Error();
 * // Metadata that names its SAELens version (a file SAELens wrote) gets no saeflow stamp.
 * if (SAEMetadata.fromDict({ sae_lens_version: "6.18.0" }).has("saeflow_version")) throw new Error();
 * ```
 */
export class SAEMetadata {
  #entries = new Map<string, unknown>();

  /**
   * Builds metadata from a dict with snake_case or camelCase keys (known camelCase keys are
   * stored in snake_case; unknown keys verbatim). As in SAELens, `sae_lens_version` and
   * `sae_lens_training_version` default to {@link SAE_LENS_COMPAT_VERSION} and come first. When
   * `sae_lens_version` is absent (metadata saeflow creates, or a legacy config it converts),
   * `saeflow_version` defaults to saeflow's own version and comes third; metadata that names its
   * SAELens version (a file SAELens or saeflow wrote) is kept as it is.
   */
  constructor(init: Record<string, unknown> = {}) {
    const byKey = new Map<string, unknown>();
    const sourceOf = new Map<string, string>();
    for (const [key, value] of Object.entries(init)) {
      if (value === undefined) continue;
      const k = SAEMetadata.keyOf(key);
      const previous = sourceOf.get(k);
      if (previous !== undefined) {
        throw new ConfigError(
          `metadata: conflicting keys "${previous}" and "${key}" name the same entry ${k}; ` +
            `give only one`,
        );
      }
      sourceOf.set(k, key);
      byKey.set(k, value);
    }
    const created = !byKey.has("sae_lens_version");
    for (const version of ["sae_lens_version", "sae_lens_training_version"]) {
      this.#entries.set(version, byKey.has(version) ? byKey.get(version) : SAE_LENS_COMPAT_VERSION);
    }
    if (created && !byKey.has(SAEFLOW_VERSION_KEY)) {
      this.#entries.set(SAEFLOW_VERSION_KEY, SAEFLOW_VERSION);
    }
    for (const [key, value] of byKey) {
      if (!this.#entries.has(key)) this.#entries.set(key, structuredClone(value));
    }
  }

  /** Builds metadata from a `cfg.json` `metadata` dict (see the constructor). */
  static fromDict(dict: Record<string, unknown> | null | undefined): SAEMetadata {
    if (dict === null || dict === undefined) return new SAEMetadata();
    if (typeof dict !== "object" || Array.isArray(dict)) {
      throw new ConfigError(`metadata is ${describeValue(dict)}, expected a JSON object`);
    }
    return new SAEMetadata(dict);
  }

  /** The storage key for `key`: known camelCase names map to snake_case, others stay verbatim. */
  static keyOf(key: string): string {
    const snake = toSnake(key);
    return KNOWN.has(snake) ? snake : key;
  }

  /** The value of `key` (either spelling for known keys), or `null` when unset. */
  get(key: string): unknown {
    const k = this.#resolve(key);
    return this.#entries.has(k) ? this.#entries.get(k) : null;
  }

  /** Sets `key`; `undefined` removes it. Known keys are stored in snake_case. */
  set(key: string, value: unknown): void {
    const k = this.#resolve(key);
    if (value === undefined) this.#entries.delete(k);
    else this.#entries.set(k, value);
  }

  /** True only if `key` was explicitly set (even to `null`). */
  has(key: string): boolean {
    return this.#entries.has(this.#resolve(key));
  }

  /** Removes `key`. */
  delete(key: string): void {
    this.#entries.delete(this.#resolve(key));
  }

  /** The explicitly set keys, snake_case, in insertion order. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** A deep copy as a plain dict with snake_case keys, in insertion order (for `cfg.json`). */
  toDict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of this.#entries) out[k] = structuredClone(v);
    return out;
  }

  /** A deep copy. */
  clone(): SAEMetadata {
    const copy = new SAEMetadata();
    copy.#entries = new Map([...this.#entries].map(([k, v]) => [k, structuredClone(v)]));
    return copy;
  }

  /** Equality of the set entries (order-insensitive), like SAELens' `__eq__`. */
  equals(other: SAEMetadata): boolean {
    const a = this.toDict(), b = other.toDict();
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length &&
      ka.every((k) => k in b && JSON.stringify(a[k]) === JSON.stringify(b[k]));
  }

  #resolve(key: string): string {
    if (this.#entries.has(key)) return key;
    return SAEMetadata.keyOf(key);
  }

  /** TransformerLens (or HF) model name. */
  get modelName(): string | null {
    return this.get("model_name") as string | null;
  }
  set modelName(v: string | null | undefined) {
    this.set("model_name", v);
  }
  /** Hook the SAE reads (for transcoders: the input hook). */
  get hookName(): string | null {
    return this.get("hook_name") as string | null;
  }
  set hookName(v: string | null | undefined) {
    this.set("hook_name", v);
  }
  /** Attention head selected at the hook, if any. */
  get hookHeadIndex(): number | null {
    return this.get("hook_head_index") as number | null;
  }
  set hookHeadIndex(v: number | null | undefined) {
    this.set("hook_head_index", v);
  }
  /** `HookedTransformer`, `HookedMamba` or `AutoModelForCausalLM`. */
  get modelClassName(): string | null {
    return this.get("model_class_name") as string | null;
  }
  set modelClassName(v: string | null | undefined) {
    this.set("model_class_name", v);
  }
  /** Training context size in tokens. */
  get contextSize(): number | null {
    return this.get("context_size") as number | null;
  }
  set contextSize(v: number | null | undefined) {
    this.set("context_size", v);
  }
  /** Whether a BOS token was prepended. */
  get prependBos(): boolean | null {
    return this.get("prepend_bos") as boolean | null;
  }
  set prependBos(v: boolean | null | undefined) {
    this.set("prepend_bos", v);
  }
  /** Python slice arguments `(start, stop[, step])` applied to positions. */
  get seqposSlice(): (number | null)[] | null {
    return this.get("seqpos_slice") as (number | null)[] | null;
  }
  set seqposSlice(v: (number | null)[] | null | undefined) {
    this.set("seqpos_slice", v);
  }
  /** Dataset id (HF) the SAE was trained on. */
  get datasetPath(): string | null {
    return this.get("dataset_path") as string | null;
  }
  set datasetPath(v: string | null | undefined) {
    this.set("dataset_path", v);
  }
  /** Keyword arguments for loading the model (free-form; keys verbatim). */
  get modelFromPretrainedKwargs(): Record<string, unknown> | null {
    return this.get("model_from_pretrained_kwargs") as Record<string, unknown> | null;
  }
  set modelFromPretrainedKwargs(v: Record<string, unknown> | null | undefined) {
    this.set("model_from_pretrained_kwargs", v);
  }
  /** `true` = all special tokens excluded from training; or an explicit token id list. */
  get excludeSpecialTokens(): boolean | number[] | null {
    return this.get("exclude_special_tokens") as boolean | number[] | null;
  }
  set excludeSpecialTokens(v: boolean | number[] | null | undefined) {
    this.set("exclude_special_tokens", v);
  }
  /** Token placed between packed documents. */
  get sequenceSeparatorToken(): SpecialToken {
    return this.get("sequence_separator_token") as SpecialToken;
  }
  set sequenceSeparatorToken(v: SpecialToken | undefined) {
    this.set("sequence_separator_token", v);
  }
  /** Whether documents were never concatenated. */
  get disableConcatSequences(): boolean | null {
    return this.get("disable_concat_sequences") as boolean | null;
  }
  set disableConcatSequences(v: boolean | null | undefined) {
    this.set("disable_concat_sequences", v);
  }
  /** Neuronpedia id `model/source`. */
  get neuronpediaId(): string | null {
    return this.get("neuronpedia_id") as string | null;
  }
  set neuronpediaId(v: string | null | undefined) {
    this.set("neuronpedia_id", v);
  }
  /** Transcoders: the output hook. */
  get hookNameOut(): string | null {
    return this.get("hook_name_out") as string | null;
  }
  set hookNameOut(v: string | null | undefined) {
    this.set("hook_name_out", v);
  }
  /** Transcoders: head index at the output hook. */
  get hookHeadIndexOut(): number | null {
    return this.get("hook_head_index_out") as number | null;
  }
  set hookHeadIndexOut(v: number | null | undefined) {
    this.set("hook_head_index_out", v);
  }
  /** SAELens version of the file format. */
  get saeLensVersion(): string | null {
    return this.get("sae_lens_version") as string | null;
  }
  set saeLensVersion(v: string | null | undefined) {
    this.set("sae_lens_version", v);
  }
  /** SAELens version that trained the SAE. */
  get saeLensTrainingVersion(): string | null {
    return this.get("sae_lens_training_version") as string | null;
  }
  set saeLensTrainingVersion(v: string | null | undefined) {
    this.set("sae_lens_training_version", v);
  }
}
