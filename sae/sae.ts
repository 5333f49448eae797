/**
 * `SAE`: a sparse autoencoder for inference on WebGPU, SAELens' `SAE` (spec §1.4, §3): tensors
 * under SAELens names and orientation, encode/decode/forward with the six hook points, the error
 * term, run-time normalisation, weight folds, and SAELens-compatible files.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { checkTensorFits, Tensor } from "../gpu/tensor.ts";
import { chainHooks, HookRegistry, type HookRunner, noHooks } from "../gpu/hooks.ts";
import { createSAEConfig, type SAEConfig, saeConfigToDict } from "./config.ts";
import { getSaeArchitecture, outputWidth, type SaeArchitectureImpl } from "./architectures/mod.ts";
import {
  decodeRows,
  encodeRows,
  forwardRows,
  inputLayout,
  outputShape,
  reshapeOwned,
  type RowLayout,
  type SaeCore,
} from "./forward.ts";
import { foldScalingFactorInPlace, foldWDecNormInPlace } from "./fold.ts";
import { type HostStateDict, logSparsityOf, type SavedSaePaths, writeSaeFolder } from "./sae_io.ts";
import { initSaeParams } from "./init.ts";
import {
  type LoadedSae,
  type LoadFromDiskOptions,
  loadSaeFromDisk,
  loadSaeFromPretrained,
  type PretrainedOptions,
  type PretrainedResult,
} from "./load.ts";
import { SaeError, SaeLoadError } from "./errors.ts";
import { describeValue, SaeflowError } from "../util/errors.ts";
import { checkTensorShapes, downloadParams, uploadParams } from "./sae_params.ts";

/** Options of the `SAE` constructors. */
export interface SaeOptions {
  /** forward returns x̂ + (x − x̂_clean) (default false). */
  useErrorTerm?: boolean;
}

/** Options of `encode`, `decode` and `forward`. */
export interface SaeRunOptions {
  /**
   * Extra hooks, e.g. a model's registry runner with its `"<hook>."` prefix. They run after the
   * SAE's own `sae.hooks`. Tensors given to hooks live until the call returns: clone to keep.
   */
  hooks?: HookRunner;
}

/** Options of `saveModel`. */
export interface SaveModelOptions {
  /** log10 feature sparsity `[dSae]`, written as `sparsity.safetensors` as it is. */
  logSparsity?: ArrayLike<number>;
  /** Firing fraction per latent `[dSae]`; written as log10(fraction + 1e-10). */
  featureFiringFraction?: ArrayLike<number>;
}

/**
 * A sparse autoencoder on the GPU.
 *
 * @example
 * ```ts
 * import { SAE } from "./sae.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * // An identity SAE: W_dec = [I; −I], W_enc = W_decᵀ, no biases.
 * const sae = await SAE.fromParams({ architecture: "standard", dIn: 2, dSae: 4 }, {
 *   W_enc: [1, 0, -1, 0, 0, 1, 0, -1], b_enc: [0, 0, 0, 0],
 *   W_dec: [1, 0, 0, 1, -1, 0, 0, -1], b_dec: [0, 0],
 * });
 * using x = Tensor.from([0.5, -2], [1, 2]);
 * using y = sae.forward(x);
 * const out = await y.toArray(); // [0.5, -2]
 * if (Math.abs(out[1] + 2) > 1e-6) throw new Error();
 * sae.dispose();
 * ```
 */
export class SAE {
  /** The config (SAELens `SAEConfig`, camelCase). */
  readonly cfg: SAEConfig;
  /** Tensors by SAELens name (`W_enc [dIn, dSae]`, `W_dec [dSae, dIn]`, …), owned by the SAE. */
  readonly params: Readonly<Record<string, Tensor>>;
  /** The SAE's hook points (`hook_sae_input`, `hook_sae_acts_pre`, …, `hook_sae_output`). */
  readonly hooks: HookRegistry = new HookRegistry();
  /** forward returns x̂ + (x − x̂_clean), so with no edit the output equals the input. */
  useErrorTerm: boolean;
  readonly #impl: SaeArchitectureImpl;
  #pending: { state: Tensor | null; layout: RowLayout } | null = null;
  #disposed = false;

