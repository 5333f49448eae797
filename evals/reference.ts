/**
 * The plain-TypeScript reference of {@link runEvals}: SAELens's `run_evals` formulas (newest,
 * spec §6.3) written out directly on host arrays in float64, against a host model (e.g. the
 * reference forward of `model/reference/forward.ts`) and a host SAE (e.g. `encodeRef`/`decodeRef` of
 * `sae/reference`). The GPU evals are tested against it.
 * @module
 */

import { lmCrossEntropyLoss } from "../model/reference/loss.ts";
import type { HostTensor } from "../util/host_tensor.ts";
import type { EvalConfig } from "./config.ts";
import { EvalError } from "./config.ts";
import { klDivRowsRef } from "./kernels.ts";
import type { EvalMetrics, EvalResult } from "./run_evals.ts";

/** A host model as the reference evals see it. */
export interface RefEvalModel {
  /** Logits `[B, T, V]`; `replace` (when given) replaces the SAE's hook value `[B, T, …]`. */
  logits(tokens: number[][], replace?: (value: HostTensor) => HostTensor): HostTensor;
  /** The SAE's hook value `[B, T, …]`. */
  hookValue(tokens: number[][]): HostTensor;
}

/** A host SAE as the reference evals see it. */
export interface RefEvalSae {
  /** Input width. */
  dIn: number;
  /** Number of latents. */
  dSae: number;
  /** Feature activations `[n, dSae]` of rows `x [n, dIn]`. */
  encode(x: Float32Array, n: number): Float32Array;
  /** Reconstruction `[n, dIn]` of `f [n, dSae]`. */
  decode(f: Float32Array, n: number): Float32Array;
  /** `[dIn, dSae]`. */
  W_enc: ArrayLike<number>;
  /** `[dSae, dIn]`. */
  W_dec: ArrayLike<number>;
  /** `[dSae]`, when the architecture has one. */
  b_enc?: ArrayLike<number>;
}

/** Options of {@link runEvalsRef}. */
export interface RefEvalOptions {
  /** SAELens `hook_head_index`. */
  headIndex?: number | null;
  /** The activation scaler's factor s: x·s into the SAE, x̂/s out of it (default none). */
  activationScalingFactor?: number | null;
  /** Token ids whose positions are ignored. */
  ignore?: readonly number[];
}

/**
 * SAELens `run_evals` on host data: `reconBatches` feed the CE/KL metrics, `sparsityBatches`
 * the L2 / sparsity / variance / density metrics (each a batch `[B][T]` of token ids);
 * `contextSize` and `batchSize` fill `token_stats`.
 *
 * @example
 * ```ts
 * import { evalConfig } from "./config.ts";
 * import { runEvalsRef } from "./reference.ts";
 * // A one-dimensional "model": the hook value is the token id, logits don't matter here.
 * const model = {
 *   logits: (t: number[][]) => ({ data: new Float32Array(t.length * t[0].length * 2), shape: [t.length, t[0].length, 2] }),
 *   hookValue: (t: number[][]) => ({ data: Float32Array.from(t.flat()), shape: [t.length, t[0].length, 1] }),
 * };
 * const half = { dIn: 1, dSae: 1, W_enc: [1], W_dec: [1],
 *   encode: (x: Float32Array) => x.map((v) => Math.max(v, 0)), decode: (f: Float32Array) => f.map((v) => v / 2) };
 * const { metrics } = runEvalsRef(half, model, [], [[[2, 4]]], evalConfig({ computeVarianceMetrics: true }), {});
 * // x = 2, 4; x̂ = 1, 2: mse = (1 + 4) / 2, Var = 10 − 9 = 1
 * if (metrics.reconstruction_quality.mse !== 2.5) throw new Error();
 * if (metrics.reconstruction_quality.explained_variance !== -1.5) throw new Error();
 * ```
 */
