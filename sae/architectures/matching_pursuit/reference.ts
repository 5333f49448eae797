/**
 * Matching Pursuit SAE (SAELens ≥ 6.26 `matching_pursuit`, arXiv 2506.03093), spec §3.8, in
 * float64. Tied: the encoder is W_decᵀ; only W_dec and b_dec exist. Encode: r = x̃; per token,
 * up to `max_iterations` (default d_in) times: i* = argmax_i ReLU(r·W_dec[i]) (first maximum),
 * v = ReLU(r·W_dec[i*]), f[i*] += v, r ← r − v·W_dec[i*]; a token stops once its support stops
 * growing (`stop_on_duplicate_support`) or ‖r‖ < `residual_threshold` (when > 0). Decode
 * f·W_dec + b_dec·[apply_b_dec_to_input]. Training: mse only (no aux loss, no coefficient),
 * gradients through the whole unrolled pursuit (the choice of i* has none), hidden_pre zeros,
 * and SAELens's metrics max_l0, min_l0, residual_norm, residual_threshold_converged_portion.
 */
import {
  type ArchTrainResult,
  type Grads64,
  param,
  type ParamsLike,
  type RefSaeConfig,
  type SaeParams,
  SaeReferenceError,
  sumSquaredMean,
  type TrainCtx,
} from "../../reference/common.ts";
import { processInput64 } from "../../reference/linear.ts";
import { normOut64, normOutBackward } from "../../reference/normalization.ts";
import { kaimingUniform } from "../../reference/weights.ts";
import type { RefRng } from "../../../util/rng.ts";
import type { ReferenceArchitecture } from "../unit.ts";

/** The pursuit settings of a config (max_iterations null → d_in). */
export function pursuitSettings(cfg: RefSaeConfig): {
  iterations: number;
  threshold: number;
  stopOnDuplicate: boolean;
} {
  const c = cfg as RefSaeConfig & {
    maxIterations?: number | null;
    residualThreshold?: number;
    stopOnDuplicateSupport?: boolean;
  };
  const iterations = c.maxIterations ?? cfg.dIn;
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new SaeReferenceError(`maxIterations: expected a positive integer, got ${iterations}`);
  }
  return {
    iterations,
    threshold: c.residualThreshold ?? 1e-2,
    stopOnDuplicate: c.stopOnDuplicateSupport ?? true,
  };
}

/** The forward pursuit of every row, with what the backward needs. */
interface Pursuit {
  acts: Float64Array;
  /** Per iteration, per row: the latent and its (masked) value. */
  idx: Int32Array[];
  value: Float64Array[];
  /** r_t per iteration (r_0 = x̃) and the final residual. */
  residuals: Float64Array[];
  l0: Float64Array;
}

function pursue(cfg: RefSaeConfig, wDec: ArrayLike<number>, xTilde: Float64Array, n: number) {
  const { dIn: d, dSae } = cfg;
  const { iterations, threshold, stopOnDuplicate } = pursuitSettings(cfg);
  const acts = new Float64Array(n * dSae), l0 = new Float64Array(n);
  const done = new Uint8Array(n);
  let r = Float64Array.from(xTilde);
  const out: Pursuit = { acts, idx: [], value: [], residuals: [r], l0 };
  for (let t = 0; t < iterations; t++) {
    const idx = new Int32Array(n), value = new Float64Array(n), next = Float64Array.from(r);
    for (let b = 0; b < n; b++) {
      let best = 0, bi = 0;
      for (let i = 0; i < dSae; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += r[b * d + j] * wDec[i * d + j];
        if (Math.max(s, 0) > best) [best, bi] = [Math.max(s, 0), i];
      }
      let dot = 0;
      for (let j = 0; j < d; j++) dot += r[b * d + j] * wDec[bi * d + j];
      const v = done[b] ? 0 : Math.max(dot, 0);
      const old = acts[b * dSae + bi];
      acts[b * dSae + bi] = old + v;
      let nrm2 = 0;
      for (let j = 0; j < d; j++) {
        next[b * d + j] -= v * wDec[bi * d + j];
        nrm2 += next[b * d + j] ** 2;
      }
      const grew = v > 0 && old === 0;
      if (grew) l0[b]++;
      if (!done[b]) {
        if (stopOnDuplicate && !grew) done[b] = 1;
        if (threshold > 0 && Math.sqrt(nrm2) < threshold) done[b] = 1;
      }
      idx[b] = bi;
      value[b] = v;
    }
    out.idx.push(idx);
    out.value.push(value);
    out.residuals.push(next);
    r = next;
  }
  return out;
}

