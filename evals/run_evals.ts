/**
 * `runEvals`: SAELens's `run_evals` (spec §6.2–6.3, newest definitions of SAELens 6.49) on the
 * GPU. Two passes over token batches drawn from a token source (an `ActivationsStore`, or
 * anything with `getBatchTokens`):
 *
 * - **reconstruction** (`computeCeLoss`, `computeKl`): per batch three forwards of the model —
 *   clean, with the hook's activation replaced by unscale(decode(encode(scale(a)))) (positions
 *   whose input token is ignored keep the original activation), and with the hook zero-ablated
 *   (only the selected head with `hook_head_index`); per-token next-token CE and KL(p_clean ‖ ·);
 * - **sparsity / variance** (`computeL2Norms`, `computeSparsityMetrics`,
 *   `computeVarianceMetrics`, `computeFeaturewiseDensityStatistics`): the hook's activations
 *   (forward stopped after the hook's block), ignored positions dropped, run through the SAE.
 *
 * Per batch every sum is taken on the GPU and one small read brings back a few numbers (plus
 * two `[d_sae]` count vectors with the density statistics); sums across batches are float64.
 *
 * Differences from SAELens 6.18 (spec §12): `explained_variance` is relative to the mean,
 * 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) streamed over every token of every batch (6.45.1, #665;
 * 6.18 used a per-batch formula relative to zero); `mse` is the mean over tokens of ‖x − x̂‖²
 * (6.45.2, #711; 6.18 divided by the number of tokens in the batch once more); `l0` counts
 * `f ≠ 0` and `l1` sums `|f|` (6.18: `f > 0`, `Σf`). `explained_variance_legacy` is 6.18's
 * per-token 1 − ‖x − x̂‖² / ‖x − x̄_batch‖².
 *
 * Like SAELens: metrics are computed on unscaled activations; `seqpos_slice` is not applied
 * (every position counts); the sparsity batches follow the reconstruction batches in the token
 * stream (SAELens's `reset_input_dataset` has no effect once its token generator started).
 * Unlike SAELens, `feature_density` / `consistent_activation_heuristic` are returned only when
 * `computeFeaturewiseDensityStatistics` is on (SAELens returns lists of NaN otherwise).
 * @module
 */

import { binary } from "../gpu/kernels/binary.ts";
import { scale, unary } from "../gpu/kernels/elementwise.ts";
import { gatherRows } from "../gpu/kernels/gather.ts";
import { matmul } from "../gpu/kernels/matmul/mod.ts";
import { reduceAll, reduceCols, reduceRows } from "../gpu/kernels/reduce.ts";
import { readAll, Tensor } from "../gpu/tensor.ts";
import { disposeCache, type FwdHook } from "../model/hooks/gpu.ts";
import type { HookedTransformer } from "../model/hooked_transformer.ts";
import { getSaeArchitecture } from "../sae/architectures/mod.ts";
import type { SAE } from "../sae/sae.ts";
import { didYouMean } from "../util/suggest.ts";
import { type EvalConfig, evalConfig, EvalError } from "./config.ts";
import { encDecDot, klDivRows, nonzeroMask, ROW_STATS, rowStats } from "./kernels.ts";

/**
 * Where eval tokens come from: SAELens's `get_batch_tokens`. An `ActivationsStore` fits; its
 * `options.contextSize` feeds `token_stats` and `options.storeBatchSizePrompts` is the batch
 * size when the config gives none.
 */
export interface EvalTokenSource {
  /** `batchSize` sequences as an i32 GPU tensor `[batchSize, contextSize]`. */
  getBatchTokens(batchSize: number): Promise<Tensor>;
  /** The source's settings, when it has them. */
  readonly options?: { readonly contextSize?: number; readonly storeBatchSizePrompts?: number };
}

/** The activation scaler (SAELens `ActivationScaler`): x·s into the SAE, x̂/s out of it. */
export interface ActivationScalerLike {
  /** The factor s, or null for no scaling. */
  readonly scalingFactor: number | null;
}

