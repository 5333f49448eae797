/**
 * TransformerLens parameters uploaded once into the layouts the GPU forward reads: per-head
 * projections W_Q/W_K/W_V `[H, D, d]` become `[D, H·d]` matrices, every matrix a padded
 * {@link LinearWeight}, `W_E` an {@link EmbedTable} in binding-sized row windows. Rotary tables
 * are uploaded on demand and kept for the longest sequence seen.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { kvHeadCount, kvPrefix, type ModelConfig } from "../config.ts";
import { disposeEmbed, type EmbedTable, prepareEmbed } from "./kernels/embed.ts";
import { disposeLinear, type LinearWeight, prepareLinear } from "./kernels/linear.ts";
import { rotaryTables } from "../reference/ops.ts";
import { getParam, type ParamMap, validateParams } from "../params.ts";

/** A norm module's weights (absent for LNPre/RMSPre). */
export interface GpuNorm {
  /** Weight `[D]` (LN, RMS). */
  w: Tensor | null;
  /** Bias `[D]` (LN). */
  b: Tensor | null;
}

/** One block's parameters on the GPU. */
export interface GpuLayer {
  /** Norm before attention. */
  ln1: GpuNorm;
  /** Norm before the MLP. */
  ln2: GpuNorm;
  /** Gemma-2 sandwich norms (RMS with weight), else null. */
  ln1Post: GpuNorm | null;
  /** Gemma-2 norm after the MLP. */
  ln2Post: GpuNorm | null;
  /** `[D, H·d]` query projection with b_Q. */
  q: LinearWeight;
  /** `[D, Hkv·d]` key projection with b_K. */
  k: LinearWeight;
  /** `[D, Hkv·d]` value projection with b_V. */
  v: LinearWeight;
  /** `[H·d, D]` with b_O. */
  o: LinearWeight;
  /** Views of `o`'s `W_O [H, d, D]` and `b_O [D]` (attn.hook_result path). */
  WO: Tensor;
  /** View of b_O `[D]`. */
  bO: Tensor;
  /** Qwen3 per-head q/k RMSNorm weights `[d]`. */
  qNorm: Tensor | null;
  /** Qwen3 key RMSNorm weight `[d]`. */
  kNorm: Tensor | null;
  /** Standard MLP: W_in + b_in. Gated: W_gate with partner W_in and bias b_in (fused). */
  mlpIn: LinearWeight;
  /** Gated only: x·W_gate and x·W_in alone (no bias), sharing mlpIn's tensors. */
  gateOnly: LinearWeight | null;
  /** Gated only: x·W_in alone. */
  upOnly: LinearWeight | null;
  /** Gated only: b_in `[M]`. */
  bIn: Tensor | null;
  /** W_out + b_out. */
  mlpOut: LinearWeight;
}

/** A whole model's parameters on the GPU. */
export interface GpuParams {
  /** `W_E` in row windows. */
  embed: EmbedTable;
  /** `W_pos [nCtx, D]` for standard positions, else null. */
  pos: Tensor | null;
  /** One entry per block. */
  layers: GpuLayer[];
  /** The final norm. */
  lnFinal: GpuNorm;
  /** `W_U [D, V]` with b_U. */
  unembed: LinearWeight;
}

/** `W [n, D, d]` (per head) → `[D, n·d]` with column h·d + j. */
function headsToMatrix(W: Float32Array, n: number, D: number, d: number): Float32Array {
  const out = new Float32Array(D * n * d);
  for (let h = 0; h < n; h++) {
    for (let i = 0; i < D; i++) {
      out.set(W.subarray((h * D + i) * d, (h * D + i + 1) * d), i * n * d + h * d);
    }
  }
  return out;
}

/**
 * Validates `params` against `cfg` (names and shapes) and uploads them.
 * Host arrays are not kept.
 */
