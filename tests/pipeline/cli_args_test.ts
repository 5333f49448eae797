// The command line without training: argument parsing, overrides checked against the runner's
// fields and typed by them, and the help text (every field listed with its default and a doc
// line of its own).

import {
  applyCliOverrides,
  checkConfigKeys,
  fieldHelp,
  nestedConfigDict,
  parseArgs,
  usage,
  UsageError,
} from "../../pipeline/cli_args.ts";
import {
  LOGGER_FIELD_DOCS,
  MULTI_FIELD_DOCS,
  RUNNER_FIELD_DOCS,
  SAE_FIELD_DOCS,
} from "../../pipeline/field_docs.ts";
import { main } from "../../pipeline/cli.ts";
import { ConfigError, setConfigWarnHandler } from "../../config/errors.ts";
import { LOGGER_FIELDS, RUNNER_FIELDS } from "../../pipeline/runner_fields.ts";
import { pipelineConfigFromDict } from "../../pipeline/config.ts";
import {
  BASE_FIELDS,
  getArchitecture,
  listArchitectures,
  TRAINING_BASE_FIELDS,
} from "../../sae/registry.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const BUILTIN_TRAINABLE = [
  "standard",
  "gated",
  "jumprelu",
  "topk",
  "batchtopk",
  "matryoshka_batchtopk",
  "transcoder",
  "skip_transcoder",
  "jumprelu_transcoder",
  "jumprelu_skip_transcoder",
  "matching_pursuit",
];

function saeFieldNames(): Set<string> {
  const names = new Set<string>(["architecture"]);
  for (const a of BUILTIN_TRAINABLE) {
    for (
      const f of [...BASE_FIELDS, ...TRAINING_BASE_FIELDS, ...getArchitecture(a).trainingFields!]
    ) {
      names.add(f.name);
    }
  }
  return names;
}

Deno.test("field docs: every runner, logger and built-in SAE field has exactly one doc line, and no doc names a field that does not exist", () => {
  const tables: [string, Readonly<Record<string, string>>, Set<string>][] = [
    ["runner", RUNNER_FIELD_DOCS, new Set(RUNNER_FIELDS.map((f) => f.name))],
    ["logger", LOGGER_FIELD_DOCS, new Set(LOGGER_FIELDS.map((f) => f.name))],
    ["sae", SAE_FIELD_DOCS, saeFieldNames()],
    ["multi", MULTI_FIELD_DOCS, new Set(["saes", "hook_names", "hook_head_indices"])],
  ];
  for (const [what, docs, fields] of tables) {
    for (const f of fields) {
      const doc = docs[f];
      assert(typeof doc === "string" && doc.trim().length >= 10, `${what} field ${f} has no doc`);
      assert(!doc.includes("\n"), `${what} field ${f}: the doc is more than one line`);
    }
    for (const k of Object.keys(docs)) assert(fields.has(k), `${what} doc for unknown field ${k}`);
  }
});

Deno.test("help: lists every field with its default and doc, and the sae fields of each architecture", () => {
  const help = fieldHelp();
  const lines = help.split("\n");
  const row = (name: string) => lines.find((l) => l.startsWith(`  --${name} `));
  for (const f of RUNNER_FIELDS) {
    const l = row(f.name);
    assert(l !== undefined, `--${f.name} missing from the help`);
    const def = f.required ? "required" : JSON.stringify(f.default);
    assert(l.includes(` ${def} `), `--${f.name}: default ${def} missing: ${l}`);
    assert(l.includes(RUNNER_FIELD_DOCS[f.name]), l);
  }
  for (const f of LOGGER_FIELDS) {
    const l = row(`logger.${f.name}`);
    assert(l?.includes(JSON.stringify(f.default)), `--logger.${f.name}: ${l}`);
  }
  for (const f of saeFieldNames()) assert(row(`sae.${f}`) !== undefined, `--sae.${f} missing`);
  assert(
    row("sae.lp_norm")!.endsWith("[standard, transcoder, skip_transcoder]"),
    row("sae.lp_norm"),
  );
  assert(row("sae.k")!.includes("[topk, batchtopk, matryoshka_batchtopk]"), row("sae.k"));
  // Every built-in field has a doc line (architectures other tests register may lack them).
  for (const l of lines.filter((l) => l.includes("(no doc)"))) {
    const archs = /\[([^\]]*)\]$/.exec(l)?.[1].split(", ") ?? [];
    assert(archs.every((a) => !BUILTIN_TRAINABLE.includes(a)), `a field without a doc line: ${l}`);
  }
  assert(listArchitectures().length >= BUILTIN_TRAINABLE.length);
  for (const c of ["train", "resume", "schedule"] as const) assert(usage(c).includes(c));
});

