/**
 * What one SAE architecture is: a {@link SaeArchitectureUnit} bundles the config fields its
 * `cfg.json` adds, the GPU inference (`SAE` encode/decode), the GPU training step and the
 * plain-TS reference. Each built-in architecture is one folder of `sae/architectures/` exporting
 * its unit; `registerSaeArchitecture` takes a unit from anywhere, so a user's architecture is
 * registered the same way as the built-in ones.
 * @module
 */

import type { Tensor } from "../../gpu/tensor.ts";
import type { FieldSpec } from "../../config/fields.ts";
import type { SAEConfig, TrainingSAEConfig } from "../config_types.ts";
import type {
  ArchTrainResult,
  ParamsLike,
  RefSaeConfig,
  SaeParams,
  TrainCtx,
} from "../reference/common.ts";
import type { NormStateRef } from "../reference/normalization.ts";
import type {
  ArchStep,
  CoefficientSpec,
  StepContext,
  TrainingExtras,
} from "../training/train_sae_common.ts";
import type { RefRng } from "../../util/rng.ts";

/** What an architecture adds to the base SAE config. */
export interface ArchitectureSpec {
  /** Extra fields of the inference config (`cfg.json` of an exported SAE); `null` = training-only. */
  inferenceFields: readonly FieldSpec[] | null;
  /** Extra fields of the training config (incl. shared ones like `k`); `null` = inference-only. */
  trainingFields: readonly FieldSpec[] | null;
  /** Inference architecture a trained SAE of this kind is exported as (default: itself). */
  exportsAs?: string;
  /**
   * Cross-field checks, run after the fields are read. May normalise the config in place
   * (Matryoshka appends `d_sae` to its widths). Throw a `ConfigError` on inconsistency.
   */
  validate?: (cfg: SAEConfig | TrainingSAEConfig, training: boolean) => void;
}

/** The two hook points inside `encode`. */
export type EncodeHookName = "hook_sae_acts_pre" | "hook_sae_acts_post";

/** What an architecture's `encode` gets. */
export interface EncodeContext {
  /** The SAE's config. */
  cfg: SAEConfig;
  /** The SAE's tensors by SAELens name. */
  params: Readonly<Record<string, Tensor>>;
  /** The processed input x̃ `[n, dIn]` (normalised, b_dec subtracted when configured). */
  x: Tensor;
  /**
   * Passes `t` (`[n, dSae]`, owned by the caller) through a hook point and returns the tensor
   * that flows on: `t` itself, or a replacement, in which case `t` has been disposed.
   */
  hook(name: EncodeHookName, t: Tensor): Tensor;
  /**
   * False when no hook can run in this pass (`hook` is the identity), so ops may be fused past
   * the hook points. Set it to true when calling another architecture's `encode` with a `hook`
   * of your own.
   */
  hooksActive?: boolean;
}

/** A GPU implementation of one architecture's inference (what `SAE` runs). */
export interface SaeArchitectureImpl {
  /** Tensor names (SAELens) and shapes of an SAE with this config. */
  paramShapes(cfg: SAEConfig): Record<string, number[]>;
  /**
   * x̃ → feature activations `[n, dSae]`: must call `ctx.hook("hook_sae_acts_pre", …)` on the
   * pre-activation and return `ctx.hook("hook_sae_acts_post", acts)`. Disposes its temporaries.
   */
  encode(ctx: EncodeContext): Tensor;
  /** acts `[n, dSae]` → reconstruction before `hook_sae_recons`; default `f·W_dec + b_dec`. */
  decode?(cfg: SAEConfig, params: Readonly<Record<string, Tensor>>, f: Tensor): Tensor;
  /**
   * Transcoder semantics (spec §3.7): no b_dec subtraction on input, no run-time
   * denormalisation, no `hook_sae_output`, no error term; output width `dOut`.
   */
  transcoder?: boolean;
  /** A term of the raw input added to the output (skip transcoders: x·W_skipᵀ). */
  skip?(cfg: SAEConfig, params: Readonly<Record<string, Tensor>>, x: Tensor): Tensor;
  /**
   * Per-latent tensors (besides W_enc columns and W_dec rows) that `foldWDecNorm` scales by the
   * decoder norms. Throw a `SaeError` when folding is not allowed; omit = not supported.
   */
  foldWDecNorm?(cfg: SAEConfig): readonly string[];
}

