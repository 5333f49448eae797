/**
 * Loading a language model by name like TransformerLens's `from_pretrained`: a local HF model
 * directory, a Hugging Face repo id, or a TransformerLens name/alias (`gpt2-small`,
 * `pythia-70m-deduped`, `gemma-2-2b`, …), downloaded through the HF cache (single or sharded
 * safetensors), mapped to TL parameters and processed with TL's flags. Options accept camelCase
 * and TL's snake_case keys (an SAE's `model_from_pretrained_kwargs` can be passed as is).
 * @module
 */

import { HubError } from "../../hub/errors.ts";
import type { HubDownloadOptions } from "../../hub/download.ts";
import { hubDownload } from "../../hub/download.ts";
import { hubDownloadSafetensors } from "../../hub/sharded.ts";
import { resolveModelName } from "../../hub/aliases.ts";
import { loadTokenizer, loadTokenizerFromHub, type Tokenizer } from "../../hub/tokenizer.ts";
import { dirname, exists, join } from "../../util/path.ts";
import type { ModelConfig } from "../config.ts";
import { loadModelFromDir } from "./local.ts";
import type { ProcessingOptions } from "./processing.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";

/** Options of `fromPretrained` / `fromPretrainedNoProcessing` and {@link loadPretrained}. */
export interface PretrainedModelOptions extends HubDownloadOptions {
  /** TL fold_ln (default true for fromPretrained, false for fromPretrainedNoProcessing). */
  foldLn?: boolean;
  /** TL center_writing_weights. */
  centerWritingWeights?: boolean;
  /** TL center_unembed. */
  centerUnembed?: boolean;
  /** TL fold_value_biases. */
  foldValueBiases?: boolean;
  /** Context length override (TL caps some models' n_ctx). */
  nCtx?: number;
  /** TL `default_prepend_bos` override (default: the config's, true except Qwen). */
  defaultPrependBos?: boolean;
  /** Only `"float32"` (also `"torch.float32"`/`"fp32"`) is supported. */
  dtype?: string;
  /** Skip the tokenizer (`null`) or give one. Default: load it from the model. */
  tokenizer?: Tokenizer | null;
  /** Other TL keyword arguments in snake_case (`fold_ln`, `center_writing_weights`, …). */
  [snakeCase: string]: unknown;
}

/** What {@link loadPretrained} returns. */
export interface PretrainedModel {
  /** TL config after processing. */
  cfg: ModelConfig;
  /** Processed TL parameters (host). */
  params: ParamMap;
  /** The tokenizer, or null when the model has none. */
  tokenizer: Tokenizer | null;
  /** Processing steps skipped (TL's warnings) and other remarks. */
  notes: string[];
  /** Where the weights came from (a directory). */
  source: string;
}

const SNAKE: Record<string, string> = {
  fold_ln: "foldLn",
  center_writing_weights: "centerWritingWeights",
  center_unembed: "centerUnembed",
  fold_value_biases: "foldValueBiases",
  n_ctx: "nCtx",
  default_prepend_bos: "defaultPrependBos",
};
/** TL keyword arguments that do not change the computation here. */
const IGNORED = new Set([
  "device",
  "n_devices",
  "move_to_device",
  "refactor_factored_attn_matrices",
  "default_padding_side",
  "trust_remote_code",
  "first_n_layers",
  "hf_model",
  "hf_config",
  "checkpoint_index",
  "checkpoint_value",
]);
const HUB_KEYS = new Set([
  "endpoint",
  "cacheDir",
  "token",
  "offline",
  "etagTimeout",
  "downloadTimeout",
  "revision",
  "repoType",
  "forceDownload",
  "tokenizer",
  "gpu",
]);

/**
 * Normalises options: snake_case keys mapped to camelCase (an explicit camelCase key wins),
 * unknown keys rejected with the list of accepted ones.
 */