/** Options of {@link runEvals}. */
export interface RunEvalsOptions {
  /** Scales the SAE's input and unscales its output (default: none). */
  activationScaler?: ActivationScalerLike | null;
  /**
   * Token ids whose positions are ignored: true (default) = every special token of the model's
   * tokenizer, false = none, or a list (SAELens `exclude_special_tokens`).
   */
  excludeSpecialTokens?: boolean | readonly number[];
  /** Called after each batch. */
  onProgress?: (
    p: { phase: "reconstruction" | "sparsity_variance"; batch: number; of: number },
  ) => void;
}

/** SAELens's nested metric groups (empty groups left out). */
export type EvalMetrics = Record<string, Record<string, number>>;

/** What {@link runEvals} returns (SAELens's `(metrics, feature_metrics)`). */
export interface EvalResult {
  /**
   * `model_behavior_preservation`, `model_performance_preservation`, `reconstruction_quality`,
   * `shrinkage`, `sparsity`, `token_stats`: each a record of numbers.
   */
  metrics: EvalMetrics;
  /** Lists of length d_sae: `feature_density`, `consistent_activation_heuristic`, `encoder_norm`, … */
  featureMetrics: Record<string, number[]>;
}

/** Where the SAE reads in the model, checked against a one-token probe. */
interface HookFit {
  hookName: string;
  headIndex: number | null;
  /** True for q/k/v/z hooks (`[B, T, H, d_head]`). */
  headDim: boolean;
}

const HEAD_HOOKS = ["hook_q", "hook_k", "hook_v", "hook_z"];

/**
 * Checks that `sae` can read and replace its hook in `model`: the hook point exists, the head
 * index fits, and the activation width equals `d_in` (a one-token forward). Transcoders, whose
 * output is not their input, are refused.
 */
async function checkFit(sae: SAE, model: HookedTransformer): Promise<HookFit> {
  const md = sae.cfg.metadata;
  const hookName = md.hookName;
  if (typeof hookName !== "string" || hookName === "") {
    throw new EvalError("runEvals: the SAE's metadata has no hook_name (which hook does it read?)");
  }
  if (getSaeArchitecture(sae.cfg.architecture).transcoder) {
    throw new EvalError(
      `runEvals: ${sae.cfg.architecture} SAEs are transcoders (d_out ≠ input); evals replace a ` +
        "hook's activation by the SAE's reconstruction, which needs an autoencoder",
    );
  }
  const names = model.hookNames();
  if (!names.includes(hookName)) {
    throw new EvalError(
      `runEvals: the SAE reads hook ${JSON.stringify(hookName)}, which model ` +
        `${model.cfg.modelName} does not have${didYouMean(hookName, names)}`,
    );
  }
  const headIndex = md.hookHeadIndex ?? null;
  const { cache, logits, residual } = await model.runWithCache([[0]], {
    namesFilter: [hookName],
    stopAtLayer: stopAtLayerOf(hookName),
  });
  logits?.dispose();
  residual?.dispose();
  const shape = cache.get(hookName)?.shape ?? [];
  disposeCache(cache);
  let width: number;
  if (headIndex !== null) {
    if (shape.length !== 4) {
      throw new EvalError(
        `runEvals: the SAE has hook_head_index ${headIndex}, but ${hookName} has shape ` +
          `[${shape.join(", ")}] (no head dimension)`,
      );
    }
    if (!Number.isSafeInteger(headIndex) || headIndex < 0 || headIndex >= shape[2]) {
      throw new EvalError(
        `runEvals: hook_head_index is ${headIndex}, but ${hookName} has ${shape[2]} heads`,
      );
    }
    width = shape[3];
  } else {
    width = shape.length === 4 ? shape[2] * shape[3] : shape[shape.length - 1];
  }
  if (width !== sae.cfg.dIn) {
    throw new EvalError(
      `runEvals: the SAE's d_in is ${sae.cfg.dIn}, but ${hookName}` +
        (headIndex === null ? "" : ` head ${headIndex}`) + ` of ${model.cfg.modelName} has ` +
        `width ${width}; this SAE was not trained on this model's hook`,
    );
  }
  return {
    hookName,
    headIndex,
    headDim: shape.length === 4 && HEAD_HOOKS.some((s) => hookName.includes(s)),
  };
}

/** TransformerLens `stop_at_layer` for a hook: `blocks.N.…` → N + 1, else the whole model. */
function stopAtLayerOf(hookName: string): number | undefined {
  const m = /^blocks\.(\d+)\./.exec(hookName);
  return m ? Number(m[1]) + 1 : undefined;
}

