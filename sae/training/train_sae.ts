/**
 * `TrainingSAE`: a training SAE on the GPU for every trainable SAELens architecture (standard
 * incl. legacy ghost grads, gated, jumprelu, topk, batchtopk, matryoshka_batchtopk). Its
 * `recordStep` records forward, losses and the hand-derived backward into the pending GPU pass
 * (one submit per training step, no readback); the trainer adds the optimiser and bookkeeping.
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
import {
  createRng,
  exportBatchTopKRef,
  exportTopKRef,
  initTrainingParamsRef,
  type RefSaeConfig,
} from "../reference/mod.ts";
import {
  type ArchStep,
  type CoefficientSpec,
  type StepContext,
  type StepDebug,
  type StepOutputs,
  type TrainingExtras,
  TrainSaeError,
} from "./train_sae_common.ts";
import { denseLossKeys, DenseStep } from "./train_sae_dense.ts";
import { sparseLossKeys, SparseStep } from "./train_sae_sparse.ts";

export type { CoefficientSpec, StepDebug, StepOutputs, TrainingExtras };
export { TrainSaeError };

const TOPK_FAMILY = new Set(["topk", "batchtopk", "matryoshka_batchtopk"]);

/** Trainable parameter names of each architecture, in order. */
export const TRAINABLE_PARAMS: Readonly<Record<string, readonly string[]>> = {
  standard: ["W_enc", "b_enc", "W_dec", "b_dec"],
  gated: ["W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"],
  jumprelu: ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"],
  topk: ["W_enc", "b_enc", "W_dec", "b_dec"],
  batchtopk: ["W_enc", "b_enc", "W_dec", "b_dec"],
  matryoshka_batchtopk: ["W_enc", "b_enc", "W_dec", "b_dec"],
};

