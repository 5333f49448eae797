/**
 * The pipeline's config: SAELens's `LanguageModelSAERunnerConfig` (one SAE, `sae` + `hook_name`)
 * or its `MultiSAETrainingRunnerConfig` (several SAEs from one forward: `saes` maps names to SAE
 * configs, `hook_names` maps the same names to hook points or gives one hook for all,
 * `hook_head_indices` likewise), read from a dict with SAELens's snake_case keys, a YAML/JSON
 * file, and `--field value` overrides.
 * @module
 */

import { ConfigError, describeValue } from "../config/errors.ts";
import { loadConfigFile } from "../config/load.ts";
import { isPlainObject, snakeizeKeys } from "../config/naming.ts";
import { formatPythonExp, pythonFloatRepr } from "../config/pyformat.ts";
import {
  type RunnerConfig,
  runnerConfigFromDict,
  type RunnerConfigOptions,
  runnerConfigToDict,
} from "./runner_config.ts";
import {
  trainingConfigFromDict,
  trainingConfigToDict,
  type TrainingSAEConfig,
} from "../sae/config.ts";
import { findArchitectureUnit } from "../sae/architectures/mod.ts";

/** One SAE of a run. */
export interface SaeSpec {
  /** Its name (the key of `saes`; for a one-SAE config, the hook name). */
  id: string;
  /** Its training config. */
  sae: TrainingSAEConfig;
  /** The hook it reads. */
  hookName: string;
  /** SAELens `hook_head_index`. */
  hookHeadIndex: number | null;
  /**
   * A transcoder's output hook (its `metadata.hook_name_out`): the target it learns to predict,
   * captured from the same forward as its input. Null for SAEs.
   */
  hookNameOut: string | null;
}

/** A run: the shared runner settings and the SAEs it trains. */
export interface PipelineConfig {
  /** Runner settings (for a multi-SAE config, `sae`/`hook_name` are the first SAE's). */
  runner: RunnerConfig;
  /** The SAEs, in config order. */
  saes: SaeSpec[];
  /** True for the multi-SAE form (one folder per SAE in checkpoints and outputs). */
  multi: boolean;
}

const MULTI_KEYS = ["saes", "hook_names", "hook_head_indices"] as const;

/**
 * Reads a run config (see the module doc). Unknown keys, bad values and SAEs that share a hook
 * but disagree on `d_in` are {@link ConfigError}s naming the key.
 *
 * @example
 * ```ts
 * import { pipelineConfigFromDict } from "./config.ts";
 * const one = pipelineConfigFromDict({
 *   sae: { architecture: "topk", d_in: 128, d_sae: 512, k: 8 },
 *   hook_name: "blocks.2.hook_resid_pre",
 * }, { runId: "x" });
 * if (one.multi || one.saes[0].id !== "blocks.2.hook_resid_pre") throw new Error();
 * const two = pipelineConfigFromDict({
 *   saes: { a: { architecture: "topk", d_in: 128, d_sae: 512, k: 8 }, b: { architecture: "standard", d_in: 128, d_sae: 256 } },
 *   hook_names: "blocks.2.hook_resid_pre",
 * }, { runId: "x" });
 * if (!two.multi || two.saes.length !== 2 || two.saes[1].hookName !== "blocks.2.hook_resid_pre") throw new Error();
 * ```
 */
