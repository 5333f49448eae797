import {
  getRemoteSafetensorsHeader,
  getRemoteSafetensorsShapes,
  hubDownload,
  hubDownloadMany,
  hubDownloadSafetensors,
  hubDownloadSharded,
  HubError,
  hubFileExists,
  hubListFiles,
} from "../../hub/mod.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { closedPort, startMockHub } from "./mock_hub.ts";

const enc = new TextEncoder();

/** Hub tests run with the op/resource sanitizers: no leaked fetch bodies, servers or files. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

async function hexDigest(algo: "SHA-1" | "SHA-256", data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest(algo, data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Git blob id, the ETag the hub gives non-LFS files. */
function gitBlobSha1(data: Uint8Array): Promise<string> {
  const head = enc.encode(`blob ${data.length}\0`);
  const all = new Uint8Array(head.length + data.length);
  all.set(head);
  all.set(data, head.length);
  return hexDigest("SHA-1", all);
}

/** A minimal f32 safetensors file (header padded to 8 bytes) for the given shapes. */
function safetensorsBytes(shapes: Record<string, number[]>, metadata?: Record<string, string>) {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(enc.encode(json), 8);
  for (let i = 8 + json.length; i < out.length; i++) out[i] = i % 251;
  return out;
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      out.push(p);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk("");
  return out.sort();
}

const CFG = '{"d_in": 4, "d_sae": 8}';
const WEIGHTS = safetensorsBytes({ W_enc: [4, 8], b_enc: [8] }, { format: "pt" });

test("hubDownload writes Python's cache layout (blobs, snapshots symlinks, refs)", async () => {
  await using hub = await startMockHub({
    "org/saes": { files: { "l0/cfg.json": CFG, "l0/sae_weights.safetensors": WEIGHTS } },
  });
  const cache = await Deno.makeTempDir();
  const commit = hub.commitOf("org/saes");
  const cfg = await hubDownload("org/saes", "l0/cfg.json", hub.options(cache));
  const w = await hubDownload("org/saes", "l0/sae_weights.safetensors", hub.options(cache));

  const repo = `${cache}/models--org--saes`;
  assertEquals(cfg, `${repo}/snapshots/${commit}/l0/cfg.json`);
  assertEquals(w, `${repo}/snapshots/${commit}/l0/sae_weights.safetensors`);
  assertEquals(await Deno.readTextFile(`${repo}/refs/main`), commit); // no trailing newline
  const cfgEtag = await gitBlobSha1(enc.encode(CFG)); // non-LFS: git blob sha1
  const wEtag = await hexDigest("SHA-256", WEIGHTS); // LFS: sha256 of the content
  assertEquals(await Deno.readLink(cfg), `../../../blobs/${cfgEtag}`);
  assertEquals(await Deno.readLink(w), `../../../blobs/${wEtag}`);
  assertEquals(await Deno.readTextFile(cfg), CFG);
  assertEquals(await Deno.readFile(w), WEIGHTS);
  assertEquals(
    await listTree(repo),
    [
      "blobs",
      `blobs/${cfgEtag}`,
      `blobs/${wEtag}`,
      "refs",
      "refs/main",
      "snapshots",
      `snapshots/${commit}`,
      `snapshots/${commit}/l0`,
      `snapshots/${commit}/l0/cfg.json`,
      `snapshots/${commit}/l0/sae_weights.safetensors`,
    ].sort(),
  );
});

