/**
 * Links to Neuronpedia (neuronpedia.org), the feature browser most SAELens releases have
 * dashboards on: a feature's page and a "quick list" of several features, from the SAE's
 * `neuronpedia_id` (cfg `metadata.neuronpedia_id`, set by `SAE.fromPretrained` from the
 * registry), whose format is `{model}/{layer}-{saeSet}`, e.g. `gpt2-small/8-res-jb`.
 *
 * Only URLs are built: nothing here touches the network.
 * @module
 */

import type { SAEConfig } from "./config_types.ts";
import { SaeError } from "./errors.ts";

/** Neuronpedia's site, for feature pages. */
export const NEURONPEDIA_URL = "https://www.neuronpedia.org";

/** Neuronpedia's quick-list page, as SAELens's `get_neuronpedia_quick_list` links it. */
export const NEURONPEDIA_QUICK_LIST_URL = "https://neuronpedia.org/quick-list/";

/**
 * Where a Neuronpedia id comes from: the id itself (`"gpt2-small/8-res-jb"`), an SAE (its
 * `cfg`), or an SAE config. With an SAE or a config, feature indices are checked against `dSae`.
 */
export type NeuronpediaSource =
  | string
  | { readonly cfg: Pick<SAEConfig, "dSae" | "metadata"> }
  | Pick<SAEConfig, "dSae" | "metadata">;

/** A Neuronpedia id split into its parts. */
export interface NeuronpediaId {
  /** The whole id, `{model}/{layer}-{saeSet}`. */
  id: string;
  /** Neuronpedia's model id, e.g. `gpt2-small`. */
  modelId: string;
  /** The SAE's source on that model, `{layer}-{saeSet}`, e.g. `8-res-jb` (Neuronpedia "layer"). */
  source: string;
  /** The layer part, before the first `-` (`8`; `e` for embeddings). */
  layer: string;
  /** The SAE set, after the first `-` (`res-jb`). */
  saeSet: string;
}

const PART_RE = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * Splits and checks a Neuronpedia id `{model}/{layer}-{saeSet}`.
 *
 * @throws {SaeError} naming the id and the expected format.
 *
 * @example
 * ```ts
 * import { parseNeuronpediaId } from "./neuronpedia.ts";
 * const p = parseNeuronpediaId("gemma-2-2b/20-gemmascope-res-16k");
 * if (p.modelId !== "gemma-2-2b" || p.layer !== "20" || p.saeSet !== "gemmascope-res-16k") {
 *   throw new Error(JSON.stringify(p));
 * }
 * ```
 */
export function parseNeuronpediaId(id: string): NeuronpediaId {
  const parts = typeof id === "string" ? id.split("/") : [];
  const [modelId, source] = parts;
  const dash = source?.indexOf("-") ?? -1;
  if (
    parts.length !== 2 || !PART_RE.test(modelId) || !PART_RE.test(source) || dash <= 0 ||
    dash === source.length - 1
  ) {
    throw new SaeError(
      `neuronpedia_id ${JSON.stringify(id)} is not of the form "{model}/{layer}-{saeSet}" ` +
        `(letters, digits, ".", "_", "-"), e.g. "gpt2-small/8-res-jb"`,
    );
  }
  return {
    id,
    modelId,
    source,
    layer: source.slice(0, dash),
    saeSet: source.slice(dash + 1),
  };
}

/** The id and `dSae` (when known) of a source; an SAE without an id is an error. */
function resolveSource(src: NeuronpediaSource): { id: NeuronpediaId; dSae?: number } {
  if (typeof src === "string") return { id: parseNeuronpediaId(src) };
  const cfg = src && typeof src === "object" && "cfg" in src ? src.cfg : src;
  const raw = cfg?.metadata?.neuronpediaId;
  if (raw === null || raw === undefined || raw === "") {
    throw new SaeError(
      "this SAE has no neuronpedia_id (cfg metadata): Neuronpedia has no dashboards for it, or " +
        "it was not loaded with SAE.fromPretrained from a release that lists one; set " +
        'sae.cfg.metadata.neuronpediaId = "{model}/{layer}-{saeSet}" if you know it',
    );
  }
  if (typeof raw !== "string") {
    throw new SaeError(`neuronpedia_id is ${JSON.stringify(raw)}: expected a string`);
  }
  return { id: parseNeuronpediaId(raw), dSae: cfg.dSae };
}

/** Checks a feature index: an integer in [0, dSae) (or ≥ 0 when dSae is unknown). */
function checkIndex(index: number, id: string, dSae: number | undefined): void {
  const ok = typeof index === "number" && Number.isSafeInteger(index) && index >= 0 &&
    (dSae === undefined || index < dSae);
  if (!ok) {
    const range = dSae === undefined ? "a non-negative integer" : `an integer in [0, ${dSae})`;
    throw new SaeError(
      `feature index ${String(index)} for Neuronpedia SAE ${id}: expected ${range}` +
        (dSae === undefined ? "" : ` (the SAE's d_sae is ${dSae})`),
    );
  }
}