/** f·W_dec + b_dec·[apply] (before run-time denormalisation). */
function decodeTied(cfg: RefSaeConfig, p: ParamsLike, f: ArrayLike<number>, n: number) {
  const { dIn: d, dSae, architecture: arch } = cfg;
  const wDec = param(p, "W_dec", dSae * d, arch);
  const y = new Float64Array(n * d);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < dSae; i++) {
      const a = f[b * dSae + i];
      if (a !== 0) { for (let j = 0; j < d; j++) y[b * d + j] += a * wDec[i * d + j]; }
    }
  }
  if (cfg.applyBDecToInput) {
    const bDec = param(p, "b_dec", d, arch);
    for (let k = 0; k < n * d; k++) y[k] += bDec[k % d];
  }
  return y;
}

/** Training pass: mse, metrics, and the backward through the unrolled pursuit. */
function train(ctx: TrainCtx): ArchTrainResult {
  const { cfg, p, x, n, dIn: d, dSae } = ctx;
  const wDec = param(p, "W_dec", dSae * d, cfg.architecture);
  const { threshold } = pursuitSettings(cfg);
  const { xTilde, norm } = processInput64(cfg, p, x, n);
  const fw = pursue(cfg, wDec, xTilde, n);
  const saeOut = normOut64(norm, decodeTied(cfg, p, fw.acts, n), n, d);
  const mse = sumSquaredMean(saeOut, x, n, d);
  let maxL0 = 0, minL0 = Infinity, normSum = 0, converged = 0;
  for (let b = 0; b < n; b++) {
    maxL0 = Math.max(maxL0, fw.l0[b]);
    minL0 = Math.min(minL0, fw.l0[b]);
    let s = 0;
    for (let j = 0; j < d; j++) s += (x[b * d + j] - saeOut[b * d + j]) ** 2;
    normSum += Math.sqrt(s);
    if (Math.sqrt(s) < threshold) converged++;
  }
  const metrics = {
    max_l0: maxL0,
    min_l0: minL0,
    residual_norm: n ? normSum / n : 0,
    residual_threshold_converged_portion: n ? converged / n : 0,
  };
  const backward = (): Grads64 => {
    const gW = new Float64Array(dSae * d), gB = new Float64Array(d);
    const gY = normOutBackward(norm, mse.grad, n, d);
    // Decode: ∂W_dec[i] += Σ_b f[b, i]·g_y[b]; ∂b_dec += Σ_b g_y[b] (with the bias).
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < dSae; i++) {
        const a = fw.acts[b * dSae + i];
        if (a !== 0) { for (let j = 0; j < d; j++) gW[i * d + j] += a * gY[b * d + j]; }
      }
    }
    const gR = new Float64Array(n * d);
    for (let t = fw.idx.length - 1; t >= 0; t--) {
      const r = fw.residuals[t];
      for (let b = 0; b < n; b++) {
        const i = fw.idx[t][b], v = fw.value[t][b];
        let gv = 0;
        for (let j = 0; j < d; j++) gv += (gY[b * d + j] - gR[b * d + j]) * wDec[i * d + j];
        const gs = v > 0 ? gv : 0;
        for (let j = 0; j < d; j++) {
          const k = b * d + j;
          gW[i * d + j] += gs * r[k] - v * gR[k];
          gR[k] += gs * wDec[i * d + j];
        }
      }
    }
    if (cfg.applyBDecToInput) {
      for (let k = 0; k < n * d; k++) gB[k % d] += gY[k] - gR[k];
    }
    return { W_dec: gW, b_dec: gB };
  };
  return {
    saeOut,
    featureActs: fw.acts,
    hiddenPre: new Float64Array(n * dSae),
    losses: { mse_loss: mse.loss },
    metrics,
    backward,
  };
}

/** W_dec Kaiming-uniform with rows at `decoder_init_norm` (SAELens forces 1.0), b_dec = 0. */
function init(cfg: RefSaeConfig, rng: RefRng): SaeParams {
  const { dIn: d, dSae } = cfg;
  const w = kaimingUniform(rng, dSae, d);
  const target = cfg.decoderInitNorm;
  if (typeof target === "number") {
    for (let i = 0; i < dSae; i++) {
      const row = w.subarray(i * d, (i + 1) * d);
      const len = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
      for (let j = 0; j < d; j++) row[j] = (row[j] / len) * target;
    }
  }
  return { W_dec: Float32Array.from(w), b_dec: new Float32Array(d) };
}

/** The Matching Pursuit SAE's reference. */
export const matchingPursuitReference: ReferenceArchitecture = {
  encode(cfg, p, x, n) {
    const wDec = param(p, "W_dec", cfg.dSae * cfg.dIn, cfg.architecture);
    const { xTilde, norm } = processInput64(cfg, p, x, n);
    const fw = pursue(cfg, wDec, xTilde, n);
    return { hiddenPre: new Float64Array(n * cfg.dSae), featureActs: fw.acts, norm };
  },
  decode: decodeTied,
  train,
  init,
  foldWDecNorm(cfg) {
    throw new SaeReferenceError(
      `foldWDecNormRef: not safe for ${cfg.architecture} (it may change the activations)`,
    );
  },
};
