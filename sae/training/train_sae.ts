/**
 * `TrainingSAE`: a training SAE on the GPU for every architecture whose unit has a training part
 * (`sae/architectures/`: standard incl. legacy ghost grads, gated, jumprelu, topk, batchtopk,
 * matryoshka_batchtopk, and any registered by a user). Its `recordStep` records forward, losses
 * and the hand-derived backward into the pending GPU pass (one submit per training step, no
 * readback); the trainer adds the optimiser and bookkeeping. It never names an architecture:
 * shapes, losses, coefficients and the step come from the architecture's unit.
 *
 * Parameters are stored under their SAELens names and orientation (`W_enc [d_in, d_sae]`,
 * `W_dec [d_sae, d_in]`); JumpReLU trains θ directly as `threshold` (newest SAELens); BatchTopK's
 * `topk_threshold` is a buffer kept in f32 (SAELens: float64).
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { scale } from "../../gpu/kernels/elementwise.ts";
import { checkTensorFits, readAll, Tensor } from "../../gpu/tensor.ts";
import { inferenceConfigOf, type SAEConfig, type TrainingSAEConfig } from "../config.ts";
import { createRng, type RefSaeConfig } from "../reference/mod.ts";
import {
  findArchitectureUnit,
  listArchitectures,
  type SaeArchitectureUnit,
  type TrainingArchitecture,
} from "../architectures/mod.ts";
import {
  type ArchStep,
  type CoefficientSpec,
  type StepContext,
  type StepDebug,
  type StepOutputs,
  type TrainingExtras,
  TrainSaeError,
} from "./train_sae_common.ts";

export type { CoefficientSpec, StepDebug, StepOutputs, TrainingExtras };
export { TrainSaeError };

const EXTRA_NAMES: readonly (keyof TrainingExtras)[] = [
  "useGhostGrads",
  "jumpreluSteToInput",
  "useMatryoshkaAuxLoss",
];

/** Names of the architectures `TrainingSAE` can train, in registration order. */
export function listTrainableArchitectures(): string[] {
  return listArchitectures().filter((name) => {
    const unit = findArchitectureUnit(name);
    return !!(unit?.training && unit.reference?.init);
  });
}

/** The unit of `arch` with its training; a TrainSaeError naming it if it cannot be trained. */
function trainableUnit(arch: string): SaeArchitectureUnit & { training: TrainingArchitecture } {
  const unit = findArchitectureUnit(arch);
  if (!unit?.training || !unit.reference?.init) {
    throw new TrainSaeError(
      `architecture: "${arch}" cannot be trained (trainable: ${
        listTrainableArchitectures().join(", ")
      })`,
    );
  }
  return unit as SaeArchitectureUnit & { training: TrainingArchitecture };
}

/** Options of {@link TrainingSAE.create} and {@link TrainingSAE.fromParams}. */
export interface TrainingSAEOptions extends TrainingExtras {
  /** GPU to allocate on and run with. */
  gpu: Gpu;
  /** Seed of the §3.0 initialisation (create only; default 0). */
  seed?: number;
  /** Testing: force micro-batch windows of at most this many rows (rounded to alignment). */
  maxWindowRows?: number;
}

/** Throws a TrainSaeError unless `cfg` is a config object and `opts` names a GPU. */
function checkArgs(cfg: TrainingSAEConfig, opts: TrainingSAEOptions): void {
  if (cfg === null || typeof cfg !== "object" || typeof cfg.architecture !== "string") {
    throw new TrainSaeError(
      `TrainingSAE: cfg is ${cfg === null ? "null" : typeof cfg}, expected a training config ` +
        "(createTrainingConfig)",
    );
  }
  if (!opts?.gpu) throw new TrainSaeError("TrainingSAE: options.gpu is required");
}

/**
 * Throws, naming the parameter and the limit, when a tensor of `shapes` cannot be trained on
 * `gpu`: larger than one buffer (a GpuError), or larger than one storage binding (a
 * TrainSaeError: the training kernels bind each parameter whole; inference splits them).
 */