  /**
   * Wraps GPU tensors (ownership passes to the SAE). Shapes are checked against the config.
   * Prefer {@link SAE.fromParams}, {@link SAE.fromConfig} or the loaders.
   */
  constructor(cfg: SAEConfig, params: Record<string, Tensor>, options: SaeOptions = {}) {
    this.#impl = getSaeArchitecture(cfg.architecture);
    checkTensorShapes(this.#impl.paramShapes(cfg), params, cfg.architecture);
    this.cfg = cfg;
    this.params = params;
    this.useErrorTerm = options.useErrorTerm ?? false;
    outputWidth(cfg, this.#impl);
  }

  /**
   * Builds an SAE from a config (or camelCase/snake_case config fields) and host arrays by
   * SAELens name, row-major in SAELens orientation.
   */
  static async fromParams(
    cfg: SAEConfig | Record<string, unknown>,
    params: Record<string, ArrayLike<number>>,
    options: SaeOptions & { gpu?: Gpu } = {},
  ): Promise<SAE> {
    const config = isConfig(cfg) ? cfg : createSAEConfig(cfg);
    const gpu = options.gpu ?? await getGpu();
    const expected = getSaeArchitecture(config.architecture).paramShapes(config);
    const tensors = uploadParams(expected, params, gpu);
    try {
      return new SAE(config, tensors, options);
    } catch (err) {
      for (const t of Object.values(tensors)) t.dispose();
      throw err;
    }
  }

  /**
   * An untrained SAE of the config's architecture (SAELens `SAE.from_dict`): W_dec
   * Kaiming-uniform, W_enc = W_decᵀ (transcoders: independent), everything else zero.
   */
  static async fromConfig(
    cfg: SAEConfig | Record<string, unknown>,
    options: SaeOptions & { gpu?: Gpu; seed?: number } = {},
  ): Promise<SAE> {
    const config = isConfig(cfg) ? cfg : createSAEConfig(cfg);
    const impl = getSaeArchitecture(config.architecture);
    const gpu = options.gpu ?? await getGpu();
    // A size the device cannot hold fails before the host initialisation runs.
    for (const [name, shape] of Object.entries(impl.paramShapes(config))) {
      checkTensorFits(gpu, shape, `SAE ${name}`);
    }
    return await SAE.fromParams(config, initSaeParams(config, impl, options.seed ?? 0), {
      ...options,
      gpu,
    });
  }

  /** Loads an SAE folder (`cfg.json` + `sae_weights.safetensors`), SAELens `load_from_disk`. */
  static async loadFromDisk(dir: string, options: LoadFromDiskOptions = {}): Promise<SAE> {
    if (typeof dir !== "string" || dir === "" || dir.includes("\0")) {
      throw new SaeLoadError(`loadFromDisk: the folder is ${describeValue(dir)}, expected a path`);
    }
    const c = await loadSaeFromDisk(dir, options);
    return await SAE.#build(c, options);
  }

  /** A pretrained SAE from the registry (or a raw HF repo id), SAELens `from_pretrained`. */
  static async fromPretrained(
    release: string,
    saeId: string,
    options: PretrainedOptions = {},
  ): Promise<SAE> {
    return (await SAE.fromPretrainedWithCfgAndSparsity(release, saeId, options)).sae;
  }

  /** Like {@link SAE.fromPretrained}, also returning the cfg dict and log sparsity (or null). */
  static async fromPretrainedWithCfgAndSparsity(
    release: string,
    saeId: string,
    options: PretrainedOptions = {},
  ): Promise<{ sae: SAE; cfgDict: Record<string, unknown>; sparsity: Float32Array | null }> {
    const c: PretrainedResult = await loadSaeFromPretrained(release, saeId, options);
    const sae = await SAE.#build(c, { ...options, foldWDecNorm: false });
    if (c.normScalingFactor !== null) sae.foldActivationNormScalingFactor(c.normScalingFactor);
    if (options.foldWDecNorm) sae.foldWDecNorm();
    return { sae, cfgDict: c.cfgDict, sparsity: c.logSparsity };
  }

  static async #build(
    c: LoadedSae,
    options: SaeOptions & { gpu?: Gpu; foldWDecNorm?: boolean },
  ): Promise<SAE> {
    const host = Object.fromEntries(Object.entries(c.state).map(([k, t]) => [k, t.data]));
    const sae = await SAE.fromParams(c.cfg, host, options);
    if (options.foldWDecNorm) sae.foldWDecNorm();
    return sae;
  }

  /** The GPU device the tensors live on. */
  get gpu(): Gpu {
    return this.W_dec.gpu;
  }
  /** Encoder `[dIn, dSae]`. */
  get W_enc(): Tensor {
    return this.#param("W_enc");
  }
  /** Decoder `[dSae, dIn]` (`[dSae, dOut]` for transcoders); rows are feature directions. */
  get W_dec(): Tensor {
    return this.#param("W_dec");
  }
  /** Decoder bias `[dIn]` (`[dOut]`). */
  get b_dec(): Tensor {
    return this.#param("b_dec");
  }
  /** Encoder bias `[dSae]` (not gated). */
  get b_enc(): Tensor | undefined {
    return this.params.b_enc;
  }
  /** JumpReLU threshold `[dSae]`. */
  get threshold(): Tensor | undefined {
    return this.params.threshold;
  }
  /** Gated: gate bias `[dSae]`. */
  get b_gate(): Tensor | undefined {
    return this.params.b_gate;
  }
  /** Gated: log magnitude scale `[dSae]`. */
  get r_mag(): Tensor | undefined {
    return this.params.r_mag;
  }
  /** Gated: magnitude bias `[dSae]`. */
  get b_mag(): Tensor | undefined {
    return this.params.b_mag;
  }
  /** Skip transcoders: `[dOut, dIn]`. */
  get W_skip(): Tensor | undefined {
    return this.params.W_skip;
  }

  #param(name: string): Tensor {
    this.#check();
    const t = this.params[name];
    if (!t) throw new SaeError(`this ${this.cfg.architecture} SAE has no tensor ${name}`);
    return t;
  }

