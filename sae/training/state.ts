/**
 * The trainer's resumable state and its on-disk form, saeflow's replacement for SAELens'
 * pickled `trainer_state.pt` (spec §2.1): `trainer_state.safetensors` holds the tensors
 * (`act_freq_scores`, `n_forward_passes_since_fired`, `optimizer.exp_avg.<param>`,
 * `optimizer.exp_avg_sq.<param>`, all F32) and `trainer_state.json` the scalars (counters, Adam
 * step and hyper-parameters, LR and coefficient scheduler states). Every number survives the
 * round trip exactly (JSON numbers are shortest round-trip doubles), so a resumed run continues
 * bit for bit.
 * @module
 */

import type { StTensor } from "../../io/safetensors.ts";
import { toFloat32 } from "../../io/safetensors.ts";
import { TrainingError } from "./errors.ts";
import type { LrSchedulerState } from "./schedulers.ts";
import { describeValue } from "../../util/errors.ts";

/** Format tag written into `trainer_state.json`. */
export const TRAINER_STATE_FORMAT = "saeflow.trainer_state";
/** Version of the `trainer_state.json` layout. */
export const TRAINER_STATE_VERSION = 1;

/** Adam's state: one step count for all parameters (they are always stepped together). */
export interface AdamState {
  /** Optimiser steps taken (torch's per-parameter `step`). */
  step: number;
  /** Adam β₁. */
  beta1: number;
  /** Adam β₂. */
  beta2: number;
  /** Adam epsilon. */
  eps: number;
  /** First moments by parameter name. */
  expAvg: Map<string, Float32Array>;
  /** Second moments by parameter name. */
  expAvgSq: Map<string, Float32Array>;
  /** Parameter shapes, by name (same keys as the moments). */
  shapes: Map<string, number[]>;
}

/** Everything `SAETrainer` needs to continue a run (besides SAE weights and the scaler). */
export interface TrainerState {
  /** Training samples seen. */
  nTrainingSamples: number;
  /** Training steps taken. */
  nTrainingSteps: number;
  /** SAELens `started_fine_tuning` (always false in v6; kept for the format). */
  startedFineTuning: boolean;
  /** `act_freq_scores` (f32 [dSae]). */
  actFreqScores: Float32Array;
  /** `n_forward_passes_since_fired` (f32 [dSae]). */
  nForwardPassesSinceFired: Float32Array;
  /** `n_frac_active_samples`. */
  nFracActiveSamples: number;
  /** Adam state. */
  optimizer: AdamState;
  /** Learning-rate scheduler state. */
  lrScheduler: LrSchedulerState;
  /** `{name: {currentStep}}` per coefficient scheduler. */
  coefficientSchedulers: Record<string, { currentStep: number }>;
  /** State of a data-side RNG the caller wants restored with the run, or null. */
  rngState: number | null;
}

/** The two files of a saved {@link TrainerState}. */
export interface TrainerStateFiles {
  /** Tensors for the safetensors file. */
  tensors: Map<string, StTensor>;
  /** Everything else, for the JSON file. */
  json: Record<string, unknown>;
}

const f32 = (shape: number[], data: Float32Array): StTensor => ({ dtype: "F32", shape, data });

/**
 * Splits a state into the tensors of `trainer_state.safetensors` and the dict of
 * `trainer_state.json`.
 */
export function trainerStateToFiles(state: TrainerState): TrainerStateFiles {
  const d = state.actFreqScores.length;
  const tensors = new Map<string, StTensor>([
    ["act_freq_scores", f32([d], state.actFreqScores)],
    ["n_forward_passes_since_fired", f32([d], state.nForwardPassesSinceFired)],
  ]);
  const names = [...state.optimizer.shapes.keys()];
  for (const name of names) {
    const shape = state.optimizer.shapes.get(name)!;
    tensors.set(`optimizer.exp_avg.${name}`, f32(shape, state.optimizer.expAvg.get(name)!));
    tensors.set(`optimizer.exp_avg_sq.${name}`, f32(shape, state.optimizer.expAvgSq.get(name)!));
  }
  const json = {
    format: TRAINER_STATE_FORMAT,
    version: TRAINER_STATE_VERSION,
    n_training_samples: state.nTrainingSamples,
    n_training_steps: state.nTrainingSteps,
    n_frac_active_samples: state.nFracActiveSamples,
    started_fine_tuning: state.startedFineTuning,
    optimizer: {
      name: "adam",
      step: state.optimizer.step,
      betas: [state.optimizer.beta1, state.optimizer.beta2],
      eps: state.optimizer.eps,
      weight_decay: 0,
      param_names: names,
    },
    lr_scheduler: state.lrScheduler,
    coefficient_schedulers: Object.fromEntries(
      Object.entries(state.coefficientSchedulers).map((
        [k, v],
      ) => [k, { current_step: v.currentStep }]),
    ),
    rng_state: state.rngState,
  };
  return { tensors, json };
}