test("cache reuse: a second download makes no file GET; commit revisions no request", async () => {
  await using hub = await startMockHub({ "gpt2": { files: { "config.json": '{"n_layer":2}' } } });
  const cache = await Deno.makeTempDir();
  const first = await hubDownload("gpt2", "config.json", hub.options(cache));
  assertEquals(hub.count({ route: "resolve", path: "config.json", range: false }), 1);
  const resolvesBefore = hub.count({ route: "resolve" });

  const second = await hubDownload("gpt2", "config.json", hub.options(cache));
  assertEquals(second, first);
  assertEquals(hub.count({ route: "resolve" }), resolvesBefore, "no GET/probe of the file");
  assertEquals(hub.count({ route: "info" }), 2, "only the revision lookup is repeated");

  const before = hub.requests.length;
  const pinned = await hubDownload("gpt2", "config.json", {
    ...hub.options(cache),
    revision: hub.commitOf("gpt2"),
  });
  assertEquals(pinned, first);
  assertEquals(hub.requests.length, before, "a cached commit-hash revision needs no network");

  await hubDownload("gpt2", "config.json", { ...hub.options(cache), forceDownload: true });
  assertEquals(hub.count({ route: "resolve", path: "config.json", range: false }), 2);
});

test("offline mode and an unreachable hub serve refs/main from the cache", async () => {
  const cache = await Deno.makeTempDir();
  let first: string;
  {
    await using hub = await startMockHub({ "org/m": { files: { "a.json": "{}" } } });
    first = await hubDownload("org/m", "a.json", hub.options(cache));
  }
  const dead = `http://127.0.0.1:${closedPort()}`;
  const offline = await hubDownload("org/m", "a.json", {
    endpoint: dead,
    cacheDir: cache,
    offline: true,
  });
  assertEquals(offline, first);
  const noNet = await hubDownload("org/m", "a.json", { endpoint: dead, cacheDir: cache });
  assertEquals(noNet, first);
  assertEquals(await hubFileExists("org/m", "a.json", { cacheDir: cache, offline: true }), true);
  assertEquals(await hubFileExists("org/m", "b.json", { cacheDir: cache, offline: true }), false);
  assertEquals(await hubListFiles("org/m", { cacheDir: cache, offline: true }), ["a.json"]);
  const e = await assertRejects(
    () => hubDownload("org/m", "b.json", { cacheDir: cache, offline: true }),
    HubError,
  );
  assertEquals((e as HubError).kind, "offline");
  assert(e.message.includes("b.json") && e.message.includes("org/m"), e.message);
  // Unreachable hub, revision cached but not this file: the network error, not "offline".
  const e2 = await assertRejects(
    () => hubDownload("org/m", "b.json", { endpoint: dead, cacheDir: cache }),
    HubError,
  );
  assertEquals((e2 as HubError).kind, "unreachable");
  assert(e2.message.includes(dead), e2.message);
});

test("a new commit on main updates refs/main and reuses unchanged blobs", async () => {
  await using hub = await startMockHub({
    "org/m": { files: { "cfg.json": CFG, "w.safetensors": WEIGHTS } },
  });
  const cache = await Deno.makeTempDir();
  const [c1, w1] = await hubDownloadMany(
    "org/m",
    ["cfg.json", "w.safetensors"],
    hub.options(cache),
  );
  const old = hub.commitOf("org/m");
  await hub.setRepo("org/m", { files: { "cfg.json": '{"d_in": 5}', "w.safetensors": WEIGHTS } });
  const fresh = hub.commitOf("org/m");
  assert(fresh !== old);
  const [c2, w2] = await hubDownloadMany(
    "org/m",
    ["cfg.json", "w.safetensors"],
    hub.options(cache),
  );
  assertEquals(await Deno.readTextFile(`${cache}/models--org--m/refs/main`), fresh);
  assert(c2.includes(`/snapshots/${fresh}/`) && c1.includes(`/snapshots/${old}/`));
  assertEquals(await Deno.readTextFile(c1), CFG, "old snapshot untouched");
  assertEquals(await Deno.readTextFile(c2), '{"d_in": 5}');
  assertEquals(await Deno.readLink(w2), await Deno.readLink(w1), "same blob");
  assertEquals(hub.count({ route: "resolve", path: "w.safetensors", range: false }), 1);
  assertEquals(hub.count({ route: "info" }), 2, "one revision lookup per hubDownloadMany");
});