Deno.test("help: pipeline.ts --help and train --help exit 0 with the fields; no command is a usage error", async () => {
  for (const argv of [["--help"], ["train", "--help"], ["-h"], ["schedule", "--help"]]) {
    const out: string[] = [];
    const code = await main(argv, { io: { out: (l) => out.push(l), err: (l) => out.push(l) } });
    assertEquals(code, 0, argv.join(" "));
    assert(out.join("\n").includes("--n_batches_in_buffer"), argv.join(" "));
  }
  const out: string[] = [];
  assertEquals(await main([], { io: { out: (l) => out.push(l), err: (l) => out.push(l) } }), 2);
  assert(out.join("\n").includes("Usage:"));
});

Deno.test("parseArgs: commands, targets, --field value and --field=value, negative values, bare flags", () => {
  const a = parseArgs([
    "train",
    "cfg.yaml",
    "--lr",
    "1e-4",
    "--sae.k=64",
    "--seed",
    "-3",
    "--prepend_bos",
    "--logger.log_to_wandb",
    "false",
    "--run-id",
    "night-1",
  ]);
  assertEquals(a.command, "train");
  assertEquals(a.target, "cfg.yaml");
  assertEquals(a.runId, "night-1");
  assertEquals(a.overrides, [
    { path: "lr", value: "1e-4" },
    { path: "sae.k", value: "64" },
    { path: "seed", value: "-3" },
    { path: "prepend_bos", value: null },
    { path: "logger.log_to_wandb", value: "false" },
  ]);
  assertEquals(parseArgs(["resume", "ck/x", "--debug"]).debug, true);
  assertEquals(parseArgs(["train", "c.yaml", "--verbose"]).debug, true);
  const v = parseArgs(["train", "c.yaml", "--verbose", "false"]);
  assertEquals([v.debug, v.overrides], [false, [{ path: "verbose", value: "false" }]]);
  assertEquals(
    parseArgs(["train", "c"], (n) => n === "SAEFLOW_DEBUG" ? "1" : undefined).debug,
    true,
  );
  assertEquals(parseArgs(["schedule", "c", "--cron", "*/30 * * * *"]).cron, "*/30 * * * *");
  for (
    const bad of [
      ["trian", "c.yaml"],
      ["train", "a.yaml", "b.yaml"],
      ["train", "c.yaml", "-x"],
      ["train", "c.yaml", "--run-id", "../up"],
      ["train", "c.yaml", "--cron", "* * * * *"],
      ["resume", "ck", "--run-id", "x"],
      ["train", "c.yaml", "--sae..k", "1"],
    ]
  ) {
    let err: unknown = null;
    try {
      parseArgs(bad);
    } catch (e) {
      err = e;
    }
    assert(err instanceof UsageError, `${bad.join(" ")}: ${err}`);
  }
});

const BASE = {
  model_name: "m",
  hook_name: "blocks.0.hook_resid_pre",
  sae: { architecture: "topk", d_in: 128, d_sae: 512, k: 8 },
  logger: { log_to_wandb: false },
};

Deno.test("overrides: typed by their field; strings stay strings, none is null where allowed", () => {
  const out = applyCliOverrides(BASE, [
    { path: "lr", value: "1e-4" },
    { path: "model_name", value: "1234" },
    { path: "sae.k", value: "64" },
    { path: "sae.rescale_acts_by_decoder_norm", value: null },
    { path: "logger.log_to_wandb", value: "false" },
    { path: "logger.wandb_id", value: "007" },
    { path: "logger.run_name", value: "none" },
    { path: "seqpos_slice", value: "[1, null]" },
    { path: "sequence_separator_token", value: "eos" },
    { path: "exclude_special_tokens", value: "[0, 256]" },
    { path: "checkpoint_path", value: "null" },
    { path: "model_from_pretrained_kwargs.fold_ln", value: "true" },
    { path: "nBatchesInBuffer", value: "8" },
  ]);
  assertEquals(out.lr, 1e-4);
  assertEquals(out.model_name, "1234");
  assertEquals(out.sae, { ...BASE.sae, k: 64, rescale_acts_by_decoder_norm: true });
  assertEquals(out.logger, { log_to_wandb: false, wandb_id: "007", run_name: null });
  assertEquals(out.seqpos_slice, [1, null]);
  assertEquals(out.sequence_separator_token, "eos");
  assertEquals(out.exclude_special_tokens, [0, 256]);
  assertEquals(out.checkpoint_path, null);
  assertEquals(out.model_from_pretrained_kwargs, { fold_ln: true });
  assertEquals(out.n_batches_in_buffer, 8);
  assertEquals(BASE.sae.k, 8, "the input dict must not change");
  const cfg = pipelineConfigFromDict(out, { runId: "x" });
  assertEquals([cfg.runner.lr, cfg.saes[0].sae.k, cfg.runner.checkpointPath], [1e-4, 64, null]);
});

