/**
 * The command line of `pipeline.ts`: parsing `argv` into a command, its target and the
 * `--field value` overrides; checking every override against the runner's fields (unknown ones
 * are an error listing close matches) and applying it with the field's type; and the `--help`
 * text, which lists every field with its default and one line of doc (`field_docs.ts`).
 * @module
 */

import { ConfigError, configWarn, describeValue } from "../config/errors.ts";
import { describeKind, type FieldSpec } from "../config/fields.ts";
import { isPlainObject, snakeizeKeys, toSnake } from "../config/naming.ts";
import { flatToNested } from "./runner_legacy.ts";
import {
  LOGGER_FIELDS,
  NEWER_LOGGER_KEYS,
  NEWER_RUNNER_KEYS,
  RUNNER_FIELDS,
} from "./runner_fields.ts";
import {
  BASE_FIELDS,
  getArchitecture,
  listArchitectures,
  TRAINING_BASE_FIELDS,
} from "../sae/registry.ts";
import { closeMatches } from "../util/suggest.ts";
import { parseOverrideValue } from "./config.ts";
import { PipelineError } from "./errors.ts";
import {
  LOGGER_FIELD_DOCS,
  MULTI_FIELD_DOCS,
  RUNNER_FIELD_DOCS,
  SAE_FIELD_DOCS,
} from "./field_docs.ts";

/** A mistake on the command line (exit code 2). */
export class UsageError extends PipelineError {}

/** The commands of `pipeline.ts`. */
export type Command = "train" | "resume" | "schedule";

/** One `--field value` override; `value` is null for a bare `--field` (true for a bool field). */
export interface Override {
  /** Dotted snake_case path, e.g. `sae.k`, `logger.log_to_wandb`, `saes.a.k`. */
  path: string;
  /** The text given, or null for a bare flag. */
  value: string | null;
}

/** What {@link parseArgs} returns. */
export interface ParsedArgs {
  /** The command, or null when none was given (`pipeline.ts --help`). */
  command: Command | null;
  /** Config file (train, schedule) or checkpoint/run folder (resume). */
  target: string | null;
  /** Field overrides, in the order given (a later one wins). */
  overrides: Override[];
  /** `--help` / `-h`. */
  help: boolean;
  /** `--debug`, a bare `--verbose`, or `SAEFLOW_DEBUG=1`: stack traces on errors. */
  debug: boolean;
  /** `--run-id`: the run id appended to `checkpoint_path` (train, schedule). */
  runId: string | null;
  /** `--cron`: the schedule (schedule only). */
  cron: string | null;
}

const COMMANDS: readonly Command[] = ["train", "resume", "schedule"];
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$/;
const RUN_ID = /^[A-Za-z0-9_.\-]{1,64}$/;

/**
 * Parses the arguments of `pipeline.ts` (see {@link ParsedArgs}). `--field value` and
 * `--field=value` are overrides; a value may start with one `-` (`--seed -1`) but not with
 * `--`. Throws a {@link UsageError} for a malformed line.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./cli_args.ts";
 * const a = parseArgs(["train", "cfg.yaml", "--lr", "1e-4", "--sae.k=64", "--logger.log_to_wandb", "false"]);
 * if (a.command !== "train" || a.target !== "cfg.yaml" || a.overrides.length !== 3) throw new Error();
 * if (a.overrides[1].path !== "sae.k" || a.overrides[1].value !== "64") throw new Error();
 * ```
 */