export function uploadParams(gpu: Gpu, cfg: ModelConfig, params: ParamMap): GpuParams {
  validateParams(cfg, params);
  const { dModel: D, nHeads: H, dHead: d, dMlp: M, dVocab: V } = cfg;
  const Hkv = kvHeadCount(cfg), g = kvPrefix(cfg);
  const get = (name: string) => params.get(name)!.data;
  const t = (name: string) => Tensor.from(get(name), params.get(name)!.shape, { gpu });
  const norm = (prefix: string, kind = cfg.normalizationType): GpuNorm => ({
    w: kind === "LN" || kind === "RMS" ? t(`${prefix}.w`) : null,
    b: kind === "LN" ? t(`${prefix}.b`) : null,
  });
  const layers: GpuLayer[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = `blocks.${l}.`, a = `${b}attn.`, m = `${b}mlp.`;
    const proj = (w: string, bias: string, n: number) =>
      prepareLinear(gpu, { W: headsToMatrix(get(a + w), n, D, d), bias: get(a + bias) }, D, n * d);
    const mlpIn = cfg.gatedMlp
      ? prepareLinear(
        gpu,
        { W: get(m + "W_gate"), W2: get(m + "W_in"), bias: get(m + "b_in") },
        D,
        M,
      )
      : prepareLinear(gpu, { W: get(m + "W_in"), bias: get(m + "b_in") }, D, M);
    const o = prepareLinear(gpu, { W: get(a + "W_O"), bias: get(a + "b_O") }, H * d, D);
    const alone = (which: "w" | "w2"): LinearWeight => ({
      K: D,
      N: M,
      w: mlpIn[which]!,
      w2: null,
      bias: null,
    });
    layers.push({
      ln1: norm(b + "ln1"),
      ln2: norm(b + "ln2"),
      ln1Post: cfg.useNormalizationBeforeAndAfter ? norm(b + "ln1_post", "RMS") : null,
      ln2Post: cfg.useNormalizationBeforeAndAfter ? norm(b + "ln2_post", "RMS") : null,
      q: proj("W_Q", "b_Q", H),
      k: proj(`${g}W_K`, `${g}b_K`, Hkv),
      v: proj(`${g}W_V`, `${g}b_V`, Hkv),
      o,
      WO: o.w.reshape([H, d, D]),
      bO: o.bias!,
      qNorm: cfg.useQkNorm ? t(a + "q_norm.w") : null,
      kNorm: cfg.useQkNorm ? t(a + "k_norm.w") : null,
      mlpIn,
      gateOnly: cfg.gatedMlp ? alone("w") : null,
      upOnly: cfg.gatedMlp ? alone("w2") : null,
      bIn: cfg.gatedMlp ? mlpIn.bias : null,
      mlpOut: prepareLinear(gpu, { W: get(m + "W_out"), bias: get(m + "b_out") }, M, D),
    });
  }
  const WU = getParam(params, "unembed.W_U", [D, V]).data;
  return {
    embed: prepareEmbed(gpu, getParam(params, "embed.W_E", [V, D]).data, V, D),
    pos: cfg.positionalEmbeddingType === "standard" ? t("pos_embed.W_pos") : null,
    layers,
    lnFinal: norm("ln_final"),
    unembed: prepareLinear(gpu, { W: WU, bias: get("unembed.b_U") }, D, V),
  };
}

/** Frees every parameter tensor. */
export function disposeParams(p: GpuParams): void {
  disposeEmbed(p.embed);
  p.pos?.dispose();
  const norm = (n: GpuNorm | null) => {
    n?.w?.dispose();
    n?.b?.dispose();
  };
  for (const l of p.layers) {
    norm(l.ln1);
    norm(l.ln2);
    norm(l.ln1Post);
    norm(l.ln2Post);
    for (const w of [l.q, l.k, l.v, l.o, l.mlpIn, l.mlpOut]) disposeLinear(w);
    for (const x of [l.qNorm, l.kNorm]) x?.dispose();
  }
  norm(p.lnFinal);
  disposeLinear(p.unembed);
}

/** Rotary sin/cos tables on the GPU, grown on demand. */
export class RotaryCache {
  #sin: Tensor | null = null;
  #cos: Tensor | null = null;
  #positions = 0;

  /** An empty cache for `cfg`'s rotary settings on `gpu`. */
  constructor(private readonly gpu: Gpu, private readonly cfg: ModelConfig) {}

  /** Tables covering at least `P` positions (uploads happen before any recording). */
  tables(P: number): { sin: Tensor; cos: Tensor } {
    if (P > this.#positions) {
      // Round up so that slowly growing lengths do not re-upload every time.
      const n = Math.max(P, Math.min(2 * this.#positions, this.cfg.nCtx), 16);
      const { sin, cos, rotaryDim } = rotaryTables(this.cfg, n);
      this.dispose();
      this.#sin = Tensor.from(sin, [n, rotaryDim], { gpu: this.gpu });
      this.#cos = Tensor.from(cos, [n, rotaryDim], { gpu: this.gpu });
      this.#positions = n;
    }
    return { sin: this.#sin!, cos: this.#cos! };
  }

  /** Frees the tables. */
  dispose(): void {
    this.#sin?.dispose();
    this.#cos?.dispose();
    this.#sin = this.#cos = null;
    this.#positions = 0;
  }
}
