import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { loadConfigFile, parseConfigText } from "../../config/load.ts";
import { loadRunnerConfig } from "../../pipeline/runner_config.ts";
import { ConfigError } from "../../config/errors.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_cfg_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const YAML_RUNNER = `# a Python config pasted as YAML, snake_case
sae:
  architecture: topk
  d_in: 64
  d_sae: 256
  k: 8
model_name: tiny-stories-1M
context_size: 6
lr: 3e-4
seqpos_slice: [1, null]
logger:
  log_to_wandb: false
`;

Deno.test("loadConfigFile reads .json, .yaml and .yml alike", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, YAML_RUNNER);
    await Deno.writeTextFile(`${dir}/b.yml`, YAML_RUNNER);
    const yaml = await loadConfigFile(`${dir}/a.yaml`);
    assertEquals(yaml.lr, 3e-4);
    assertEquals(yaml.seqpos_slice, [1, null]);
    assertEquals(await loadConfigFile(`${dir}/b.yml`), yaml);
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(yaml));
    assertEquals(await loadConfigFile(`${dir}/c.json`), yaml);
    const cfg = await loadRunnerConfig(`${dir}/a.yaml`, { runId: "t" });
    assertEquals([cfg.sae.architecture, cfg.sae.k, cfg.contextSize], ["topk", 8, 6]);
    assertEquals(cfg.logger.runName, "topk-256-LR-0.0003-Tokens-2.000e+06");
  });
});

Deno.test("loadConfigFile errors: missing file, bad extension, parse errors with line", async () => {
  await withTempDir(async (dir) => {
    const missing = await assertRejects(
      () => loadConfigFile(`${dir}/nope.json`),
      ConfigError,
      "not found",
    );
    assert(missing.message.includes(`${dir}/nope.json`));
    await assertRejects(() => loadConfigFile(`${dir}/cfg.toml`), ConfigError, ".yaml");
    await Deno.writeTextFile(`${dir}/bad.yaml`, "sae:\n  d_in: 4\n d_sae: [1, 2\n");
    const yamlErr = await assertRejects(
      () => loadConfigFile(`${dir}/bad.yaml`),
      ConfigError,
      "invalid YAML at line",
    );
    assert(yamlErr.message.includes("bad.yaml"), yamlErr.message);
    await Deno.writeTextFile(`${dir}/bad.json`, '{\n  "d_in": 4,\n  "d_sae": ,\n}');
    const jsonErr = await assertRejects(
      () => loadConfigFile(`${dir}/bad.json`),
      ConfigError,
      "invalid JSON",
    );
    assert(jsonErr.message.includes("line 3"), jsonErr.message);
    await Deno.writeTextFile(`${dir}/list.yaml`, "- 1\n- 2\n");
    await assertRejects(() => loadConfigFile(`${dir}/list.yaml`), ConfigError, "mapping");
  });
});

Deno.test("loadRunnerConfig: wrong types name the file and the field", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/run.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ sae: { architecture: "standard", d_in: 4, d_sae: "8" } }),
    );
    const err = await assertRejects(() => loadRunnerConfig(path), ConfigError, "d_sae");
    assert(err.message.includes(path) && err.message.includes('"8"'), err.message);
    await Deno.writeTextFile(
      path,
      JSON.stringify({ sae: { architecture: "standard", d_in: 4, d_sae: 8 }, context_size: "128" }),
    );
    const err2 = await assertRejects(() => loadRunnerConfig(path), ConfigError, "context_size");
    assert(err2.message.startsWith(path), err2.message);
  });
});

Deno.test("parseConfigText: duplicate YAML keys are an error", () => {
  assertThrows(() => parseConfigText("a: 1\na: 2\n", "yaml", "x.yaml"), ConfigError, "x.yaml");
});
