/**
 * `pipeline.ts eval`: SAELens's batch eval CLI (`python -m sae_lens.evals`, spec §6.4). It
 * evaluates SAEs — one SAE folder, a folder of SAE folders, registry releases, or the
 * `(release, sae_id)` pairs of the registry whose names fully match `--release-regex` and
 * `--sae-regex` — on each dataset and context size with every metric on
 * (`get_eval_everything_config`), and writes, like SAELens's `process_results`:
 *
 * - one JSON per (SAE, context size, dataset): `{unique_id}_{ctx}_{dataset}.json` (`/` → `_`),
 * - `all_eval_results.json` (the list) and `all_eval_results.csv` (one row per result, nested
 *   keys flattened with `.` as `pandas.json_normalize` does),
 *
 * with NaN written as −1. Each result holds `unique_id` (`{release}-{sae_id}`), `sae_set`,
 * `sae_id`, `eval_cfg` (context size, dataset and the eval config), `metrics`,
 * `feature_metrics` and `sae_cfg`. A local folder's SAE gets `sae_set` = its parent folder's
 * name and `sae_id` = its own.
 *
 * The model is the SAE's (`metadata.model_name` with its `model_from_pretrained_kwargs`, loaded
 * once per model), or `--model`. Special tokens are ignored as in SAELens. Unlike SAELens: the
 * dataset is read in order (SAELens shuffles it with seed 42 first); the `--compute-*` switches
 * are accepted and ignored (SAELens's batch runner also computes everything); an SAE that fails
 * is reported and the others still run and are written, then the command fails naming it.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { getGpu } from "../gpu/device.ts";
import type { HubOptions } from "../hub/env.ts";
import { writeFolderAtomic } from "../io/atomic.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import { saeConfigToDict } from "../sae/config.ts";
import { getPretrainedDirectory, getPretrainedRelease } from "../sae/pretrained.ts";
import { SAE } from "../sae/sae.ts";
import { basename, dirname, join } from "../util/path.ts";
import { didYouMean } from "../util/suggest.ts";
import { SaeflowError } from "../util/errors.ts";
import { evalConfigToDict, EvalError, getEvalEverythingConfig } from "../evals/config.ts";
import { runEvals } from "../evals/run_evals.ts";
import { ActivationsStore } from "./activations_store.ts";

/** One line of usage of `pipeline.ts eval`. */
export const EVAL_USAGE =
  "pipeline.ts eval <sae-folder | folder-of-saes | release>... [--release-regex R --sae-regex S] " +
  "[--dataset D...] [--context-size N...] [--batch-size-prompts 16] " +
  "[--n-eval-reconstruction-batches 10] [--n-eval-sparsity-variance-batches 1] [--model M] " +
  "[--output-dir eval_results] [--verbose]";

/** Parsed arguments of `pipeline.ts eval`. */
export interface EvalCommandArgs {
  /** SAE folders, folders of SAE folders, or registry release names. */
  targets: string[];
  /** Registry releases whose name fully matches (null: none unless `targets` name them). */
  releaseRegex: string | null;
  /** SAE ids that fully match (default: all). */
  saeRegex: string | null;
  /** Datasets (default `Skylion007/openwebtext`, as SAELens's CLI). */
  datasets: string[];
  /** Context sizes (default 128). */
  contextSizes: number[];
  /** Prompts per batch (default 16). */
  batchSizePrompts: number;
  /** Default 10. */
  nEvalReconstructionBatches: number;
  /** Default 1. */
  nEvalSparsityVarianceBatches: number;
  /** Model to load instead of each SAE's `metadata.model_name`. */
  model: string | null;
  /** Where the results go (default `eval_results`). */
  outputDir: string;
  /** Per-batch progress. */
  verbose: boolean;
  /** `--help`. */
  help: boolean;
  /** `--compute-*` switches given (accepted and ignored, as SAELens's batch runner). */
  ignoredSwitches: string[];
}