export function normalizeModelOptions(opts: PretrainedModelOptions): PretrainedModelOptions {
  const out: PretrainedModelOptions = {};
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    if (key in SNAKE) {
      if (opts[SNAKE[key]] === undefined) out[SNAKE[key]] = value;
    } else if (Object.values(SNAKE).includes(key) || HUB_KEYS.has(key) || key === "dtype") {
      out[key] = value;
    } else if (key === "refactor_factored_attn_matrices" && value) {
      throw new ModelError("refactor_factored_attn_matrices is not implemented (TL default: off)");
    } else if (!IGNORED.has(key)) {
      throw new ModelError(
        `unknown model option "${key}"; accepted: ${
          [...Object.keys(SNAKE), ...Object.values(SNAKE), "dtype", ...HUB_KEYS].join(", ")
        }`,
      );
    }
  }
  const dtype = out.dtype;
  if (dtype !== undefined && !["float32", "torch.float32", "fp32", "f32"].includes(String(dtype))) {
    throw new ModelError(`model dtype "${dtype}" is not supported: saeflow computes in float32`);
  }
  return out;
}

/** The processing flags of `opts`, each defaulting to `defaults`. */
export function processingOf(
  opts: PretrainedModelOptions,
  defaults: Required<ProcessingOptions>,
): Required<ProcessingOptions> {
  const pick = (k: keyof ProcessingOptions) => {
    const v = opts[k];
    if (v === undefined) return defaults[k];
    if (typeof v !== "boolean") throw new ModelError(`model option ${k} must be a boolean`);
    return v;
  };
  return {
    foldLn: pick("foldLn"),
    centerWritingWeights: pick("centerWritingWeights"),
    centerUnembed: pick("centerUnembed"),
    foldValueBiases: pick("foldValueBiases"),
  };
}

async function hubModelDir(repoId: string, opts: HubDownloadOptions): Promise<string> {
  const configPath = await hubDownload(repoId, "config.json", opts);
  const weights = await hubDownloadSafetensors(repoId, opts);
  const dir = dirname(configPath);
  for (const w of weights) {
    if (dirname(w) !== dir) {
      throw new ModelError(`${repoId}: weights ${w} are not in the snapshot of ${configPath}`);
    }
  }
  return dir;
}

/**
 * Resolves `nameOrPath`, downloads what is missing, converts and processes the weights, and
 * loads the tokenizer (when the model has one).
 */
export async function loadPretrained(
  nameOrPath: string,
  defaults: Required<ProcessingOptions>,
  options: PretrainedModelOptions = {},
): Promise<PretrainedModel> {
  const opts = normalizeModelOptions(options);
  const processing = processingOf(opts, defaults);
  const resolved = resolveModelName(nameOrPath);
  const hubOpts: HubDownloadOptions = {
    endpoint: opts.endpoint,
    cacheDir: opts.cacheDir,
    token: opts.token,
    offline: opts.offline,
    etagTimeout: opts.etagTimeout,
    downloadTimeout: opts.downloadTimeout,
    revision: opts.revision,
    forceDownload: opts.forceDownload,
  };
  const dir = resolved.local ? resolved.repoId : await hubModelDir(resolved.repoId, hubOpts);
  const loaded = await loadModelFromDir(dir, {
    modelName: resolved.tlName,
    nCtx: opts.nCtx as number | undefined,
    processing,
  });
  const notes = [...loaded.notes];
  let cfg = loaded.cfg;
  if (opts.defaultPrependBos !== undefined) {
    cfg = { ...cfg, defaultPrependBos: Boolean(opts.defaultPrependBos) };
  }
  let tokenizer: Tokenizer | null = null;
  if (opts.tokenizer !== undefined) {
    tokenizer = opts.tokenizer as Tokenizer | null;
  } else if (resolved.local) {
    if (await exists(join(dir, "tokenizer.json"))) tokenizer = await loadTokenizer(dir);
    else notes.push(`no tokenizer.json in ${dir}: toTokens/toString are unavailable`);
  } else {
    try {
      tokenizer = await loadTokenizerFromHub(resolved.repoId, hubOpts);
    } catch (err) {
      if (!(err instanceof HubError && err.kind === "not_found")) throw err;
      notes.push(`${resolved.repoId} has no tokenizer.json: toTokens/toString are unavailable`);
    }
  }
  return { cfg, params: loaded.params, tokenizer, notes, source: dir };
}
