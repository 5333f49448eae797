/**
 * Generates `data/pretrained_saes.json` from `data/pretrained_saes.yaml` (SAELens's registry of
 * pretrained SAE releases). saeflow loads the JSON through the module graph
 * (`import … with { type: "json" }`), so the registry works when saeflow is imported from a URL
 * or from JSR, where no file can be read next to the module. Run after editing the YAML:
 *
 * ```sh
 * deno task gen-registry
 * ```
 *
 * `tests/sae/pretrained_registry_test.ts` fails when the JSON is not exactly what this script
 * makes from the YAML, so the two cannot drift apart.
 * @module
 */

import YAML from "yaml";

/** The YAML registry, relative to this script. */
export const REGISTRY_YAML = new URL("../data/pretrained_saes.yaml", import.meta.url);
/** The generated JSON module, relative to this script. */
export const REGISTRY_JSON = new URL("../data/pretrained_saes.json", import.meta.url);

/**
 * The JSON text for a registry YAML text: parsed as SAELens does (duplicate keys allowed, the
 * last one wins), checked to hold only JSON values (no non-finite number, no YAML-only type),
 * written with 2-space indentation and a final newline.
 *
 * @example
 * ```ts
 * import { registryJsonText } from "./gen_pretrained_saes.ts";
 * const text = registryJsonText("r:\n  repo_id: a/b\n  saes:\n  - id: x\n    path: 3\n");
 * if (JSON.parse(text).r.saes[0].path !== 3) throw new Error();
 * ```
 */
export function registryJsonText(yamlText: string): string {
  const data = YAML.parse(yamlText, { uniqueKeys: false });
  const check = (v: unknown, at: string): void => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new Error(`${at}: ${v} has no JSON form`);
      return;
    }
    if (Array.isArray(v)) return v.forEach((x, i) => check(x, `${at}[${i}]`));
    if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v)) check(x, `${at}.${k}`);
      return;
    }
    throw new Error(`${at}: ${String(v)} is not a JSON value`);
  };
  check(data, "registry");
  return JSON.stringify(data, null, 2) + "\n";
}

if (import.meta.main) {
  const text = registryJsonText(await Deno.readTextFile(REGISTRY_YAML));
  await Deno.writeTextFile(REGISTRY_JSON, text);
  console.log(`wrote ${REGISTRY_JSON.pathname} (${text.length} bytes)`);
}
