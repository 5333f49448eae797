/**
 * EleutherAI sparsify SAEs (spec §2.8): `{folder}/cfg.json` (`d_in`, `num_latents` or
 * `expansion_factor`, `k`, `signed`, `normalize_decoder`), the parent `config.json` (`model`,
 * `dataset`, `ctx_len`; optional) and `{folder}/sae.safetensors` (`encoder.weight [dSae, dIn]`,
 * `encoder.bias`, `W_dec [dSae, dIn]`, `b_dec`). Loaded as a TopK SAE. W_dec is kept as stored:
 * sparsify already stores it as `[num_latents, d_in]` (SAELens 6.18 and newest transpose it, a bug).
 * @module
 */

import { basename, dirname, join } from "../../util/path.ts";
import { exists } from "../../util/path.ts";
import { type HostStateDict, readJsonObject, readStateDict } from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";
import {
  download,
  downloadOptional,
  numberField,
  repoPath,
  type SaeDiskLoader,
  type SaeLoader,
  type SaeLoaderResult,
  take,
  transpose,
} from "./types.ts";

/** File name of sparsify weights. */
export const SPARSIFY_WEIGHTS_FILENAME = "sae.safetensors";

function convert(
  raw: Record<string, unknown>,
  parent: Record<string, unknown>,
  folderName: string,
  parentName: string,
  loaded: HostStateDict,
  overrides: Record<string, unknown>,
  device: string | undefined,
  source: string,
): SaeLoaderResult {
  let hookName: string;
  if (folderName === "embed_tokens") hookName = "hook_embed";
  else {
    const m = /layers[._](\d+)/.exec(folderName);
    if (!m) {
      throw new SaeLoadError(
        `${source}: unrecognised sparsify folder ${JSON.stringify(folderName)} (expected ` +
          `layers.N, layers_N or embed_tokens)`,
      );
    }
    hookName = `blocks.${Number(m[1])}.hook_resid_post`;
  }
  if (raw.signed === true) {
    throw new SaeLoadError(`${source}: signed sparsify SAEs (signed: true) are not supported`);
  }
  const dIn = numberField(raw, "d_in", source);
  const dSae = typeof raw.num_latents === "number" && raw.num_latents > 0
    ? raw.num_latents
    : dIn * numberField(raw, "expansion_factor", source);
  const cfgDict: Record<string, unknown> = {
    architecture: "standard",
    d_in: dIn,
    d_sae: dSae,
    dtype: "bfloat16",
    device: device ?? "cpu",
    model_name: typeof parent.model === "string" ? parent.model : parentName,
    hook_name: hookName,
    hook_head_index: null,
    activation_fn_str: "topk",
    activation_fn_kwargs: { k: numberField(raw, "k", source), signed: false },
    apply_b_dec_to_input: raw.normalize_decoder !== true,
    dataset_path: typeof parent.dataset === "string"
      ? parent.dataset
      : "togethercomputer/RedPajama-Data-1T-Sample",
    context_size: typeof parent.ctx_len === "number" ? parent.ctx_len : 2048,
    finetuning_scaling_factor: false,
    sae_lens_training_version: null,
    prepend_bos: true,
    dataset_trust_remote_code: true,
    normalize_activations: "none",
    neuronpedia_id: null,
    ...overrides,
  };
  const state: HostStateDict = {};
  if (loaded.W_enc) state.W_enc = loaded.W_enc;
  else {
    const e = take(loaded, "encoder.weight", 2, source);
    state.W_enc = {
      shape: [e.shape[1], e.shape[0]],
      data: transpose(e.data, e.shape[0], e.shape[1]),
    };
  }
  if (loaded.W_dec) state.W_dec = loaded.W_dec;
  else {
    const d = take(loaded, "decoder.weight", 2, source); // torch Linear: [d_in, d_sae]
    state.W_dec = {
      shape: [d.shape[1], d.shape[0]],
      data: transpose(d.data, d.shape[0], d.shape[1]),
    };
  }
  state.b_enc = loaded.b_enc ?? loaded["encoder.bias"] ??
    { shape: [dSae], data: new Float32Array(dSae) };
  state.b_dec = loaded.b_dec ?? loaded["decoder.bias"] ??
    { shape: [dIn], data: new Float32Array(dIn) };
  return { cfgDict, state, logSparsity: null, source };
}

/** Hub loader of sparsify SAEs. */
export const sparsifyLoader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const raw = await readJsonObject(await download(ctx, "cfg.json"));
  const folder = ctx.folder.replace(/\/+$/, "");
  const parentDir = folder.includes("/") ? dirname(folder) : "";
  const parentPath = await downloadOptional(ctx, repoPath(parentDir, "config.json"));
  const parent = parentPath ? await readJsonObject(parentPath) : {};
  const weights = await download(ctx, SPARSIFY_WEIGHTS_FILENAME);
  const source = `${ctx.repoId}/${repoPath(folder, SPARSIFY_WEIGHTS_FILENAME)}`;
  return convert(
    raw,
    parent,
    basename(folder),
    parentDir === "" ? ctx.repoId : basename(parentDir),
    await readStateDict(weights),
    ctx.cfgOverrides,
    ctx.device,
    source,
  );
};

/** Disk loader of a sparsify folder (`dir/cfg.json`, `dir/sae.safetensors`, `dir/../config.json`). */
export const sparsifyDiskLoader: SaeDiskLoader = async (dir, options): Promise<SaeLoaderResult> => {
  const raw = await readJsonObject(join(dir, "cfg.json"));
  const parentPath = join(dirname(dir.replace(/\/+$/, "")), "config.json");
  const parent = await exists(parentPath) ? await readJsonObject(parentPath) : {};
  const weights = join(dir, SPARSIFY_WEIGHTS_FILENAME);
  return convert(
    raw,
    parent,
    basename(dir),
    basename(dirname(dir.replace(/\/+$/, ""))),
    await readStateDict(weights),
    options.cfgOverrides ?? {},
    options.device,
    weights,
  );
};
