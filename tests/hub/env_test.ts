import { resolveHubSettings } from "../../hub/env.ts";
import { HubError } from "../../hub/errors.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

/** Keeps the child on our Deno cache although HOME changes. */
function denoDir(): Record<string, string> {
  const dir = Deno.env.get("DENO_DIR") ??
    (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache/deno` : undefined);
  return dir ? { DENO_DIR: dir } : {};
}

/** Runs resolveHubSettings in a child process with exactly `env` (the test never mutates ours). */
async function settingsUnder(env: Record<string, string>, opts = "{}") {
  const url = new URL("../../hub/env.ts", import.meta.url).href;
  const code = `import { resolveHubSettings } from "${url}";` +
    `console.log(JSON.stringify(resolveHubSettings(${opts})));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", ...denoDir(), ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(text);
}

Deno.test("env: defaults from HOME, no token, online", async () => {
  const home = await Deno.makeTempDir();
  assertEquals(await settingsUnder({ HOME: home }), {
    endpoint: "https://huggingface.co",
    cacheDir: `${home}/.cache/huggingface/hub`,
    offline: false,
    etagTimeout: 10,
    downloadTimeout: 10,
  });
});

Deno.test("env: HF_ENDPOINT, HF_HOME token file, HF_HUB_CACHE, HF_HUB_OFFLINE", async () => {
  const hfHome = await Deno.makeTempDir();
  await Deno.writeTextFile(`${hfHome}/token`, "hf_from_file\n");
  const base = { HOME: "/nonexistent", HF_HOME: hfHome };
  assertEquals(await settingsUnder({ ...base, HF_ENDPOINT: "http://mirror.local/" }), {
    endpoint: "http://mirror.local",
    token: "hf_from_file",
    cacheDir: `${hfHome}/hub`,
    offline: false,
    etagTimeout: 10,
    downloadTimeout: 10,
  });
  const s = await settingsUnder({
    ...base,
    HF_TOKEN: "hf_env",
    HUGGING_FACE_HUB_TOKEN: "hf_old",
    HF_HUB_CACHE: "/c/hub",
    HF_HUB_OFFLINE: "1",
  });
  assertEquals([s.token, s.cacheDir, s.offline], ["hf_env", "/c/hub", true]);
  const old = await settingsUnder({ ...base, HUGGING_FACE_HUB_TOKEN: "hf_old" });
  assertEquals(old.token, "hf_old");
});

Deno.test("env: explicit options beat the environment", async () => {
  const s = await settingsUnder(
    { HOME: "/h", HF_TOKEN: "hf_env", HF_ENDPOINT: "http://a", HF_HUB_OFFLINE: "true" },
    `{ endpoint: "http://b", token: null, cacheDir: "/x", offline: false }`,
  );
  assertEquals(s, {
    endpoint: "http://b",
    cacheDir: "/x",
    offline: false,
    etagTimeout: 10,
    downloadTimeout: 10,
  });
  // In-process: explicit values never look at the environment.
  assertEquals(
    resolveHubSettings({ endpoint: "http://c/", token: "t", cacheDir: "/y", offline: true }),
    {
      endpoint: "http://c",
      token: "t",
      cacheDir: "/y",
      offline: true,
      etagTimeout: 10,
      downloadTimeout: 10,
    },
  );
});

Deno.test("env: HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT in seconds; options beat them", async () => {
  const env = { HOME: "/h", HF_HUB_ETAG_TIMEOUT: "2.5", HF_HUB_DOWNLOAD_TIMEOUT: "60" };
  const s = await settingsUnder(env);
  assertEquals([s.etagTimeout, s.downloadTimeout], [2.5, 60]);
  const o = await settingsUnder(env, `{ etagTimeout: 0.25, downloadTimeout: 3 }`);
  assertEquals([o.etagTimeout, o.downloadTimeout], [0.25, 3]);
  // A bad value is a HubError naming the variable, never a silent default or NaN.
  const bad = await settingsUnder({ HOME: "/h", HF_HUB_DOWNLOAD_TIMEOUT: "soon" }).then(
    () => "",
    (e: Error) => e.message,
  );
  assert(/HubError/.test(bad) && bad.includes("HF_HUB_DOWNLOAD_TIMEOUT"), bad);
  for (const v of [0, -1, NaN, Infinity]) {
    assertThrows(() => resolveHubSettings({ etagTimeout: v }), HubError, "etagTimeout");
  }
});

Deno.test("env: an endpoint that is not an http(s) URL is a HubError naming it", () => {
  for (const bad of ["not a url", "ftp://x", "file:///etc", ""]) {
    assertThrows(() => resolveHubSettings({ endpoint: bad }), HubError, "endpoint option");
  }
});