/**
 * The Neuronpedia page of one feature: `https://www.neuronpedia.org/{model}/{layer}-{saeSet}/{index}`
 * (SAELens's `open_neuronpedia_feature_dashboard` opens the same page on `neuronpedia.org`).
 *
 * @throws {SaeError} when the SAE has no `neuronpedia_id`, the id is malformed, or the index is
 * not an integer in `[0, dSae)`.
 *
 * @example
 * ```ts
 * import { neuronpediaFeatureUrl } from "./neuronpedia.ts";
 * import { createSAEConfig } from "./config.ts";
 * const url = neuronpediaFeatureUrl("gpt2-small/8-res-jb", 1234);
 * if (url !== "https://www.neuronpedia.org/gpt2-small/8-res-jb/1234") throw new Error(url);
 * // From an SAE's config (an SAE works the same): the index is checked against d_sae.
 * const cfg = createSAEConfig({ architecture: "standard", dIn: 768, dSae: 24576 });
 * cfg.metadata.neuronpediaId = "gpt2-small/8-res-jb";
 * if (neuronpediaFeatureUrl(cfg, 0) !== "https://www.neuronpedia.org/gpt2-small/8-res-jb/0") {
 *   throw new Error();
 * }
 * let threw = false;
 * try { neuronpediaFeatureUrl(cfg, 24576); } catch { threw = true; }
 * if (!threw) throw new Error("an index past d_sae must be refused");
 * ```
 */
export function neuronpediaFeatureUrl(source: NeuronpediaSource, featureIndex: number): string {
  const { id, dSae } = resolveSource(source);
  checkIndex(featureIndex, id.id, dSae);
  return `${NEURONPEDIA_URL}/${id.modelId}/${id.source}/${featureIndex}`;
}

/**
 * Python's `urllib.parse.quote(s)` (safe `/`): UTF-8 bytes, letters, digits and `_.-~/` kept,
 * everything else `%XX` in upper case.
 */
function pythonQuote(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.\-~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * Python's `json.dumps` for a list of flat string-valued objects: `", "` and `": "` separators,
 * non-ASCII (and DEL) escaped as `\uXXXX` (`ensure_ascii=True`).
 */
function pythonJsonDumps(rows: Record<string, string>[]): string {
  const str = (s: string) =>
    JSON.stringify(s).replace(
      /[^\x20-\x7e]/g,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  const obj = (r: Record<string, string>) =>
    `{${Object.entries(r).map(([k, v]) => `${str(k)}: ${str(v)}`).join(", ")}}`;
  return `[${rows.map(obj).join(", ")}]`;
}

/**
 * A Neuronpedia quick-list URL for several features of one SAE, as SAELens's
 * `get_neuronpedia_quick_list(sae, features, name)` builds it:
 * `https://neuronpedia.org/quick-list/?name=<name>&features=<JSON>`, both URL-encoded as
 * Python's `urllib.parse.quote`, the JSON as Python's `json.dumps` writes
 * `[{"modelId": …, "layer": "{layer}-{saeSet}", "index": "<i>"}, …]` (indices as strings).
 *
 * Deviation: `modelId` is the model part of the `neuronpedia_id`, where SAELens writes the cfg's
 * `model_name`; the two are the same for most releases, and where they differ (e.g.
 * `deepseek-ai/DeepSeek-R1-Distill-Llama-8B` vs `deepseek-r1-distill-llama-8b`) only
 * Neuronpedia's own id names its model.
 *
 * @throws {SaeError} when the SAE has no `neuronpedia_id`, the list is empty, or an index is not
 * an integer in `[0, dSae)`.
 *
 * @example
 * ```ts
 * import { neuronpediaQuickListUrl } from "./neuronpedia.ts";
 * const url = neuronpediaQuickListUrl("gpt2-small/8-res-jb", [1, 23], "my list");
 * const want = "https://neuronpedia.org/quick-list/?name=my%20list&features=" +
 *   "%5B%7B%22modelId%22%3A%20%22gpt2-small%22%2C%20%22layer%22%3A%20%228-res-jb%22%2C%20" +
 *   "%22index%22%3A%20%221%22%7D%2C%20%7B%22modelId%22%3A%20%22gpt2-small%22%2C%20" +
 *   "%22layer%22%3A%20%228-res-jb%22%2C%20%22index%22%3A%20%2223%22%7D%5D";
 * if (url !== want) throw new Error(url);
 * const features = JSON.parse(decodeURIComponent(new URL(url).searchParams.get("features")!));
 * if (features[1].index !== "23" || features[1].layer !== "8-res-jb") throw new Error();
 * ```
 */
export function neuronpediaQuickListUrl(
  source: NeuronpediaSource,
  features: readonly number[],
  name = "temporary_list",
): string {
  const { id, dSae } = resolveSource(source);
  if (!Array.isArray(features) || features.length === 0) {
    throw new SaeError(`a Neuronpedia quick list of ${id.id} needs at least one feature index`);
  }
  if (typeof name !== "string") {
    throw new SaeError(`quick-list name is ${JSON.stringify(name)}: expected a string`);
  }
  for (const f of features) checkIndex(f, id.id, dSae);
  const rows = features.map((f) => ({ modelId: id.modelId, layer: id.source, index: String(f) }));
  return `${NEURONPEDIA_QUICK_LIST_URL}?name=${pythonQuote(name)}&features=` +
    pythonQuote(pythonJsonDumps(rows));
}
