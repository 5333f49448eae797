/**
 * `uploadSaesToHuggingface` against the mock hub: two SAEs (a live one and a saved folder with
 * sparsity) at realistic widths go up in one commit and come back identical through
 * `SAE.fromPretrained` and `hubDownload` + `SAE.loadFromDisk`; the README rule; and the bad
 * inputs of issue 9 (no token, a token that cannot write, a failing LFS upload, invalid folders),
 * each refused with the hub left as it was.
 */

import { hubDownloadMany, HubError } from "../../hub/mod.ts";
import { writeSafetensors } from "../../io/safetensors_write.ts";
import { createSAEConfig } from "../../sae/config.ts";
import { SAEMetadata } from "../../sae/metadata.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeLoadError } from "../../sae/errors.ts";
import { checkSaeFolder, defaultSaeReadme, uploadSaesToHuggingface } from "../../sae/upload.ts";
import { neuronpediaFeatureUrl } from "../../sae/neuronpedia.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { startMockHub } from "../hub/mock_hub.ts";
import { randomParams } from "./_sae_helpers.ts";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sae_upload_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function assertSameState(a: SAE, b: SAE, what: string): Promise<void> {
  const sa = await a.stateDict(), sb = await b.stateDict();
  assertEquals(Object.keys(sb).sort(), Object.keys(sa).sort(), `${what}: tensor names`);
  for (const [name, t] of Object.entries(sa)) {
    assertEquals(sb[name].shape, t.shape, `${what}: ${name} shape`);
    assertEquals(sb[name].data, t.data, `${what}: ${name} values (bit for bit)`);
  }
}

const ID_A = "blocks.8.hook_resid_pre";
const ID_B = "blocks.9.hook_resid_pre";

/** A live standard SAE (d_in 128, d_sae 512) and a saved TopK folder with sparsity. */
async function twoSaes(dir: string) {
  const cfgA = createSAEConfig({
    architecture: "standard",
    dIn: 128,
    dSae: 512,
    metadata: SAEMetadata.fromDict({
      model_name: "gpt2",
      hook_name: ID_A,
      neuronpedia_id: "gpt2-small/8-res-jb",
    }),
  });
  const live = await SAE.fromParams(cfgA, randomParams(cfgA, 1));
  const cfgB = createSAEConfig({
    architecture: "topk",
    dIn: 128,
    dSae: 640,
    k: 40,
    metadata: SAEMetadata.fromDict({ model_name: "gpt2", hook_name: ID_B }),
  });
  const saved = await SAE.fromParams(cfgB, randomParams(cfgB, 2));
  const sparsity = Float32Array.from({ length: 640 }, (_, i) => -1 - (i % 7) / 3);
  const folder = `${dir}/layer9`;
  await saved.saveModel(folder, { logSparsity: sparsity });
  return { live, saved, folder, sparsity };
}