/** One batch of tokens on the GPU and host, with its ignore mask. */
interface TokenBatch {
  tokens: Tensor;
  ids: Int32Array;
  B: number;
  T: number;
  /** 1 = the position counts. */
  keep: Uint8Array;
  keptAll: boolean;
}

/** Everything one eval needs. */
class EvalRun {
  readonly fit: HookFit;
  readonly ignore: Set<number>;
  readonly scalingFactor: number | null;
  /** Context size seen in the token batches. */
  contextSize: number | null = null;

  constructor(
    readonly sae: SAE,
    readonly store: EvalTokenSource,
    readonly model: HookedTransformer,
    readonly batchSize: number,
    fit: HookFit,
    options: RunEvalsOptions,
  ) {
    this.fit = fit;
    const ex = options.excludeSpecialTokens ?? true;
    this.ignore = new Set(
      ex === true ? model.tokenizer?.specialTokenIds() ?? [] : ex === false ? [] : ex,
    );
    const s = options.activationScaler?.scalingFactor ?? null;
    if (s !== null && !(Number.isFinite(s) && s !== 0)) {
      throw new EvalError(
        `runEvals: the activation scaling factor is ${s}, expected a finite non-zero number`,
      );
    }
    this.scalingFactor = s;
  }

  async batch(phase: string, i: number, n: number): Promise<TokenBatch> {
    let tokens: Tensor;
    try {
      tokens = await this.store.getBatchTokens(this.batchSize);
    } catch (err) {
      throw new EvalError(
        `runEvals: ${phase} batch ${i + 1} of ${n} (${this.batchSize} prompts): the token ` +
          `source gave no tokens (${err instanceof Error ? err.message : String(err)})`,
        { cause: err },
      );
    }
    const bad = (what: string) => {
      tokens.dispose();
      return new EvalError(`runEvals: ${phase} batch ${i + 1}: the token source gave ${what}`);
    };
    if (!(tokens instanceof Tensor) || tokens.dtype !== "i32" || tokens.rank !== 2) {
      throw bad(`${tokens}, expected an i32 tensor [batch, context]`);
    }
    const [B, T] = tokens.shape;
    if (B !== this.batchSize || T < 1) {
      throw bad(`${tokens}, expected [${this.batchSize}, context ≥ 1]`);
    }
    if (T > this.model.cfg.nCtx) {
      throw bad(
        `sequences of ${T} tokens; ${this.model.cfg.modelName} handles at most ${this.model.cfg.nCtx}`,
      );
    }
    const ids = await tokens.toArray() as Int32Array;
    const V = this.model.cfg.dVocab;
    const keep = new Uint8Array(B * T);
    let keptAll = true;
    for (let r = 0; r < ids.length; r++) {
      if (!(ids[r] >= 0 && ids[r] < V)) {
        throw bad(
          `token ${ids[r]} at [${Math.floor(r / T)}, ${r % T}], outside the vocabulary [0, ${V})`,
        );
      }
      keep[r] = this.ignore.has(ids[r]) ? 0 : 1;
      if (!keep[r]) keptAll = false;
    }
    if (this.contextSize === null) this.contextSize = T;
    return { tokens, ids, B, T, keep, keptAll };
  }

  /** unscale(decode(encode(scale(x)))) of rows `x [n, d_in]`: a new tensor. */
  reconstruct(x: Tensor): { xHat: Tensor; featureActs: Tensor } {
    const s = this.scalingFactor;
    const xs = s === null ? x : scale(x, s);
    const f = this.sae.encode(xs);
    const y = this.sae.decode(f);
    if (xs !== x) xs.dispose();
    if (s === null) return { xHat: y, featureActs: f };
    using sT = Tensor.from([s], [1], { gpu: x.gpu });
    const out = binary("div", y, sT);
    y.dispose();
    return { xHat: out, featureActs: f };
  }