function checkFitsDevice(gpu: Gpu, shapes: Record<string, number[]>): void {
  if (!gpu) throw new TrainSaeError("TrainingSAE: options.gpu is required");
  for (const [name, shape] of Object.entries(shapes)) {
    checkTensorFits(gpu, shape, `TrainingSAE ${name}`);
    const bytes = shape.reduce((a, b) => a * b, 4);
    if (bytes > gpu.maxBindingSize) {
      throw new TrainSaeError(
        `TrainingSAE ${name} [${shape.join(", ")}] is ${bytes} bytes, more than this device's ` +
          `maxStorageBufferBindingSize of ${gpu.maxBindingSize} bytes: training binds each ` +
          "parameter whole, so d_in × d_sae × 4 must fit one binding (reduce d_sae or d_in)",
      );
    }
  }
}

/** The reference-config view of a training config plus the extra options. */
export function refConfigOf(cfg: TrainingSAEConfig, extras: TrainingExtras = {}): RefSaeConfig {
  return { ...(cfg as unknown as RefSaeConfig), ...extras };
}

/** The extras of `cfg` overridden by `opts`, refused where the architecture lacks them. */
function extrasOf(
  cfg: TrainingSAEConfig,
  opts: TrainingExtras,
  training: TrainingArchitecture,
): TrainingExtras {
  const fromCfg = cfg as unknown as TrainingExtras;
  const extras: TrainingExtras = {};
  for (const name of EXTRA_NAMES) {
    const v = opts[name] ?? fromCfg[name];
    extras[name] = v;
    if (v && !training.extras?.includes(name)) {
      const owners = listArchitectures().filter((a) =>
        findArchitectureUnit(a)?.training?.extras?.includes(name)
      );
      throw new TrainSaeError(
        `${name}: the ${cfg.architecture} architecture does not train with it (only ` +
          `${owners.join(", ") || "none"})`,
      );
    }
  }
  return extras;
}

/**
 * A training SAE whose parameters, gradients and step outputs live on the GPU.
 *
 * @example
 * ```ts
 * import { getGpu } from "../../gpu/device.ts";
 * import { Tensor } from "../../gpu/tensor.ts";
 * import { createTrainingConfig } from "../config.ts";
 * import { TrainingSAE } from "./train_sae.ts";
 * const gpu = await getGpu();
 * const cfg = createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 });
 * const sae = TrainingSAE.create(cfg, { gpu, seed: 1 });
 * using x = Tensor.from(new Float32Array(8).fill(1), [2, 4]);
 * using coef = Tensor.from([5]);
 * const out = sae.recordStep(x, coef, null); // recorded, not yet run
 * const losses = await out.losses.toArray(); // [overall, mse_loss, l1_loss]
 * if (!(losses[0] > 0)) throw new Error("no loss");
 * sae.dispose();
 * ```
 */
export class TrainingSAE {
  /** The SAE's training config. */
  readonly cfg: TrainingSAEConfig;
  /** Trainable parameters under SAELens names and shapes. */
  readonly params: Map<string, Tensor> = new Map();
  /** Gradients, same keys/shapes as params; overwritten by each recordStep. */
  readonly grads: Map<string, Tensor> = new Map();
  /** Non-trainable state saved in checkpoints (`topk_threshold` for the BatchTopK family). */
  readonly buffers: Map<string, Tensor> = new Map();
  /** SAELens loss names, in the order of `StepOutputs.losses[1..]`. */
  readonly lossKeys: string[];
  /** Metric names (`topk_threshold` for the BatchTopK family). */
  readonly metricKeys: string[];
  /** GPU that holds the tensors and runs the steps. */
  readonly gpu: Gpu;
  /** Training-only options given at construction. */
  readonly extras: TrainingExtras;
  /** The architecture's unit (its training, reference and inference). */
  readonly unit: SaeArchitectureUnit & { training: TrainingArchitecture };
  #outputs: StepOutputs;
  #step: ArchStep;