const INT_FLAGS: Record<string, keyof EvalCommandArgs> = {
  "batch-size-prompts": "batchSizePrompts",
  "n-eval-reconstruction-batches": "nEvalReconstructionBatches",
  "n-eval-sparsity-variance-batches": "nEvalSparsityVarianceBatches",
};
const STRING_FLAGS: Record<string, keyof EvalCommandArgs> = {
  "release-regex": "releaseRegex",
  "sae-regex": "saeRegex",
  "output-dir": "outputDir",
  "model": "model",
};
const LIST_FLAGS: Record<string, "datasets" | "contextSizes"> = {
  "dataset": "datasets",
  "datasets": "datasets",
  "context-size": "contextSizes",
  "ctx-lens": "contextSizes",
};
const SWITCHES = [
  "compute-kl",
  "compute-ce-loss",
  "compute-l2-norms",
  "compute-sparsity-metrics",
  "compute-variance-metrics",
  "compute-featurewise-density-statistics",
  "compute-featurewise-weight-based-metrics",
  "dataset-trust-remote-code",
];

function positiveInt(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new EvalError(
      `--${flag}: expected a whole number >= 1, got ${JSON.stringify(text ?? null)}`,
    );
  }
  return n;
}

/**
 * Parses the arguments after `eval` (flags in SAELens's snake_case spelling work too:
 * `--batch_size_prompts`, `--ctx_lens`, `--datasets`).
 *
 * @example
 * ```ts
 * import { parseEvalArgs } from "./eval_command.ts";
 * const a = parseEvalArgs(["my_sae", "--dataset", "data.txt", "--ctx_lens", "64", "128"]);
 * if (a.targets[0] !== "my_sae" || a.contextSizes.join() !== "64,128") throw new Error();
 * if (a.batchSizePrompts !== 16 || a.datasets[0] !== "data.txt") throw new Error();
 * ```
 */
export function parseEvalArgs(args: readonly string[]): EvalCommandArgs {
  const out: EvalCommandArgs = {
    targets: [],
    releaseRegex: null,
    saeRegex: null,
    datasets: [],
    contextSizes: [],
    batchSizePrompts: 16,
    nEvalReconstructionBatches: 10,
    nEvalSparsityVarianceBatches: 1,
    model: null,
    outputDir: "eval_results",
    verbose: false,
    help: false,
    ignoredSwitches: [],
  };
  const known = [
    ...Object.keys(INT_FLAGS),
    ...Object.keys(STRING_FLAGS),
    ...Object.keys(LIST_FLAGS),
    ...SWITCHES,
    "verbose",
    "help",
  ];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-") || arg === "-") {
      out.targets.push(arg);
      continue;
    }
    if (arg === "-h") {
      out.help = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replaceAll("_", "-");
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const value = () => {
      if (inline !== undefined) return inline;
      const v = args[i + 1];
      if (v === undefined || v.startsWith("--")) {
        throw new EvalError(`--${flag}: expected a value`);
      }
      i++;
      return v;
    };
    if (!arg.startsWith("--") || !known.includes(flag)) {
      throw new EvalError(
        `eval: unknown option ${arg}${didYouMean(flag, known)}; usage: ${EVAL_USAGE}`,
      );
    }
    if (flag === "help") out.help = true;
    else if (flag === "verbose") out.verbose = true;
    else if (SWITCHES.includes(flag)) out.ignoredSwitches.push(`--${flag}`);
    else if (flag in INT_FLAGS) {
      (out as unknown as Record<string, unknown>)[INT_FLAGS[flag]] = positiveInt(flag, value());
    } else if (flag in STRING_FLAGS) {
      (out as unknown as Record<string, unknown>)[STRING_FLAGS[flag]] = value();
    } else {
      // nargs="+" as argparse: values up to the next option.
      const key = LIST_FLAGS[flag];
      const values = inline !== undefined ? [inline] : [];
      while (inline === undefined && i + 1 < args.length && !args[i + 1].startsWith("--")) {
        values.push(args[++i]);
      }
      if (values.length === 0) throw new EvalError(`--${flag}: expected a value`);
      for (const v of values) {
        if (key === "contextSizes") out.contextSizes.push(positiveInt(flag, v));
        else out.datasets.push(v);
      }
    }
  }
  if (out.datasets.length === 0) out.datasets.push("Skylion007/openwebtext");
  if (out.contextSizes.length === 0) out.contextSizes.push(128);
  return out;
}

/** One SAE to evaluate. */
type SaeTarget =
  | { kind: "folder"; path: string; saeSet: string; saeId: string }
  | { kind: "release"; release: string; saeId: string };