  /** Rows of the hook value `[B, T, …]` the SAE reads: `[R, w]` with R = B·T·H for a head. */
  rowsOf(value: Tensor, B: number, T: number): { rows: Tensor; H: number } {
    const s = value.shape;
    if (s[0] !== B || s[1] !== T) {
      throw new EvalError(
        `runEvals: ${this.fit.hookName} has shape [${s.join(", ")}], expected [${B}, ${T}, …]`,
      );
    }
    if (this.fit.headIndex !== null) return { rows: value.reshape([B * T * s[2], s[3]]), H: s[2] };
    return { rows: value.reshape([B * T, value.size / (B * T)]), H: 1 };
  }

  /** The SAE-replacement hook of one batch (SAELens `*_replacement_hook`). */
  replacementHook(b: TokenBatch): FwdHook {
    return [this.fit.hookName, (value: Tensor) => {
      const { rows, H } = this.rowsOf(value, b.B, b.T);
      const R = rows.shape[0], w = rows.shape[1];
      const h = this.fit.headIndex;
      let x = rows;
      if (h !== null) {
        x = gatherRows(
          rows,
          Int32Array.from({ length: b.B * b.T }, (_, p) => p * H + h),
        );
      }
      const { xHat, featureActs } = this.reconstruct(x);
      featureActs.dispose();
      if (x !== rows) x.dispose();
      if (h === null && b.keptAll) return ownedAs(xHat, value.shape);
      // Rows of [original; reconstruction]: a kept position (of the selected head) takes its
      // reconstruction, every other row stays as it was.
      const idx = new Int32Array(R);
      for (let r = 0; r < R; r++) {
        const p = Math.floor(r / H);
        idx[r] = (h === null || r % H === h) && b.keep[p] ? R + p : r;
      }
      using src = concatRows(rows, xHat, w);
      xHat.dispose();
      return ownedAs(gatherRows(src, idx), value.shape);
    }];
  }

  /** The zero-ablation hook (only the selected head with a head index). */
  zeroHook(b: TokenBatch): FwdHook {
    return [this.fit.hookName, (value: Tensor) => {
      const h = this.fit.headIndex;
      if (h === null) return Tensor.zeros(value.shape, "f32", { gpu: value.gpu });
      const { rows, H } = this.rowsOf(value, b.B, b.T);
      const R = rows.shape[0], w = rows.shape[1];
      using zero = Tensor.zeros([1, w], "f32", { gpu: value.gpu });
      using src = concatRows(rows, zero, w);
      const idx = Int32Array.from({ length: R }, (_, r) => (r % H === h ? R : r));
      return ownedAs(gatherRows(src, idx), value.shape);
    }];
  }
}

/** A tensor owning `t`'s buffer with another shape (t must not be used afterwards). */
function ownedAs(t: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(t.gpu, t.buffer, [...shape], t.dtype, t.offset, true);
}

/** `[a; b]` for `a [n1, w]`, `b [n2, w]` (buffer copies, recorded in order). */
function concatRows(a: Tensor, b: Tensor, w: number): Tensor {
  const n1 = a.size / w, n2 = b.size / w;
  const out = Tensor.empty([n1 + n2, w], "f32", { gpu: a.gpu });
  a.gpu.copy(a.buffer, a.offset, out.buffer, 0, a.byteLength);
  a.gpu.copy(b.buffer, b.offset, out.buffer, a.byteLength, b.byteLength);
  return out;
}

/** Σ over the kept entries of `values` (flat), written into `out[index]`. */
function maskedSum(values: Tensor, kept: Int32Array | null, out: Tensor, index: number): void {
  if (kept === null) {
    reduceAll("sum", values, { out, outIndex: index });
    return;
  }
  if (kept.length === 0) return; // out was zeroed
  using g = gatherRows(values.reshape([values.size, 1]), kept);
  reduceAll("sum", g, { out, outIndex: index });
}

