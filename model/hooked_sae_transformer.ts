/**
 * `HookedSAETransformer`: SAELens's model with SAEs spliced in at hook points (spec
 * saelens.md §7). An attached SAE replaces the hook point `sae.cfg.metadata.hookName`: the model
 * computes `sae.forward(activation)` there, and the SAE's hook points join the model's as
 * `<hook>.hook_sae_input`, `…acts_pre`, `…acts_post`, `…recons`, `…error`, `…output` (cached and
 * hooked like any other). With `useErrorTerm` the spliced model reproduces the original output;
 * edits of SAE latents still change it. A transcoder (newest SAELens) reads its input at
 * `metadata.hookName` and is spliced at `metadata.hookNameOut`, whose activation it replaces.
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { type HookRunner, noHooks } from "../gpu/hooks.ts";
import type { SAE } from "../sae/sae.ts";
import { SAE_HOOK_NAMES } from "../sae/forward.ts";
import { getSaeArchitecture } from "../sae/architectures/mod.ts";
import {
  type CacheRun,
  HookedTransformer,
  type RunOptions,
  type RunWithCacheOptions,
  type TokensInput,
} from "./hooked_transformer.ts";
import { GpuHookContext, type HookContextOptions, type HookSplice } from "./hooks/gpu.ts";
import { ModelError } from "./errors.ts";
import { binary } from "../gpu/kernels/binary.ts";
import { didYouMean } from "../util/suggest.ts";

/** Options choosing the SAEs of one `…WithSaes` call. */
export interface WithSaesOptions {
  /** SAEs attached for the call (at their `cfg.metadata.hookName`). */
  saes?: readonly SAE[];
  /** Set every attached SAE's `useErrorTerm` for the call (restored afterwards). */
  useErrorTerm?: boolean;
  /** Restore the previous SAEs when the call ends (default true, as SAELens). */
  resetSaesEnd?: boolean;
  /**
   * An SAE whose hook point the model lacks is skipped with a warning, as SAELens does, instead
   * of a `ModelError` (default false).
   */
  skipMissingHooks?: boolean;
}

/** Options of {@link HookedSAETransformer.addSae}. */
export interface AddSaeOptions {
  /** Set the SAE's `useErrorTerm` (restored by `resetSaes`). */
  useErrorTerm?: boolean;
  /**
   * When the model has no hook point at the SAE's `hookName`: log a warning and attach nothing,
   * as SAELens does, instead of throwing a `ModelError` (default false).
   */
  skipMissingHooks?: boolean;
}

/** True for a transcoder (its output replaces another hook than the one it reads). */
function isTranscoder(sae: SAE): boolean {
  return !!getSaeArchitecture(sae.cfg.architecture).transcoder;
}

/** Where `sae` is spliced: a transcoder's output hook, else the hook it reads. */
function spliceHookOf(sae: SAE): string | undefined {
  const md = sae.cfg.metadata;
  return (isTranscoder(sae) ? md.hookNameOut : md.hookName) ?? undefined;
}

/** An SAE spliced at a hook: runs `sae.forward` with the model's hooks and cache inside it. */
class SaeSplice implements HookSplice {
  constructor(
    readonly hookName: string,
    readonly sae: SAE,
    /** Transcoders: the input captured at `metadata.hookName` earlier in this forward. */
    readonly captured: Map<string, Tensor> | null = null,
  ) {}

  run(value: Tensor, ctx: GpuHookContext): Tensor {
    const prefix = this.hookName + ".";
    const wanted = SAE_HOOK_NAMES.some((n) => ctx.wants(prefix + n));
    // Values inside the SAE live only during its forward: the cache keeps clones.
    const hooks: HookRunner = wanted
      ? (name, v) => ctx.fireSync(prefix + name, v, (t) => t.clone())
      : noHooks;
    if (!this.captured) return this.sae.forward(value, { hooks });
    return this.#transcode(value, hooks);
  }

