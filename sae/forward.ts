/**
 * The SAE forward pass on row matrices (spec §3.0): input layout (hook_z flattening), hook
 * points with ownership hand-over, encode, decode, the error term. Used by the `SAE` class; all
 * functions only record GPU work.
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { type HookRunner, noHooks } from "../gpu/hooks.ts";
import type { SAEConfig } from "./config_types.ts";
import type { SaeArchitectureImpl } from "./architectures/mod.ts";
import { outputWidth } from "./architectures/mod.ts";
import { saeNormalizeIn, saeNormalizeOut } from "./kernels/normalize.ts";
import { ew, linear } from "./_ops.ts";
import { SaeError } from "./errors.ts";

/** The six hook points of an SAE, in firing order of `forward`. */
export const SAE_HOOK_NAMES = [
  "hook_sae_input",
  "hook_sae_acts_pre",
  "hook_sae_acts_post",
  "hook_sae_recons",
  "hook_sae_error",
  "hook_sae_output",
] as const;

/** One of {@link SAE_HOOK_NAMES}. */
export type SaeHookName = typeof SAE_HOOK_NAMES[number];

/** What the pass functions need of an SAE. */
export interface SaeCore {
  cfg: SAEConfig;
  impl: SaeArchitectureImpl;
  params: Readonly<Record<string, Tensor>>;
}

/** How an input maps to rows: leading dims, row count, and d_head for hook_z inputs. */
export interface RowLayout {
  lead: number[];
  n: number;
  /** hook_z inputs `[..., heads, d_head]`: d_head, to reshape the output back; else null. */
  dHead: number | null;
}

/** A tensor that owns `t`'s buffer under another shape (`t` must not be used afterwards). */
export function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  if (shape.reduce((a, b) => a * b, 1) !== t.size) {
    throw new SaeError(`cannot reshape ${t} to [${shape.join(", ")}]`);
  }
  return new Tensor(t.gpu, t.buffer, [...shape], t.dtype, t.offset, t.owned);
}

/**
 * Reads `x`'s layout: `[..., dIn]`, or for hook_z SAEs also `[..., heads, d_head]` with
 * heads·d_head = dIn.
 */
export function inputLayout(cfg: SAEConfig, x: Tensor, op: string): RowLayout {
  if (x.dtype !== "f32" || x.disposed) {
    throw new SaeError(`${op}: x must be a live f32 tensor, got ${x}`);
  }
  const s = x.shape, r = s.length;
  if (
    cfg.reshapeActivations === "hook_z" && r >= 3 && s[r - 1] !== cfg.dIn &&
    s[r - 2] * s[r - 1] === cfg.dIn
  ) {
    const lead = s.slice(0, -2);
    return { lead, n: lead.reduce((a, b) => a * b, 1), dHead: s[r - 1] };
  }
  if (r < 1 || s[r - 1] !== cfg.dIn) {
    const z = cfg.reshapeActivations === "hook_z"
      ? ` or [..., heads, d_head] with heads·d_head = ${cfg.dIn}`
      : "";
    throw new SaeError(
      `${op}: x has shape [${s.join(", ")}], expected [..., ${cfg.dIn}] (d_in)${z}`,
    );
  }
  const lead = s.slice(0, -1);
  return { lead, n: lead.reduce((a, b) => a * b, 1), dHead: null };
}

/**
 * Passes the row matrix `t` through hook `name` (hooks see it as `[...lead, d]`). Returns what
 * flows on: `t`, or the hook's replacement (then `t` is disposed if `owned`).
 */
export function passHook(
  runner: HookRunner,
  name: string,
  t: Tensor,
  lead: readonly number[],
  owned: boolean,
): Tensor {
  if (runner === noHooks) return t;
  const d = t.shape[1];
  const view = t.reshape([...lead, d]);
  const r = runner(name, view);
  if (r === view || (r.buffer === t.buffer && r.offset === t.offset && r.size === t.size)) {
    return t;
  }
  const want = [...lead, d];
  if (
    r.dtype !== "f32" || r.disposed || r.shape.length !== want.length ||
    r.shape.some((v, i) => v !== want[i])
  ) {
    throw new SaeError(
      `hook ${name}: the replacement is ${r}${r.disposed ? " (disposed)" : ""}, expected a ` +
        `live f32 tensor of shape [${want.join(", ")}]`,
    );
  }
  if (owned) t.dispose();
  return reshapeOwned(r, [t.shape[0], d]);
}