test("sharded checkpoint: index + 2 shards downloaded as a set", async () => {
  const shard1 = safetensorsBytes({ "a.weight": [2, 3] });
  const shard2 = safetensorsBytes({ "b.weight": [3], "c.weight": [1, 1] });
  const index = JSON.stringify({
    metadata: { total_size: 36 },
    weight_map: {
      "a.weight": "model-00001-of-00002.safetensors",
      "b.weight": "model-00002-of-00002.safetensors",
      "c.weight": "model-00002-of-00002.safetensors",
    },
  });
  await using hub = await startMockHub({
    "org/big": {
      files: {
        "config.json": "{}",
        "model.safetensors.index.json": index,
        "model-00001-of-00002.safetensors": shard1,
        "model-00002-of-00002.safetensors": shard2,
        "unrelated.bin": new Uint8Array(64),
      },
    },
  });
  const cache = await Deno.makeTempDir();
  const res = await hubDownloadSharded("org/big", undefined, hub.options(cache));
  const snap = `${cache}/models--org--big/snapshots/${hub.commitOf("org/big")}`;
  assertEquals(res.indexPath, `${snap}/model.safetensors.index.json`);
  assertEquals(res.shardPaths, [
    `${snap}/model-00001-of-00002.safetensors`,
    `${snap}/model-00002-of-00002.safetensors`,
  ]);
  assertEquals(await Deno.readFile(res.shardPaths[1]), shard2);
  assertEquals(res.weightMap["c.weight"], "model-00002-of-00002.safetensors");
  assertEquals(hub.count({ route: "info" }), 1, "shards fetched at the index's commit");
  assertEquals(hub.count({ path: "unrelated.bin" }), 0);

  const viaAuto = await hubDownloadSafetensors("org/big", hub.options(cache));
  assertEquals(viaAuto, res.shardPaths);
  assertEquals(hub.count({ route: "resolve", range: false }), 3, "nothing downloaded twice");
});

test("missing file, repo and revision errors name repo, revision and path", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "cfg.json": CFG } } });
  const cache = await Deno.makeTempDir();
  const e1 = await assertRejects(
    () => hubDownload("org/m", "layer_3/cfg.json", hub.options(cache)),
    HubError,
  ) as HubError;
  assertEquals([e1.kind, e1.status], ["not_found", 404]);
  for (const s of ["org/m", "main", "layer_3/cfg.json"]) assert(e1.message.includes(s), e1.message);

  const e2 = await assertRejects(
    () => hubDownload("org/nope", "cfg.json", hub.options(cache)),
    HubError,
  ) as HubError;
  assertEquals(e2.kind, "not_found");
  assert(e2.message.includes("org/nope") && /repository not found/i.test(e2.message), e2.message);

  const e3 = await assertRejects(
    () => hubDownload("org/m", "cfg.json", { ...hub.options(cache), revision: "v9" }),
    HubError,
  ) as HubError;
  assertEquals(e3.kind, "not_found");
  assert(e3.message.includes("v9"), e3.message);
  assertEquals(await hubFileExists("org/m", "nope.json", hub.options(cache)), false);
  assertEquals(await hubFileExists("org/m", "cfg.json", hub.options(cache)), true);
  await assertRejects(() => hubDownload("org/m", "../x", hub.options(cache)), HubError, '".."');
});

test("unreachable hub: one clear error naming endpoint and repo", async () => {
  const cache = await Deno.makeTempDir();
  const endpoint = `http://127.0.0.1:${closedPort()}`;
  const e = await assertRejects(
    () => hubDownload("org/m", "cfg.json", { endpoint, cacheDir: cache, token: null }),
    HubError,
  ) as HubError;
  assertEquals(e.kind, "unreachable");
  for (const s of [endpoint, "org/m", "HF_ENDPOINT", "HF_HUB_OFFLINE"]) {
    assert(e.message.includes(s), `${s} missing in: ${e.message}`);
  }
  assertEquals(await listTree(cache), [], "nothing written");
  const e2 = await assertRejects(
    () => hubListFiles("org/m", { endpoint, cacheDir: cache, token: null }),
    HubError,
  ) as HubError;
  assertEquals(e2.kind, "unreachable");
});