function fail(where: string, msg: string): never {
  throw new TrainingError(`${where}: ${msg}`);
}

function int(obj: Record<string, unknown>, key: string, where: string): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    fail(where, `${key} is ${describeValue(v)}, expected a non-negative integer`);
  }
  return v;
}

function num(v: unknown, what: string, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    fail(where, `${what} is ${describeValue(v)}, expected a finite number`);
  }
  return v;
}

function obj(v: unknown, what: string, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(where, `${what} is ${JSON.stringify(v)}, expected an object`);
  }
  return v as Record<string, unknown>;
}

function tensor(tensors: Map<string, StTensor>, name: string, where: string): StTensor {
  const t = tensors.get(name);
  if (!t) fail(where, `tensor ${name} is missing`);
  return t;
}

/**
 * Rebuilds a {@link TrainerState} from its two files, validating the format tag, every field
 * and every tensor shape (errors name `where`, usually the checkpoint folder).
 */
export function trainerStateFromFiles(
  tensors: Map<string, StTensor>,
  json: unknown,
  where = "trainer state",
): TrainerState {
  const j = obj(json, "trainer_state.json", where);
  if (j.format !== TRAINER_STATE_FORMAT || j.version !== TRAINER_STATE_VERSION) {
    fail(
      where,
      `trainer_state.json has format ${JSON.stringify(j.format)} version ${
        JSON.stringify(j.version)
      }, expected ${TRAINER_STATE_FORMAT} version ${TRAINER_STATE_VERSION}`,
    );
  }
  const opt = obj(j.optimizer, "optimizer", where);
  const betas = opt.betas;
  if (!Array.isArray(betas) || betas.length !== 2) {
    fail(where, `optimizer.betas is ${JSON.stringify(betas)}, expected [beta1, beta2]`);
  }
  const names = opt.param_names;
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    fail(where, `optimizer.param_names is ${JSON.stringify(names)}, expected a list of names`);
  }
  const optimizer: AdamState = {
    step: int(opt, "step", where),
    beta1: num(betas[0], "optimizer.betas[0]", where),
    beta2: num(betas[1], "optimizer.betas[1]", where),
    eps: num(opt.eps, "optimizer.eps", where),
    expAvg: new Map(),
    expAvgSq: new Map(),
    shapes: new Map(),
  };
  for (const name of names as string[]) {
    const m = tensor(tensors, `optimizer.exp_avg.${name}`, where);
    const v = tensor(tensors, `optimizer.exp_avg_sq.${name}`, where);
    if (m.shape.join() !== v.shape.join()) {
      fail(where, `optimizer moments of ${name} have shapes [${m.shape}] and [${v.shape}]`);
    }
    optimizer.shapes.set(name, [...m.shape]);
    optimizer.expAvg.set(name, toFloat32(m));
    optimizer.expAvgSq.set(name, toFloat32(v));
  }
  const freq = tensor(tensors, "act_freq_scores", where);
  const passes = tensor(tensors, "n_forward_passes_since_fired", where);
  if (freq.shape.length !== 1 || passes.shape.join() !== freq.shape.join()) {
    fail(
      where,
      `act_freq_scores [${freq.shape}] and n_forward_passes_since_fired [${passes.shape}] must ` +
        `both be [d_sae]`,
    );
  }
  const coefs: Record<string, { currentStep: number }> = {};
  for (
    const [k, v] of Object.entries(obj(j.coefficient_schedulers, "coefficient_schedulers", where))
  ) {
    coefs[k] = {
      currentStep: int(obj(v, `coefficient_schedulers.${k}`, where), "current_step", where),
    };
  }
  const rng = j.rng_state ?? null;
  if (rng !== null && (typeof rng !== "number" || !Number.isSafeInteger(rng))) {
    fail(where, `rng_state is ${JSON.stringify(rng)}, expected an integer or null`);
  }
  return {
    nTrainingSamples: int(j, "n_training_samples", where),
    nTrainingSteps: int(j, "n_training_steps", where),
    nFracActiveSamples: int(j, "n_frac_active_samples", where),
    startedFineTuning: j.started_fine_tuning === true,
    actFreqScores: toFloat32(freq),
    nForwardPassesSinceFired: toFloat32(passes),
    optimizer,
    lrScheduler: obj(j.lr_scheduler, "lr_scheduler", where) as unknown as LrSchedulerState,
    coefficientSchedulers: coefs,
    rngState: rng as number | null,
  };
}