  /**
   * Newest SAELens's transcoder wrapper: the output is the transcoder of the captured input;
   * with `useErrorTerm`, plus `hook_sae_error` = original output − the hook-free output, so the
   * model's output is kept while latent edits still act. `hook_sae_output` fires last.
   */
  #transcode(value: Tensor, hooks: HookRunner): Tensor {
    const inputHook = this.sae.cfg.metadata.hookName!;
    const input = this.captured!.get(inputHook);
    if (!input) {
      throw new ModelError(
        `transcoder at ${this.hookName}: its input hook ${inputHook} did not fire before it`,
      );
    }
    this.captured!.delete(inputHook);
    const errorTerm = this.sae.useErrorTerm;
    this.sae.useErrorTerm = false;
    try {
      let out = this.sae.forward(input, { hooks });
      if (errorTerm) {
        const clean = hooks === noHooks ? out : this.sae.forward(input);
        let err = binary("sub", value, clean);
        if (clean !== out) clean.dispose();
        if (hooks !== noHooks) {
          const e = hooks("hook_sae_error", err);
          if (e !== err) err.dispose();
          err = e;
        }
        const sum = binary("add", out, err);
        out.dispose();
        err.dispose();
        out = sum;
      }
      if (hooks === noHooks) return out;
      const o = hooks("hook_sae_output", out);
      if (o !== out) out.dispose();
      return o;
    } finally {
      this.sae.useErrorTerm = errorTerm;
      input.dispose();
    }
  }
}

/** Captures a transcoder's input (a clone) at its input hook, which otherwise fires as usual. */
class CaptureSplice implements HookSplice {
  constructor(
    readonly hookName: string,
    readonly captured: Map<string, Tensor>,
    readonly inner: HookSplice | undefined,
  ) {}

  async run(value: Tensor, ctx: GpuHookContext): Promise<Tensor> {
    const v = ctx.fireSync(this.hookName, value, (t) => t.clone());
    this.captured.get(this.hookName)?.dispose();
    this.captured.set(this.hookName, v.clone());
    return this.inner ? await this.inner.run(v, ctx) : v;
  }
}

/**
 * A {@link HookedTransformer} that can run with SAEs spliced into its forward pass.
 *
 * @example
 * ```ts
 * import { HookedSAETransformer } from "./hooked_sae_transformer.ts";
 * import { SAE } from "../sae/sae.ts";
 * const model = await HookedSAETransformer.fromPretrainedNoProcessing("data/tiny-shakespeare-gpt2");
 * const sae = await SAE.fromConfig({ architecture: "standard", dIn: 128, dSae: 256,
 *   metadata: { hookName: "blocks.1.hook_resid_pre" } });
 * const { cache } = await model.runWithCacheWithSaes(model.toTokens("Hi"), { saes: [sae] });
 * if (!cache.has("blocks.1.hook_resid_pre.hook_sae_acts_post")) throw new Error("unreachable");
 * model.dispose();
 * ```
 */
export class HookedSAETransformer extends HookedTransformer {
  /** Attached SAEs by hook name (SAELens `acts_to_saes`). */
  readonly actsToSaes: Map<string, SAE> = new Map();
  /** Each SAE's `useErrorTerm` before `addSae` changed it. */
  readonly #originalErrorTerm = new Map<SAE, boolean>();

  /** Every hook point name: an attached SAE's hook is replaced by its six `hook_sae_*` names. */
  override hookNames(): string[] {
    return super.hookNames().flatMap((n) =>
      this.actsToSaes.has(n) ? SAE_HOOK_NAMES.map((s) => `${n}.${s}`) : [n]
    );
  }

  /**
   * The run's hook context, with every attached SAE spliced at its hook (a transcoder also
   * captures its input at its input hook).
   */
  protected override hookContext(opts: HookContextOptions): GpuHookContext {
    const splices = new Map<string, HookSplice>();
    const captured = new Map<string, Tensor>();
    for (const [name, sae] of this.actsToSaes) {
      splices.set(name, new SaeSplice(name, sae, isTranscoder(sae) ? captured : null));
    }
    for (const sae of this.actsToSaes.values()) {
      const input = sae.cfg.metadata.hookName;
      if (!isTranscoder(sae) || !input || splices.get(input) instanceof CaptureSplice) continue;
      splices.set(input, new CaptureSplice(input, captured, splices.get(input)));
    }
    return new GpuHookContext({ ...opts, splices });
  }