test("HF_ENDPOINT from the environment drives a download; an explicit endpoint beats it", async () => {
  await using hub = await startMockHub({
    "org/envrepo": { files: { "cfg.json": CFG, "sae_weights.safetensors": WEIGHTS } },
  });
  const cache = await Deno.makeTempDir();
  const before = Deno.env.get("HF_ENDPOINT");
  // No `endpoint` option: only the environment can point the download at the mock.
  const opts = { cacheDir: cache, token: null, offline: false };
  try {
    Deno.env.set("HF_ENDPOINT", hub.url + "/");
    const cfg = await hubDownload("org/envrepo", "cfg.json", opts);
    assertEquals(await Deno.readTextFile(cfg), CFG);
    const w = await hubDownload("org/envrepo", "sae_weights.safetensors", opts);
    assertEquals(await Deno.readFile(w), WEIGHTS);
    assert(hub.count({ route: "resolve", path: "cfg.json" }) >= 1, "the mock served cfg.json");
    assert(hub.count({ route: "resolve", path: "sae_weights.safetensors" }) >= 1);
    // An explicit endpoint wins over the environment (here a closed port).
    Deno.env.set("HF_ENDPOINT", `http://127.0.0.1:${closedPort()}`);
    const n = hub.count();
    const again = await hubDownload("org/envrepo", "cfg.json", {
      ...opts,
      endpoint: hub.url,
      forceDownload: true,
    });
    assertEquals(await Deno.readTextFile(again), CFG);
    assert(hub.count() > n, "the explicit endpoint was asked");
    // And with the closed port from the environment, a download into an empty cache (no
    // fallback) fails naming that endpoint.
    const empty = { ...opts, cacheDir: await Deno.makeTempDir() };
    const e = await assertRejects(
      () => hubDownload("org/envrepo", "cfg.json", empty),
      HubError,
    ) as HubError;
    assertEquals(e.kind, "unreachable");
    assert(e.message.includes(Deno.env.get("HF_ENDPOINT")!), e.message);
  } finally {
    if (before === undefined) Deno.env.delete("HF_ENDPOINT");
    else Deno.env.set("HF_ENDPOINT", before);
  }
});

test("gated repo: 401 without token mentions HF_TOKEN; token gives access", async () => {
  await using hub = await startMockHub({
    "google/gated": { files: { "c.json": "{}" }, gated: true },
  });
  const cache = await Deno.makeTempDir();
  const e = await assertRejects(
    () => hubDownload("google/gated", "c.json", hub.options(cache)),
    HubError,
  ) as HubError;
  assertEquals([e.kind, e.status], ["unauthorized", 401]);
  assert(e.message.includes("HF_TOKEN") && e.message.includes("google/gated"), e.message);
  const wrong = await assertRejects(
    () => hubDownload("google/gated", "c.json", { ...hub.options(cache), token: "hf_wrong" }),
    HubError,
  ) as HubError;
  assertEquals([wrong.kind, wrong.status], ["unauthorized", 403]);
  // Any token string is sent (Python accepts tokens without the hf_ prefix too).
  await using hub2 = await startMockHub({ "g/x": { files: { "c.json": "{}" }, gated: true } }, {
    token: "plain-token",
  });
  const ok = await hubDownload("g/x", "c.json", { ...hub2.options(cache), token: "plain-token" });
  assertEquals(await Deno.readTextFile(ok), "{}");
  assert(hub2.requests.every((r) => r.authorization === "Bearer plain-token"));
});