/** SAELens `get_downstream_reconstruction_metrics`. */
async function reconstructionMetrics(
  run: EvalRun,
  cfg: EvalConfig,
  onProgress: RunEvalsOptions["onProgress"],
): Promise<Record<string, number>> {
  const n = cfg.nEvalReconstructionBatches;
  // Sums and counts of: ce clean, ce sae, ce ablation, kl sae, kl ablation.
  const sums = new Float64Array(5);
  let ceCount = 0, klCount = 0;
  const model = run.model;
  for (let i = 0; i < n; i++) {
    const b = await run.batch("reconstruction", i, n);
    try {
      const { B, T } = b;
      let ceKept: Int32Array | null = null, klKept: Int32Array | null = null;
      const cePos: number[] = [];
      for (let r = 0; r < B; r++) {
        for (let p = 0; p < T - 1; p++) if (b.keep[r * T + p]) cePos.push(r * (T - 1) + p);
      }
      ceCount += cePos.length;
      if (!b.keptAll) {
        ceKept = Int32Array.from(cePos);
        const all: number[] = [];
        for (let r = 0; r < B * T; r++) if (b.keep[r]) all.push(r);
        klKept = Int32Array.from(all);
        klCount += all.length;
      } else klCount += B * T;
      using acc = Tensor.zeros([5], "f32", { gpu: model.gpu });
      const clean = await model.forwardWithLoss(b.tokens);
      try {
        if (cfg.computeCeLoss) maskedSum(clean.lossPerToken, ceKept, acc, 0);
        clean.lossPerToken.dispose();
        for (const [k, hook] of [[1, run.replacementHook(b)], [2, run.zeroHook(b)]] as const) {
          const r = await model.forwardWithLoss(b.tokens, { fwdHooks: [hook] });
          if (cfg.computeCeLoss) maskedSum(r.lossPerToken, ceKept, acc, k);
          r.lossPerToken.dispose();
          if (cfg.computeKl) {
            using kl = klDivRows(clean.logits, r.logits);
            maskedSum(kl, klKept, acc, k + 2);
          }
          r.logits.dispose();
        }
      } finally {
        clean.logits.dispose();
      }
      const got = await acc.toArray();
      for (let k = 0; k < 5; k++) sums[k] += got[k];
    } finally {
      b.tokens.dispose();
    }
    onProgress?.({ phase: "reconstruction", batch: i + 1, of: n });
  }
  const out: Record<string, number> = {};
  if (cfg.computeKl) {
    const sae = sums[3] / klCount, abl = sums[4] / klCount;
    out.kl_div_score = (abl - sae) / abl;
    out.kl_div_with_ablation = abl;
    out.kl_div_with_sae = sae;
  }
  if (cfg.computeCeLoss) {
    const clean = sums[0] / ceCount, sae = sums[1] / ceCount, abl = sums[2] / ceCount;
    out.ce_loss_score = (abl - sae) / (abl - clean);
    out.ce_loss_with_ablation = abl;
    out.ce_loss_with_sae = sae;
    out.ce_loss_without_sae = clean;
  }
  return out;
}