  /**
   * Attaches `sae` at `sae.cfg.metadata.hookName` (a transcoder at `metadata.hookNameOut`, reading
   * its input at `metadata.hookName`), overwriting an SAE already there. A hook name
   * the model lacks is a `ModelError` listing close matches; with `skipMissingHooks` it logs a
   * warning and attaches nothing, as SAELens does. `useErrorTerm`, when given, is set on the SAE
   * and restored by {@link resetSaes}.
   */
  addSae(sae: SAE, opts: AddSaeOptions = {}): void {
    const hook = spliceHookOf(sae);
    const input = sae.cfg.metadata.hookName;
    if (isTranscoder(sae) && hook && !(input && super.hookNames().includes(input))) {
      throw new ModelError(
        `addSae: the transcoder reads hook ${
          JSON.stringify(input ?? null)
        } (metadata.hook_name), ` +
          `which the model does not have${didYouMean(input ?? "", super.hookNames())}`,
      );
    }
    if (!hook || !(this.actsToSaes.has(hook) || super.hookNames().includes(hook))) {
      if (opts.skipMissingHooks) {
        console.warn(
          `No hook found for ${hook}. Skipping. Check model.hookNames() for valid hooks.`,
        );
        return;
      }
      throw new ModelError(
        `addSae: the model has no hook point ${JSON.stringify(hook ?? null)} ` +
          `(the SAE's metadata.hook_name)${didYouMean(hook ?? "", super.hookNames())}; ` +
          "pass skipMissingHooks: true to skip such SAEs as SAELens does",
      );
    }
    if (sae.gpu !== this.gpu) {
      throw new ModelError(`addSae: the SAE at ${hook} lives on another GPU device than the model`);
    }
    if (opts.useErrorTerm !== undefined) {
      if (!this.#originalErrorTerm.has(sae)) this.#originalErrorTerm.set(sae, sae.useErrorTerm);
      sae.useErrorTerm = opts.useErrorTerm;
    }
    this.actsToSaes.set(hook, sae);
  }

  /**
   * Removes the SAEs at `hookNames` (all when omitted), restoring each one's original
   * `useErrorTerm`; with `prevSaes`, puts `prevSaes[i]` back at `hookNames[i]` (null: nothing).
   * A name without an SAE logs a warning and is skipped, as in SAELens.
   */
  resetSaes(hookNames?: readonly string[], prevSaes?: readonly (SAE | null)[]): void {
    const names = hookNames ?? [...this.actsToSaes.keys()];
    if (prevSaes && prevSaes.length !== names.length) {
      throw new ModelError(
        `resetSaes: ${prevSaes.length} previous SAEs for ${names.length} hook names`,
      );
    }
    // Last first, so that a hook named twice ends with what it had before the first.
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i], sae = this.actsToSaes.get(name);
      if (!sae) {
        console.warn(`No SAE is attached to ${name}. Skipping.`);
        continue;
      }
      const original = this.#originalErrorTerm.get(sae);
      if (original !== undefined) {
        sae.useErrorTerm = original;
        this.#originalErrorTerm.delete(sae);
      }
      const prev = prevSaes?.[i];
      if (prev) this.actsToSaes.set(name, prev);
      else this.actsToSaes.delete(name);
    }
  }

  /**
   * SAELens's `saes()` context manager: attaches `saes`, runs `fn(this)`, then restores the SAEs
   * that were at those hooks before (and every changed useErrorTerm), also when `fn` throws.
   */
  async withSaes<R>(
    saes: readonly SAE[],
    fn: (model: this) => R | Promise<R>,
    opts: Omit<WithSaesOptions, "saes"> = {},
  ): Promise<R> {
    const names: string[] = [];
    const prev: (SAE | null)[] = [];
    try {
      for (const sae of saes) {
        const hook = spliceHookOf(sae) ?? "";
        const attached = this.actsToSaes.get(hook) ?? null;
        this.addSae(sae, {
          useErrorTerm: opts.useErrorTerm,
          skipMissingHooks: opts.skipMissingHooks,
        });
        if (this.actsToSaes.get(hook) === sae) {
          names.push(hook);
          prev.push(attached);
        }
      }
      return await fn(this);
    } finally {
      if (opts.resetSaesEnd ?? true) this.resetSaes(names, prev);
    }
  }

  /** SAELens `run_with_saes`: the forward with `saes` attached for this call. */
  async runWithSaes(
    tokens: TokensInput,
    opts: RunOptions & WithSaesOptions = {},
  ): Promise<Tensor> {
    return await this.withSaes(opts.saes ?? [], (m) => m.forward(tokens, opts), opts);
  }

  /** SAELens `run_with_cache_with_saes`: the cache includes the SAEs' `<hook>.hook_sae_*`. */
  async runWithCacheWithSaes(
    tokens: TokensInput,
    opts: RunWithCacheOptions & WithSaesOptions = {},
  ): Promise<CacheRun> {
    return await this.withSaes(opts.saes ?? [], (m) => m.runWithCache(tokens, opts), opts);
  }

  /** SAELens `run_with_hooks_with_saes`. */
  async runWithHooksWithSaes(
    tokens: TokensInput,
    opts: RunOptions & WithSaesOptions = {},
  ): Promise<Tensor> {
    return await this.withSaes(opts.saes ?? [], (m) => m.runWithHooks(tokens, opts), opts);
  }
}