test("an interrupted download caches nothing under its name; the next one resumes it", async () => {
  const big = new Uint8Array(256 * 1024).map((_, i) => i % 256);
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": big } } });
  hub.breakFile("org/m", "w.safetensors");
  const cache = await Deno.makeTempDir();
  const e = await assertRejects(
    () => hubDownload("org/m", "w.safetensors", hub.options(cache)),
    HubError,
  ) as HubError;
  assert(e.message.includes("w.safetensors"), e.message);
  const sha = await hexDigest("SHA-256", big);
  const files = await listTree(cache);
  assert(!files.some((f) => f.includes("snapshots/")), files.join());
  assertEquals(files.filter((f) => f.includes("blobs/")), [
    `models--org--m/blobs/${sha}.incomplete`,
  ]);
  const partial = (await Deno.stat(`${cache}/models--org--m/blobs/${sha}.incomplete`)).size;
  assert(partial > 0 && partial < big.length, `partial ${partial}`);

  // The next download asks only for the missing bytes (full GETs stay broken) and verifies
  // the whole blob against its sha256.
  const p = await hubDownload("org/m", "w.safetensors", hub.options(cache));
  assertEquals(await Deno.readFile(p), big);
  assert(hub.requests.some((r) => r.range === `bytes=${partial}-`), "a Range resume");
  assertEquals(hub.count({ route: "resolve", range: false }), 1, "no second full GET");
  const after = await listTree(`${cache}/models--org--m/blobs`);
  assertEquals(after, [sha], "the .incomplete file became the blob");
});

test("hubListFiles, hubDownloadMany order, dataset repos", async () => {
  await using hub = await startMockHub({
    "org/m": { files: { "b/x.json": "1", "a.json": "2", "b/c/y.json": "3" } },
    "org/data": { type: "dataset", files: { "train.jsonl": '{"text":"hi"}\n' } },
  });
  const cache = await Deno.makeTempDir();
  assertEquals(await hubListFiles("org/m", hub.options(cache)), [
    "a.json",
    "b/c/y.json",
    "b/x.json",
  ]);
  const paths = await hubDownloadMany("org/m", ["b/x.json", "a.json"], hub.options(cache));
  assertEquals(await Promise.all(paths.map((p) => Deno.readTextFile(p))), ["1", "2"]);
  const d = await hubDownload("org/data", "train.jsonl", {
    ...hub.options(cache),
    repoType: "dataset",
  });
  assert(d.startsWith(`${cache}/datasets--org--data/snapshots/`), d);
});

test("remote safetensors header via Range requests only", async () => {
  const big = safetensorsBytes({ W_enc: [16, 64], W_dec: [64, 16], b_enc: [64] }, { a: "b" });
  await using hub = await startMockHub({ "org/saes": { files: { "l/sae.safetensors": big } } });
  const cache = await Deno.makeTempDir();
  const shapes = await getRemoteSafetensorsShapes(
    "org/saes",
    "l/sae.safetensors",
    hub.options(cache),
  );
  assertEquals(shapes, { W_enc: [16, 64], W_dec: [64, 16], b_enc: [64] });
  assertEquals(hub.count({ route: "resolve", range: false }), 0, "no full download");
  const served = hub.requests.filter((r) => r.route === "resolve").map((r) => r.range);
  assert(served.includes("bytes=0-7"), served.join());
  assertEquals(await listTree(cache), []);
  const header = await getRemoteSafetensorsHeader(
    "org/saes",
    "l/sae.safetensors",
    hub.options(cache),
  );
  assertEquals(header.metadata, { a: "b" });
  assertEquals(header.tensors.b_enc, { dtype: "F32", shape: [64], data_offsets: [8192, 8448] });

  await using hub2 = await startMockHub({ "org/x": { files: { "bad.safetensors": "not st" } } });
  const e = await assertRejects(
    () => getRemoteSafetensorsShapes("org/x", "bad.safetensors", hub2.options(cache)),
    HubError,
  ) as HubError;
  assertEquals(e.kind, "protocol");
});