/** SAELens `get_sparsity_and_variance_metrics`. */
async function sparsityVarianceMetrics(
  run: EvalRun,
  cfg: EvalConfig,
  onProgress: RunEvalsOptions["onProgress"],
): Promise<{ metrics: Record<string, number>; featureMetrics: Record<string, number[]> }> {
  const n = cfg.nEvalSparsityVarianceBatches;
  const F = run.sae.cfg.dSae, d = run.sae.cfg.dIn;
  const density = cfg.computeFeaturewiseDensityStatistics;
  const wantFeatures = cfg.computeSparsityMetrics || density;
  const stat = new Float64Array(ROW_STATS.length);
  const sumX = new Float64Array(d);
  let l0 = 0, l1 = 0, tokens = 0, rrbSum = 0, batches = 0;
  const featureActs = new Float64Array(density ? F : 0);
  const featurePrompts = new Float64Array(density ? F : 0);
  const model = run.model, gpu = model.gpu;
  for (let i = 0; i < n; i++) {
    const b = await run.batch("sparsity/variance", i, n);
    const toFree: Tensor[] = [b.tokens];
    try {
      const { cache, logits, residual } = await model.runWithCache(b.tokens, {
        namesFilter: [run.fit.hookName],
        stopAtLayer: stopAtLayerOf(run.fit.hookName),
      });
      logits?.dispose();
      residual?.dispose();
      try {
        const value = cache.get(run.fit.hookName);
        if (!value) {
          throw new EvalError(`runEvals: the forward did not produce ${run.fit.hookName}`);
        }
        const { rows, H } = run.rowsOf(value, b.B, b.T);
        const h = run.fit.headIndex;
        const kept: number[] = [];
        for (let p = 0; p < b.B * b.T; p++) if (b.keep[p]) kept.push(h === null ? p : p * H + h);
        const m = kept.length;
        tokens += m;
        if (m > 0) {
          const x = h === null && b.keptAll ? rows : gatherRows(rows, Int32Array.from(kept));
          if (x !== rows) toFree.push(x);
          const { xHat, featureActs: f } = run.reconstruct(x);
          toFree.push(xHat, f);
          const f2 = f.reshape([m, F]);
          const colSum = reduceCols("sum", x);
          toFree.push(colSum);
          const reads: Tensor[] = [];
          const rs = rowStats(x, xHat, colSum, m);
          toFree.push(rs);
          const statSums = reduceCols("sum", rs);
          toFree.push(statSums);
          reads.push(statSums, colSum);
          const l01 = Tensor.zeros([2], "f32", { gpu });
          toFree.push(l01);
          reads.push(l01);
          if (wantFeatures) {
            const nz = nonzeroMask(f2);
            toFree.push(nz);
            reduceAll("sum", nz, { out: l01, outIndex: 0 });
            using absF = unary("abs", f2);
            reduceAll("sum", absF, { out: l01, outIndex: 1 });
            if (density) {
              const counts = reduceCols("sum", nz);
              toFree.push(counts);
              // Prompt membership S [B, m] times the indicator: firings per prompt and feature.
              const S = new Float32Array(b.B * m);
              let r = 0;
              for (let p = 0; p < b.B * b.T; p++) {
                if (b.keep[p]) S[Math.floor(p / b.T) * m + r++] = 1;
              }
              using sT = Tensor.from(S, [b.B, m], { gpu });
              using perPrompt = matmul(sT, nz);
              using fired = nonzeroMask(perPrompt);
              const prompts = reduceCols("sum", fired);
              toFree.push(prompts);
              reads.push(counts, prompts);
            }
          }
          const got = await readAll(reads);
          const s = got[0] as Float32Array;
          for (let k = 0; k < s.length; k++) stat[k] += s[k];
          const cs = got[1] as Float32Array;
          for (let k = 0; k < d; k++) sumX[k] += cs[k];
          l0 += got[2][0];
          l1 += got[2][1];
          if (density) {
            for (let k = 0; k < F; k++) {
              featureActs[k] += got[3][k];
              featurePrompts[k] += got[4][k];
            }
          }
          rrbSum += s[ROW_STATS.indexOf("x_hat_norm_squared")] /
            s[ROW_STATS.indexOf("x_dot_x_hat")];
        } else {
          // SAELens: a batch without tokens adds NaN (0/0) to the per-batch shrinkage list.
          rrbSum += NaN;
        }
        batches++;
      } finally {
        disposeCache(cache);
      }
    } finally {
      for (const t of toFree) t.dispose();
    }
    onProgress?.({ phase: "sparsity_variance", batch: i + 1, of: n });
  }
  const at = (name: (typeof ROW_STATS)[number]) => stat[ROW_STATS.indexOf(name)];
  const metrics: Record<string, number> = {};
  if (cfg.computeL2Norms) {
    metrics.l2_norm_in = at("l2_norm_in") / tokens;
    metrics.l2_norm_out = at("l2_norm_out") / tokens;
    metrics.l2_ratio = at("l2_ratio") / tokens;
    metrics.relative_reconstruction_bias = rrbSum / batches;
  }
  if (cfg.computeSparsityMetrics) {
    metrics.l0 = l0 / tokens;
    metrics.l1 = l1 / tokens;
  }
  if (cfg.computeVarianceMetrics) {
    metrics.explained_variance_legacy = at("explained_variance_legacy") / tokens;
    metrics.mse = at("resid_sum_of_squares") / tokens;
    metrics.cossim = at("cossim") / tokens;
    metrics.explained_variance = explainedVariance(
      sumX,
      at("x_norm_squared"),
      at("resid_sum_of_squares"),
      tokens,
    );
  }
  const featureMetrics: Record<string, number[]> = {};
  if (density) {
    featureMetrics.feature_density = Array.from(featureActs, (c) => c / tokens);
    featureMetrics.consistent_activation_heuristic = Array.from(
      featureActs,
      (c, k) => c / featurePrompts[k],
    );
  }
  return { metrics, featureMetrics };
}