/** What a reference encode returns (float64). */
export interface RefEncoded {
  /** The `hook_sae_acts_pre` value. */
  hiddenPre: Float64Array;
  /** The `hook_sae_acts_post` value. */
  featureActs: Float64Array;
  /** Run-time normalisation state for the decode. */
  norm: NormStateRef;
}

/**
 * The plain-TS reference of one architecture (float64 inside): the ground truth its GPU
 * inference and training are tested against. Every function checks its inputs and throws a
 * `SaeReferenceError` naming what is wrong.
 */
export interface ReferenceArchitecture {
  /** Inference encode of raw rows `x [n, dIn]` (input processing included). */
  encode(cfg: RefSaeConfig, p: ParamsLike, x: ArrayLike<number>, n: number): RefEncoded;
  /** acts → reconstruction before run-time denormalisation; default `f·W_dec + b_dec`. */
  decode?(cfg: RefSaeConfig, p: ParamsLike, f: ArrayLike<number>, n: number): Float64Array;
  /** Transcoder semantics: output `dOut` wide, never denormalised, no error term. */
  transcoder?: boolean;
  /** A term of the raw input added to the output (skip transcoders: x·W_skipᵀ). */
  skip?(cfg: RefSaeConfig, p: ParamsLike, x: ArrayLike<number>, n: number): Float64Array;
  /** Training forward pass (losses under SAELens names) with its hand-derived backward. */
  train?(ctx: TrainCtx): ArchTrainResult;
  /** Training initialisation (spec §3.0), reproducible through `rng`. */
  init?(cfg: RefSaeConfig, rng: RefRng): SaeParams;
  /**
   * Per-latent tensors `fold_W_dec_norm` scales besides W_enc columns and W_dec rows; throws
   * where SAELens refuses. Omitted: folding is not supported.
   */
  foldWDecNorm?(cfg: RefSaeConfig): string[];
  /** Trained tensors → the inference architecture's (default: unchanged). */
  exportInference?(cfg: RefSaeConfig, params: ParamsLike): SaeParams;
}

/**
 * The GPU training of one architecture: what `TrainingSAE` allocates and reports, and the
 * recorded step — usually a family driver (`DenseStep` of `sae/training/train_sae_dense.ts`,
 * `SparseStep` of `train_sae_sparse.ts`) with the architecture plugged in. Initial parameters
 * come from the reference's `init`, the inference export from its `exportInference`.
 */
export interface TrainingArchitecture {
  /** Trainable parameters (SAELens names) and their shapes, in optimiser order. */
  params(cfg: TrainingSAEConfig): Record<string, number[]>;
  /** Non-trainable state saved in checkpoints, name → shape (BatchTopK: `topk_threshold`). */
  buffers?(cfg: TrainingSAEConfig): Record<string, number[]>;
  /** SAELens `get_coefficients()`: the coefficients the trainer schedules. */
  coefficients(cfg: TrainingSAEConfig): CoefficientSpec[];
  /** SAELens loss names, in `StepOutputs.losses[1..]` order. */
  lossKeys(cfg: TrainingSAEConfig, extras: TrainingExtras): string[];
  /** Names of `StepOutputs.metrics` (default none). */
  metricKeys?(cfg: TrainingSAEConfig): string[];
  /** The {@link TrainingExtras} options it trains with (others are refused). */
  extras?: readonly (keyof TrainingExtras)[];
  /** Transcoders: each step reconstructs a target `[rows, d_out]` read at `hook_name_out`. */
  transcoder?: boolean;
  /** Skip transcoders: the output adds x·W_skipᵀ, and `W_skip` is trained. */
  skip?: boolean;
  /**
   * Throws a `TrainSaeError` naming an option it cannot train with; runs before anything is
   * allocated.
   */
  validate?(cfg: TrainingSAEConfig, extras: TrainingExtras): void;
  /** The recorded step over the SAE of `ctx`. */
  createStep(ctx: StepContext): ArchStep;
}

/**
 * One architecture: its config fields and whichever of inference, training and reference it
 * has. A training-only architecture (BatchTopK) has no `inference` and names the architecture it
 * is saved as in `config.exportsAs`.
 */
export interface SaeArchitectureUnit {
  /** The config fields its `cfg.json` adds, its checks, and what it exports as. */
  config: ArchitectureSpec;
  /** The GPU inference implementation (what `SAE` runs). */
  inference?: SaeArchitectureImpl;
  /** The GPU training step (its reference must then have `train` and `init`). */
  training?: TrainingArchitecture;
  /** The plain-TS reference. */
  reference?: ReferenceArchitecture;
}