export function runEvalsRef(
  sae: RefEvalSae,
  model: RefEvalModel,
  reconBatches: readonly number[][][],
  sparsityBatches: readonly number[][][],
  cfg: EvalConfig,
  opts: RefEvalOptions & { contextSize?: number; batchSize?: number },
): EvalResult {
  const ignore = new Set(opts.ignore ?? []);
  const h = opts.headIndex ?? null;
  const s = opts.activationScalingFactor ?? null;
  const recon = (rows: Float32Array, n: number): { xHat: Float32Array; f: Float32Array } => {
    const xs = s === null ? rows : rows.map((v) => v * s);
    const f = sae.encode(xs, n);
    const y = sae.decode(f, n);
    return { xHat: s === null ? y : y.map((v) => v / s), f };
  };
  /** Rows the SAE reads `[B·T, dIn]` of a hook value, and a writer of replaced rows. */
  const rowsOf = (v: HostTensor) => {
    const [B, T] = v.shape;
    const H = v.shape.length === 4 ? v.shape[2] : 1;
    const w = v.data.length / (B * T * H);
    const d = h === null ? v.data.length / (B * T) : w;
    const rows = new Float32Array(B * T * d);
    for (let p = 0; p < B * T; p++) {
      const src = h === null ? p * d : (p * H + h) * w;
      rows.set(v.data.subarray(src, src + d), p * d);
    }
    const write = (out: Float32Array, p: number, row: ArrayLike<number>) => {
      const dst = h === null ? p * d : (p * H + h) * w;
      for (let k = 0; k < d; k++) out[dst + k] = row[k];
    };
    return { rows, d, n: B * T, write };
  };
  const metrics: EvalMetrics = {
    model_behavior_preservation: {},
    model_performance_preservation: {},
    reconstruction_quality: {},
    shrinkage: {},
    sparsity: {},
    token_stats: {},
  };
  if (cfg.computeCeLoss || cfg.computeKl) {
    const ce = [[], [], []] as number[][], kl = [[], []] as number[][];
    for (const tokens of reconBatches) {
      const B = tokens.length, T = tokens[0].length;
      const keep = (b: number, p: number) => !ignore.has(tokens[b][p]);
      const clean = model.logits(tokens);
      const withSae = model.logits(tokens, (v) => {
        const { rows, d, n, write } = rowsOf(v);
        const { xHat } = recon(rows, n);
        const out = Float32Array.from(v.data);
        for (let p = 0; p < n; p++) {
          if (keep(Math.floor(p / T), p % T)) write(out, p, xHat.subarray(p * d, (p + 1) * d));
        }
        return { data: out, shape: [...v.shape] };
      });
      const ablated = model.logits(tokens, (v) => {
        const { d, n, write } = rowsOf(v);
        const out = Float32Array.from(v.data);
        const zero = new Float32Array(d);
        for (let p = 0; p < n; p++) write(out, p, zero);
        return { data: out, shape: [...v.shape] };
      });
      const V = clean.shape[2];
      [clean, withSae, ablated].forEach((lg, k) => {
        const l = lmCrossEntropyLoss(lg, tokens, true).data;
        for (let b = 0; b < B; b++) {
          for (let p = 0; p < T - 1; p++) if (keep(b, p)) ce[k].push(l[b * (T - 1) + p]);
        }
      });
      [withSae, ablated].forEach((lg, k) => {
        const v = klDivRowsRef(clean.data, lg.data, B * T, V);
        for (let r = 0; r < B * T; r++) if (keep(Math.floor(r / T), r % T)) kl[k].push(v[r]);
      });
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    if (cfg.computeKl) {
      const sae = mean(kl[0]), abl = mean(kl[1]);
      metrics.model_behavior_preservation = {
        kl_div_score: (abl - sae) / abl,
        kl_div_with_ablation: abl,
        kl_div_with_sae: sae,
      };
    }
    if (cfg.computeCeLoss) {
      const [clean, sae, abl] = ce.map(mean);
      metrics.model_performance_preservation = {
        ce_loss_score: (abl - sae) / (abl - clean),
        ce_loss_with_ablation: abl,
        ce_loss_with_sae: sae,
        ce_loss_without_sae: clean,
      };
    }
  }
  const featureMetrics: Record<string, number[]> = {};
  if (cfg.computeL2Norms || cfg.computeSparsityMetrics || cfg.computeVarianceMetrics) {
    const per: Record<string, number[]> = {};
    const push = (k: string, v: number) => (per[k] ??= []).push(v);
    const rrb: number[] = [];
    const F = sae.dSae;
    const fired = new Float64Array(F), prompts = new Float64Array(F);
    let sumSq = 0, sumResid = 0, count = 0;
    let sumX: Float64Array | null = null;
    for (const tokens of sparsityBatches) {
      const T = tokens[0].length;
      const { rows, d, n } = rowsOf(model.hookValue(tokens));
      const kept: number[] = [];
      for (let p = 0; p < n; p++) if (!ignore.has(tokens[Math.floor(p / T)][p % T])) kept.push(p);
      const m = kept.length;
      const x = new Float32Array(m * d);
      kept.forEach((p, r) => x.set(rows.subarray(p * d, (p + 1) * d), r * d));
      const { xHat, f } = recon(x, m);
      const mean = new Float64Array(d);
      for (let r = 0; r < m; r++) for (let k = 0; k < d; k++) mean[k] += x[r * d + k];
      sumX ??= new Float64Array(d);
      for (let k = 0; k < d; k++) {
        sumX[k] += mean[k];
        mean[k] /= m;
      }
      let hatSq = 0, dots = 0;
      const promptFired = new Map<number, Set<number>>();
      for (let r = 0; r < m; r++) {
        let xx = 0, hh = 0, xh = 0, rr = 0, cc = 0;
        for (let k = 0; k < d; k++) {
          const a = x[r * d + k], b = xHat[r * d + k];
          xx += a * a;
          hh += b * b;
          xh += a * b;
          rr += (a - b) ** 2;
          cc += (a - mean[k]) ** 2;
        }
        const nIn = Math.sqrt(xx), nOut = Math.sqrt(hh);
        push("l2_norm_in", nIn);
        push("l2_norm_out", nOut);
        push("l2_ratio", nOut / (Math.abs(nIn) < 1e-4 ? 1 : nIn));
        push("explained_variance_legacy", 1 - rr / cc);
        push("mse", rr);
        push("cossim", xh / (nIn * nOut));
        hatSq += hh;
        dots += xh;
        sumSq += xx;
        sumResid += rr;
        let l0 = 0, l1 = 0;
        const b = Math.floor(kept[r] / T);
        for (let j = 0; j < F; j++) {
          const v = f[r * F + j];
          if (v !== 0) {
            l0++;
            fired[j]++;
            if (!promptFired.has(j)) promptFired.set(j, new Set());
            promptFired.get(j)!.add(b);
          }
          l1 += Math.abs(v);
        }
        push("l0", l0);
        push("l1", l1);
      }
      for (const [j, set] of promptFired) prompts[j] += set.size;
      rrb.push(hatSq / dots);
      count += m;
    }
    const mean = (k: string) => (per[k] ?? []).reduce((a, b) => a + b, 0) / count;
    if (cfg.computeL2Norms) {
      metrics.shrinkage = {
        l2_norm_in: mean("l2_norm_in"),
        l2_norm_out: mean("l2_norm_out"),
        l2_ratio: mean("l2_ratio"),
        relative_reconstruction_bias: rrb.reduce((a, b) => a + b, 0) / rrb.length,
      };
    }
    if (cfg.computeSparsityMetrics) metrics.sparsity = { l0: mean("l0"), l1: mean("l1") };
    if (cfg.computeVarianceMetrics) {
      let meanSq = 0;
      for (const v of sumX ?? []) meanSq += (v / count) ** 2;
      const variance = sumSq / count - meanSq, mse = sumResid / count;
      metrics.reconstruction_quality = {
        explained_variance: count === 0
          ? 0
          : variance < 1e-10
          ? (mse < 1e-10 ? 1 : 0)
          : 1 - mse / variance,
        explained_variance_legacy: mean("explained_variance_legacy"),
        mse: mean("mse"),
        cossim: mean("cossim"),
      };
    }
    if (cfg.computeFeaturewiseDensityStatistics) {
      featureMetrics.feature_density = Array.from(fired, (c) => c / count);
      featureMetrics.consistent_activation_heuristic = Array.from(fired, (c, j) => c / prompts[j]);
    }
  }
  if (cfg.computeFeaturewiseWeightBasedMetrics) {
    const d = sae.dIn, F = sae.dSae;
    const norm: number[] = [], cos: number[] = [];
    for (let i = 0; i < F; i++) {
      let ee = 0, dd = 0, ed = 0;
      for (let k = 0; k < d; k++) {
        const e = sae.W_enc[k * F + i], w = sae.W_dec[i * d + k];
        ee += e * e;
        dd += w * w;
        ed += e * w;
      }
      norm.push(Math.sqrt(ee));
      cos.push(ed / (Math.sqrt(ee) * Math.sqrt(dd)));
    }
    featureMetrics.encoder_norm = norm;
    featureMetrics.encoder_decoder_cosine_sim = cos;
    if (sae.b_enc) featureMetrics.encoder_bias = Array.from(sae.b_enc);
  }
  const ctx = opts.contextSize ?? reconBatches[0]?.[0]?.length ?? sparsityBatches[0]?.[0]?.length;
  const bs = opts.batchSize ?? reconBatches[0]?.length ?? sparsityBatches[0]?.length;
  if (ctx === undefined || bs === undefined) {
    throw new EvalError("runEvalsRef: give contextSize and batchSize when there are no batches");
  }
  metrics.token_stats = {
    total_tokens_eval_reconstruction: ctx * cfg.nEvalReconstructionBatches * bs,
    total_tokens_eval_sparsity_variance: ctx * cfg.nEvalSparsityVarianceBatches * bs,
  };
  for (const k of Object.keys(metrics)) {
    if (Object.keys(metrics[k]).length === 0) delete metrics[k];
  }
  return { metrics, featureMetrics };
}