/**
 * SAELens's streaming explained variance (`ExplainedVarianceCalculator.compute`): 1 − mse / Var
 * with Var = E‖x‖² − ‖E x‖², float64; Var < 1e-10 gives 1 when mse < 1e-10, else 0; no samples
 * give 0.
 *
 * @example
 * ```ts
 * import { explainedVariance } from "./run_evals.ts";
 * // x = (1), (3): E‖x‖² = 5, ‖E x‖² = 4, Var = 1; residuals 0.5² each: mse 0.25
 * if (explainedVariance([4], 10, 0.5, 2) !== 0.75) throw new Error();
 * ```
 */
export function explainedVariance(
  sumX: ArrayLike<number>,
  sumSquaredNorm: number,
  sumSquaredResidual: number,
  numSamples: number,
): number {
  if (numSamples === 0) return 0;
  let meanSq = 0;
  for (let k = 0; k < sumX.length; k++) {
    const m = sumX[k] / numSamples;
    meanSq += m * m;
  }
  const variance = sumSquaredNorm / numSamples - meanSq;
  const mse = sumSquaredResidual / numSamples;
  if (variance < 1e-10) return mse < 1e-10 ? 1 : 0;
  return 1 - mse / variance;
}

/**
 * SAELens `get_featurewise_weight_based_metrics`: per feature `encoder_norm` (‖W_enc[:, i]‖),
 * `encoder_decoder_cosine_sim` (cos(W_enc[:, i], W_dec[i])) and `encoder_bias` (b_enc, when the
 * architecture has one). Computed on the GPU; three `[d_sae]` vectors are read back.
 */
export async function featurewiseWeightBasedMetrics(sae: SAE): Promise<Record<string, number[]>> {
  using encNorm = reduceCols("l2", sae.W_enc);
  using decNorm = reduceRows("l2", sae.W_dec);
  using dot = encDecDot(sae.W_enc, sae.W_dec);
  const bEnc = sae.b_enc;
  const got = await readAll(bEnc ? [encNorm, decNorm, dot, bEnc] : [encNorm, decNorm, dot]);
  const [en, dn, dt] = got as Float32Array[];
  const out: Record<string, number[]> = {
    encoder_norm: Array.from(en),
    encoder_decoder_cosine_sim: Array.from(dt, (v, i) => v / (en[i] * dn[i])),
  };
  if (bEnc) out.encoder_bias = Array.from(got[3] as Float32Array);
  return out;
}

/**
 * SAELens `run_evals`: the metrics of `evalCfg` (see the module doc) of `sae` on `model`, with
 * token batches from `store`. `evalCfg` may be a partial config in camelCase or snake_case.
 * Throws an {@link EvalError} when the SAE's hook or `d_in` does not fit the model, when a
 * metric group is on but its batch count is 0, or when the token source gives no tokens.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { HookedTransformer } from "../model/hooked_transformer.ts";
 * import { SAE } from "../sae/sae.ts";
 * import { runEvals } from "./run_evals.ts";
 * const gpu = await getGpu();
 * const model = await HookedTransformer.fromPretrainedNoProcessing("data/tiny-shakespeare-gpt2", { gpu });
 * // An SAE that reconstructs exactly: f = [relu(x), relu(−x)], x̂ = f·[I; −I].
 * const d = 128, W_enc = new Float32Array(2 * d * d), W_dec = new Float32Array(2 * d * d);
 * for (let i = 0; i < d; i++) {
 *   W_enc[i * 2 * d + i] = 1; // W_enc [d, 2d] = [I, −I]
 *   W_enc[i * 2 * d + d + i] = -1;
 *   W_dec[i * d + i] = 1; // W_dec [2d, d] = [I; −I]
 *   W_dec[(d + i) * d + i] = -1;
 * }
 * const sae = await SAE.fromParams(
 *   { architecture: "standard", dIn: d, dSae: 2 * d, metadata: { hookName: "blocks.1.hook_resid_pre" } },
 *   { W_enc, W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) },
 *   { gpu },
 * );
 * const store = { getBatchTokens: async (n: number) =>
 *   Tensor.from(Int32Array.from({ length: n * 16 }, (_, k) => (k * 7) % 256), [n, 16], { gpu }) };
 * const { metrics } = await runEvals(sae, store, model, {
 *   computeCeLoss: true, computeVarianceMetrics: true, batchSizePrompts: 2,
 *   nEvalReconstructionBatches: 1 });
 * if (metrics.model_performance_preservation.ce_loss_score !== 1) throw new Error("not exact");
 * if (metrics.reconstruction_quality.explained_variance !== 1) throw new Error("not exact");
 * sae.dispose();
 * model.dispose();
 * ```
 */
