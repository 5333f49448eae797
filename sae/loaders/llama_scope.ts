/**
 * Llama Scope SAEs (spec §2.8, newest SAELens): `llama_scope` (`{folder}/hyperparams.json` +
 * `{folder}/checkpoints/final.safetensors`) and `llama_scope_r1_distill` (`{folder}/config.json`
 * + `{folder}/sae_weights.safetensors`). Both are JumpReLU SAEs stored as torch Linear layers
 * (`encoder.weight [dSae, dIn]`, `decoder.weight [dIn, dSae]`), transposed on load.
 * @module
 */

import { isPlainObject } from "../../config/naming.ts";
import { type HostStateDict, readJsonObject, readStateDict } from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";
import {
  download,
  numberField,
  repoPath,
  type SaeLoader,
  type SaeLoaderResult,
  stringField,
  take,
  transpose,
} from "./types.ts";

function linearLayers(loaded: HostStateDict, source: string): HostStateDict {
  const enc = take(loaded, "encoder.weight", 2, source);
  const dec = take(loaded, "decoder.weight", 2, source);
  return {
    W_enc: {
      shape: [enc.shape[1], enc.shape[0]],
      data: transpose(enc.data, enc.shape[0], enc.shape[1]),
    },
    W_dec: {
      shape: [dec.shape[1], dec.shape[0]],
      data: transpose(dec.data, dec.shape[0], dec.shape[1]),
    },
    b_enc: take(loaded, "encoder.bias", 1, source),
    b_dec: take(loaded, "decoder.bias", 1, source),
  };
}

const COMMON = {
  architecture: "jumprelu",
  hook_head_index: null,
  activation_fn: "relu",
  finetuning_scaling_factor: false,
  sae_lens_training_version: null,
  prepend_bos: true,
  dataset_path: "cerebras/SlimPajama-627B",
  context_size: 1024,
  dataset_trust_remote_code: true,
  apply_b_dec_to_input: false,
  normalize_activations: "expected_average_only_in",
};

/**
 * `llama_scope`: threshold = `jump_relu_threshold` · s for every latent, where s = √d_in /
 * `dataset_average_activation_norm.in` is the norm scaling factor the registry folds into the
 * weights (the threshold must scale with it; newest SAELens).
 */
export const llamaScopeLoader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const hpPath = await download(ctx, "hyperparams.json");
  const hp = await readJsonObject(hpPath);
  const dIn = numberField(hp, "d_model", hpPath);
  const norms = hp.dataset_average_activation_norm;
  if (!isPlainObject(norms) || typeof norms.in !== "number") {
    throw new SaeLoadError(`${hpPath}: field dataset_average_activation_norm.in is missing`);
  }
  const s = Math.sqrt(dIn) / norms.in;
  const theta = numberField(hp, "jump_relu_threshold", hpPath) * s;
  const dSae = numberField(hp, "d_sae", hpPath);
  const cfgDict: Record<string, unknown> = {
    ...COMMON,
    d_in: dIn,
    d_sae: dSae,
    dtype: "bfloat16",
    model_name: "meta-llama/Llama-3.1-8B",
    hook_name: stringField(hp, "hook_point_in", hpPath),
    ...(ctx.device !== undefined ? { device: ctx.device } : {}),
    ...ctx.cfgOverrides,
  };
  const source = `${ctx.repoId}/${repoPath(ctx.folder, "checkpoints/final.safetensors")}`;
  const state = linearLayers(
    await readStateDict(await download(ctx, "checkpoints/final.safetensors")),
    source,
  );
  state.threshold = { shape: [dSae], data: new Float32Array(dSae).fill(theta) };
  return { cfgDict, state, logSparsity: null, source };
};

/** `llama_scope_r1_distill`: d_sae = d_model · expansion_factor, threshold = exp(log_jumprelu_threshold). */
export const llamaScopeR1DistillLoader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const cfgPath = await download(ctx, "config.json");
  const hf = await readJsonObject(cfgPath);
  const dIn = numberField(hf, "d_model", cfgPath);
  const cfgDict: Record<string, unknown> = {
    ...COMMON,
    d_in: dIn,
    d_sae: dIn * numberField(hf, "expansion_factor", cfgPath),
    dtype: "float32",
    device: ctx.device ?? "cpu",
    model_name: "meta-llama/Llama-3.1-8B",
    hook_name: stringField(hf, "hook_point_in", cfgPath),
    ...ctx.cfgOverrides,
  };
  const source = `${ctx.repoId}/${repoPath(ctx.folder, "sae_weights.safetensors")}`;
  const loaded = await readStateDict(await download(ctx, "sae_weights.safetensors"));
  const state = linearLayers(loaded, source);
  const lt = take(loaded, "log_jumprelu_threshold", 1, source);
  state.threshold = { shape: lt.shape, data: lt.data.map(Math.exp) };
  return { cfgDict, state, logSparsity: null, source };
};
