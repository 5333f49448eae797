// The W&B payload pieces: histograms equal numpy.histogram(values, bins=64) (expected values
// computed with numpy 2.4), Python-style JSON, the backend config dict; and the settings
// resolution from config, environment variables and netrc.

import { pyJson, wandbConfig, wandbHistogram } from "../../logging/wandb_format.ts";
import {
  generateRunId,
  netrcPassword,
  resolveWandbSettings,
} from "../../logging/wandb_settings.ts";
import { LoggingError } from "../../logging/types.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { parsePyJson } from "./mock_wandb.ts";

Deno.test("wandbHistogram equals numpy.histogram with 64 bins", () => {
  const h = wandbHistogram([-10, -10, -3, -2.5, -1])!;
  const counts = new Array(64).fill(0);
  counts[0] = 2;
  counts[49] = 1;
  counts[53] = 1;
  counts[63] = 1;
  assertEquals(h.values, counts);
  assertEquals(h.bins.length, 65);
  assertEquals([h.bins[0], h.bins[1], h.bins[49], h.bins[64]], [-10, -9.859375, -3.109375, -1]);
  assertEquals(h._type, "histogram");

  // values on or next to bin edges (rounding in the scaled index)
  const edges = wandbHistogram(Array.from({ length: 31 }, (_, i) => 0.1 * i))!;
  assertEquals(
    edges.values.join(""),
    "1010101010101010010101010101010010101010101010100101010101010101",
  );
  assertEquals(edges.bins.slice(0, 5), [0, 0.046875, 0.09375, 0.140625, 0.1875]);
  assertEquals(edges.bins[64], 3);

  // a realistic log-sparsity vector: many dead features at log10(1e-10) = -10
  const dead = [
    ...new Array(100).fill(-10),
    ...Array.from({ length: 200 }, (_, i) => -(1 + i / 50)),
  ];
  const d = wandbHistogram(dead)!;
  const expected = [100, ...new Array(34).fill(0), 3, ...new Array(27).fill(7), 8];
  assertEquals(d.values, expected);
  assertEquals([d.bins[1], d.bins[63]], [-9.859375, -1.140625]);
});

Deno.test("wandbHistogram: constant values, non-finite entries, nothing finite", () => {
  const c = wandbHistogram([5, 5, NaN, Infinity])!;
  assertEquals([c.bins[0], c.bins[32], c.bins[64]], [4.5, 5, 5.5]);
  assertEquals(c.values.reduce((a, b) => a + b), 2);
  assertEquals(c.values[32], 2);
  assertEquals(wandbHistogram([NaN, -Infinity]), null);
  assertEquals(wandbHistogram([]), null);
});

Deno.test("pyJson writes what Python's json.dumps writes; parsePyJson reads it back", () => {
  const s = pyJson({
    a: NaN,
    b: [Infinity, -Infinity, 1.5],
    c: 'q"',
    d: null,
    e: true,
    f: undefined,
  });
  assertEquals(s, '{"a":NaN,"b":[Infinity,-Infinity,1.5],"c":"q\\"","d":null,"e":true}');
  const back = parsePyJson(s);
  assert(Number.isNaN(back.a as number));
  assertEquals(back.b, [Infinity, -Infinity, 1.5]);
  assertEquals(pyJson(Float32Array.of(0.5, 2)), "[0.5,2]");
  assertEquals(pyJson(10n), "10");
});

Deno.test("wandbConfig wraps every key as {desc: null, value}", () => {
  assertEquals(wandbConfig({ lr: 3e-4, sae: { d_in: 128 } }), {
    lr: { desc: null, value: 3e-4 },
    sae: { desc: null, value: { d_in: 128 } },
  });
});

