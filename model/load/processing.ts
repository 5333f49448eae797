/**
 * TransformerLens weight processing (spec transformer_lens.md §2), each step switchable, in TL's
 * order: fold_ln → center_writing_weights → center_unembed → fold_value_biases.
 * (`refactor_factored_attn_matrices` is not implemented; TL leaves it off by default.)
 * Inputs are never mutated: changed tensors are new arrays, the rest are shared.
 * @module
 */

import { kvHeadCount, kvPrefix, type ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";

/** Which TL processing steps to apply (all default to false = `from_pretrained_no_processing`). */
export interface ProcessingOptions {
  /** Fold ln1/ln2/ln_final into the following weights; LN → LNPre, RMS → RMSPre. */
  foldLn?: boolean;
  /** Center every residual-writing weight/bias over d_model (LN models without final_rms only). */
  centerWritingWeights?: boolean;
  /** Center W_U and b_U over the vocab (skipped with an output soft cap, as TL does). */
  centerUnembed?: boolean;
  /** Move b_V into b_O through W_O and zero b_V. */
  foldValueBiases?: boolean;
}

/** TL `from_pretrained` defaults: everything on. */
export const TL_DEFAULT_PROCESSING: Readonly<Required<ProcessingOptions>> = {
  foldLn: true,
  centerWritingWeights: true,
  centerUnembed: true,
  foldValueBiases: true,
};

/** Result of {@link processWeights}. */
export interface ProcessedModel {
  /** The config after processing (normalizationType LNPre/RMSPre when folded). */
  cfg: ModelConfig;
  /** Processed parameters. */
  params: ParamMap;
  /** Steps requested but skipped, with TL's reason (TL logs these as warnings). */
  notes: string[];
}

/**
 * Applies the requested processing to unprocessed TL parameters.
 *
 * @example
 * ```ts
 * import { processWeights, TL_DEFAULT_PROCESSING } from "./processing.ts";
 * import { defineModelConfig } from "../config.ts";
 * const cfg = defineModelConfig({ nLayers: 0, dModel: 2, nHeads: 1, dVocab: 2, nCtx: 1,
 *   actFn: "relu" });
 * const t = (...v: number[]) => ({ data: Float32Array.from(v), shape: [v.length] });
 * const params = new Map([["embed.W_E", { data: Float32Array.of(1, 3, 0, 0), shape: [2, 2] }],
 *   ["pos_embed.W_pos", { data: Float32Array.of(0, 0), shape: [1, 2] }],
 *   ["ln_final.w", t(1, 1)], ["ln_final.b", t(0, 0)],
 *   ["unembed.W_U", { data: Float32Array.of(1, 0, 0, 1), shape: [2, 2] }], ["unembed.b_U", t(0, 0)]]);
 * const out = processWeights(cfg, params, TL_DEFAULT_PROCESSING);
 * if (out.cfg.normalizationType !== "LNPre" || out.params.get("embed.W_E")!.data[0] !== -1) {
 *   throw new Error("unreachable");
 * }
 * ```
 */
export function processWeights(
  cfg: ModelConfig,
  params: ParamMap,
  opts: ProcessingOptions,
): ProcessedModel {
  const p: ParamMap = new Map(params);
  const notes: string[] = [];
  let out = cfg;
  if (opts.foldLn) {
    const t = cfg.normalizationType;
    if (t === "LN" || t === "RMS") {
      foldLayerNorm(cfg, p, t === "LN");
      out = { ...cfg, normalizationType: t === "LN" ? "LNPre" : "RMSPre" };
    } else {
      notes.push(`fold_ln skipped: normalization is already ${t}`);
    }
  }
  if (opts.centerWritingWeights) {
    const t = out.normalizationType;
    if (t !== "LN" && t !== "LNPre") {
      notes.push("center_writing_weights skipped: the model does not use LayerNorm");
    } else if (out.finalRms) {
      notes.push("center_writing_weights skipped: the model uses a final RMSNorm");
    } else {
      centerWritingWeights(out, p);
    }
  }
  if (opts.centerUnembed) {
    if (out.outputLogitsSoftCap > 0) {
      notes.push("center_unembed skipped: output logits are soft-capped");
    } else {
      centerUnembed(out, p);
    }
  }
  if (opts.foldValueBiases) foldValueBiases(out, p);
  return { cfg: out, params: p, notes };
}

/** Replaces `name` by a transformed copy (`fn` edits the copy in place). */
function update(p: ParamMap, name: string, fn: (data: Float32Array, shape: number[]) => void) {
  const t = p.get(name);
  if (!t) throw new ModelError(`processWeights: missing parameter "${name}"`);
  const data = new Float32Array(t.data);
  fn(data, t.shape);
  p.set(name, { data, shape: [...t.shape] });
}

function take(p: ParamMap, name: string): Float32Array {
  const t = p.get(name);
  if (!t) throw new ModelError(`processWeights: missing parameter "${name}"`);
  p.delete(name);
  return t.data;
}

/**
 * Folds a norm (weight w, optional bias b, both [D]) into a reading matrix viewed as
 * `[n, D, m]` with bias `[n, m]`: bias first with the unscaled weights, then row scaling, then
 * (LN only) centering over D.
 */
function foldInto(
  p: ParamMap,
  wName: string,
  bName: string | null,
  w: Float32Array,
  b: Float32Array | null,
  center: boolean,
): void {
  const shape = p.get(wName)!.shape;
  const [n, D, m] = shape.length === 3 ? shape : [1, shape[0], shape[1]];
  if (b && bName) {
    const W = p.get(wName)!.data;
    update(p, bName, (bias) => {
      for (let h = 0; h < n; h++) {
        for (let k = 0; k < m; k++) {
          let s = 0;
          for (let j = 0; j < D; j++) s += b[j] * W[(h * D + j) * m + k];
          bias[h * m + k] += s;
        }
      }
    });
  }
  update(p, wName, (W) => {
    for (let h = 0; h < n; h++) {
      for (let j = 0; j < D; j++) {
        for (let k = 0; k < m; k++) W[(h * D + j) * m + k] *= w[j];
      }
    }
    if (!center) return;
    for (let h = 0; h < n; h++) {
      for (let k = 0; k < m; k++) {
        let s = 0;
        for (let j = 0; j < D; j++) s += W[(h * D + j) * m + k];
        const mean = s / D;
        for (let j = 0; j < D; j++) W[(h * D + j) * m + k] -= mean;
      }
    }
  });
}

function foldLayerNorm(cfg: ModelConfig, p: ParamMap, isLn: boolean): void {
  const g = kvPrefix(cfg);
  for (let l = 0; l < cfg.nLayers; l++) {
    const a = `blocks.${l}.attn.`, m = `blocks.${l}.mlp.`;
    const w1 = take(p, `blocks.${l}.ln1.w`), b1 = isLn ? take(p, `blocks.${l}.ln1.b`) : null;
    foldInto(p, a + "W_Q", a + "b_Q", w1, b1, isLn);
    foldInto(p, a + `${g}W_K`, a + `${g}b_K`, w1, b1, isLn);
    foldInto(p, a + `${g}W_V`, a + `${g}b_V`, w1, b1, isLn);
    const w2 = take(p, `blocks.${l}.ln2.w`), b2 = isLn ? take(p, `blocks.${l}.ln2.b`) : null;
    foldInto(p, m + "W_in", m + "b_in", w2, b2, isLn);
    // TL scales W_gate but neither folds a bias into it nor centers it.
    if (cfg.gatedMlp) foldInto(p, m + "W_gate", null, w2, null, false);
  }
  const wf = take(p, "ln_final.w"), bf = isLn ? take(p, "ln_final.b") : null;
  foldInto(p, "unembed.W_U", "unembed.b_U", wf, bf, isLn);
}

/** Subtracts each length-`n` row's mean (rows of a row-major array). */
function centerRows(data: Float32Array, n: number): void {
  for (let o = 0; o < data.length; o += n) {
    let s = 0;
    for (let j = 0; j < n; j++) s += data[o + j];
    const mean = s / n;
    for (let j = 0; j < n; j++) data[o + j] -= mean;
  }
}

function centerWritingWeights(cfg: ModelConfig, p: ParamMap): void {
  const D = cfg.dModel;
  update(p, "embed.W_E", (x) => centerRows(x, D));
  if (cfg.positionalEmbeddingType !== "rotary") {
    update(p, "pos_embed.W_pos", (x) => centerRows(x, D));
  }
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = `blocks.${l}.`;
    update(p, b + "attn.W_O", (x) => centerRows(x, D));
    update(p, b + "attn.b_O", (x) => centerRows(x, D));
    update(p, b + "mlp.W_out", (x) => centerRows(x, D));
    update(p, b + "mlp.b_out", (x) => centerRows(x, D));
  }
}

function centerUnembed(cfg: ModelConfig, p: ParamMap): void {
  update(p, "unembed.W_U", (x) => centerRows(x, cfg.dVocab));
  update(p, "unembed.b_U", (x) => centerRows(x, cfg.dVocab));
}

function foldValueBiases(cfg: ModelConfig, p: ParamMap): void {
  const { nHeads: H, dHead: d, dModel: D } = cfg;
  const g = kvPrefix(cfg), group = H / kvHeadCount(cfg);
  for (let l = 0; l < cfg.nLayers; l++) {
    const a = `blocks.${l}.attn.`;
    const bV = p.get(a + `${g}b_V`)!.data;
    const WO = p.get(a + "W_O")!.data;
    update(p, a + "b_O", (bO) => {
      for (let c = 0; c < D; c++) {
        let s = 0;
        // GQA: kv head hk serves query heads hk·group … (hk+1)·group − 1 (repeat_interleave).
        for (let h = 0; h < H; h++) {
          const hk = Math.floor(h / group);
          for (let k = 0; k < d; k++) s += bV[hk * d + k] * WO[(h * d + k) * D + c];
        }
        bO[c] += s;
      }
    });
    update(p, a + `${g}b_V`, (x) => x.fill(0));
  }
}