  private constructor(
    cfg: TrainingSAEConfig,
    params: Record<string, Float32Array>,
    opts: TrainingSAEOptions,
  ) {
    const arch = cfg.architecture;
    this.unit = trainableUnit(arch);
    const training = this.unit.training;
    this.cfg = cfg;
    this.gpu = opts.gpu;
    this.extras = extrasOf(cfg, opts, training);
    training.validate?.(cfg, this.extras);
    const gpu = this.gpu;
    const paramShapes = training.params(cfg), bufferShapes = training.buffers?.(cfg) ?? {};
    this.metricKeys = training.metricKeys?.(cfg) ?? [];
    this.lossKeys = training.lossKeys(cfg, this.extras);
    // The step validates the configuration before any GPU memory is allocated; it reads the
    // maps and outputs only when recording.
    const ctx: StepContext = {
      gpu,
      cfg,
      params: this.params,
      grads: this.grads,
      buffers: this.buffers,
      extras: this.extras,
      transcoder: training.transcoder,
      skip: training.skip,
      maxWindowRows: opts.maxWindowRows,
      outputs: undefined as unknown as StepOutputs,
    };
    this.#step = training.createStep(ctx);
    const check = (name: string, shape: number[]): void => {
      const v = params[name], size = shape.reduce((a, b) => a * b, 1);
      if (!v) throw new TrainSaeError(`params.${name}: missing (needed by ${arch})`);
      if (v.length !== size) {
        throw new TrainSaeError(
          `params.${name}: expected [${shape.join(", ")}] (${size} values), got ${v.length}`,
        );
      }
    };
    // Every check before the first upload, so a bad tensor leaves nothing allocated.
    checkFitsDevice(gpu, paramShapes);
    for (const [name, shape] of Object.entries<number[]>(paramShapes)) check(name, shape);
    for (const [name, shape] of Object.entries<number[]>(bufferShapes)) {
      if (params[name]) check(name, shape);
    }
    for (const [name, shape] of Object.entries<number[]>(paramShapes)) {
      this.params.set(name, Tensor.from(params[name], shape, { gpu }));
      this.grads.set(name, Tensor.zeros(shape, "f32", { gpu }));
    }
    for (const [name, shape] of Object.entries<number[]>(bufferShapes)) {
      this.buffers.set(
        name,
        params[name]
          ? Tensor.from(params[name], shape, { gpu })
          : Tensor.zeros(shape, "f32", { gpu }),
      );
    }
    this.#outputs = {
      losses: Tensor.zeros([1 + this.lossKeys.length], "f32", { gpu }),
      firedCounts: Tensor.zeros([cfg.dSae], "f32", { gpu }),
      recon: Tensor.zeros([4], "f32", { gpu }),
      l0Sum: Tensor.zeros([1], "f32", { gpu }),
      metrics: Tensor.zeros([this.metricKeys.length], "f32", { gpu }),
    };
    ctx.outputs = this.#outputs;
  }

  /** A new training SAE with SAELens' training initialisation (§3.0), seeded. */
  static create(cfg: TrainingSAEConfig, opts: TrainingSAEOptions): TrainingSAE {
    checkArgs(cfg, opts);
    const unit = trainableUnit(cfg.architecture);
    // Refuse before the reference initialisation runs (minutes of host work for a size the
    // device cannot hold).
    checkFitsDevice(opts.gpu, unit.training.params(cfg));
    const extras: TrainingExtras = { ...opts };
    const p = unit.reference!.init!(refConfigOf(cfg, extras), createRng(opts.seed ?? 0));
    return new TrainingSAE(cfg, p, opts);
  }

  /** A training SAE from host parameters (SAELens names; `topk_threshold` optional). */
  static fromParams(
    cfg: TrainingSAEConfig,
    params: Record<string, Float32Array>,
    opts: TrainingSAEOptions,
  ): TrainingSAE {
    checkArgs(cfg, opts);
    if (params === null || typeof params !== "object") {
      throw new TrainSaeError(`TrainingSAE.fromParams: params is ${params}, expected an object`);
    }
    return new TrainingSAE(cfg, params, opts);
  }

  /** SAELens `get_coefficients()`: l1 (standard, gated), l0 (jumprelu), none (TopK family). */
  coefficients(): CoefficientSpec[] {
    return this.unit.training.coefficients(this.cfg);
  }

  /** Transcoders: `recordStep` needs the target activations (read at `hook_name_out`). */
  get needsTarget(): boolean {
    return !!this.unit.training.transcoder;
  }

  /**
   * Records forward + loss + backward for `x [n, dIn]` into `grads` and returns the GPU outputs
   * (owned by the SAE, overwritten by the next step). `coefficientValues`: f32
   * `[coefficients().length]`, this step's values. `deadMask`: u32 `[dSae]` (1 = dead) or null.
   * `target`: transcoders' `[n, dOut]` activations to reconstruct. BatchTopK: also updates the
   * `topk_threshold` EMA.
   */
  recordStep(
    x: Tensor,
    coefficientValues: Tensor,
    deadMask: Tensor | null,
    target?: Tensor | null,
  ): StepOutputs {
    const nc = this.coefficients().length;
    if (coefficientValues.dtype !== "f32" || coefficientValues.size !== nc) {
      throw new TrainSaeError(
        `recordStep: coefficientValues must be f32 [${nc}], got ${coefficientValues}`,
      );
    }
    if (deadMask && (deadMask.dtype !== "u32" || deadMask.size !== this.cfg.dSae)) {
      throw new TrainSaeError(
        `recordStep: deadMask must be u32 [${this.cfg.dSae}], got ${deadMask}`,
      );
    }
    this.#step.record(x, coefficientValues, deadMask, target);
    return this.#outputs;
  }

  /** Testing aid: x̂ of the last step and, when it ran as one window, the feature acts. */
  debugStep(): StepDebug {
    return this.#step.debug();
  }

  /** Host copies of params + buffers under SAELens training-checkpoint names. */
  async stateDict(): Promise<Map<string, Float32Array>> {
    const entries = [...this.params, ...this.buffers];
    const data = await readAll(entries.map(([, t]) => t));
    return new Map(entries.map(([name], i) => [name, data[i] as Float32Array]));
  }

  /** Replaces params and buffers from host arrays (every trainable name required). */
  loadStateDict(state: Map<string, Float32Array>): void {
    for (const [name, t] of [...this.params, ...this.buffers]) {
      const v = state.get(name);
      if (!v) throw new TrainSaeError(`loadStateDict: ${name} is missing`);
      if (v.length !== t.size) {
        throw new TrainSaeError(
          `loadStateDict: ${name} has ${v.length} values, expected [${t.shape.join(", ")}]`,
        );
      }
      this.gpu.write(t.buffer, t.offset, v);
    }
  }

  /** Folds an activation norm scaling factor s (§3.0): W_enc·s, W_dec/s, b_dec/s; norm → none. */
  foldActivationNormScalingFactor(s: number): void {
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new TrainSaeError(`foldActivationNormScalingFactor: s must be positive, got ${s}`);
    }
    const wEnc = this.params.get("W_enc");
    if (wEnc) scale(wEnc, s, wEnc);
    for (const name of ["W_dec", "b_dec"]) {
      const t = this.params.get(name)!;
      scale(t, 1 / s, t);
    }
    (this.cfg as { normalizeActivations: string }).normalizeActivations = "none";
  }

  /** Inference tensors + config: TopK norm folding (§3.4), BatchTopK → JumpReLU (§3.5). */
  async exportInference(): Promise<{ cfg: SAEConfig; params: Map<string, Float32Array> }> {
    const state = Object.fromEntries(await this.stateDict());
    const exportFn = this.unit.reference?.exportInference;
    const out = exportFn ? exportFn(refConfigOf(this.cfg, this.extras), state) : state;
    return { cfg: inferenceConfigOf(this.cfg), params: new Map(Object.entries(out)) };
  }

  /** Releases every GPU tensor of this SAE. */
  dispose(): void {
    this.#step.dispose();
    for (const t of [...this.params.values(), ...this.grads.values(), ...this.buffers.values()]) {
      t.dispose();
    }
    for (const t of Object.values(this.#outputs)) t.dispose();
  }
}