Deno.test("uploadSaesToHuggingface: two SAEs round-trip through the mock hub bit for bit", async () => {
  await using hub = await startMockHub({});
  await withTmp(async (dir) => {
    const { live, saved, folder, sparsity } = await twoSaes(dir);
    const phases: string[] = [];
    const r = await uploadSaesToHuggingface({
      saes: { [ID_A]: live, [ID_B]: folder },
      repoId: "me/gpt2-saes",
      token: hub.writeToken,
      hub: { endpoint: hub.url, cacheDir: `${dir}/cache` },
      onProgress: (p) => p.event === "phase" && phases.push(p.phase),
    });
    assertEquals(phases, ["creating-repo", "preuploading", "uploadingLargeFiles", "committing"]);
    assertEquals(hub.commits.length, 1, "one commit for both SAEs and the README");
    assertEquals(hub.commits[0].summary, "Upload 2 SAEs");
    assertEquals(r.files, [
      "README.md",
      `${ID_A}/cfg.json`,
      `${ID_A}/sae_weights.safetensors`,
      `${ID_B}/cfg.json`,
      `${ID_B}/sae_weights.safetensors`,
      `${ID_B}/sparsity.safetensors`,
    ]);
    assertEquals(hub.listFiles("me/gpt2-saes"), [".gitattributes", ...r.files]);
    assertEquals(hub.count({ route: "lfs-upload" }), 3, "weights and sparsity through LFS");
    const readme = new TextDecoder().decode(hub.readFile("me/gpt2-saes", "README.md"));
    assertEquals(readme, defaultSaeReadme("me/gpt2-saes", [ID_A, ID_B]));
    assert(readme.startsWith("---\nlibrary_name: saelens\ntags:\n"), readme);
    assert(readme.includes(`- \`${ID_B}\``), readme);

    // SAE.fromPretrained with the repo id as release: identical tensors, config, sparsity.
    const opts = { endpoint: hub.url, cacheDir: `${dir}/cache`, token: null };
    const a2 = await SAE.fromPretrained("me/gpt2-saes", ID_A, opts);
    await assertSameState(live, a2, ID_A);
    assertEquals(a2.cfg.metadata.hookName, ID_A);
    assertEquals(
      neuronpediaFeatureUrl(a2, 511),
      "https://www.neuronpedia.org/gpt2-small/8-res-jb/511",
    );
    const b2 = await SAE.fromPretrainedWithCfgAndSparsity("me/gpt2-saes", ID_B, opts);
    await assertSameState(saved, b2.sae, ID_B);
    assertEquals(b2.sae.cfg.k, 40);
    assertEquals(b2.sparsity, sparsity);

    // hubDownload + SAE.loadFromDisk of the downloaded snapshot folder: the same again.
    const paths = await hubDownloadMany(
      "me/gpt2-saes",
      [`${ID_A}/cfg.json`, `${ID_A}/sae_weights.safetensors`],
      opts,
    );
    const a3 = await SAE.loadFromDisk(paths[0].slice(0, -"/cfg.json".length));
    await assertSameState(live, a3, `${ID_A} from disk`);
    for (const s of [live, saved, a2, b2.sae, a3]) s.dispose();
  });
});

Deno.test("uploadSaesToHuggingface: an existing README is kept; addDefaultReadme false adds none", async () => {
  await using hub = await startMockHub({ "me/saes": { files: { "README.md": "mine" } } });
  await withTmp(async (dir) => {
    const { live, saved, folder } = await twoSaes(dir);
    const hubOpts = { endpoint: hub.url, cacheDir: `${dir}/cache` };
    const r = await uploadSaesToHuggingface({
      saes: new Map([[ID_B, folder]]),
      repoId: "me/saes",
      token: hub.writeToken,
      hub: hubOpts,
    });
    assert(!r.files.includes("README.md"));
    assertEquals(hub.commits[0].summary, `Upload SAE ${ID_B}`);
    assertEquals(new TextDecoder().decode(hub.readFile("me/saes", "README.md")), "mine");
    const r2 = await uploadSaesToHuggingface({
      saes: { [ID_A]: live },
      repoId: "me/other",
      token: hub.writeToken,
      hub: hubOpts,
      addDefaultReadme: false,
    });
    assertEquals(r2.files, [`${ID_A}/cfg.json`, `${ID_A}/sae_weights.safetensors`]);
    assertEquals(hub.readFile("me/other", "README.md"), undefined);
    live.dispose();
    saved.dispose();
  });
});