function fullMatch(pattern: string, flag: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, "u");
  } catch (err) {
    throw new EvalError(
      `${flag}: ${JSON.stringify(pattern)} is not a valid regular expression (${
        (err as Error).message
      })`,
    );
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The SAEs the arguments name, in order, without duplicates: folders (one SAE, or the SAE
 * folders inside, sorted), releases, and the registry pairs matching `--release-regex` /
 * `--sae-regex` (full matches, as SAELens's `get_saes_from_regex`).
 */
export async function resolveEvalTargets(a: EvalCommandArgs): Promise<SaeTarget[]> {
  const saeRe = a.saeRegex === null ? null : fullMatch(a.saeRegex, "--sae-regex");
  const out: SaeTarget[] = [];
  const seen = new Set<string>();
  const add = (t: SaeTarget) => {
    const key = t.kind === "folder" ? `f:${t.path}` : `r:${t.release}\0${t.saeId}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(t);
    }
  };
  const fromRelease = (release: string) => {
    const lookup = getPretrainedRelease(release)!;
    for (const id of Object.keys(lookup.saesMap)) {
      if (!saeRe || saeRe.test(id)) add({ kind: "release", release, saeId: id });
    }
  };
  for (const t of a.targets) {
    if (await isDir(t)) {
      const path = t.replace(/\/+$/, "") || "/";
      if (await isFile(join(path, "cfg.json"))) {
        add({ kind: "folder", path, saeSet: basename(dirname(path)), saeId: basename(path) });
        continue;
      }
      const subs: string[] = [];
      for await (const e of Deno.readDir(path)) {
        if (e.isDirectory && await isFile(join(path, e.name, "cfg.json"))) subs.push(e.name);
      }
      if (subs.length === 0) {
        throw new EvalError(
          `eval: ${path} holds no SAE (no cfg.json in it or in any folder inside it)`,
        );
      }
      for (const s of subs.sort()) {
        if (!saeRe || saeRe.test(s)) {
          add({ kind: "folder", path: join(path, s), saeSet: basename(path), saeId: s });
        }
      }
      continue;
    }
    if (getPretrainedRelease(t)) {
      fromRelease(t);
      continue;
    }
    throw new EvalError(
      `eval: ${JSON.stringify(t)} is neither a folder nor a release of the pretrained registry` +
        didYouMean(t, getPretrainedDirectory().keys()),
    );
  }
  if (a.releaseRegex !== null) {
    const re = fullMatch(a.releaseRegex, "--release-regex");
    for (const release of getPretrainedDirectory().keys()) {
      if (re.test(release)) fromRelease(release);
    }
  } else if (a.targets.length === 0 && a.saeRegex !== null) {
    throw new EvalError(
      "eval: --sae-regex needs --release-regex (or releases / folders to filter)",
    );
  }
  if (out.length === 0) {
    throw new EvalError(
      a.targets.length === 0 && a.releaseRegex === null
        ? `eval: no SAEs given; usage: ${EVAL_USAGE}`
        : "eval: no SAEs matched the given releases, folders and patterns",
    );
  }
  return out;
}

/** SAELens `replace_nans_with_negative_one`. */
function nanToMinusOne(v: unknown): unknown {
  if (typeof v === "number") return Number.isNaN(v) ? -1 : v;
  if (Array.isArray(v)) return v.map(nanToMinusOne);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nanToMinusOne(x)]));
  }
  return v;
}

/** JSON as Python's `json.dump(indent=2)` writes it (±Infinity as `Infinity`). */
function pythonJson(value: unknown): string {
  const marker = "@@saeflow-nonfinite:";
  return JSON.stringify(
    value,
    (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? marker + String(v) : v),
    2,
  ).replaceAll(new RegExp(`"${marker}([^"]*)"`, "g"), "$1");
}

/** `pandas.json_normalize`: nested objects flattened with `.`; lists stay values. */
function flattenRecord(v: Record<string, unknown>, prefix = "", out: Record<string, unknown> = {}) {
  for (const [k, x] of Object.entries(v)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (x !== null && typeof x === "object" && !Array.isArray(x)) {
      flattenRecord(x as Record<string, unknown>, key, out);
    } else out[key] = x;
  }
  return out;
}

function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? "inf" : "-inf";
  if (typeof v === "string") return `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${
    Object.entries(v as object).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")
  }}`;
}

