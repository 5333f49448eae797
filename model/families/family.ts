/**
 * What a model family is: the {@link ModelFamily} interface every file of `model/families/`
 * implements (HF `config.json` → {@link ModelConfig}, HF state dict → TransformerLens
 * parameters), and {@link HfConfigReader}, the checked reads of a `config.json` the config
 * mappings share.
 * @module
 */

import type { ActFn, ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";
import type { HfLookup } from "./hf_weights.ts";

/** A parsed Hugging Face `config.json` object. */
// deno-lint-ignore no-explicit-any
export type Json = Record<string, any>;

/** Options of `modelConfigFromHf`. */
export interface HfConfigOptions {
  /** TL `model_name` (e.g. `"gpt2"`, `"gemma-2-2b"`); defaults to `_name_or_path`'s last part. */
  modelName?: string;
  /**
   * Override the context length. TL caps some models (TinyStories 512, Llama-3.1+/Qwen2/Mistral
   * 2048); pass that here to reproduce TL's `n_ctx` and `W_pos` rows exactly.
   */
  nCtx?: number;
}

/**
 * One transformer family: how its Hugging Face checkpoints map onto saeflow's TransformerLens
 * model. The forward passes know no family: a family only sets {@link ModelConfig} fields and
 * writes TL parameters, so a family whose mechanisms the config already expresses is this one
 * object plus one line in the table of `model/families/mod.ts`.
 */
export interface ModelFamily {
  /** Short name, e.g. `"llama"`. */
  readonly name: string;
  /**
   * HF `model_type` → the HF LM class it loads (`architectures[0]`, TL `original_architecture`),
   * e.g. `{ gpt2: "GPT2LMHeadModel" }`. A family may read several model types.
   */
  readonly modelTypes: Readonly<Record<string, string>>;
  /** The model prefix of its state-dict keys (`"transformer."`); bare keys load too. */
  readonly weightPrefix: string;
  /**
   * `config.json` → unprocessed config (LN/RMS), as TL's `convert_hf_model_config` does for
   * this family (spec transformer_lens.md §3). Throws a {@link ModelError} for anything the
   * forward cannot run.
   */
  config(hf: HfConfigReader): ModelConfig;
  /**
   * HF state dict → unprocessed TL parameters for `cfg` (names and shapes of
   * `expectedParamShapes`); absent biases become zeros as TL's `fill_missing_keys` leaves them.
   */
  convertWeights(cfg: ModelConfig, hf: HfLookup): ParamMap;
}

/** Checked reads of one `config.json` for the family that claimed its `model_type`. */
export class HfConfigReader {
  /** TL `model_name` and `original_architecture`: spread them into every config. */
  readonly common: { modelName: string; originalArchitecture: string };

  /**
   * @param json the parsed `config.json`.
   * @param modelType its `model_type` (or the one its `architectures` imply).
   * @param architecture the HF LM class of `modelType`.
   * @param opts the caller's overrides.
   */
  constructor(
    readonly json: Json,
    readonly modelType: string,
    architecture: string,
    private readonly opts: HfConfigOptions = {},
  ) {
    const nameOrPath = typeof json._name_or_path === "string" ? json._name_or_path : "";
    const modelName = opts.modelName ?? (nameOrPath.split("/").pop() || modelType);
    this.common = { modelName, originalArchitecture: architecture };
  }

  /** The number at `field` (or `fallback` when absent); throws naming the field otherwise. */
  num(field: string, fallback?: number): number {
    const v = this.json[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ModelError(
        `config.json (${this.modelType}): field "${field}" missing or not a number`,
      );
    }
    return v;
  }

  /** The context length: the caller's `nCtx` override, else `v`. */
  nCtx(v: number): number {
    return this.opts.nCtx ?? v;
  }

  /** The TL activation of HF activation `name` (`swish` is `silu`). */
  actFn(name: string): ActFn {
    const map: Record<string, ActFn> = {
      gelu_new: "gelu_new",
      gelu_pytorch_tanh: "gelu_pytorch_tanh",
      gelu_fast: "gelu_fast",
      gelu: "gelu",
      silu: "silu",
      swish: "silu",
      relu: "relu",
    };
    const act = map[name];
    if (!act) this.unsupported("activation", name);
    return act;
  }

  /** The rotary base at `field`, else `rope_parameters.rope_theta`, else 10000. */
  ropeTheta(field: string): number {
    const v = this.json[field] ?? this.json.rope_parameters?.rope_theta ?? 10000;
    if (typeof v !== "number") throw new ModelError(`config.json: "${field}" is not a number`);
    return v;
  }

  /** Throws the {@link ModelError} for a setting the forward does not implement. */
  unsupported(field: string, value: unknown): never {
    throw new ModelError(
      `config.json (${this.modelType}): unsupported ${field} ${JSON.stringify(value)}`,
    );
  }
}
