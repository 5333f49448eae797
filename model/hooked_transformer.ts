/**
 * `HookedTransformer`: TransformerLens's model API over the WebGPU forward (spec
 * transformer_lens.md §1, §4, §5): `fromPretrained` (TL default processing) and
 * `fromPretrainedNoProcessing` (what SAELens uses), `runWithCache`, `runWithHooks`, the TL loss,
 * `toTokens` / `toString` / `toStrTokens`. Activations stay on the GPU as `Tensor`s.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { HubError } from "../hub/errors.ts";
import { toSingleToken, toStrTokens, toTokens, type ToTokensOptions } from "../hub/to_tokens.ts";
import type { Tokenizer } from "../hub/tokenizer.ts";
import type { SAEMetadata } from "../sae/metadata.ts";
import { join } from "../util/path.ts";
import type { ModelConfig } from "./config.ts";
import { gpuForward, GpuModel, uploadTokens } from "./gpu/transformer.ts";
import {
  disposeCache,
  type FwdHook,
  GpuHookContext,
  type HookContextOptions,
} from "./hooks/gpu.ts";
import type { NamesFilter } from "./hooks/reference.ts";
import { hookNames } from "./hooks/names.ts";
import { lmLossPerToken } from "./gpu/kernels/loss.ts";
import {
  loadPretrained,
  normalizeModelOptions,
  type PretrainedModelOptions,
} from "./load/pretrained.ts";
import { TL_DEFAULT_PROCESSING } from "./load/processing.ts";
import { ModelError } from "./errors.ts";
import type { ParamMap } from "./params.ts";
import { didYouMean } from "../util/suggest.ts";

/**
 * Token input: ids `[batch][pos]`, an i32 Tensor `[batch, pos]`, or text (tokenized like TL).
 * Ids outside `[0, d_vocab)` are a `ModelError`: at once for `number[][]`; for a Tensor, from the
 * next read-back (the logits, a loss), since the check runs on the GPU without a sync of its own.
 */
export type TokensInput = number[][] | Tensor | string | readonly string[];

/** What a model is built from. */
export interface HookedTransformerInit {
  /** TL config (after processing). */
  cfg: ModelConfig;
  /** TL parameters (host); uploaded once, not kept. */
  params: ParamMap;
  /** The tokenizer (toTokens and text input need one). */
  tokenizer?: Tokenizer | null;
  /** The device (required by the constructor; the static constructors default it). */
  gpu?: Gpu;
  /** Remarks from loading (skipped processing steps). */
  notes?: string[];
}

/** Options shared by the run methods. */
export interface RunOptions {
  /** TL `stop_at_layer`: run blocks 0 … k−1 and return the residual. */
  stopAtLayer?: number;
  /**
   * `[name or predicate, hook]` pairs active for this run only. A name that is not one of
   * {@link HookedTransformer.hookNames} is a `ModelError` listing close matches (TL raises too);
   * a predicate may match nothing.
   */
  fwdHooks?: readonly FwdHook[];
  /** For text input: prepend BOS (default `cfg.defaultPrependBos`). */
  prependBos?: boolean;
}

/** Options of {@link HookedTransformer.runWithCache}. */
export interface RunWithCacheOptions extends RunOptions {
  /** Which hooks to cache (default: all). */
  namesFilter?: NamesFilter;
}

/** Result of {@link HookedTransformer.runWithCache}; the caller owns (disposes) every tensor. */
export interface CacheRun {
  /** Logits `[B, P, V]`, or null with `stopAtLayer`. */
  logits: Tensor | null;
  /** With `stopAtLayer`: the residual `[B, P, D]`. */
  residual: Tensor | null;
  /** Hook values by name, in TL's first-firing order (free with `disposeCache`). */
  cache: Map<string, Tensor>;
}

/**
 * What {@link HookedTransformer.fromPretrainedForSae} reads the model from: an SAE (inference
 * or training: anything with `cfg.metadata`), or an SAE's metadata itself.
 */
export type SaeModelSource = { readonly cfg: { readonly metadata: SAEMetadata } } | SAEMetadata;

/**
 * `<dir>/<name>` for the first of `dirs` holding a folder `name`, or `undefined`. Only a plain
 * folder name is looked up (no separators, not `.` or `..`): a path or an `org/name` repo id in
 * a cfg.json never reaches outside the folders the caller listed.
 */