function csvCell(v: unknown): string {
  let s: string;
  if (v === null || v === undefined) s = "";
  else if (typeof v === "string") s = v;
  else if (typeof v === "number" || typeof v === "boolean" || Array.isArray(v)) s = pyRepr(v);
  else s = pyRepr(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * `pandas.json_normalize(results).to_csv(index=False)`: nested keys joined with `.`, columns in
 * order of first appearance, lists and booleans as Python writes them.
 *
 * @example
 * ```ts
 * import { resultsToCsv } from "./eval_command.ts";
 * const csv = resultsToCsv([{ id: "a", metrics: { sparsity: { l0: 3 } }, f: [1, 2] }]);
 * if (csv !== 'id,metrics.sparsity.l0,f\na,3,"[1, 2]"\n') throw new Error(csv);
 * ```
 */
export function resultsToCsv(results: readonly Record<string, unknown>[]): string {
  const rows = results.map((r) => flattenRecord(r));
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
    }
  }
  const lines = [columns.map(csvCell).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(","));
  return lines.join("\n") + "\n";
}

/**
 * File name of one result (SAELens: `{unique_id}_{ctx}_{dataset}.json` with `/` → `_`), kept
 * inside the output folder (no separators, no leading dots, no control characters).
 *
 * @example
 * ```ts
 * import { resultFileName } from "./eval_command.ts";
 * const name = resultFileName("gpt2-small-res-jb-blocks.8.hook_resid_pre", 128, "Skylion007/openwebtext");
 * if (name !== "gpt2-small-res-jb-blocks.8.hook_resid_pre_128_Skylion007_openwebtext.json") throw new Error();
 * ```
 */
export function resultFileName(uniqueId: string, contextSize: number, dataset: string): string {
  const name = `${uniqueId}_${contextSize}_${dataset}.json`.replaceAll("/", "_");
  // Confined to the output folder: no separators, no parent references, no control characters.
  const clean = Array.from(name, (c) => (c.charCodeAt(0) < 32 || c === "\\" ? "_" : c)).join("");
  return clean.replace(/^\.+/, "_");
}

/** Options of {@link runEvalCommand}. */
export interface EvalCommandOptions {
  /** The device (default: `getGpu()`). */
  gpu?: Gpu;
  /** Hub settings (registry SAEs, models, hub datasets). */
  hub?: HubOptions;
  /** Receives the output text (default: stderr for progress, stdout for the summary). */
  write?: (text: string) => void;
  /** Redraw the progress line in place (default: stderr is a terminal). */
  isTTY?: boolean;
}

/** What {@link runEvalCommand} returns. */
export interface EvalCommandResult {
  /** Every result written (SAELens's dicts, NaN as −1). */
  results: Record<string, unknown>[];
  /** The files written. */
  files: { individualJsons: string[]; combinedJson: string; csv: string };
}

/**
 * Runs `pipeline.ts eval` (see the module doc) and writes the result files into
 * `--output-dir` in one atomic step (other files there are kept). Throws an {@link EvalError}
 * for bad arguments, and after writing the other results when an SAE failed.
 */
