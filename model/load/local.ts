/**
 * Loads a Hugging Face model directory (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into TL parameters, optionally processed like TL's
 * `from_pretrained`.
 * @module
 */

import { readSafetensors, toFloat32 } from "../../io/safetensors.ts";
import { exists, join, unsafeRelativePath } from "../../util/path.ts";
import type { ModelConfig } from "../config.ts";
import { convertHfWeights, type HfConfigOptions, modelConfigFromHf } from "../families/mod.ts";
import { type ProcessingOptions, processWeights } from "./processing.ts";
import type { HostTensor } from "../../util/host_tensor.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";
import { readRegularTextFile } from "../../util/files.ts";

/** Options of {@link loadModelFromDir}. */
export interface LoadModelOptions extends HfConfigOptions {
  /**
   * Weight processing (TL flags). Default: none, i.e. `from_pretrained_no_processing`, which is
   * what SAELens uses unless an SAE's `model_from_pretrained_kwargs` says otherwise.
   */
  processing?: ProcessingOptions;
  /** Compute dtype; only `"float32"` is supported (bf16/f16 weights are widened on load). */
  dtype?: "float32";
}

/** A loaded model: TL config (after processing), TL parameters, skipped-processing notes. */
export interface LoadedModel {
  /** Config after processing (e.g. normalizationType LNPre when fold_ln ran). */
  cfg: ModelConfig;
  /** TL parameters. */
  params: ParamMap;
  /** Requested processing steps that were skipped, with TL's reason. */
  notes: string[];
}

/**
 * Reads `dir/config.json` and the safetensors weights (single file or sharded index), widens
 * them to float32, maps them to TL names and applies the requested processing.
 *
 * @example
 * ```ts
 * import { loadModelFromDir } from "./local.ts";
 * const { cfg, params } = await loadModelFromDir("data/tiny-shakespeare-gpt2");
 * if (cfg.nLayers !== 4 || !params.has("blocks.0.ln1.w")) throw new Error("unreachable");
 * ```
 */
export async function loadModelFromDir(
  dir: string,
  opts: LoadModelOptions = {},
): Promise<LoadedModel> {
  if (opts.dtype !== undefined && opts.dtype !== "float32") {
    throw new ModelError(`loadModelFromDir: dtype "${opts.dtype}" unsupported (only float32)`);
  }
  const configPath = join(dir, "config.json");
  let hfConfig: unknown;
  const configText = await readRegularTextFile(
    configPath,
    (m, cause) => new ModelError(`cannot read ${m}`, { cause }),
  );
  try {
    hfConfig = JSON.parse(configText);
  } catch (err) {
    throw new ModelError(`cannot read ${configPath}: ${(err as Error).message}`, { cause: err });
  }
  // deno-lint-ignore no-explicit-any
  const cfg = modelConfigFromHf(hfConfig as any, opts);
  const { tensors, source } = await readHfTensors(dir);
  const raw = convertHfWeights(cfg, tensors, { source });
  return processWeights(cfg, raw, opts.processing ?? {});
}

/** Reads every tensor of `dir`'s safetensors weights as float32, plus a description. */
export async function readHfTensors(
  dir: string,
): Promise<{ tensors: Map<string, HostTensor>; source: string }> {
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  let files: string[];
  if (await exists(single)) {
    files = ["model.safetensors"];
  } else if (await exists(index)) {
    let map: Record<string, string>;
    const indexText = await readRegularTextFile(
      index,
      (m, cause) => new ModelError(`cannot read ${m}`, { cause }),
    );
    try {
      map = JSON.parse(indexText).weight_map;
    } catch (err) {
      throw new ModelError(`cannot read ${index}: ${(err as Error).message}`, { cause: err });
    }
    if (typeof map !== "object" || map === null || Array.isArray(map)) {
      throw new ModelError(`${index}: no "weight_map" object`);
    }
    // Every shard must be a file inside `dir`: the index may come from anywhere.
    for (const [tensor, f] of Object.entries(map)) {
      const why = typeof f === "string" ? unsafeRelativePath(f) : "it is not a string";
      if (why !== undefined) {
        throw new ModelError(
          `${index} maps tensor ${JSON.stringify(tensor)} to ${JSON.stringify(f)} (${why}): ` +
            `expected a file name inside ${dir}, such as "model-00001-of-00002.safetensors"`,
        );
      }
    }
    files = [...new Set(Object.values(map))].sort();
  } else {
    throw new ModelError(`${dir}: neither model.safetensors nor model.safetensors.index.json`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const f of files) {
    const { tensors: st } = await readSafetensors(join(dir, f));
    for (const [name, t] of st) {
      // F32 data already views the file buffer; other dtypes are widened (a copy).
      const data = t.dtype === "F32" ? (t.data as Float32Array) : toFloat32(t);
      tensors.set(name, { data, shape: [...t.shape] });
    }
  }
  const source = files.length === 1 ? join(dir, files[0]) : `${dir} (${files.join(", ")})`;
  return { tensors, source };
}