export function parseArgs(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): ParsedArgs {
  const out: ParsedArgs = {
    command: null,
    target: null,
    overrides: [],
    help: false,
    debug: ["1", "true", "yes"].includes((env("SAEFLOW_DEBUG") ?? "").toLowerCase()),
    runId: null,
    cron: null,
  };
  let i = 0;
  if (argv.length > 0 && !argv[0].startsWith("-")) {
    const c = argv[0];
    if (!(COMMANDS as readonly string[]).includes(c)) {
      throw new UsageError(
        `unknown command ${JSON.stringify(c)}; expected one of ${COMMANDS.join(", ")} ` +
          `(pipeline.ts --help lists them)`,
      );
    }
    out.command = c as Command;
    i = 1;
  }
  const valueAfter = (flag: string, inline: string | null): string => {
    if (inline !== null) return inline;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) {
      throw new UsageError(`${flag} needs a value`);
    }
    i++;
    return next;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      out.help = true;
      continue;
    }
    if (arg === "--debug") {
      out.debug = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`unknown option ${arg}; fields are given as --name value`);
      }
      if (out.target !== null) {
        throw new UsageError(
          `unexpected argument ${JSON.stringify(arg)} after ${JSON.stringify(out.target)}; ` +
            "give one config file (or checkpoint folder), then --field value pairs",
        );
      }
      out.target = arg;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? null : arg.slice(eq + 1);
    if (name === "run-id" || name === "run_id") {
      const id = valueAfter(`--${name}`, inline);
      if (!RUN_ID.test(id) || id === "." || id === "..") {
        throw new UsageError(
          `--run-id is ${JSON.stringify(id)}; expected 1-64 letters, digits, '_', '-' or '.' ` +
            "(it names a folder)",
        );
      }
      out.runId = id;
      continue;
    }
    if (name === "cron") {
      out.cron = valueAfter("--cron", inline);
      continue;
    }
    if (!FIELD_PATH.test(name)) {
      throw new UsageError(
        `${arg} is not a field; expected --name value with a snake_case field name ` +
          "(nested: --sae.k 64)",
      );
    }
    if (name === "verbose" && inline === null) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        out.debug = true; // a bare --verbose asks for stack traces, as --debug
        continue;
      }
    }
    let value: string | null = inline;
    if (value === null) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i++;
      }
    }
    out.overrides.push({ path: name, value });
  }
  if (out.cron !== null && out.command !== "schedule") {
    throw new UsageError("--cron is only used with the schedule command");
  }
  if (out.runId !== null && out.command === "resume") {
    throw new UsageError("--run-id is not used with resume (the checkpoint's run continues)");
  }
  return out;
}

/** The field spec of each top-level runner field by name. */
const RUNNER_BY_NAME = new Map(RUNNER_FIELDS.map((f) => [f.name, f]));
const LOGGER_BY_NAME = new Map(LOGGER_FIELDS.map((f) => [f.name, f]));
const MULTI_KEYS = ["saes", "hook_names", "hook_head_indices"];
const FREE_DICTS = new Set(["model_kwargs", "model_from_pretrained_kwargs"]);

/** SAE training fields of `architecture` by name (base, training base and its own). */
function saeFields(architecture: unknown, where: string): Map<string, FieldSpec> {
  const spec = getArchitecture(architecture, where);
  const fields = [...BASE_FIELDS, ...TRAINING_BASE_FIELDS, ...(spec.trainingFields ?? [])];
  return new Map(fields.map((f) => [f.name, f]));
}

/** Every dotted name the help lists (for close matches of a misspelt top-level name). */
function allFieldNames(): string[] {
  const names = [...RUNNER_FIELDS.map((f) => f.name), ...MULTI_KEYS];
  for (const f of LOGGER_FIELDS) names.push(`logger.${f.name}`);
  const sae = new Set<string>(["sae.architecture"]);
  for (const a of listArchitectures()) {
    const spec = getArchitecture(a);
    if (spec.trainingFields === null) continue;
    for (const f of [...BASE_FIELDS, ...TRAINING_BASE_FIELDS, ...spec.trainingFields]) {
      sae.add(`sae.${f.name}`);
    }
  }
  return [...names, ...sae];
}

function unknownField(path: string, candidates: string[], what: string): never {
  const last = path.split(".").pop()!;
  // A nested field given at the top (--k 64 for --sae.k 64) first, then close spellings.
  let matches = path.includes(".")
    ? []
    : candidates.filter((c) => c.endsWith(`.${path}`)).slice(0, 4);
  if (matches.length === 0) {
    matches = closeMatches(path, candidates, 4);
    if (matches.length === 0) {
      const prefix = path.includes(".") ? path.slice(0, path.lastIndexOf(".") + 1) : "";
      matches = closeMatches(last, candidates.map((c) => c.slice(c.lastIndexOf(".") + 1)), 4)
        .map((m) => prefix + m);
    }
  }
  throw new UsageError(
    `unknown field --${path}${what}` +
      (matches.length > 0 ? `; did you mean ${matches.map((m) => `--${m}`).join(", ")}?` : "") +
      " (pipeline.ts --help lists every field)",
  );
}