/** Run-time normalisation mode (expected_average_only_in is not a run-time op). */
export function runtimeMode(cfg: SAEConfig): "none" | "constant_norm_rescale" | "layer_norm" {
  const m = cfg.normalizeActivations;
  return m === "constant_norm_rescale" || m === "layer_norm" ? m : "none";
}

/** Encode rows `x [n, dIn]`: returns acts `[n, dSae]` and the normalisation state (or null). */
export function encodeRows(
  core: SaeCore,
  x: Tensor,
  lead: readonly number[],
  runner: HookRunner,
): { acts: Tensor; state: Tensor | null } {
  const { cfg, impl, params } = core;
  const xin = passHook(runner, "hook_sae_input", x, lead, false);
  const mode = runtimeMode(cfg);
  const bias = !impl.transcoder && cfg.applyBDecToInput ? params.b_dec : null;
  let xt = xin, state: Tensor | null = null;
  if (mode !== "none" || bias) {
    ({ x: xt, state } = saeNormalizeIn(xin, mode, bias));
    if (xin !== x) xin.dispose();
  }
  const acts = impl.encode({
    cfg,
    params,
    x: xt,
    hook: (name, t) => passHook(runner, name, t, lead, true),
    hooksActive: runner !== noHooks,
  });
  if (xt !== x) xt.dispose();
  if (acts.rank !== 2 || acts.shape[0] !== x.shape[0] || acts.shape[1] !== cfg.dSae) {
    throw new SaeError(
      `${cfg.architecture} encode returned ${acts}, expected [${x.shape[0]}, ${cfg.dSae}]`,
    );
  }
  return { acts, state };
}

/** Decode rows `f [n, dSae]` → reconstruction `[n, dOut]` (after hook_sae_recons, denormalised). */
export function decodeRows(
  core: SaeCore,
  f: Tensor,
  state: Tensor | null,
  lead: readonly number[],
  runner: HookRunner,
): Tensor {
  const { cfg, impl, params } = core;
  const raw = impl.decode ? impl.decode(cfg, params, f) : linear(f, params.W_dec, params.b_dec);
  const y = passHook(runner, "hook_sae_recons", raw, lead, true);
  const mode = runtimeMode(cfg);
  if (impl.transcoder || mode === "none") return y;
  if (!state) {
    throw new SaeError(
      `decode: normalize_activations is ${mode}, which needs the per-token state of the ` +
        `preceding encode of the same tokens (call encode first, as in SAELens)`,
    );
  }
  const out = saeNormalizeOut(y, mode, state);
  y.dispose();
  return out;
}

/** `forward` on rows: output `[n, dOut]` and the feature acts `[n, dSae]` (both owned). */
export function forwardRows(
  core: SaeCore,
  x: Tensor,
  lead: readonly number[],
  runner: HookRunner,
  useErrorTerm: boolean,
): { output: Tensor; acts: Tensor } {
  const { cfg, impl, params } = core;
  if (useErrorTerm && impl.transcoder) {
    throw new SaeError(
      `forward: useErrorTerm is not available for ${cfg.architecture} (a transcoder's output ` +
        `is a different activation than its input)`,
    );
  }
  const { acts, state } = encodeRows(core, x, lead, runner);
  let out = decodeRows(core, acts, state, lead, runner);
  if (impl.skip) {
    const skip = impl.skip(cfg, params, x);
    const sum = ew("add", out, skip);
    skip.dispose();
    out.dispose();
    out = sum;
  }
  if (useErrorTerm) {
    // The clean reconstruction runs with every hook replaced by the identity (§3.0); without
    // hooks it is the reconstruction just computed.
    let clean = out;
    if (runner !== noHooks) {
      const c = encodeRows(core, x, lead, noHooks);
      clean = decodeRows(core, c.acts, c.state, lead, noHooks);
      c.acts.dispose();
      c.state?.dispose();
    }
    let err = ew("sub", x, clean);
    if (clean !== out) clean.dispose();
    err = passHook(runner, "hook_sae_error", err, lead, true);
    const sum = ew("add", out, err);
    out.dispose();
    err.dispose();
    out = sum;
  }
  state?.dispose();
  if (!impl.transcoder) out = passHook(runner, "hook_sae_output", out, lead, true);
  return { output: out, acts };
}

/** The shape `forward`/`decode` return for rows of width `outputWidth` under `layout`. */
export function outputShape(core: SaeCore, layout: RowLayout): number[] {
  const d = outputWidth(core.cfg, core.impl);
  if (layout.dHead !== null && d % layout.dHead === 0) {
    return [...layout.lead, d / layout.dHead, layout.dHead];
  }
  return [...layout.lead, d];
}
