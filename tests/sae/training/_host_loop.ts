/**
 * A plain-TS re-implementation of the SAELens training loop for tests: reference
 * forward/backward (`trainingStepRef`), `FiringStats`, clip + Adam references, the LR and
 * coefficient schedulers, and the §5.2 log dict with SAELens' after-the-step lr/coefficients.
 */

import { createLrScheduler } from "../../../sae/training/schedulers.ts";
import { CoefficientScheduler } from "../../../sae/training/coefficient_scheduler.ts";
import { FiringStats } from "../../../sae/training/firing_stats.ts";
import { isPeriodicStep, trainStepLogDict } from "../../../sae/training/metrics.ts";
import type { TrainingSAEConfig } from "../../../sae/config.ts";
import { type RefSaeConfig, trainingStepRef } from "../../../sae/reference/mod.ts";
import { type SAETrainerConfig, totalSteps } from "../../../sae/training/trainer_config.ts";
import { adamRef } from "../../../gpu/kernels/adam.ts";
import { clipGradNormRef } from "../../../gpu/kernels/clip.ts";
import { coefficientsOf } from "./_ref_training_sae.ts";

/** Result of {@link hostLoop}. */
export interface HostLoopResult {
  params: Record<string, Float32Array>;
  logs: Map<number, Record<string, number>>;
  stats: FiringStats;
  losses: number[];
}

/**
 * Trains `params` (copied) on `batches` (row-major [n, dIn] each, already scaled) exactly like
 * the trainer: returns the final params, the log dicts of logging steps, the firing stats and
 * the overall loss of every step. `paramOrder` is the trainer's parameter order (clip sums in it).
 */
export function hostLoop(
  saeCfg: TrainingSAEConfig,
  cfg: SAETrainerConfig,
  params0: Record<string, Float32Array>,
  batches: Float32Array[],
  paramOrder: string[],
): HostLoopResult {
  const ref = saeCfg as unknown as RefSaeConfig;
  const { dIn, dSae } = saeCfg;
  const params: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(params0)) params[k] = v.slice();
  const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
  for (const k of paramOrder) {
    m[k] = new Float32Array(params[k].length);
    v[k] = new Float32Array(params[k].length);
  }
  const lr = createLrScheduler({ ...cfg, totalSteps: totalSteps(cfg) });
  const coefs = coefficientsOf(saeCfg).map((c) => ({
    name: c.name,
    s: new CoefficientScheduler(c.value, c.warmUpSteps),
  }));
  const stats = new FiringStats(dSae, cfg.trainBatchSizeSamples);
  const logs = new Map<number, Record<string, number>>();
  const losses: number[] = [];
  let nSamples = 0;
  batches.forEach((x, t) => {
    if (isPeriodicStep(t, cfg.featureSamplingWindow)) stats.resetWindow();
    const n = x.length / dIn;
    nSamples += n;
    const coefficients = Object.fromEntries(coefs.map((c) => [c.name, c.s.value]));
    const deadMask = stats.deadMask(cfg.deadFeatureWindow);
    const { forward, grads } = trainingStepRef(ref, params, x, n, { coefficients, deadMask });
    losses.push(forward.loss);
    if (forward.topkThreshold !== undefined) {
      params.topk_threshold = Float32Array.of(forward.topkThreshold);
    }
    stats.update(forward.featureActs, n);
    const clipFactor = Math.fround(clipGradNormRef(paramOrder.map((k) => grads[k]), 1).factor);
    const scalars = { lr: lr.lr, step: t + 1, beta1: cfg.adamBeta1, beta2: cfg.adamBeta2 };
    for (const k of paramOrder) adamRef(params[k], grads[k], m[k], v[k], scalars, { clipFactor });
    lr.step();
    for (const c of coefs) c.s.step();
    if (isPeriodicStep(t, cfg.logEvery)) {
      logs.set(
        t,
        trainStepLogDict({
          x,
          xHat: forward.sae_out,
          featureActs: forward.featureActs,
          n,
          dIn,
          dSae,
          loss: forward.loss,
          losses: forward.losses,
          metrics: forward.metrics,
          lr: lr.lr,
          nTrainingSamples: nSamples,
          coefficients: Object.fromEntries(coefs.map((c) => [c.name, c.s.value])),
          meanPassesSinceFired: stats.meanPassesSinceFired(),
          deadFeatures: stats.deadCount(cfg.deadFeatureWindow),
        }),
      );
    }
  });
  return { params, logs, stats, losses };
}