Deno.test("uploadSaesToHuggingface: no token, bad ids and invalid folders are refused before any request", async () => {
  await using hub = await startMockHub({});
  await withTmp(async (dir) => {
    const { live, saved, folder } = await twoSaes(dir);
    const hubOpts = { endpoint: hub.url, cacheDir: `${dir}/cache`, token: null };
    const base = { repoId: "me/saes", hub: hubOpts };
    const noToken = await assertRejects(
      () => uploadSaesToHuggingface({ ...base, saes: { [ID_A]: live } }),
      HubError,
      "needs a Hugging Face token with write access",
    );
    assertEquals((noToken as HubError).kind, "unauthorized");
    const w = { ...base, token: hub.writeToken };
    await assertRejects(() => uploadSaesToHuggingface({ ...w, saes: {} }), HubError, "No SAEs");
    await assertRejects(
      () => uploadSaesToHuggingface({ ...w, saes: { "../up": folder } }),
      HubError,
      "cannot name a folder",
    );
    await assertRejects(
      () => uploadSaesToHuggingface({ ...w, repoId: "saes", saes: { [ID_A]: folder } }),
      HubError,
      "no namespace",
    );
    await assertRejects(
      () => uploadSaesToHuggingface({ ...w, saes: { [ID_A]: `${dir}/missing` } }),
      SaeLoadError,
      "no such folder",
    );

    // Broken copies of the saved folder, each named in its error.
    const broken = async (name: string, edit: (d: string) => Promise<void>, msg: string) => {
      const d = `${dir}/${name}`;
      await Deno.mkdir(d);
      for (const f of ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors"]) {
        await Deno.copyFile(`${folder}/${f}`, `${d}/${f}`);
      }
      await edit(d);
      const err = await assertRejects(
        () => uploadSaesToHuggingface({ ...w, saes: { [ID_A]: live, [ID_B]: d } }),
        SaeLoadError,
        msg,
      );
      assert(err.message.includes(`SAE "${ID_B}"`), err.message);
    };
    await broken("noweights", (d) => Deno.remove(`${d}/sae_weights.safetensors`), "is missing");
    await broken("truncated", async (d) => {
      const b = await Deno.readFile(`${d}/sae_weights.safetensors`);
      await Deno.writeFile(`${d}/sae_weights.safetensors`, b.subarray(0, b.length - 4));
    }, "truncated");
    await broken("wrongshape", async (d) => {
      const cfg = JSON.parse(await Deno.readTextFile(`${d}/cfg.json`));
      await Deno.writeTextFile(`${d}/cfg.json`, JSON.stringify({ ...cfg, d_in: 256 }));
    }, "expected [256, 640]");
    await broken("badcfg", (d) => Deno.writeTextFile(`${d}/cfg.json`, "{"), "not valid JSON");
    await broken("badarch", async (d) => {
      const cfg = JSON.parse(await Deno.readTextFile(`${d}/cfg.json`));
      await Deno.writeTextFile(`${d}/cfg.json`, JSON.stringify({ ...cfg, architecture: "nope" }));
    }, "nope");
    await broken("badsparsity", async (d) => {
      await Deno.copyFile(`${d}/sae_weights.safetensors`, `${d}/sparsity.safetensors`);
    }, 'one tensor "sparsity" of shape [640]');
    assertEquals(hub.requests.length, 0, "the hub saw no request");

    // A disposed SAE is refused, and a hand-made valid folder passes the check.
    const gone = await SAE.fromConfig({ architecture: "standard", dIn: 128, dSae: 256 });
    gone.dispose();
    await assertRejects(
      () => uploadSaesToHuggingface({ ...w, saes: { [ID_A]: gone } }),
      HubError,
      "disposed",
    );
    assertEquals(hub.requests.length, 0);
    const ok = await checkSaeFolder(folder, ID_B);
    assertEquals(ok.files, ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors"]);
    assertEquals(ok.cfg.dSae, 640);
    live.dispose();
    saved.dispose();
  });
});

Deno.test("uploadSaesToHuggingface: a read-only token or a failing LFS upload leaves the repo unchanged", async () => {
  await using hub = await startMockHub({
    "me/saes": { files: { "README.md": "mine", [`${ID_A}/cfg.json`]: "{}" } },
  });
  await withTmp(async (dir) => {
    const { live, saved, folder } = await twoSaes(dir);
    const before = { commit: hub.commitOf("me/saes"), files: hub.listFiles("me/saes") };
    const hubOpts = { endpoint: hub.url, cacheDir: `${dir}/cache` };
    const saes = { [ID_A]: live, [ID_B]: folder };
    const denied = await assertRejects(
      () => uploadSaesToHuggingface({ saes, repoId: "me/saes", token: hub.token, hub: hubOpts }),
      HubError,
      "the token cannot write there (HTTP 403",
    ) as HubError;
    assert(denied.message.includes("model me/saes"), denied.message);
    assertEquals(denied.kind, "unauthorized");

    hub.fail({ route: "lfs-upload" });
    const failed = await assertRejects(
      () =>
        uploadSaesToHuggingface({ saes, repoId: "me/saes", token: hub.writeToken, hub: hubOpts }),
      HubError,
      "while uploading",
    );
    assert(/blocks\.[89]\.hook_resid_pre\/s\w+\.safetensors/.test(failed.message), failed.message);
    assert(failed.message.includes("the repo is unchanged"), failed.message);
    assertEquals(hub.count({ route: "commit" }), 0);
    assertEquals({ commit: hub.commitOf("me/saes"), files: hub.listFiles("me/saes") }, before);

    // The temporary folder of the live SAE is gone after the failure.
    const tempDir = `${dir}/tmp`;
    await Deno.mkdir(tempDir);
    const tempsSeen = new Set<string>();
    await assertRejects(() =>
      uploadSaesToHuggingface({
        saes,
        repoId: "me/saes",
        token: hub.writeToken,
        hub: hubOpts,
        tempDir,
        onProgress: async () => {
          for await (const e of Deno.readDir(tempDir)) tempsSeen.add(e.name);
        },
      }), HubError);
    assertEquals(tempsSeen.size, 1, "the live SAE was saved under tempDir");
    let left = 0;
    for await (const _ of Deno.readDir(tempDir)) left++;
    assertEquals(left, 0, "no saeflow-upload-* temp folder left behind");
    live.dispose();
    saved.dispose();
  });
});

Deno.test("checkSaeFolder: legacy tensors (log_threshold, scaling_factor) pass; ints and extras do not", async () => {
  await withTmp(async (dir) => {
    const cfg = createSAEConfig({ architecture: "jumprelu", dIn: 128, dSae: 256 });
    const params = randomParams(cfg, 3);
    const sae = await SAE.fromParams(cfg, params);
    await sae.saveModel(`${dir}/j`);
    sae.dispose();
    assertEquals((await checkSaeFolder(`${dir}/j`, "j")).files, [
      "cfg.json",
      "sae_weights.safetensors",
    ]);
    const path = `${dir}/j/sae_weights.safetensors`;
    const f32 = (name: string, shape: number[]) => ({
      dtype: "F32" as const,
      shape,
      data: params[name],
    });
    const legacy = {
      W_enc: f32("W_enc", [128, 256]),
      W_dec: f32("W_dec", [256, 128]),
      b_enc: f32("b_enc", [256]),
      b_dec: f32("b_dec", [128]),
      log_threshold: { dtype: "F32" as const, shape: [256], data: params.threshold.map(Math.log) },
      scaling_factor: { dtype: "F32" as const, shape: [256], data: new Float32Array(256).fill(1) },
    };
    await writeSafetensors(path, legacy);
    await checkSaeFolder(`${dir}/j`, "j");
    await writeSafetensors(path, { ...legacy, extra: f32("b_dec", [128]) });
    await assertRejects(() => checkSaeFolder(`${dir}/j`, "j"), SaeLoadError, "unexpected tensor");
    await writeSafetensors(path, {
      ...legacy,
      b_dec: { dtype: "I32", shape: [128], data: new Int32Array(128) },
    });
    await assertRejects(() => checkSaeFolder(`${dir}/j`, "j"), SaeLoadError, "dtype I32");
  });
});