async function findLocalModel(
  name: string,
  dirs: readonly string[] | undefined,
): Promise<string | undefined> {
  if (dirs === undefined) return undefined;
  if (!Array.isArray(dirs) || dirs.some((d) => typeof d !== "string" || d.trim() === "")) {
    throw new ModelError(
      `fromPretrainedForSae: modelDirs must be an array of folder paths, got ${
        JSON.stringify(dirs)
      }`,
    );
  }
  if (!/^[\w.-]+$/.test(name) || /^\.+$/.test(name)) return undefined;
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      if ((await Deno.stat(candidate)).isDirectory) return candidate;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new ModelError(`fromPretrainedForSae: cannot look at ${candidate}: ${err}`, {
          cause: err,
        });
      }
    }
  }
  return undefined;
}

/** Model classes whose hook names are TransformerLens's, so a `HookedTransformer` can stand in. */
const TL_MODEL_CLASSES = new Set(["HookedTransformer", "HookedSAETransformer"]);

type Ctor<T> = new (init: HookedTransformerInit) => T;

/**
 * A TransformerLens-style language model on the GPU.
 *
 * @example
 * ```ts
 * import { HookedTransformer } from "./hooked_transformer.ts";
 * const model = await HookedTransformer.fromPretrainedNoProcessing("data/tiny-shakespeare-gpt2");
 * const tokens = model.toTokens("First Citizen:");
 * const loss = await model.loss(tokens);
 * if (!(loss > 0)) throw new Error("unreachable");
 * model.dispose();
 * ```
 */
export class HookedTransformer {
  /** TL config (camelCase `HookedTransformerConfig`). */
  readonly cfg: ModelConfig;
  /** The tokenizer, or null when the model came without one. */
  readonly tokenizer: Tokenizer | null;
  /** Remarks from loading (e.g. processing steps TL would skip with a warning). */
  readonly notes: string[];
  /** The model's parameters on the GPU. */
  protected readonly model: GpuModel;

  /** Uploads `init.params` (validated) to the GPU. Prefer the static constructors. */
  constructor(init: HookedTransformerInit) {
    const gpu = init.gpu;
    if (!gpu) throw new ModelError("HookedTransformer: pass `gpu` (or use fromParams)");
    this.cfg = init.cfg;
    this.tokenizer = init.tokenizer ?? null;
    this.notes = init.notes ?? [];
    this.model = new GpuModel(gpu, init.cfg, init.params);
  }

  /** A model from host TL parameters (default device unless `init.gpu`). */
  static async fromParams<T>(
    this: Ctor<T>,
    init: Omit<HookedTransformerInit, "gpu"> & { gpu?: Gpu },
  ): Promise<T> {
    return new this({ ...init, gpu: init.gpu ?? await getGpu() });
  }

  /**
   * TL `from_pretrained`: a local HF directory, a hub repo id or a TL name/alias, with TL's
   * default processing (fold_ln, center_writing_weights, center_unembed, fold_value_biases),
   * each switchable in `opts` (camelCase or snake_case).
   */
  static async fromPretrained<T>(
    this: Ctor<T>,
    nameOrPath: string,
    opts: PretrainedModelOptions & { gpu?: Gpu } = {},
  ): Promise<T> {
    const { gpu, ...rest } = opts;
    const m = await loadPretrained(nameOrPath, TL_DEFAULT_PROCESSING, rest);
    return new this({ ...m, gpu: gpu ?? await getGpu() });
  }

  /** TL `from_pretrained_no_processing` (SAELens's loader): no processing unless asked. */
  static async fromPretrainedNoProcessing<T>(
    this: Ctor<T>,
    nameOrPath: string,
    opts: PretrainedModelOptions & { gpu?: Gpu } = {},
  ): Promise<T> {
    const { gpu, ...rest } = opts;
    const none = {
      foldLn: false,
      centerWritingWeights: false,
      centerUnembed: false,
      foldValueBiases: false,
    };
    const m = await loadPretrained(nameOrPath, none, rest);
    return new this({ ...m, gpu: gpu ?? await getGpu() });
  }

