/**
 * Gemma Scope SAEs (spec §2.8): `gemma_3` (Gemma Scope 2, `{folder}/params.safetensors` with
 * `w_enc [dIn, dSae]`, `b_enc`, `threshold`, `w_dec [dSae, dOut]`, `b_dec`, optional
 * `affine_skip_connection [dOut, dIn]`) and `gemma_2` (Gemma Scope 1, `{folder}/params.npz`).
 * @module
 */

import { type HostStateDict, readStateDict } from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";
import { readNpz } from "./npz.ts";
import { download, repoPath, type SaeLoader, type SaeLoaderResult, take } from "./types.ts";

function layerOf(folder: string, source: string, embeddingOk = false): number {
  const m = /layer_(\d+)/.exec(folder);
  if (m) return Number(m[1]);
  if (embeddingOk && folder.includes("embedding")) return 0;
  throw new SaeLoadError(`${source}: no layer_N in folder ${JSON.stringify(folder)}`);
}

/**
 * `gemma_3`: JumpReLU SAEs on resid_post / attn_out / mlp_out, and JumpReLU transcoders
 * (`ln2.hook_normalized` → `hook_mlp_out`; with `affine_skip_connection` a skip transcoder).
 * Shapes come from the weights. The model name is read from the repo id
 * (`google/gemma-scope-2-1b-pt` → `google/gemma-3-1b-pt`).
 */
export const gemma3Loader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const source = `${ctx.repoId}/${repoPath(ctx.folder, "params.safetensors")}`;
  const raw = await readStateDict(await download(ctx, "params.safetensors"));
  const layer = layerOf(ctx.folder, source);
  const transcoder = ctx.folder.includes("transcoder");
  let hookName: string, hookNameOut: string | null = null;
  if (ctx.folder.includes("resid_post")) hookName = `blocks.${layer}.hook_resid_post`;
  else if (ctx.folder.includes("attn_out")) hookName = `blocks.${layer}.hook_attn_out`;
  else if (ctx.folder.includes("mlp_out")) hookName = `blocks.${layer}.hook_mlp_out`;
  else if (transcoder) {
    hookName = `blocks.${layer}.ln2.hook_normalized`;
    hookNameOut = `blocks.${layer}.hook_mlp_out`;
  } else {
    throw new SaeLoadError(
      `${source}: cannot tell the hook from folder ${JSON.stringify(ctx.folder)} (expected ` +
        `resid_post, attn_out, mlp_out or transcoder in it)`,
    );
  }
  const wEnc = take(raw, "w_enc", 2, source), wDec = take(raw, "w_dec", 2, source);
  const state: HostStateDict = {
    W_enc: wEnc,
    W_dec: wDec,
    b_enc: take(raw, "b_enc", 1, source),
    b_dec: take(raw, "b_dec", 1, source),
    threshold: take(raw, "threshold", 1, source),
  };
  const skip = raw.affine_skip_connection;
  if (skip && transcoder) state.W_skip = skip;
  const size = /gemma-scope-2-([\w.]+?)-(pt|it)\b/.exec(ctx.repoId);
  const cfgDict: Record<string, unknown> = {
    architecture: transcoder
      ? (skip ? "jumprelu_skip_transcoder" : "jumprelu_transcoder")
      : "jumprelu",
    d_in: wEnc.shape[0],
    d_sae: wEnc.shape[1],
    ...(transcoder ? { d_out: wDec.shape[1] } : {}),
    dtype: "float32",
    model_name: size ? `google/gemma-3-${size[1]}-${size[2]}` : "google/gemma-3-1b-pt",
    hook_name: hookName,
    ...(hookNameOut ? { hook_name_out: hookNameOut } : {}),
    hook_head_index: null,
    finetuning_scaling_factor: false,
    sae_lens_training_version: null,
    prepend_bos: true,
    dataset_path: "monology/pile-uncopyrighted",
    context_size: 1024,
    apply_b_dec_to_input: false,
    normalize_activations: null,
    ...(ctx.device !== undefined ? { device: ctx.device } : {}),
    ...ctx.cfgOverrides,
  };
  return { cfgDict, state, logSparsity: null, source };
};

const GEMMA2_WIDTHS: [string, number][] = [
  ["width_4k", 4096],
  ["width_16k", 16384],
  ["width_32k", 32768],
  ["width_65k", 65536],
  ["width_131k", 131072],
  ["width_262k", 262144],
  ["width_524k", 524288],
  ["width_1m", 1048576],
];

const GEMMA2_MODELS: [string, string, number][] = [
  ["2b-it", "gemma-2-2b-it", 2304],
  ["9b-it", "gemma-2-9b-it", 3584],
  ["27b-it", "gemma-2-27b-it", 4608],
  ["2b", "gemma-2-2b", 2304],
  ["9b", "gemma-2-9b", 3584],
  ["27b", "gemma-2-27b", 4608],
];

/**
 * `gemma_2` (Gemma Scope 1): JumpReLU, F32, `apply_b_dec_to_input` false, width from
 * `width_*`, layer from `layer_N`, model and d_in from the repo id, hook from res/mlp/att; keys
 * `w_*` become `W_*`; embedding SAEs get W_enc/√d_in and W_dec·√d_in.
 */
export const gemma2Loader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const { repoId, folder } = ctx;
  const source = `${repoId}/${repoPath(folder, "params.npz")}`;
  const dSae = GEMMA2_WIDTHS.find(([k]) => folder.includes(k))?.[1] ?? null;
  const layer = layerOf(folder, source, true);
  const model = GEMMA2_MODELS.find(([k]) => repoId.includes(k));
  if (!model) throw new SaeLoadError(`${source}: cannot tell the Gemma 2 model from ${repoId}`);
  let dIn = model[2], hookName: string;
  const embedding = folder.includes("embedding");
  if (repoId.includes("res")) {
    hookName = embedding ? "hook_embed" : `blocks.${layer}.hook_resid_post`;
  } else if (repoId.includes("mlp")) hookName = `blocks.${layer}.hook_mlp_out`;
  else if (repoId.includes("att")) {
    hookName = `blocks.${layer}.attn.hook_z`;
    dIn = ({ "2b": 2048, "9b": 4096, "27b": 4608 } as Record<string, number>)[
      model[0].replace("-it", "")
    ] ?? dIn;
  } else throw new SaeLoadError(`${source}: cannot tell the hook from repo ${repoId}`);
  const state: HostStateDict = {};
  for (const [key, t] of Object.entries(await readNpz(await download(ctx, "params.npz")))) {
    state[key.startsWith("w_") ? "W_" + key.slice(2) : key] = t;
  }
  if (embedding) {
    const r = Math.sqrt(dIn);
    if (state.W_enc) state.W_enc.data = state.W_enc.data.map((v) => v / r);
    if (state.W_dec) state.W_dec.data = state.W_dec.data.map((v) => v * r);
  }
  const cfgDict: Record<string, unknown> = {
    architecture: "jumprelu",
    d_in: dIn,
    d_sae: dSae,
    dtype: "float32",
    model_name: model[1],
    hook_name: hookName,
    hook_layer: layer,
    hook_head_index: null,
    activation_fn: "relu",
    finetuning_scaling_factor: false,
    sae_lens_training_version: null,
    prepend_bos: true,
    dataset_path: "monology/pile-uncopyrighted",
    context_size: 1024,
    dataset_trust_remote_code: true,
    apply_b_dec_to_input: false,
    normalize_activations: null,
    ...(ctx.device !== undefined ? { device: ctx.device } : {}),
    ...ctx.cfgOverrides,
  };
  return { cfgDict, state, logSparsity: null, source };
};