/** Converts the text of an override to the value its field takes. */
function typedValue(text: string | null, spec: FieldSpec | null, path: string): unknown {
  if (text === null) {
    if (spec?.kind.type === "bool") return true;
    throw new UsageError(
      `--${path} needs a value` + (spec ? ` (${describeKind(spec.kind)})` : ""),
    );
  }
  const nullable = spec !== null && "nullable" in spec.kind && spec.kind.nullable === true;
  if (spec?.kind.type === "string") {
    return nullable && ["none", "None", "null"].includes(text) ? null : text;
  }
  if (spec?.kind.type === "enum") {
    return spec.kind.values.includes(null) && ["none", "None", "null"].includes(text) ? null : text;
  }
  if (text === "null") return null;
  return parseOverrideValue(text);
}

/**
 * Puts the SAELens v3–v5 flat form into the nested v6 form (`sae`, `logger`) so overrides speak
 * one spelling; keys are made snake_case. A dict already nested (or multi-SAE) is returned as is.
 */
export function nestedConfigDict(
  dict: Record<string, unknown>,
  where: string,
): Record<string, unknown> {
  const snake = snakeizeKeys(dict, { context: where });
  if ("sae" in snake || "saes" in snake) return snake;
  const { nested, ignored } = flatToNested(snake);
  if (ignored.length > 0) {
    configWarn(
      `${where}: flat (SAELens v3–v5) config; ignoring settings SAELens 6 removed or that ` +
        `don't apply to this architecture: ${ignored.join(", ")}`,
    );
  }
  return nested;
}

/**
 * Checks the top-level and `logger` keys of a config dict: an unknown one is a
 * {@link ConfigError} listing close matches.
 */
export function checkConfigKeys(dict: Record<string, unknown>, where: string): void {
  const known = new Set([...RUNNER_BY_NAME.keys(), ...NEWER_RUNNER_KEYS, ...MULTI_KEYS]);
  for (const k of Object.keys(dict)) {
    if (known.has(k)) continue;
    const m = closeMatches(k, allFieldNames(), 3);
    throw new ConfigError(
      `${where}: unknown field ${k}` + (m.length ? ` (did you mean ${m.join(", ")}?)` : ""),
    );
  }
  if (isPlainObject(dict.logger)) {
    const loggerKnown = new Set([...LOGGER_BY_NAME.keys(), ...NEWER_LOGGER_KEYS]);
    for (const k of Object.keys(snakeizeKeys(dict.logger))) {
      if (loggerKnown.has(k)) continue;
      const m = closeMatches(k, [...LOGGER_BY_NAME.keys()], 3);
      throw new ConfigError(
        `${where}: unknown field logger.${k}` +
          (m.length ? ` (did you mean ${m.map((x) => `logger.${x}`).join(", ")}?)` : ""),
      );
    }
  }
}

