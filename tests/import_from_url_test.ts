// saeflow imported from a URL (as from JSR, where no file beside a module can be read): the
// repository is served over HTTP on 127.0.0.1, a child `deno` imports `mod.ts` from there and
// loads a registry release with `SAE.fromPretrained` through the mock hub (HF_ENDPOINT).
import { serializeSafetensors } from "../io/safetensors.ts";
import { startMockHub } from "./hub/mock_hub.ts";
import { assert, assertEquals } from "./assert.ts";

const REPO_ROOT = new URL("../", import.meta.url);
const DENO_JSON = new URL("deno.json", REPO_ROOT);

const TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  json: "application/json",
};

/** Serves the repository's files read-only on 127.0.0.1 and logs the paths asked for. */
function serveRepository() {
  const asked: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname).replace(/^\/+/, "");
      asked.push(path);
      if (path.split("/").some((s) => s === ".." || s === "." || s === "")) {
        return new Response("bad path", { status: 400 });
      }
      try {
        const body = await Deno.readFile(new URL(path, REPO_ROOT));
        const ext = path.slice(path.lastIndexOf(".") + 1);
        return new Response(body, {
          headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    asked,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const W_ENC = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + 1));
const SHAPES: Record<string, number[]> = { W_enc: [4, 8], b_enc: [8], W_dec: [8, 4], b_dec: [4] };
const STATE: Record<string, Float32Array> = {
  W_enc: W_ENC,
  b_enc: new Float32Array(8).fill(0.5),
  W_dec: Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)),
  b_dec: new Float32Array(4).fill(-0.25),
};

const CHILD = `
const { SAE } = await import(Deno.args[0]);
const sae = await SAE.fromPretrained("gpt2-small-res-jb", "blocks.0.hook_resid_pre");
const state = await sae.stateDict();
console.log(JSON.stringify({
  dIn: sae.cfg.dIn,
  dSae: sae.cfg.dSae,
  neuronpediaId: sae.cfg.metadata.neuronpediaId,
  W_enc: Array.from(state.W_enc.data),
}));
sae.dispose();
`;

Deno.test("mod.ts imported from an http URL resolves a registry release through the mock hub", async () => {
  await using files = serveRepository();
  await using hub = await startMockHub({
    "jbloom/GPT2-Small-SAEs-Reformatted": {
      files: {
        "blocks.0.hook_resid_pre/cfg.json": JSON.stringify({
          d_in: 4,
          d_sae: 8,
          dtype: "float32",
          device: "cpu",
          apply_b_dec_to_input: true,
          normalize_activations: "none",
          architecture: "standard",
          metadata: { model_name: "gpt2-small", hook_name: "blocks.0.hook_resid_pre" },
        }),
        "blocks.0.hook_resid_pre/sae_weights.safetensors": serializeSafetensors(
          Object.fromEntries(
            Object.entries(STATE).map(([k, data]) => [
              k,
              { dtype: "F32" as const, shape: SHAPES[k], data },
            ]),
          ),
        ),
      },
    },
  });
  const tmp = await Deno.makeTempDir();
  try {
    // A URL import has no deno.json: bare specifiers resolve through the importer's map (JSR
    // rewrites them on publish); give the child the package's own "imports".
    const imports = JSON.parse(await Deno.readTextFile(DENO_JSON)).imports;
    await Deno.writeTextFile(`${tmp}/import_map.json`, JSON.stringify({ imports }));
    await Deno.writeTextFile(`${tmp}/child.ts`, CHILD);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--import-map=${tmp}/import_map.json`,
        `--allow-import=127.0.0.1:${files.port}`,
        "--allow-net=127.0.0.1",
        "--allow-env",
        "--allow-read",
        `--allow-write=${tmp}`,
        `${tmp}/child.ts`,
        `${files.url}/mod.ts`,
      ],
      cwd: tmp,
      env: { HF_ENDPOINT: hub.url, HF_HOME: `${tmp}/hf`, HF_HUB_CACHE: `${tmp}/hf/hub` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const line = stdout.trim().split("\n").pop() ?? "";
    assert(line.startsWith("{"), `child printed no result (exit ${out.code}):\n${stderr}`);
    const got = JSON.parse(line);
    assertEquals([got.dIn, got.dSae], [4, 8]);
    assertEquals(got.neuronpediaId, "gpt2-small/0-res-jb", "the registry entry was applied");
    assertEquals(got.W_enc, Array.from(W_ENC), "weights from the mock hub");
    assertEquals(out.code, 0, stderr);
    // The registry came over HTTP through the module graph; no YAML or file read was needed.
    assert(files.asked.includes("mod.ts"));
    assert(files.asked.includes("data/pretrained_saes.json"), files.asked.join(", "));
    assert(!files.asked.includes("data/pretrained_saes.yaml"));
    assert(hub.count({ path: "blocks.0.hook_resid_pre/sae_weights.safetensors" }) > 0);
  } finally {
    await Deno.remove(tmp, { recursive: true });
    await forgetCachedModules(files.port);
  }
});

/** Removes what the child put in Deno's module caches for this one-off origin. */
async function forgetCachedModules(port: number): Promise<void> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const { modulesCache, typescriptCache } = JSON.parse(new TextDecoder().decode(info.stdout));
  for (const root of [modulesCache, typescriptCache]) {
    if (typeof root !== "string") continue;
    await Deno.remove(`${root}/http/127.0.0.1_PORT${port}`, { recursive: true }).catch(() => {});
  }
}