  #check(): void {
    if (this.#disposed) throw new SaeError("the SAE was used after dispose()");
  }

  #core(): SaeCore {
    this.#check();
    for (const [name, t] of Object.entries(this.params)) {
      if (t.disposed) {
        throw new SaeError(
          `the SAE's ${name} was disposed (tensor.dispose()): the SAE cannot run without it; ` +
            "dispose the whole SAE with sae.dispose() instead",
        );
      }
    }
    return { cfg: this.cfg, impl: this.#impl, params: this.params };
  }

  #runner(options: SaeRunOptions): HookRunner {
    const own = this.hooks.names().length > 0 ? this.hooks.runner() : noHooks;
    return chainHooks(own, options.hooks ?? noHooks);
  }

  /**
   * Feature activations `[..., dSae]` of `x [..., dIn]` (hook_z SAEs also take
   * `[..., heads, d_head]`). Keeps the run-time normalisation state for the next `decode`.
   */
  encode(x: Tensor, options: SaeRunOptions = {}): Tensor {
    const core = this.#core();
    const layout = inputLayout(this.cfg, x, "encode");
    const rows = x.reshape([layout.n, this.cfg.dIn]);
    const { acts, state } = encodeRows(core, rows, layout.lead, this.#runner(options));
    this.#pending?.state?.dispose();
    this.#pending = { state, layout };
    return reshapeOwned(acts, [...layout.lead, this.cfg.dSae]);
  }

  /**
   * Reconstruction `[..., dIn]` (transcoders `[..., dOut]`) of feature activations `f
   * [..., dSae]`. With constant_norm_rescale / layer_norm it uses (and consumes) the state of the
   * preceding `encode` of the same tokens, as SAELens does.
   */
  decode(f: Tensor, options: SaeRunOptions = {}): Tensor {
    const core = this.#core();
    const d = this.cfg.dSae;
    if (!(f instanceof Tensor) || f.disposed) {
      throw new SaeError(`decode: feature acts are ${f}, expected a live f32 Tensor [..., ${d}]`);
    }
    if (f.dtype !== "f32" || f.rank < 1 || f.shape[f.rank - 1] !== d) {
      throw new SaeError(
        `decode: feature acts have shape [${f.shape.join(", ")}], expected [..., ${d}] (d_sae)`,
      );
    }
    const lead = f.shape.slice(0, -1), n = f.size / d;
    const pending = this.#pending?.layout.n === n ? this.#pending : null;
    const layout = pending?.layout ?? { lead, n, dHead: null };
    const y = decodeRows(
      core,
      f.reshape([n, d]),
      pending?.state ?? null,
      lead,
      this.#runner(options),
    );
    if (pending) {
      pending.state?.dispose();
      this.#pending = null;
    }
    return reshapeOwned(y, outputShape(core, { ...layout, lead }));
  }

  /** x̂ (+ error term when `useErrorTerm`), shaped like `x` (transcoders: `[..., dOut]`). */
  forward(x: Tensor, options: SaeRunOptions = {}): Tensor {
    const { output, featureActs } = this.forwardWithActivations(x, options);
    featureActs.dispose();
    return output;
  }

  /** `forward` that also returns the feature activations `[..., dSae]`. */
  forwardWithActivations(
    x: Tensor,
    options: SaeRunOptions = {},
  ): { output: Tensor; featureActs: Tensor } {
    const core = this.#core();
    const layout = inputLayout(this.cfg, x, "forward");
    const rows = x.reshape([layout.n, this.cfg.dIn]);
    const r = forwardRows(core, rows, layout.lead, this.#runner(options), this.useErrorTerm);
    return {
      output: reshapeOwned(r.output, outputShape(core, layout)),
      featureActs: reshapeOwned(r.acts, [...layout.lead, this.cfg.dSae]),
    };
  }

  /**
   * Folds decoder row norms into the encoder (SAELens `fold_W_dec_norm`): feature activations
   * scale by ‖W_dec[i]‖, outputs are unchanged. TopK needs rescale_acts_by_decoder_norm.
   */
  foldWDecNorm(): this {
    foldWDecNormInPlace(this.cfg, this.#impl, this.#core().params);
    return this;
  }

  /**
   * Folds an activation norm scaling factor `s` into the weights (W_enc·s, W_dec/s, b_dec/s) and
   * sets normalize_activations to "none": encode(x/s) afterwards equals encode(x) before.
   */
  foldActivationNormScalingFactor(s: number): this {
    foldScalingFactorInPlace(this.#core().params, s);
    this.cfg.normalizeActivations = "none";
    return this;
  }

  /** A host copy of every tensor (f32), by SAELens name. */
  async stateDict(): Promise<HostStateDict> {
    this.#check();
    return await downloadParams(this.params);
  }

  /**
   * Writes `cfg.json` (exact SAELens v6 keys) and `sae_weights.safetensors` (in `cfg.dtype`), and
   * `sparsity.safetensors` when sparsity is given; creates `dir`. The sparsity length is checked
   * before the disk is touched, and the folder is replaced in one recoverable step
   * (`writeSaeFolder`): a failure or a kill leaves the previous save whole, and a sparsity file
   * of an earlier save never stays beside new weights. Other files in `dir` are kept.
   */
  async saveModel(dir: string, options: SaveModelOptions = {}): Promise<SavedSaePaths> {
    if (typeof dir !== "string" || dir === "" || dir.includes("\0")) {
      throw new SaeError(`saveModel: the folder is ${describeValue(dir)}, expected a path`);
    }
    const sparsity = options.logSparsity
      ? Float32Array.from(options.logSparsity)
      : options.featureFiringFraction
      ? logSparsityOf(options.featureFiringFraction)
      : undefined;
    const state = await this.stateDict();
    try {
      return await writeSaeFolder(dir, this.cfg, saeConfigToDict(this.cfg), state, sparsity);
    } catch (err) {
      if (err instanceof SaeflowError) throw err;
      // A file where the folder should be, a missing parent, no permission, a full disk.
      throw new SaeError(`saveModel: cannot write ${dir}: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    }
  }

  /** `sae_{model_name}_{hook_name}_{d_sae}` (SAELens `get_name`). */
  getName(): string {
    const m = this.cfg.metadata;
    return `sae_${m.modelName}_${m.hookName}_${this.cfg.dSae}`;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Releases the GPU tensors. */
  dispose(): void {
    if (this.#disposed) return;
    this.#pending?.state?.dispose();
    this.#pending = null;
    for (const t of Object.values(this.params)) t.dispose();
    this.#disposed = true;
  }

  /** `using sae = …` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function isConfig(cfg: SAEConfig | Record<string, unknown>): cfg is SAEConfig {
  return typeof cfg.metadata === "object" && cfg.metadata !== null &&
    typeof (cfg.metadata as { toDict?: unknown }).toDict === "function" && "dSae" in cfg;
}