function setPath(dict: Record<string, unknown>, parts: string[], value: unknown): void {
  let node = dict;
  for (const p of parts.slice(0, -1)) {
    if (!isPlainObject(node[p])) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/**
 * Applies `--field value` overrides to a nested config dict (a copy is returned). Every path is
 * checked first: a top-level runner field, `sae.<field>` of the SAE's architecture,
 * `logger.<field>`, for several SAEs `saes.<name>[.<field>]`, `hook_names.<name>`,
 * `hook_head_indices.<name>`, or anything inside `model_kwargs` /
 * `model_from_pretrained_kwargs`. An unknown one is a {@link UsageError} listing close matches.
 * Values take their field's type: string fields keep the text (`none`/`null` is null where
 * allowed), others parse as JSON (`1e-4`, `true`, `[0, 8]`), else stay text.
 *
 * @example
 * ```ts
 * import { applyCliOverrides } from "./cli_args.ts";
 * const base = { sae: { architecture: "topk", d_in: 128, d_sae: 512 }, model_name: "gpt2" };
 * const out = applyCliOverrides(base, [{ path: "sae.k", value: "64" }, { path: "model_name", value: "123" }]);
 * if ((out.sae as { k: number }).k !== 64 || out.model_name !== "123") throw new Error();
 * let msg = "";
 * try { applyCliOverrides(base, [{ path: "sae.kk", value: "1" }]); } catch (e) { msg = String(e); }
 * if (!msg.includes("--sae.k")) throw new Error(msg);
 * ```
 */
export function applyCliOverrides(
  dict: Record<string, unknown>,
  overrides: readonly Override[],
): Record<string, unknown> {
  const out = structuredClone(dict);
  // `sae.architecture` decides which sae fields exist: apply it first.
  const ordered = [
    ...overrides.filter((o) => /^(sae|saes\.[^.]+)\.architecture$/.test(o.path)),
    ...overrides.filter((o) => !/^(sae|saes\.[^.]+)\.architecture$/.test(o.path)),
  ];
  for (const o of ordered) {
    const raw = o.path.split(".");
    const top = toSnake(raw[0]);
    const parts = [top, ...raw.slice(1)];
    const path = parts.join(".");
    const multi = isPlainObject(out.saes);
    if (top === "sae" && parts.length >= 2) {
      if (multi) {
        throw new UsageError(
          `--${path}: this config trains several SAEs (saes); use --saes.<name>.${
            parts.slice(1).join(".")
          }`,
        );
      }
      if (!isPlainObject(out.sae)) out.sae = {};
      const sae = out.sae as Record<string, unknown>;
      parts[1] = toSnake(parts[1]);
      setSaeField(sae, parts.slice(1), o, `sae`);
      continue;
    }
    if (top === "saes" && parts.length >= 3) {
      // SAE names may hold dots: the longest known name wins.
      const names = multi ? Object.keys(out.saes as object) : [];
      let n = parts.length - 1;
      while (n > 1 && !names.includes(parts.slice(1, n).join("."))) n--;
      const name = parts.slice(1, n).join(".");
      if (!names.includes(name)) {
        throw new UsageError(
          `--${path}: no SAE named ${JSON.stringify(parts[1])} in saes` +
            (names.length ? ` (SAEs: ${names.join(", ")})` : " (the config has no saes)"),
        );
      }
      const rest = parts.slice(n);
      rest[0] = toSnake(rest[0]);
      const sae = (out.saes as Record<string, Record<string, unknown>>)[name];
      setSaeField(sae, rest, o, `saes.${name}`);
      continue;
    }
    if ((top === "hook_names" || top === "hook_head_indices") && parts.length >= 2) {
      const names = multi ? Object.keys(out.saes as object) : [];
      const name = parts.slice(1).join(".");
      if (!names.includes(name)) {
        throw new UsageError(
          `--${path}: no SAE named ${JSON.stringify(name)} in saes` +
            (names.length ? ` (SAEs: ${names.join(", ")})` : " (the config has no saes)"),
        );
      }
      if (!isPlainObject(out[top])) {
        // One value for all SAEs so far: spread it to every name before changing one.
        const all = out[top];
        out[top] = Object.fromEntries(names.map((n) => [n, all ?? null]));
      }
      const value = top === "hook_names"
        ? typedValue(o.value, { name: top, kind: { type: "string" } }, path)
        : typedValue(o.value, null, path);
      (out[top] as Record<string, unknown>)[name] = value;
      continue;
    }
    if (top === "logger" && parts.length >= 2) {
      parts[1] = toSnake(parts[1]);
      const spec = LOGGER_BY_NAME.get(parts[1]);
      if (!spec || parts.length > 2) {
        if (NEWER_LOGGER_KEYS.has(parts[1]) && parts.length === 2) {
          setPath(out, parts, typedValue(o.value, null, path));
          continue;
        }
        unknownField(parts.join("."), LOGGER_FIELDS.map((f) => `logger.${f.name}`), "");
      }
      if (!isPlainObject(out.logger)) out.logger = {};
      setPath(out, parts, typedValue(o.value, spec!, parts.join(".")));
      continue;
    }
    if (FREE_DICTS.has(top) && parts.length >= 2) {
      setPath(out, parts, typedValue(o.value, null, path));
      continue;
    }
    if (parts.length === 1) {
      const spec = RUNNER_BY_NAME.get(top);
      if (spec || NEWER_RUNNER_KEYS.has(top) || MULTI_KEYS.includes(top)) {
        const value = typedValue(o.value, spec ?? null, top);
        if ((top === "sae" || top === "logger" || top === "saes") && !isPlainObject(value)) {
          throw new UsageError(
            `--${top} is ${describeValue(value)}; expected a JSON object (or set one field: ` +
              `--${top === "saes" ? "saes.<name>" : top}.<field> value)`,
          );
        }
        out[top] = value;
        continue;
      }
    }
    if (RUNNER_BY_NAME.has(top) && parts.length > 1) {
      throw new UsageError(`--${path}: ${top} is not a nested config; give --${top} value`);
    }
    unknownField(path, allFieldNames(), "");
  }
  return out;
}

function setSaeField(
  sae: Record<string, unknown>,
  parts: string[],
  o: Override,
  prefix: string,
): void {
  const name = parts[0];
  const path = `${prefix}.${parts.join(".")}`;
  if (name === "metadata") {
    setPath(sae, parts, typedValue(o.value, null, path));
    return;
  }
  if (name === "architecture") {
    if (parts.length > 1) unknownField(path, [], "");
    const value = typedValue(o.value, { name, kind: { type: "string" } }, path);
    getArchitecture(value, `--${path}`);
    sae.architecture = value;
    return;
  }
  const arch = sae.architecture;
  if (arch === undefined) {
    throw new UsageError(`--${path}: the SAE has no architecture; give --${prefix}.architecture`);
  }
  const fields = saeFields(arch, `${prefix}`);
  const spec = fields.get(name);
  if (!spec || parts.length > 1) {
    unknownField(
      path,
      [...fields.keys()].map((f) => `${prefix}.${f}`),
      ` (not a field of a ${String(arch)} SAE)`,
    );
  }
  sae[name] = typedValue(o.value, spec!, path);
}

/** Formats a field default for the help text. */
function showDefault(spec: FieldSpec): string {
  if (spec.required) return "required";
  return JSON.stringify(spec.default) ?? "undefined";
}

/** Lines `  --name  default  doc` with aligned columns. */
function table(rows: [string, string, string][]): string[] {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.min(24, Math.max(...rows.map((r) => r[1].length)));
  return rows.map(([n, d, doc]) =>
    `  --${n.padEnd(w0)}  ${d.length > w1 ? d : d.padEnd(w1)}  ${doc}`
  );
}

/**
 * Every field of the runner config with its default and one line of doc: the runner fields,
 * the multi-SAE keys, `logger.*`, and `sae.*` of every registered training architecture (with
 * the architectures each one belongs to). Fields without a doc line say so.
 */
export function fieldHelp(): string {
  const lines: string[] = [];
  lines.push("Runner fields (SAELens's LanguageModelSAERunnerConfig; --name value):");
  lines.push(
    ...table(
      RUNNER_FIELDS.map((f) => [f.name, showDefault(f), RUNNER_FIELD_DOCS[f.name] ?? "(no doc)"]),
    ),
  );
  lines.push("", "Several SAEs from one forward (SAELens's multi-SAE runner; instead of sae):");
  lines.push(...table(MULTI_KEYS.map((k) => [k, "null", MULTI_FIELD_DOCS[k] ?? "(no doc)"])));
  lines.push("", "Logger fields (--logger.name value):");
  lines.push(
    ...table(LOGGER_FIELDS.map((f) => [
      `logger.${f.name}`,
      showDefault(f),
      LOGGER_FIELD_DOCS[f.name] ?? "(no doc)",
    ])),
  );
  lines.push("", "SAE fields (--sae.name value; with saes: --saes.<name>.name value):");
  const saeRows = new Map<string, { spec: FieldSpec; archs: string[] }>();
  const archs = listArchitectures().filter((a) => getArchitecture(a).trainingFields !== null);
  for (const a of archs) {
    const spec = getArchitecture(a);
    for (const f of [...BASE_FIELDS, ...TRAINING_BASE_FIELDS, ...spec.trainingFields!]) {
      const row = saeRows.get(f.name) ?? { spec: f, archs: [] };
      row.archs.push(a);
      saeRows.set(f.name, row);
    }
  }
  const rows: [string, string, string][] = [[
    "sae.architecture",
    "required",
    SAE_FIELD_DOCS.architecture,
  ]];
  for (const [name, { spec, archs: own }] of saeRows) {
    const doc = SAE_FIELD_DOCS[name] ?? "(no doc)";
    const scope = own.length === archs.length ? "" : ` [${own.join(", ")}]`;
    rows.push([`sae.${name}`, showDefault(spec), doc + scope]);
  }
  lines.push(...table(rows));
  return lines.join("\n");
}

/** Usage of one command, or of all (`command` null). */
export function usage(command: Command | null): string {
  const train = "deno run -A pipeline.ts train <config.yaml|json> [--field value …] [--run-id ID]";
  const resume =
    "deno run -A pipeline.ts resume <checkpoint folder | run folder> [--field value …]";
  const schedule = "deno run -A --unstable-cron pipeline.ts schedule <config> --cron '<expr>' " +
    "[--field value …] [--run-id ID]";
  const common = [
    "Options:",
    "  --field value, --field=value   override a config field (nested: --sae.k 64,",
    "                                 --logger.log_to_wandb false; several SAEs: --saes.a.k 64)",
    "  --debug (or a bare --verbose, or SAEFLOW_DEBUG=1)   print stack traces of errors",
    "  -h, --help                     this text",
    "",
    "Exit codes: 0 done, 1 error, 2 bad command line, 130 interrupted (checkpoint written).",
    "Ctrl-C (or SIGTERM) finishes the current batch, writes a checkpoint and exits; a second",
    "Ctrl-C exits at once.",
  ];
  if (command === "train") {
    return [
      `Usage: ${train}`,
      "",
      "Trains the SAE(s) of a SAELens runner config (YAML or JSON, snake_case keys).",
      "Checkpoints go to checkpoint_path/<run id> (run id: --run-id, else logger.wandb_id,",
      "else random), the trained SAE to output_path, metrics to <run folder>/metrics.jsonl.",
      "",
      ...common,
    ].join("\n");
  }
  if (command === "resume") {
    return [
      `Usage: ${resume}`,
      "",
      "Continues a run from a checkpoint folder (checkpoint_path/<run id>/<samples>), or from",
      "the latest checkpoint of a run folder, with the config saved in its runner_cfg.json;",
      "the result is bit for bit the one of an uninterrupted run. Later checkpoints go beside",
      "the one resumed from.",
      "",
      ...common,
    ].join("\n");
  }
  if (command === "schedule") {
    return [
      `Usage: ${schedule}`,
      "",
      "Runs the config on a cron schedule (Deno.cron; needs --unstable-cron). Each trigger",
      "starts the run, or resumes it from its latest checkpoint, or does nothing when it has",
      "finished or is still running (a lock file in the run folder, stale once its process is",
      "gone). The run id is --run-id, else logger.wandb_id, else derived from the config",
      "(sched-<hash>), so every trigger finds the same run folder; a changed config is a new run.",
      "",
      ...common,
    ].join("\n");
  }
  return [
    "saeflow: train sparse autoencoders from SAELens runner configs.",
    "",
    "Usage:",
    `  ${train}`,
    `  ${resume}`,
    `  ${schedule}`,
    "  deno run -A pipeline.ts <command> --help",
    "",
    ...common,
  ].join("\n");
}
