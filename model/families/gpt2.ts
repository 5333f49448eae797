/**
 * Hugging Face state dict → TransformerLens parameters (names and shapes of spec
 * transformer_lens.md §3). Keys may carry the model prefix (`transformer.`, `gpt_neox.`,
 * `model.`) or not; tied embeddings are resolved; every absent tensor is an error naming the key
 * and the source file.
 * @module
 */

import { kvHeadCount, type ModelConfig } from "./config.ts";
import type { HostTensor, ParamMap } from "./tensor.ts";
import { ModelError } from "./tensor.ts";
import {
  gatherBias,
  gatherInProj,
  HfLookup,
  outProjFromLinear,
  put,
  transpose,
  unembedFrom,
  zerosOf,
} from "./weights_util.ts";
import { convertGemmaWeights, convertLlamaWeights } from "./weights_llama.ts";

/** Options of {@link convertHfWeights}. */
export interface ConvertOptions {
  /** What the tensors came from (file or directory), used in error messages. */
  source?: string;
}

/**
 * Maps an HF state dict (float32 tensors) to TL parameters for `cfg` (from
 * `modelConfigFromHf`). The result is unprocessed: LN/RMS weights are kept, and absent biases are
 * zeros exactly as TL's `fill_missing_keys` leaves them. Returned tensors may share memory
 * with the input map; nothing in `model/` mutates parameters in place.
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
  switch (cfg.originalArchitecture) {
    case "GPT2LMHeadModel":
      return convertGpt2(cfg, new HfLookup(tensors, "transformer.", source));
    case "GPTNeoForCausalLM":
      return convertNeo(cfg, new HfLookup(tensors, "transformer.", source));
    case "GPTNeoXForCausalLM":
      return convertNeox(cfg, new HfLookup(tensors, "gpt_neox.", source));
    case "LlamaForCausalLM":
    case "MistralForCausalLM":
    case "Qwen2ForCausalLM":
    case "Qwen3ForCausalLM":
      return convertLlamaWeights(cfg, new HfLookup(tensors, "model.", source));
    case "GemmaForCausalLM":
    case "Gemma2ForCausalLM":
      return convertGemmaWeights(cfg, new HfLookup(tensors, "model.", source));
  }
  throw new ModelError(
    `convertHfWeights: unsupported architecture "${cfg.originalArchitecture}"`,
  );
}

function convertGpt2(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("wte.weight", [cfg.dVocab, D]));
  put(p, "pos_embed.W_pos", trimPos(hf.get("wpe.weight", [posRows(hf, "wpe.weight"), D]), cfg));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `h.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "ln_1.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "ln_1.bias", [D]));
    const qkv = hf.get(h + "attn.c_attn.weight", [D, 3 * D]);
    const qkvB = hf.get(h + "attn.c_attn.bias", [3 * D]);
    ["Q", "K", "V"].forEach((x, i) => {
      const col = (hh: number, k: number) => i * D + hh * d + k;
      put(p, b + `attn.W_${x}`, gatherInProj(qkv, H, D, d, col, "inOut"));
      put(p, b + `attn.b_${x}`, gatherBias(qkvB, H, d, col));
    });
    put(p, b + "attn.W_O", hf.get(h + "attn.c_proj.weight", [H * d, D]), [H, d, D]);
    put(p, b + "attn.b_O", hf.get(h + "attn.c_proj.bias", [D]));
    put(p, b + "ln2.w", hf.get(h + "ln_2.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "ln_2.bias", [D]));
    put(p, b + "mlp.W_in", hf.get(h + "mlp.c_fc.weight", [D, M]));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.c_fc.bias", [M]));
    put(p, b + "mlp.W_out", hf.get(h + "mlp.c_proj.weight", [M, D]));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.c_proj.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("ln_f.weight", [D]));
  put(p, "ln_final.b", hf.get("ln_f.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "wte.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

function convertNeo(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("wte.weight", [cfg.dVocab, D]));
  put(p, "pos_embed.W_pos", trimPos(hf.get("wpe.weight", [posRows(hf, "wpe.weight"), D]), cfg));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `h.${l}.`, b = `blocks.${l}.`, a = h + "attn.attention.";
    put(p, b + "ln1.w", hf.get(h + "ln_1.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "ln_1.bias", [D]));
    for (const [x, name] of [["Q", "q_proj"], ["K", "k_proj"], ["V", "v_proj"]]) {
      const w = hf.get(a + `${name}.weight`, [H * d, D]);
      put(p, b + `attn.W_${x}`, gatherInProj(w, H, D, d, (hh, k) => hh * d + k, "outIn"));
      put(p, b + `attn.b_${x}`, zerosOf([H, d]));
    }
    put(p, b + "attn.W_O", outProjFromLinear(hf.get(a + "out_proj.weight", [D, H * d]), H, d));
    put(p, b + "attn.b_O", hf.get(a + "out_proj.bias", [D]));
    put(p, b + "ln2.w", hf.get(h + "ln_2.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "ln_2.bias", [D]));
    put(p, b + "mlp.W_in", transpose(hf.get(h + "mlp.c_fc.weight", [M, D])));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.c_fc.bias", [M]));
    put(p, b + "mlp.W_out", transpose(hf.get(h + "mlp.c_proj.weight", [D, M])));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.c_proj.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("ln_f.weight", [D]));
  put(p, "ln_final.b", hf.get("ln_f.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "wte.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

function convertNeox(cfg: ModelConfig, hf: HfLookup): ParamMap {
  const { dModel: D, nHeads: H, dHead: d, dMlp: M } = cfg;
  if (kvHeadCount(cfg) !== H) throw new ModelError("GPT-NeoX has no grouped-query attention");
  const p: ParamMap = new Map();
  put(p, "embed.W_E", hf.get("embed_in.weight", [cfg.dVocab, D]));
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `layers.${l}.`, b = `blocks.${l}.`;
    put(p, b + "ln1.w", hf.get(h + "input_layernorm.weight", [D]));
    put(p, b + "ln1.b", hf.get(h + "input_layernorm.bias", [D]));
    // Fused QKV rows are ordered (head, qkv, d_head): interleaved per head, unlike GPT-2.
    const qkv = hf.get(h + "attention.query_key_value.weight", [3 * D, D]);
    const qkvB = hf.maybe(h + "attention.query_key_value.bias", [3 * D]);
    ["Q", "K", "V"].forEach((x, i) => {
      const row = (hh: number, k: number) => hh * 3 * d + i * d + k;
      put(p, b + `attn.W_${x}`, gatherInProj(qkv, H, D, d, row, "outIn"));
      put(p, b + `attn.b_${x}`, qkvB ? gatherBias(qkvB, H, d, row) : zerosOf([H, d]));
    });
    const dense = hf.get(h + "attention.dense.weight", [D, H * d]);
    put(p, b + "attn.W_O", outProjFromLinear(dense, H, d));
    put(p, b + "attn.b_O", hf.maybe(h + "attention.dense.bias", [D]) ?? zerosOf([D]));
    put(p, b + "ln2.w", hf.get(h + "post_attention_layernorm.weight", [D]));
    put(p, b + "ln2.b", hf.get(h + "post_attention_layernorm.bias", [D]));
    put(p, b + "mlp.W_in", transpose(hf.get(h + "mlp.dense_h_to_4h.weight", [M, D])));
    put(p, b + "mlp.b_in", hf.get(h + "mlp.dense_h_to_4h.bias", [M]));
    put(p, b + "mlp.W_out", transpose(hf.get(h + "mlp.dense_4h_to_h.weight", [D, M])));
    put(p, b + "mlp.b_out", hf.get(h + "mlp.dense_4h_to_h.bias", [D]));
  }
  put(p, "ln_final.w", hf.get("final_layer_norm.weight", [D]));
  put(p, "ln_final.b", hf.get("final_layer_norm.bias", [D]));
  put(p, "unembed.W_U", unembedFrom(cfg, hf, "embed_in.weight", "embed_out.weight"));
  put(p, "unembed.b_U", zerosOf([cfg.dVocab]));
  return p;
}

/** Rows of a positional table as stored (checked against nCtx by {@link trimPos}). */
function posRows(hf: HfLookup, name: string): number {
  const key = hf.resolve(name);
  return key === undefined ? 0 : hf.tensors.get(key)!.shape[0];
}

/** TL keeps the first nCtx rows of `W_pos`. */
function trimPos(wpe: HostTensor, cfg: ModelConfig): HostTensor {
  const [rows, D] = wpe.shape;
  if (rows < cfg.nCtx) {
    throw new ModelError(`position table has ${rows} rows, fewer than nCtx ${cfg.nCtx}`);
  }
  if (rows === cfg.nCtx) return wpe;
  return { data: wpe.data.slice(0, cfg.nCtx * D), shape: [cfg.nCtx, D] };
}
