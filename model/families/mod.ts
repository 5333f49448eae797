/**
 * The model families saeflow loads from Hugging Face, one file each, registered in
 * {@link MODEL_FAMILIES}: Hugging Face `config.json` → {@link ModelConfig} (TransformerLens's
 * `convert_hf_model_config`, spec transformer_lens.md §3) and HF state dict → TransformerLens
 * parameters, dispatched by `model_type` and by `originalArchitecture`.
 *
 * ## Adding a family
 *
 * 1. Write `model/families/<family>.ts` exporting a {@link ModelFamily}: its `model_type`s with
 *    their HF LM classes, the state-dict prefix, `config` (read fields through the
 *    {@link HfConfigReader} so that errors name them; build with `defineModelConfig`) and
 *    `convertWeights` (the `hf_weights.ts` helpers split fused and per-head projections).
 * 2. Add it to {@link MODEL_FAMILIES} below (one line).
 * 3. Test it in `tests/model/families/`: a fixture `<family>.ts` (a tiny HF config, its tensor
 *    names and an independent naive forward written from the HF module) registered in that
 *    folder's `mod.ts`, and `<family>_test.ts` for what is particular to it. The shared harness
 *    then checks the reference forward against the naive one, TL processing, and (through the
 *    fixture table) every hook of the GPU forward against the reference.
 *
 * A family needs nothing else when its mechanisms are ones {@link ModelConfig} already has
 * (norm type, gated MLP, rotary, GQA, local attention, soft caps, sandwich norms, q/k norms).
 * A new mechanism is a new config field plus its op in `model/reference/` (the ground truth),
 * `model/gpu/transformer.ts` with a kernel in `model/gpu/kernels/` if no existing one fits,
 * `expectedParamShapes` (`model/params.ts`) and `hookNames` (`model/hooks/names.ts`) for new
 * parameters or hook points, and `model/load/processing.ts` if TL's weight processing touches it.
 * @module
 */

import type { ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";
import type { HostTensor } from "../../util/host_tensor.ts";
import { type HfConfigOptions, HfConfigReader, type Json, type ModelFamily } from "./family.ts";
import { HfLookup } from "./hf_weights.ts";
import { GEMMA } from "./gemma.ts";
import { GPT2 } from "./gpt2.ts";
import { LLAMA } from "./llama.ts";
import { GPT_NEO } from "./neo.ts";
import { GPT_NEOX } from "./neox.ts";

export type { HfConfigOptions, Json, ModelFamily } from "./family.ts";
export { HfConfigReader } from "./family.ts";

/** Every family, in the order `SUPPORTED_MODEL_TYPES` lists their model types. */
export const MODEL_FAMILIES: readonly ModelFamily[] = [GPT2, GPT_NEO, GPT_NEOX, LLAMA, GEMMA];

/** `model_type` values {@link modelConfigFromHf} accepts, with their HF LM class. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, string>> = Object.fromEntries(
  MODEL_FAMILIES.flatMap((f) => Object.entries(f.modelTypes)),
);

/** The family that reads `modelType` (one of {@link SUPPORTED_MODEL_TYPES}). */
function familyOfType(modelType: string): ModelFamily {
  return MODEL_FAMILIES.find((f) => modelType in f.modelTypes)!;
}

/**
 * Converts a parsed HF `config.json` into a TL-style {@link ModelConfig} (unprocessed: LN/RMS).
 * Throws a {@link ModelError} naming the `model_type`/field for anything unsupported.
 *
 * @example
 * ```ts
 * import { modelConfigFromHf } from "./mod.ts";
 * const cfg = modelConfigFromHf({ model_type: "gpt2", n_layer: 2, n_embd: 16, n_head: 4,
 *   vocab_size: 50, n_positions: 32 });
 * if (cfg.dHead !== 4 || cfg.actFn !== "gelu_new") throw new Error("unreachable");
 * ```
 */
export function modelConfigFromHf(hf: Json, opts: HfConfigOptions = {}): ModelConfig {
  const modelType = modelTypeOf(hf);
  const reader = new HfConfigReader(hf, modelType, SUPPORTED_MODEL_TYPES[modelType], opts);
  return familyOfType(modelType).config(reader);
}

/** `model_type`, or the type whose LM class is `architectures[0]`; else a clear error. */
function modelTypeOf(hf: Json): string {
  if (typeof hf !== "object" || hf === null) throw new ModelError("config.json is not an object");
  const mt = hf.model_type;
  if (typeof mt === "string" && mt in SUPPORTED_MODEL_TYPES) return mt;
  const arch = Array.isArray(hf.architectures) ? hf.architectures[0] : undefined;
  for (const [t, a] of Object.entries(SUPPORTED_MODEL_TYPES)) if (a === arch) return t;
  throw new ModelError(
    `config.json: unsupported model_type "${mt}" (architectures ${
      JSON.stringify(hf.architectures ?? null)
    }); supported: ${Object.keys(SUPPORTED_MODEL_TYPES).join(", ")}`,
  );
}

/** Options of {@link convertHfWeights}. */
export interface ConvertOptions {
  /** What the tensors came from (file or directory), used in error messages. */
  source?: string;
}

/**
 * Maps an HF state dict (float32 tensors) to TL parameters for `cfg` (from
 * {@link modelConfigFromHf}), through the family of `cfg.originalArchitecture`. Keys may carry
 * the model prefix (`transformer.`, `gpt_neox.`, `model.`) or not; tied embeddings are
 * resolved; every absent tensor is an error naming the key and the source. The result is
 * unprocessed: LN/RMS weights are kept, and absent biases are zeros exactly as TL's
 * `fill_missing_keys` leaves them. Returned tensors may share memory with the input map;
 * nothing in `model/` mutates parameters in place.
 *
 * @example
 * ```ts
 * import { convertHfWeights, modelConfigFromHf } from "./mod.ts";
 * const cfg = modelConfigFromHf({ model_type: "gpt2", n_layer: 0, n_embd: 4, n_head: 1,
 *   vocab_size: 3, n_positions: 2 });
 * const t = (...shape: number[]) => ({ data: new Float32Array(shape.reduce((a, b) => a * b)), shape });
 * const hf = new Map([["wte.weight", t(3, 4)], ["wpe.weight", t(2, 4)],
 *   ["ln_f.weight", t(4)], ["ln_f.bias", t(4)]]);
 * const params = convertHfWeights(cfg, hf);
 * if (params.get("unembed.W_U")!.shape[1] !== 3) throw new Error("unreachable");
 * ```
 */
export function convertHfWeights(
  cfg: ModelConfig,
  tensors: Map<string, HostTensor>,
  opts: ConvertOptions = {},
): ParamMap {
  const source = opts.source ?? "the state dict";
  const arch = cfg.originalArchitecture;
  const family = MODEL_FAMILIES.find((f) => Object.values(f.modelTypes).includes(arch));
  if (!family) throw new ModelError(`convertHfWeights: unsupported architecture "${arch}"`);
  return family.convertWeights(cfg, new HfLookup(tensors, family.weightPrefix, source));
}