export function pipelineConfigFromDict(
  obj: Record<string, unknown>,
  options: RunnerConfigOptions = {},
): PipelineConfig {
  const where = options.where ?? "runner config";
  if (!isPlainObject(obj)) {
    throw new ConfigError(`${where} is ${describeValue(obj)}, expected a JSON object`);
  }
  const dict = snakeizeKeys(obj, { context: where });
  if (!("saes" in dict)) {
    for (const k of MULTI_KEYS) {
      if (k in dict) throw new ConfigError(`${where}: ${k} is only used with saes (several SAEs)`);
    }
    const runner = runnerConfigFromDict(dict, options);
    return {
      runner,
      saes: [{
        id: runner.hookName,
        sae: runner.sae,
        hookName: runner.hookName,
        hookHeadIndex: runner.hookHeadIndex,
        hookNameOut: hookNameOutOf(runner.sae, `${where}: sae`),
      }],
      multi: false,
    };
  }
  const { saes, hook_names: hookNames, hook_head_indices: heads, ...rest } = dict;
  if ("sae" in rest || "hook_name" in rest || "hook_head_index" in rest) {
    throw new ConfigError(
      `${where}: give either sae + hook_name (one SAE) or saes + hook_names (several), not both`,
    );
  }
  if (!isPlainObject(saes) || Object.keys(saes).length === 0) {
    throw new ConfigError(
      `${where}: saes is ${describeValue(saes)}, expected an object mapping names to SAE configs`,
    );
  }
  const names = Object.keys(saes);
  for (const n of names) {
    if (!/^[A-Za-z0-9_.\-]+$/.test(n) || n === "." || n === "..") {
      throw new ConfigError(
        `${where}: SAE name ${JSON.stringify(n)} must be letters, digits, '_', '-' or '.' ` +
          "(it names a folder)",
      );
    }
  }
  const hookOf = (n: string): string => {
    if (typeof hookNames === "string") return hookNames;
    if (isPlainObject(hookNames) && typeof hookNames[n] === "string") return hookNames[n] as string;
    throw new ConfigError(
      `${where}: hook_names must be one hook name or map every SAE name to one (missing ${n})`,
    );
  };
  if (isPlainObject(hookNames)) {
    const extra = Object.keys(hookNames).filter((k) => !names.includes(k));
    if (extra.length > 0) {
      throw new ConfigError(`${where}: hook_names names unknown SAEs: ${extra.join(", ")}`);
    }
  }
  const headOf = (n: string): number | null => {
    const v = heads === undefined || heads === null
      ? null
      : typeof heads === "number"
      ? heads
      : isPlainObject(heads)
      ? (heads[n] ?? null)
      : undefined;
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw new ConfigError(
        `${where}: hook_head_indices is ${describeValue(heads)}, expected null, a head index or ` +
          "a map of SAE names to head indices",
      );
    }
    return v;
  };
  const specs: SaeSpec[] = names.map((n) => {
    const s = saes[n];
    if (!isPlainObject(s)) {
      throw new ConfigError(`${where}: saes.${n} is ${describeValue(s)}, expected an SAE config`);
    }
    const sae = trainingConfigFromDict(s, { where: `${where}: saes.${n}` });
    return {
      id: n,
      sae,
      hookName: hookOf(n),
      hookHeadIndex: headOf(n),
      hookNameOut: hookNameOutOf(sae, `${where}: saes.${n}`),
    };
  });
  const seen = new Map<string, SaeSpec>();
  for (const s of specs) {
    const key = `${s.hookName}#${s.hookHeadIndex}`;
    const other = seen.get(key);
    if (other && other.sae.dIn !== s.sae.dIn) {
      throw new ConfigError(
        `${where}: SAEs ${other.id} and ${s.id} share hook ${s.hookName} but have d_in ` +
          `${other.sae.dIn} and ${s.sae.dIn}`,
      );
    }
    seen.set(key, s);
  }
  const first = specs[0];
  const runner = runnerConfigFromDict({
    ...rest,
    sae: saes[names[0]] as Record<string, unknown>,
    hook_name: first.hookName,
    hook_head_index: first.hookHeadIndex,
  }, options);
  if (rest.logger === undefined || !("run_name" in (rest.logger as object))) {
    const archs = [...new Set(specs.map((s) => s.sae.architecture))].sort().join("+");
    runner.logger.runName = `multi-${archs}-N${specs.length}-LR-${pythonFloatRepr(runner.lr)}` +
      `-Tokens-${formatPythonExp(runner.trainingTokens, 3, 3)}`;
  }
  return { runner, saes: specs, multi: true };
}

/**
 * A transcoder's output hook from its config's `metadata.hook_name_out` (a ConfigError when a
 * transcoder has none); null for architectures that reconstruct their input.
 */
function hookNameOutOf(sae: TrainingSAEConfig, where: string): string | null {
  const out = sae.metadata?.hookNameOut ?? null;
  if (findArchitectureUnit(sae.architecture)?.training?.transcoder) {
    if (typeof out !== "string" || out === "") {
      throw new ConfigError(
        `${where}: a ${sae.architecture} needs metadata.hook_name_out, the hook whose ` +
          "activations it predicts (e.g. blocks.0.hook_mlp_out)",
      );
    }
    return out;
  }
  return null;
}

/** The `runner_cfg.json` dict of a run (SAELens's keys; `saes`/`hook_names` for several SAEs). */
export function pipelineConfigToDict(cfg: PipelineConfig): Record<string, unknown> {
  const dict = runnerConfigToDict(cfg.runner);
  if (!cfg.multi) return dict;
  const { sae: _sae, hook_name: _h, hook_head_index: _i, ...rest } = dict;
  return {
    saes: Object.fromEntries(cfg.saes.map((s) => [s.id, trainingConfigToDict(s.sae)])),
    hook_names: Object.fromEntries(cfg.saes.map((s) => [s.id, s.hookName])),
    hook_head_indices: Object.fromEntries(cfg.saes.map((s) => [s.id, s.hookHeadIndex])),
    ...rest,
  };
}

/**
 * Parses one `--field value` override: JSON when it parses (numbers, true/false, null, lists,
 * objects), else the string itself; `none` means null (SAELens's CLI spelling).
 *
 * @example
 * ```ts
 * import { parseOverrideValue } from "./config.ts";
 * if (parseOverrideValue("3e-4") !== 3e-4 || parseOverrideValue("gpt2") !== "gpt2") throw new Error();
 * if (parseOverrideValue("none") !== null || parseOverrideValue("[2, 8]")[1] !== 8) throw new Error();
 * ```
 */
// deno-lint-ignore no-explicit-any
export function parseOverrideValue(text: string): any {
  if (text === "none" || text === "None") return null;
  if (text === "True") return true;
  if (text === "False") return false;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Applies overrides `{ "lr": "1e-4", "sae.k": "64", "logger.log_to_wandb": "false" }` to a
 * config dict (dotted keys reach nested objects; for several SAEs, `saes.<name>.k`).
 */
export function applyOverrides(
  dict: Record<string, unknown>,
  overrides: Record<string, string>,
): Record<string, unknown> {
  const out = structuredClone(dict);
  for (const [path, text] of Object.entries(overrides)) {
    const parts = path.split(".");
    let node: Record<string, unknown> = out;
    for (const p of parts.slice(0, -1)) {
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = parseOverrideValue(text);
  }
  return out;
}

/** Reads a YAML/JSON run config file, applies `--field value` overrides, and parses it. */
export async function loadPipelineConfig(
  path: string,
  overrides: Record<string, string> = {},
  options: RunnerConfigOptions = {},
): Promise<PipelineConfig> {
  const dict = await loadConfigFile(path);
  return pipelineConfigFromDict(applyOverrides(dict, overrides), { where: path, ...options });
}