/** The trainable parameter names of `arch`; a TrainSaeError naming it if it cannot be trained. */
function trainableParamsOf(arch: string): readonly string[] {
  const names = Object.hasOwn(TRAINABLE_PARAMS, arch) ? TRAINABLE_PARAMS[arch] : undefined;
  if (!names) {
    throw new TrainSaeError(
      `architecture: "${arch}" cannot be trained (trainable: ${
        Object.keys(TRAINABLE_PARAMS).join(", ")
      })`,
    );
  }
  return names;
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

function shapeOf(cfg: TrainingSAEConfig, name: string): number[] {
  const d = cfg.dIn, n = cfg.dSae;
  if (name === "W_enc") return [d, n];
  if (name === "W_dec") return [n, d];
  if (name === "b_dec") return [d];
  if (name === "topk_threshold") return [1];
  return [n];
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
 * Throws, naming the parameter and the limit, when a parameter of `names` cannot be trained on
 * `gpu`: larger than one buffer (a GpuError), or larger than one storage binding (a
 * TrainSaeError: the training kernels bind each parameter whole; inference splits them).
 */
function checkFitsDevice(cfg: TrainingSAEConfig, gpu: Gpu, names: readonly string[]): void {
  if (!gpu) throw new TrainSaeError("TrainingSAE: options.gpu is required");
  for (const name of names) {
    const shape = shapeOf(cfg, name);
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
  #outputs: StepOutputs;
  #step: ArchStep;

  private constructor(
    cfg: TrainingSAEConfig,
    params: Record<string, Float32Array>,
    opts: TrainingSAEOptions,
  ) {
    const arch = cfg.architecture;
    const names = trainableParamsOf(arch);
    this.cfg = cfg;
    this.gpu = opts.gpu;
    this.extras = {
      useGhostGrads: opts.useGhostGrads ??
        (cfg as unknown as TrainingExtras).useGhostGrads,
      jumpreluSteToInput: opts.jumpreluSteToInput ??
        (cfg as unknown as TrainingExtras).jumpreluSteToInput,
      useMatryoshkaAuxLoss: opts.useMatryoshkaAuxLoss ??
        (cfg as unknown as TrainingExtras).useMatryoshkaAuxLoss,
    };
    if (this.extras.useGhostGrads && arch !== "standard") {
      throw new TrainSaeError(`useGhostGrads: only the standard architecture has ghost grads`);
    }
    const gpu = this.gpu;
    const batch = arch === "batchtopk" || arch === "matryoshka_batchtopk";
    this.metricKeys = batch ? ["topk_threshold"] : [];
    // The step validates the configuration before any GPU memory is allocated; it reads the
    // maps and outputs only when recording.
    const ctx: StepContext = {
      gpu,
      cfg,
      params: this.params,
      grads: this.grads,
      buffers: this.buffers,
      extras: this.extras,
      maxWindowRows: opts.maxWindowRows,
      outputs: undefined as unknown as StepOutputs,
    };
    this.lossKeys = TOPK_FAMILY.has(arch) ? sparseLossKeys(ctx) : denseLossKeys(ctx);
    this.#step = TOPK_FAMILY.has(arch) ? new SparseStep(ctx) : new DenseStep(ctx);
    const check = (name: string): void => {
      const shape = shapeOf(cfg, name), v = params[name];
      const size = shape.reduce((a, b) => a * b, 1);
      if (!v) throw new TrainSaeError(`params.${name}: missing (needed by ${arch})`);
      if (v.length !== size) {
        throw new TrainSaeError(
          `params.${name}: expected [${shape.join(", ")}] (${size} values), got ${v.length}`,
        );
      }
    };
    // Every check before the first upload, so a bad tensor leaves nothing allocated.
    checkFitsDevice(cfg, gpu, names);
    for (const name of [...names, ...(batch && params.topk_threshold ? ["topk_threshold"] : [])]) {
      check(name);
    }
    const upload = (name: string) => Tensor.from(params[name], shapeOf(cfg, name), { gpu });
    for (const name of names) {
      this.params.set(name, upload(name));
      this.grads.set(name, Tensor.zeros(shapeOf(cfg, name), "f32", { gpu }));
    }
    if (batch) {
      this.buffers.set(
        "topk_threshold",
        params.topk_threshold ? upload("topk_threshold") : Tensor.zeros([1], "f32", { gpu }),
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
    // Refuse before the reference initialisation runs (minutes of host work for a size the
    // device cannot hold).
    checkFitsDevice(cfg, opts.gpu, trainableParamsOf(cfg.architecture));
    const extras: TrainingExtras = { ...opts };
    const p = initTrainingParamsRef(refConfigOf(cfg, extras), createRng(opts.seed ?? 0));
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
    const c = this.cfg, arch = c.architecture;
    if (arch === "standard" || arch === "gated") {
      return [{ name: "l1", value: c.l1Coefficient ?? 1, warmUpSteps: c.l1WarmUpSteps ?? 0 }];
    }
    if (arch === "jumprelu") {
      return [{ name: "l0", value: c.l0Coefficient ?? 1, warmUpSteps: c.l0WarmUpSteps ?? 0 }];
    }
    return [];
  }

  /**
   * Records forward + loss + backward for `x [n, dIn]` into `grads` and returns the GPU outputs
   * (owned by the SAE, overwritten by the next step). `coefficientValues`: f32
   * `[coefficients().length]`, this step's values. `deadMask`: u32 `[dSae]` (1 = dead) or null.
   * BatchTopK: also updates the `topk_threshold` EMA.
   */
  recordStep(x: Tensor, coefficientValues: Tensor, deadMask: Tensor | null): StepOutputs {
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
    this.#step.record(x, coefficientValues, deadMask);
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
    const wEnc = this.params.get("W_enc")!;
    scale(wEnc, s, wEnc);
    for (const name of ["W_dec", "b_dec"]) {
      const t = this.params.get(name)!;
      scale(t, 1 / s, t);
    }
    (this.cfg as { normalizeActivations: string }).normalizeActivations = "none";
  }

  /** Inference tensors + config: TopK norm folding (§3.4), BatchTopK → JumpReLU (§3.5). */
  async exportInference(): Promise<{ cfg: SAEConfig; params: Map<string, Float32Array> }> {
    const state = Object.fromEntries(await this.stateDict());
    const arch = this.cfg.architecture, ref = refConfigOf(this.cfg, this.extras);
    let out: Record<string, Float32Array> = state;
    if (arch === "topk") out = exportTopKRef(ref, state);
    else if (arch === "batchtopk" || arch === "matryoshka_batchtopk") {
      out = exportBatchTopKRef(ref, state);
    }
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