export async function runEvals(
  sae: SAE,
  store: EvalTokenSource,
  model: HookedTransformer,
  evalCfg: Partial<EvalConfig> | Record<string, unknown> = {},
  options: RunEvalsOptions = {},
): Promise<EvalResult> {
  const cfg = evalConfig(evalCfg);
  const recon = cfg.computeKl || cfg.computeCeLoss;
  const spVar = cfg.computeL2Norms || cfg.computeSparsityMetrics || cfg.computeVarianceMetrics;
  if (recon && cfg.nEvalReconstructionBatches <= 0) {
    throw new EvalError(
      "eval config: nEvalReconstructionBatches must be > 0 when computeKl or computeCeLoss is on",
    );
  }
  if (spVar && cfg.nEvalSparsityVarianceBatches <= 0) {
    throw new EvalError(
      "eval config: nEvalSparsityVarianceBatches must be > 0 when computeL2Norms, " +
        "computeSparsityMetrics or computeVarianceMetrics is on",
    );
  }
  const batchSize = cfg.batchSizePrompts ?? store.options?.storeBatchSizePrompts ?? null;
  if (batchSize === null || !Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new EvalError(
      `runEvals: no batch size (batchSizePrompts is ${cfg.batchSizePrompts} and the token ` +
        "source has no storeBatchSizePrompts); set evalConfig.batchSizePrompts",
    );
  }
  if (sae.gpu !== model.gpu) {
    throw new EvalError("runEvals: the SAE and the model live on different GPU devices");
  }
  const fit = await checkFit(sae, model);
  const run = new EvalRun(sae, store, model, batchSize, fit, options);
  const metrics: EvalMetrics = {
    model_behavior_preservation: {},
    model_performance_preservation: {},
    reconstruction_quality: {},
    shrinkage: {},
    sparsity: {},
    token_stats: {},
  };
  if (recon) {
    const r = await reconstructionMetrics(run, cfg, options.onProgress);
    if (cfg.computeKl) {
      for (const k of ["kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"]) {
        metrics.model_behavior_preservation[k] = r[k];
      }
    }
    if (cfg.computeCeLoss) {
      for (
        const k of [
          "ce_loss_score",
          "ce_loss_with_ablation",
          "ce_loss_with_sae",
          "ce_loss_without_sae",
        ]
      ) metrics.model_performance_preservation[k] = r[k];
    }
  }
  let featureMetrics: Record<string, number[]> = {};
  if (spVar) {
    const r = await sparsityVarianceMetrics(run, cfg, options.onProgress);
    featureMetrics = r.featureMetrics;
    if (cfg.computeL2Norms) {
      for (const k of ["l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"]) {
        metrics.shrinkage[k] = r.metrics[k];
      }
    }
    if (cfg.computeSparsityMetrics) {
      metrics.sparsity.l0 = r.metrics.l0;
      metrics.sparsity.l1 = r.metrics.l1;
    }
    if (cfg.computeVarianceMetrics) {
      for (const k of ["explained_variance", "explained_variance_legacy", "mse", "cossim"]) {
        metrics.reconstruction_quality[k] = r.metrics[k];
      }
    }
  }
  if (cfg.computeFeaturewiseWeightBasedMetrics) {
    featureMetrics = { ...featureMetrics, ...await featurewiseWeightBasedMetrics(sae) };
  }
  const ctx = store.options?.contextSize ?? run.contextSize ?? NaN;
  metrics.token_stats = {
    total_tokens_eval_reconstruction: ctx * cfg.nEvalReconstructionBatches * batchSize,
    total_tokens_eval_sparsity_variance: ctx * cfg.nEvalSparsityVarianceBatches * batchSize,
  };
  for (const k of Object.keys(metrics)) {
    if (Object.keys(metrics[k]).length === 0) delete metrics[k];
  }
  return { metrics, featureMetrics };
}