  /**
   * Loads the model an SAE was trained on, the way SAELens's `load_model` does for training and
   * evaluation: `fromPretrainedNoProcessing(metadata.model_name,
   * **metadata.model_from_pretrained_kwargs)`. For example gpt2-small-res-jb's kwargs
   * `{center_writing_weights: true}` give a model with centred writing weights. `opts` (camelCase
   * or snake_case) override the SAE's kwargs key by key and add hub options and `gpu`. Called on
   * `HookedSAETransformer`, it returns one.
   *
   * Throws a `ModelError` when the metadata names no model, or names a `model_class_name` other
   * than `HookedTransformer` / `HookedSAETransformer` (e.g. `AutoModelForCausalLM`, whose hook
   * names are not TransformerLens's); unknown kwargs are rejected as by `fromPretrained`.
   *
   * `model_name` is a name, as in SAELens: a TransformerLens name or alias, a hub repo id, or
   * the folder name of a local model. For a local model, `opts.modelDirs` lists the folders to
   * look in: the first `<dir>/<model_name>` folder that exists is loaded (before any alias or
   * hub lookup). A `model_name` that is a path (older files) still loads from that path.
   *
   * @example
   * ```ts
   * import { HookedSAETransformer } from "./hooked_sae_transformer.ts";
   * import { SAE } from "../sae/sae.ts";
   * const sae = await SAE.fromConfig({ architecture: "standard", dIn: 128, dSae: 256, metadata: {
   *   modelName: "tiny-shakespeare-gpt2", hookName: "blocks.1.hook_resid_pre",
   *   modelFromPretrainedKwargs: { center_writing_weights: true } } });
   * const model = await HookedSAETransformer.fromPretrainedForSae(sae, {
   *   gpu: sae.gpu,
   *   modelDirs: [new URL("../data", import.meta.url).pathname],
   * });
   * const tokens = model.toTokens("Hi");
   * const logits = await model.runWithSaes(tokens, { saes: [sae] });
   * if (logits.shape.join() !== `1,${tokens[0].length},${model.cfg.dVocab}`) {
   *   throw new Error(`logits shape ${logits.shape}`);
   * }
   * const values = await logits.toArray();
   * if (!values.every(Number.isFinite)) throw new Error("non-finite logits");
   * logits.dispose();
   * model.dispose();
   * sae.dispose();
   * ```
   */
  static async fromPretrainedForSae<T>(
    this: Ctor<T>,
    sae: SaeModelSource,
    opts: PretrainedModelOptions & { gpu?: Gpu; modelDirs?: readonly string[] } = {},
  ): Promise<T> {
    const metadata = "cfg" in sae ? sae.cfg.metadata : sae;
    const modelName = metadata.modelName;
    if (typeof modelName !== "string" || modelName.trim() === "") {
      throw new ModelError(
        `fromPretrainedForSae: the SAE's metadata has no model_name (got ${
          JSON.stringify(modelName)
        }); set metadata.modelName, or load the model with fromPretrainedNoProcessing(name)`,
      );
    }
    const modelClass = metadata.modelClassName;
    if (modelClass !== null && !TL_MODEL_CLASSES.has(modelClass)) {
      throw new ModelError(
        `fromPretrainedForSae: the SAE's metadata.model_class_name is ${
          JSON.stringify(modelClass)
        }; only HookedTransformer / HookedSAETransformer models load here`,
      );
    }
    const kwargs = metadata.modelFromPretrainedKwargs ?? {};
    if (typeof kwargs !== "object" || Array.isArray(kwargs)) {
      throw new ModelError(
        `fromPretrainedForSae: metadata.model_from_pretrained_kwargs must be an object, got ${
          JSON.stringify(kwargs)
        }`,
      );
    }
    const { modelDirs, ...modelOpts } = opts;
    const local = await findLocalModel(modelName, modelDirs);
    // Normalised apart, so that a caller's camelCase or snake_case key beats the SAE's either way.
    const merged = { ...normalizeModelOptions(kwargs), ...normalizeModelOptions(modelOpts) };
    const load: (
      this: Ctor<T>,
      name: string,
      o: PretrainedModelOptions & { gpu?: Gpu },
    ) => Promise<T> = HookedTransformer.fromPretrainedNoProcessing;
    try {
      return await load.call(this, local ?? modelName, merged);
    } catch (err) {
      if (local === undefined && modelDirs?.length && err instanceof HubError) {
        throw new ModelError(
          `fromPretrainedForSae: model_name ${JSON.stringify(modelName)} is no folder in ` +
            `modelDirs (${modelDirs.join(", ")}), and loading it by name failed: ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** The GPU device. */
  get gpu(): Gpu {
    return this.model.gpu;
  }

  /** Every hook point name, in TL's first-firing order (TL `hook_dict` keys that fire). */
  hookNames(): string[] {
    return hookNames(this.cfg);
  }

  /** The hook context of one run; subclasses add spliced modules. */
  protected hookContext(opts: HookContextOptions): GpuHookContext {
    return new GpuHookContext(opts);
  }

  /** Tokens as an i32 tensor and whether this call created it. */
  protected tokensTensor(tokens: TokensInput, prependBos?: boolean): { t: Tensor; own: boolean } {
    if (tokens instanceof Tensor) {
      if (tokens.dtype !== "i32" || tokens.rank !== 2) {
        throw new ModelError(`tokens ${tokens} must be an i32 tensor [batch, pos]`);
      }
      return { t: tokens, own: false };
    }
    const ids = typeof tokens === "string" || isStringArray(tokens)
      ? this.toTokens(tokens, { prependBos })
      : tokens as number[][];
    if (!Array.isArray(ids) || !ids.every((row) => Array.isArray(row))) {
      throw new ModelError(
        "tokens must be ids [batch][pos] (number[][]), an i32 Tensor [batch, pos], a string or " +
          "a list of strings",
      );
    }
    return { t: uploadTokens(this.gpu, this.cfg, ids), own: true };
  }

  /**
   * Throws a `ModelError` for a hook name in `fwdHooks` that this model does not have (a
   * misspelling would otherwise be silently ignored), and for backward hooks, which saeflow
   * does not have (no autograd through the model).
   */
  protected checkHookNames(opts: RunOptions): void {
    const raw = opts as Record<string, unknown>;
    for (const key of ["bwdHooks", "bwd_hooks"]) {
      const v = raw[key];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) {
        throw new ModelError(
          `${key}: backward hooks are not supported (saeflow runs no backward pass through ` +
            "the model); use fwdHooks",
        );
      }
    }
    const hooks = opts.fwdHooks;
    if (hooks === undefined) return;
    if (!Array.isArray(hooks)) {
      throw new ModelError(`fwdHooks must be an array of [name, fn] pairs, got ${typeof hooks}`);
    }
    let valid: Set<string> | null = null;
    for (const pair of hooks) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ModelError("fwdHooks: every entry must be a [name or predicate, fn] pair");
      }
      const name = pair[0];
      if (typeof name === "function") continue;
      if (typeof name !== "string") {
        throw new ModelError(
          `fwdHooks: a hook name must be a string or a predicate, got ${typeof name}`,
        );
      }
      valid ??= new Set(this.hookNames());
      if (!valid.has(name)) {
        throw new ModelError(
          `fwdHooks: this model has no hook point ${JSON.stringify(name)}` +
            didYouMean(name, valid) + "; see model.hookNames()",
        );
      }
    }
  }

  /** Runs with a hook context; returns logits/residual (owned by the caller). */
  protected async run(
    tokens: TokensInput,
    opts: RunOptions,
    ctx: GpuHookContext,
  ): Promise<
    { logits: Tensor | null; residual: Tensor | null; tokens: Tensor; ownTokens: boolean }
  > {
    this.checkHookNames(opts);
    const { t, own } = this.tokensTensor(tokens, opts.prependBos);
    try {
      const r = await gpuForward(this.model, t, { ctx, stopAtLayer: opts.stopAtLayer });
      return { logits: r.logits, residual: r.residual, tokens: t, ownTokens: own };
    } catch (err) {
      // A failed run hands nothing back: free what it cached (other intermediates are lost).
      disposeCache(ctx.cache);
      if (own) t.dispose();
      throw err;
    }
  }

  /** TL `forward`: logits `[B, P, V]`, or the residual `[B, P, D]` with `stopAtLayer`. */
  async forward(tokens: TokensInput, opts: RunOptions = {}): Promise<Tensor> {
    const ctx = this.hookContext({ fwdHooks: opts.fwdHooks });
    const r = await this.run(tokens, opts, ctx);
    if (r.ownTokens) r.tokens.dispose();
    return (r.logits ?? r.residual)!;
  }

  /** TL `run_with_hooks`: the forward with `fwdHooks` active for this call only. */
  async runWithHooks(tokens: TokensInput, opts: RunOptions = {}): Promise<Tensor> {
    return await this.forward(tokens, opts);
  }

  /** TL `run_with_cache`: the forward plus the values of the hooks passing `namesFilter`. */
  async runWithCache(tokens: TokensInput, opts: RunWithCacheOptions = {}): Promise<CacheRun> {
    const ctx = this.hookContext({
      fwdHooks: opts.fwdHooks,
      namesFilter: opts.namesFilter ?? (() => true),
    });
    const r = await this.run(tokens, opts, ctx);
    if (r.ownTokens) r.tokens.dispose();
    return { logits: r.logits, residual: r.residual, cache: ctx.cache };
  }

  /**
   * Logits and per-token losses `[B, P−1]` from one forward (TL `return_type="both",
   * loss_per_token=True`, what SAELens's CE evals call).
   */
  async forwardWithLoss(
    tokens: TokensInput,
    opts: Omit<RunOptions, "stopAtLayer"> = {},
  ): Promise<{ logits: Tensor; lossPerToken: Tensor }> {
    const ctx = this.hookContext({ fwdHooks: opts.fwdHooks });
    const r = await this.run(tokens, opts, ctx);
    try {
      return { logits: r.logits!, lossPerToken: lmLossPerToken(r.logits!, r.tokens) };
    } finally {
      if (r.ownTokens) r.tokens.dispose();
    }
  }

  /** TL `lm_cross_entropy_loss(per_token=True)`: `[B, P−1]` next-token losses on the GPU. */
  async lossPerToken(
    tokens: TokensInput,
    opts: Omit<RunOptions, "stopAtLayer"> = {},
  ): Promise<Tensor> {
    const { logits, lossPerToken } = await this.forwardWithLoss(tokens, opts);
    logits.dispose();
    return lossPerToken;
  }

  /** Mean next-token cross-entropy (TL `return_type="loss"`), read back as a number. */
  async loss(tokens: TokensInput, opts: Omit<RunOptions, "stopAtLayer"> = {}): Promise<number> {
    using perToken = await this.lossPerToken(tokens, opts);
    const data = await perToken.toArray();
    let sum = 0;
    for (const v of data) sum += v;
    return sum / data.length;
  }

  #tok(): Tokenizer {
    if (!this.tokenizer) {
      throw new ModelError(
        `model ${this.cfg.modelName} has no tokenizer (load one with the model)`,
      );
    }
    return this.tokenizer;
  }

  /** TL `to_tokens`: ids `[batch][pos]`, BOS per `cfg.defaultPrependBos`, right padding. */
  toTokens(text: string | readonly string[], opts: ToTokensOptions = {}): number[][] {
    const b = toTokens(this.#tok(), text, {
      prependBos: opts.prependBos ?? this.cfg.defaultPrependBos,
      paddingSide: opts.paddingSide,
      truncate: opts.truncate,
      nCtx: opts.nCtx ?? this.cfg.nCtx,
    });
    const [B, P] = b.shape;
    return Array.from({ length: B }, (_, i) => Array.from(b.ids.subarray(i * P, (i + 1) * P)));
  }

  /** TL `to_string`: decodes one sequence. */
  toString(tokens: ArrayLike<number>): string;
  /** TL `to_string` of a batch: one string per row. */
  toString(tokens: readonly ArrayLike<number>[]): string[];
  toString(tokens: ArrayLike<number> | readonly ArrayLike<number>[]): string | string[] {
    const tok = this.#tok();
    const rows = tokens as readonly ArrayLike<number>[];
    if (rows.length > 0 && typeof rows[0] === "object") return rows.map((r) => tok.decode(r));
    return tok.decode(tokens as ArrayLike<number>);
  }

  /** TL `to_str_tokens`: each token decoded on its own (text is tokenized first). */
  toStrTokens(input: string | ArrayLike<number>, opts: { prependBos?: boolean } = {}): string[] {
    return toStrTokens(this.#tok(), input, {
      prependBos: opts.prependBos ?? this.cfg.defaultPrependBos,
    });
  }

  /** TL `to_single_token`. */
  toSingleToken(text: string): number {
    return toSingleToken(this.#tok(), text);
  }

  /** Frees the model's GPU memory. */
  dispose(): void {
    this.model.dispose();
  }

  /** `using model = …` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function isStringArray(x: unknown): x is readonly string[] {
  return Array.isArray(x) && x.length > 0 && typeof x[0] === "string";
}