const noEnv = () => undefined;
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("settings: config wins over env vars, env vars fill what the config leaves null", () => {
  const env = envOf({
    WANDB_API_KEY: "k1",
    WANDB_PROJECT: "env-proj",
    WANDB_ENTITY: "env-ent",
    WANDB_RUN_ID: "envrun",
    WANDB_BASE_URL: "http://127.0.0.1:9/",
  });
  const s = resolveWandbSettings(
    { logToWandb: true, wandbProject: "cfg-proj", wandbEntity: null, wandbId: null, runName: "n" },
    { env, netrcPath: null },
  );
  assertEquals(s, {
    mode: "online",
    apiKey: "k1",
    baseUrl: "http://127.0.0.1:9",
    project: "cfg-proj",
    entity: "env-ent",
    runId: "envrun",
    displayName: "n",
  });
  const t = resolveWandbSettings(
    { logToWandb: true, wandbProject: null, wandbEntity: "me", wandbId: "abc" },
    { env, netrcPath: null },
  );
  assertEquals([t.project, t.entity, t.runId], ["env-proj", "me", "abc"]);
  const d = resolveWandbSettings({ logToWandb: true }, {
    env: envOf({ WANDB_API_KEY: "k" }),
    netrcPath: null,
  });
  assertEquals([d.baseUrl, d.project, d.entity], ["https://api.wandb.ai", "uncategorized", null]);
  assert(/^[a-z0-9]{8}$/.test(d.runId), d.runId);
});

Deno.test("settings: a missing API key is an error naming the ways to give one", () => {
  const e = assertThrows(
    () => resolveWandbSettings({ logToWandb: true }, { env: noEnv, netrcPath: null }),
    LoggingError,
    "WANDB_API_KEY",
  );
  assert(e.message.includes("log_to_wandb"), e.message);
  // disabled and offline need no key
  for (const mode of ["disabled", "offline", "dryrun"]) {
    const s = resolveWandbSettings({ logToWandb: true }, {
      env: envOf({ WANDB_MODE: mode }),
      netrcPath: null,
    });
    assertEquals(s.apiKey, null);
    assertEquals(s.mode, mode === "disabled" ? "disabled" : "offline");
  }
  const off = resolveWandbSettings({ logToWandb: true }, {
    env: envOf({ WANDB_DISABLED: "true" }),
    netrcPath: null,
  });
  assertEquals(off.mode, "disabled");
});

Deno.test("settings: the netrc entry of the server's host gives the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/netrc`;
    await Deno.writeTextFile(
      path,
      "machine example.org login x password nope\nmachine api.wandb.ai\n  login user\n  password from-netrc\n",
    );
    const s = resolveWandbSettings({ logToWandb: true }, { env: noEnv, netrcPath: path });
    assertEquals(s.apiKey, "from-netrc");
    const viaEnv = resolveWandbSettings({ logToWandb: true }, { env: envOf({ NETRC: path }) });
    assertEquals(viaEnv.apiKey, "from-netrc");
    // the env var wins over netrc
    const k = resolveWandbSettings({ logToWandb: true }, {
      env: envOf({ WANDB_API_KEY: "env-key" }),
      netrcPath: path,
    });
    assertEquals(k.apiKey, "env-key");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(netrcPassword("default login a password dflt", "h"), "dflt");
  assertEquals(netrcPassword("machine h login a", "h"), undefined);
});

Deno.test("settings: invalid mode, URL, run id, project and key are errors", () => {
  const key = { WANDB_API_KEY: "k" };
  const bad: [Record<string, string>, Record<string, unknown>, string][] = [
    [{ ...key, WANDB_MODE: "sometimes" }, {}, "WANDB_MODE"],
    [{ ...key, WANDB_BASE_URL: "ftp://x" }, {}, "WANDB_BASE_URL"],
    [{ ...key, WANDB_BASE_URL: "not a url" }, {}, "WANDB_BASE_URL"],
    [key, { wandbId: "a/b" }, "run id"],
    [key, { wandbId: "has space" }, "run id"],
    [key, { wandbProject: "p?x" }, "project"],
    [key, { wandbEntity: "e#1" }, "entity"],
    [{ WANDB_API_KEY: "kéy" }, {}, "printable ASCII"],
  ];
  for (const [vars, cfg, what] of bad) {
    assertThrows(
      () =>
        resolveWandbSettings({ logToWandb: true, ...cfg }, { env: envOf(vars), netrcPath: null }),
      LoggingError,
      what,
    );
  }
});

Deno.test("generateRunId: 8 characters of [a-z0-9], different each time", () => {
  const ids = new Set(Array.from({ length: 200 }, generateRunId));
  assert(ids.size === 200, "ids repeat");
  for (const id of ids) assert(/^[a-z0-9]{8}$/.test(id), id);
});