Deno.test("overrides: sae.architecture is applied first, so the new architecture's fields are accepted", () => {
  const out = applyCliOverrides(BASE, [
    { path: "sae.l1_coefficient", value: "5" },
    { path: "sae.architecture", value: "standard" },
  ]);
  assertEquals((out.sae as Record<string, unknown>).l1_coefficient, 5);
  assertThrows(
    () => applyCliOverrides(BASE, [{ path: "sae.architecture", value: "topkk" }]),
    ConfigError,
    "expected one of",
  );
});

Deno.test("overrides: unknown fields are a UsageError listing close matches", () => {
  const msg = (path: string, value: string | null = "1") => {
    try {
      applyCliOverrides(BASE, [{ path, value }]);
    } catch (e) {
      assert(e instanceof UsageError, `${path}: ${e}`);
      return e.message;
    }
    throw new Error(`${path} was accepted`);
  };
  assert(msg("lrr").includes("did you mean --lr"), msg("lrr"));
  assert(msg("k").includes("did you mean --sae.k"), msg("k"));
  assert(msg("log_to_wandb").includes("--logger.log_to_wandb"), msg("log_to_wandb"));
  assert(msg("sae.l1_coefficient").includes("not a field of a topk SAE"));
  assert(msg("sae.kk").includes("--sae.k"), msg("sae.kk"));
  assert(msg("logger.wandb_projet").includes("--logger.wandb_project"));
  assert(msg("lr.x").includes("lr is not a nested config"));
  assert(msg("sae", "64").includes("expected a JSON object"));
  assert(msg("lr", null).includes("--lr needs a value"));
});

Deno.test("overrides: several SAEs are reached by name; hook_names one-for-all is spread before one changes", () => {
  const multi = {
    model_name: "m",
    saes: {
      a: { architecture: "topk", d_in: 128, d_sae: 512, k: 8 },
      b: { architecture: "standard", d_in: 128, d_sae: 256 },
    },
    hook_names: "blocks.0.hook_resid_pre",
  };
  const out = applyCliOverrides(multi, [
    { path: "saes.a.k", value: "16" },
    { path: "saes.b.l1_coefficient", value: "3" },
    { path: "hook_names.b", value: "blocks.1.hook_resid_pre" },
  ]);
  assertEquals((out.saes as Record<string, Record<string, unknown>>).a.k, 16);
  assertEquals((out.saes as Record<string, Record<string, unknown>>).b.l1_coefficient, 3);
  assertEquals(out.hook_names, { a: "blocks.0.hook_resid_pre", b: "blocks.1.hook_resid_pre" });
  const cfg = pipelineConfigFromDict(out, { runId: "x" });
  assertEquals(cfg.saes.map((s) => s.hookName), [
    "blocks.0.hook_resid_pre",
    "blocks.1.hook_resid_pre",
  ]);
  const dotted = applyCliOverrides({ ...multi, saes: { "l1.a": multi.saes.a } }, [
    { path: "saes.l1.a.k", value: "4" },
    { path: "hook_names.l1.a", value: "blocks.2.hook_resid_pre" },
  ]);
  assertEquals((dotted.saes as Record<string, Record<string, unknown>>)["l1.a"].k, 4);
  assertEquals(dotted.hook_names, { "l1.a": "blocks.2.hook_resid_pre" });
  assertThrows(
    () => applyCliOverrides(multi, [{ path: "saes.c.k", value: "1" }]),
    UsageError,
    "SAEs: a, b",
  );
  assertThrows(
    () => applyCliOverrides(multi, [{ path: "sae.k", value: "1" }]),
    UsageError,
    "--saes.<name>.k",
  );
  assertThrows(
    () => applyCliOverrides(multi, [{ path: "saes.a.l1_coefficient", value: "1" }]),
    UsageError,
  );
});

Deno.test("config keys: an unknown key in the file is a ConfigError with close matches; flat v3-v5 configs are nested first", () => {
  assertThrows(
    () => checkConfigKeys({ ...BASE, trainig_tokens: 5 }, "c.yaml"),
    ConfigError,
    "did you mean training_tokens",
  );
  assertThrows(
    () => checkConfigKeys({ ...BASE, logger: { wandb_porject: "p" } }, "c.yaml"),
    ConfigError,
    "logger.wandb_project",
  );
  checkConfigKeys({ ...BASE, use_chat_formatting: false }, "c.yaml"); // a newer SAELens key
  const warnings: string[] = [];
  const previous = setConfigWarnHandler((m) => warnings.push(m));
  const nested = nestedConfigDict({
    model_name: "m",
    hook_point: "blocks.0.hook_resid_pre",
    d_in: 64,
    expansion_factor: 4,
    l1_coefficient: 2,
  }, "old.json");
  setConfigWarnHandler(previous);
  assert(warnings[0]?.includes("flat (SAELens v3–v5) config"), warnings.join("\n"));
  assertEquals((nested.sae as Record<string, unknown>).d_sae, 256);
  assertEquals(nested.hook_name, "blocks.0.hook_resid_pre");
});