export async function runEvalCommand(
  args: readonly string[],
  options: EvalCommandOptions = {},
): Promise<EvalCommandResult | null> {
  const a = parseEvalArgs(args);
  const encoder = new TextEncoder();
  const write = options.write ?? ((t: string) => Deno.stderr.writeSync(encoder.encode(t)));
  if (a.help) {
    write(`usage: ${EVAL_USAGE}\n`);
    return null;
  }
  const targets = await resolveEvalTargets(a);
  if (a.ignoredSwitches.length > 0) {
    write(
      `note: ${a.ignoredSwitches.join(" ")} ignored: the batch eval computes every metric ` +
        "(as SAELens's)\n",
    );
  }
  const gpu = options.gpu ?? await getGpu();
  const tty = options.isTTY ?? (options.write ? false : Deno.stderr.isTerminal());
  const cfg = getEvalEverythingConfig({
    batchSizePrompts: a.batchSizePrompts,
    nEvalReconstructionBatches: a.nEvalReconstructionBatches,
    nEvalSparsityVarianceBatches: a.nEvalSparsityVarianceBatches,
  });
  const total = targets.length * a.contextSizes.length * a.datasets.length;
  const results: Record<string, unknown>[] = [];
  const failures: string[] = [];
  let model: HookedTransformer | null = null;
  let modelKey: string | null = null;
  let done = 0;
  const progress = (label: string, detail: string) => {
    const width = 20, filled = Math.round((done / total) * width);
    const line = `eval [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ` +
      `${label}${detail ? ` ${detail}` : ""}`;
    write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  };
  try {
    for (const t of targets) {
      const saeSet = t.kind === "folder" ? t.saeSet : t.release;
      const label = `${saeSet}/${t.saeId}`;
      let sae: SAE | null = null;
      try {
        progress(label, "loading");
        sae = t.kind === "folder"
          ? await SAE.loadFromDisk(t.path, { gpu })
          : await SAE.fromPretrained(t.release, t.saeId, { gpu, ...options.hub });
        const md = sae.cfg.metadata;
        const key = a.model ?? JSON.stringify([md.modelName, md.modelFromPretrainedKwargs ?? {}]);
        if (key !== modelKey || model === null) {
          model?.dispose();
          model = null;
          modelKey = null;
          model = a.model !== null
            ? await HookedTransformer.fromPretrainedNoProcessing(a.model, { ...options.hub, gpu })
            : await HookedTransformer.fromPretrainedForSae(sae, { ...options.hub, gpu });
          modelKey = key;
        }
        for (const ctx of a.contextSizes) {
          for (const dataset of a.datasets) {
            const store = ActivationsStore.fromSae({
              model,
              sae,
              dataset,
              contextSize: ctx,
              storeBatchSizePrompts: a.batchSizePrompts,
              hub: options.hub,
            });
            try {
              const { metrics, featureMetrics } = await runEvals(sae, store, model, cfg, {
                onProgress: a.verbose
                  ? (p) => progress(label, `ctx ${ctx} ${dataset}: ${p.phase} ${p.batch}/${p.of}`)
                  : undefined,
              });
              results.push(nanToMinusOne({
                unique_id: `${saeSet}-${t.saeId}`,
                sae_set: saeSet,
                sae_id: t.saeId,
                eval_cfg: {
                  context_size: ctx,
                  dataset,
                  ...evalConfigToDict(cfg),
                },
                metrics,
                feature_metrics: featureMetrics,
                sae_cfg: saeConfigToDict(sae.cfg),
              }) as Record<string, unknown>);
            } finally {
              await store.close();
            }
            done++;
            progress(label, `ctx ${ctx} ${dataset}: done`);
          }
        }
      } catch (err) {
        if (!(err instanceof SaeflowError)) throw err;
        done += a.contextSizes.length * a.datasets.length;
        failures.push(`${label}: ${err.message}`);
        write(`${tty ? "\r\x1b[2K" : ""}eval ${label} failed: ${err.message}\n`);
      } finally {
        sae?.dispose();
      }
    }
  } finally {
    model?.dispose();
    if (tty) write("\n");
  }
  const names = results.map((r) => {
    const c = r.eval_cfg as { context_size: number; dataset: string };
    return resultFileName(r.unique_id as string, c.context_size, c.dataset);
  });
  const out = a.outputDir;
  if (results.length > 0) {
    const owned = [...new Set([...names, "all_eval_results.json", "all_eval_results.csv"])];
    await writeFolderAtomic(out, async (w) => {
      for (let i = 0; i < results.length; i++) {
        await w.writeText(names[i], pythonJson(results[i]));
      }
      await w.writeText("all_eval_results.json", pythonJson(results));
      await w.writeText("all_eval_results.csv", resultsToCsv(results));
    }, { owned });
  }
  const files = {
    individualJsons: [...new Set(names)].map((n) => join(out, n)),
    combinedJson: join(out, "all_eval_results.json"),
    csv: join(out, "all_eval_results.csv"),
  };
  if (results.length > 0) {
    write(
      `Evaluation complete. Output files:\nIndividual JSONs: ${files.individualJsons.length}\n` +
        `Combined JSON: ${files.combinedJson}\nCSV: ${files.csv}\n`,
    );
  }
  if (failures.length > 0) {
    throw new EvalError(
      `eval: ${failures.length} of ${targets.length} SAEs failed` +
        (results.length > 0 ? ` (the other results are in ${out})` : "") + `:\n  ` +
        failures.join("\n  "),
    );
  }
  return { results, files };
}
