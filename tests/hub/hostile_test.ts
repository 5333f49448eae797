// The hub layer against a hostile or broken server (tests/hub/mock_hub.ts hostile modes, raw
// sockets): ETags as file names, timeouts, integrity, oversized bodies, confinement of paths,
// revisions and sharded indexes, and orphaned partial downloads.
import {
  hubDownload,
  hubDownloadMany,
  hubDownloadSharded,
  HubError,
  hubFileExists,
} from "../../hub/mod.ts";
import { loadPretrained } from "../../model/load/pretrained.ts";
import { readHfTensors } from "../../model/load/local.ts";
import { loadSaeFromPretrained } from "../../sae/load.ts";
import { ModelError } from "../../model/errors.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { startMockHub } from "./mock_hub.ts";

/** Hub tests run with the op/resource sanitizers: no leaked fetch bodies, servers or timers. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
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

const NO_PROCESSING = {
  foldLn: false,
  centerWritingWeights: false,
  centerUnembed: false,
  foldValueBiases: false,
};

const WEIGHTS = new Uint8Array(4096).map((_, i) => (i * 7) % 251); // LFS (sha256 ETag)
const CFG = '{"d_in": 4}'; // not LFS (git blob sha1 ETag)

test("an ETag that is a path never becomes a file name (with and without forceDownload)", async () => {
  await using hub = await startMockHub({
    "org/m": { files: { "cfg.json": CFG, "w.safetensors": WEIGHTS } },
  });
  const root = await Deno.makeTempDir();
  const cache = `${root}/cache`;
  // blobs/../../../victim.txt is <root>/victim.txt: a user file outside the cache.
  const victim = `${root}/victim.txt`;
  await Deno.writeTextFile(victim, "precious");
  const evil = '"../../../victim.txt"';
  hub.setHostile("org/m", "cfg.json", { headers: { etag: evil } });
  hub.setHostile("org/m", "w.safetensors", { headers: { "x-linked-etag": evil } });
  for (const path of ["cfg.json", "w.safetensors"]) {
    for (const forceDownload of [false, true]) {
      const e = await assertRejects(
        () => hubDownload("org/m", path, { ...hub.options(cache), forceDownload }),
        HubError,
      ) as HubError;
      assertEquals(e.kind, "protocol");
      for (const s of [`${hub.url}/org/m/resolve/`, path, "victim.txt", "40-hex", "64-hex"]) {
        assert(e.message.includes(s), `${s} missing in: ${e.message}`);
      }
    }
  }
  assertEquals(await Deno.readTextFile(victim), "precious");
  assertEquals(hub.count({ route: "resolve", range: false }), 0, "no download was started");
  assertEquals(await listTree(`${cache}/models--org--m`), ["refs", "refs/main"]);
});

test("an empty or missing ETag is refused and leaves the repo's cache usable", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  const variants: Record<string, string | null>[] = [
    { etag: '""', "x-linked-etag": '""' },
    { etag: "", "x-linked-etag": null },
    { etag: null, "x-linked-etag": null },
    { etag: `"${"g".repeat(64)}"`, "x-linked-etag": null }, // not hex
    { etag: `"${"a".repeat(63)}"`, "x-linked-etag": null }, // 63 hex
  ];
  for (const headers of variants) {
    hub.setHostile("org/m", "w.safetensors", { headers });
    const e = await assertRejects(
      () => hubDownload("org/m", "w.safetensors", hub.options(cache)),
      HubError,
    ) as HubError;
    assertEquals(e.kind, "protocol", e.message);
    assert(e.message.includes(`${hub.url}/org/m/resolve/`), e.message);
  }
  assertEquals(await listTree(`${cache}/models--org--m`), ["refs", "refs/main"]);
  // A weak, quoted ETag of the right form is fine, and the cache works afterwards.
  const sha = await sha256(WEIGHTS);
  hub.setHostile("org/m", "w.safetensors", { headers: { "x-linked-etag": `W/"${sha}"` } });
  const p = await hubDownload("org/m", "w.safetensors", hub.options(cache));
  assertEquals(await Deno.readFile(p), WEIGHTS);
  assertEquals(await Deno.readLink(p), `../../blobs/${sha}`);
});

test("a cache whose blobs/ became a file (older saeflow, empty ETag) heals itself", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  await Deno.mkdir(`${cache}/models--org--m`, { recursive: true });
  await Deno.writeFile(`${cache}/models--org--m/blobs`, WEIGHTS);
  const p = await hubDownload("org/m", "w.safetensors", hub.options(cache));
  assertEquals(await Deno.readFile(p), WEIGHTS);
  assert((await Deno.stat(`${cache}/models--org--m/blobs`)).isDirectory);
});

test("LFS integrity: bytes that do not hash to the ETag are refused, nothing is cached", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  const tampered = WEIGHTS.slice();
  tampered[1234] ^= 1; // same length, one bit flipped
  hub.setHostile("org/m", "w.safetensors", { body: tampered });
  const e = await assertRejects(
    () => hubDownload("org/m", "w.safetensors", hub.options(cache)),
    HubError,
  ) as HubError;
  assertEquals(e.kind, "protocol");
  const sha = await sha256(WEIGHTS);
  for (const s of ["integrity", sha, await sha256(tampered), "w.safetensors", hub.url]) {
    assert(e.message.includes(s), `${s} missing in: ${e.message}`);
  }
  assertEquals(await listTree(`${cache}/models--org--m/blobs`), [], "no blob, no .incomplete");
  // The honest server later: the download works (nothing poisoned stayed behind).
  hub.setHostile("org/m", "w.safetensors", null);
  const p = await hubDownload("org/m", "w.safetensors", hub.options(cache));
  assertEquals(await Deno.readFile(p), WEIGHTS);
});

test("more bytes than declared: aborted at once, never written in full", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  const extra = 64_000_000;
  // Chunked answer (no Content-Length) streaming 64 MB after the declared 4 KB.
  hub.setHostile("org/m", "w.safetensors", { extraBytes: extra });
  const e = await assertRejects(
    () => hubDownload("org/m", "w.safetensors", hub.options(cache)),
    HubError,
  ) as HubError;
  assert(e.message.includes("more than the 4096 bytes"), e.message);
  const get = hub.requests.find((r) => r.route === "resolve" && r.range === undefined)!;
  assert(get.bytesSent! < extra / 4, `the client read on: ${get.bytesSent} bytes sent`);
  assertEquals(await listTree(`${cache}/models--org--m/blobs`), []);
  // A Content-Length that contradicts the probe is refused before any byte is read.
  hub.setHostile("org/m", "w.safetensors", {
    extraBytes: extra,
    headers: { "content-length": String(WEIGHTS.length + extra) },
  });
  const e2 = await assertRejects(
    () => hubDownload("org/m", "w.safetensors", hub.options(cache)),
    HubError,
  ) as HubError;
  assert(e2.message.includes(`Content-Length "${WEIGHTS.length + extra}"`), e2.message);
  assertEquals(await listTree(`${cache}/models--org--m/blobs`), []);
});

/** A TCP server that accepts connections and never writes a byte. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch {
      // closed
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed by the client
        }
      }
    },
  };
}

test("a hub that accepts and never answers times out (etagTimeout), naming URL and timeout", async () => {
  await using silent = silentServer();
  const cache = await Deno.makeTempDir();
  const t0 = performance.now();
  const e = await assertRejects(
    () =>
      hubDownload("org/m", "cfg.json", {
        endpoint: silent.url,
        cacheDir: cache,
        token: null,
        etagTimeout: 0.2,
      }),
    HubError,
  ) as HubError;
  const ms = performance.now() - t0;
  assertEquals(e.kind, "timeout");
  assert(ms >= 190 && ms < 5000, `took ${ms} ms`);
  for (
    const s of [`${silent.url}/api/models/org/m/revision/main`, "0.2 s", "HF_HUB_ETAG_TIMEOUT"]
  ) {
    assert(e.message.includes(s), `${s} missing in: ${e.message}`);
  }
  const e2 = await assertRejects(
    () =>
      hubFileExists("org/m", "cfg.json", {
        endpoint: silent.url,
        cacheDir: cache,
        token: null,
        etagTimeout: 0.1,
      }),
    HubError,
  ) as HubError;
  assertEquals(e2.kind, "timeout");
});

test("a silent revision lookup falls back to the cache, like an unreachable hub", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "cfg.json": CFG } } });
  const cache = await Deno.makeTempDir();
  const first = await hubDownload("org/m", "cfg.json", hub.options(cache));
  hub.hang({ route: "info" });
  const opts = { ...hub.options(cache), etagTimeout: 0.1 };
  assertEquals(await hubDownload("org/m", "cfg.json", opts), first);
  // Not cached: the timeout itself.
  const empty = await Deno.makeTempDir();
  const e = await assertRejects(
    () => hubDownload("org/m", "cfg.json", { ...opts, cacheDir: empty }),
    HubError,
  ) as HubError;
  assertEquals(e.kind, "timeout");
});

test("a download that never answers, or trickles, times out (downloadTimeout, per chunk)", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  hub.setHostile("org/m", "w.safetensors", { hang: true });
  const opts = { ...hub.options(cache), downloadTimeout: 0.2 };
  const e = await assertRejects(() => hubDownload("org/m", "w.safetensors", opts), HubError);
  assertEquals((e as HubError).kind, "timeout");
  for (
    const s of [`${hub.url}/org/m/resolve/`, "w.safetensors", "0.2 s", "HF_HUB_DOWNLOAD_TIMEOUT"]
  ) {
    assert(e.message.includes(s), `${s} missing in: ${e.message}`);
  }
  // Headers, then 16 bytes every 400 ms: slower than the 0.2 s idle timeout.
  hub.setHostile("org/m", "w.safetensors", { trickle: { bytes: 16, intervalMs: 400 } });
  const t0 = performance.now();
  const e2 = await assertRejects(() => hubDownload("org/m", "w.safetensors", opts), HubError);
  assertEquals((e2 as HubError).kind, "timeout");
  assert(e2.message.includes("next chunk of the body"), e2.message);
  assert(performance.now() - t0 < 5000);
  assert(!(await listTree(cache)).some((f) => f.includes("snapshots/")));
  // 512 bytes every 60 ms (8 chunks, ~0.5 s in all) passes: the timeout is per chunk, not total.
  hub.setHostile("org/m", "w.safetensors", { trickle: { bytes: 512, intervalMs: 60 } });
  const fresh = { ...opts, cacheDir: await Deno.makeTempDir() };
  const p = await hubDownload("org/m", "w.safetensors", fresh);
  assertEquals(await Deno.readFile(p), WEIGHTS);
  const last = hub.requests.at(-1)!;
  assertEquals([last.range, last.bytesSent], [undefined, WEIGHTS.length], "all of it trickled");
});

test("sharded index entries that climb out (also percent-encoded) are refused", async () => {
  const shard = new Uint8Array(64);
  await using hub = await startMockHub({
    "victim/private": { files: { "secret.safetensors": shard } },
  });
  const cache = await Deno.makeTempDir();
  const entries = [
    "%2e%2e/%2e%2e/victim/private/resolve/main/secret.safetensors",
    "%2E%2e/x.safetensors",
    ".%2E/x.safetensors",
    "%252e%252e/x.safetensors",
    "..%2fx.safetensors",
    "a/../../x.safetensors",
    "..\\x.safetensors",
    "/etc/passwd",
    "",
  ];
  for (const entry of entries) {
    await hub.setRepo("org/big", {
      files: {
        "model.safetensors.index.json": JSON.stringify({
          weight_map: { "a.weight": "model-00001-of-00002.safetensors", "b.weight": entry },
        }),
        "model-00001-of-00002.safetensors": shard,
      },
    });
    const e = await assertRejects(
      () => hubDownloadSharded("org/big", undefined, hub.options(cache)),
      HubError,
    ) as HubError;
    assertEquals(e.kind, "protocol");
    for (const s of ["model.safetensors.index.json", "org/big", JSON.stringify(entry)]) {
      assert(e.message.includes(s), `${s} missing in: ${e.message}`);
    }
  }
  assertEquals(hub.count({ repoId: "victim/private" }), 0, "no request for another repo");
  assertEquals(hub.count({ path: "model-00001-of-00002.safetensors" }), 0, "no shard fetched");
  // Caller-given paths go through the same check.
  for (const p of ["%2e%2e/x", "a/%2E%2E/b", "a\\b", "C:/x"]) {
    const e = await assertRejects(() => hubDownload("org/big", p, hub.options(cache)), HubError);
    assertEquals((e as HubError).kind, "invalid");
  }
});

test("a revision with ../ or unsafe characters is refused before any request or write", async () => {
  await using hub = await startMockHub({
    "org/m": { files: { "cfg.json": CFG }, revisions: { "refs/pr/1": { files: { "x": "1" } } } },
  });
  const root = await Deno.makeTempDir();
  const cache = `${root}/cache`;
  const bad = [
    "../../../escape",
    "main/../x",
    "..",
    ".hidden",
    "a//b",
    "/abs",
    "a b",
    "x\\y",
    "v~1",
  ];
  for (const revision of bad) {
    const e = await assertRejects(
      () => hubDownload("org/m", "cfg.json", { ...hub.options(cache), revision }),
      HubError,
    ) as HubError;
    assertEquals(e.kind, "invalid");
    assert(e.message.includes(JSON.stringify(revision)), e.message);
    await assertRejects(
      () => hubFileExists("org/m", "cfg.json", { ...hub.options(cache), revision }),
      HubError,
    );
  }
  assertEquals(hub.requests.length, 0);
  assertEquals(await listTree(root), []);
  // A ref with slashes (a PR branch) is fine, and stays under refs/.
  const p = await hubDownload("org/m", "x", { ...hub.options(cache), revision: "refs/pr/1" });
  assertEquals(await Deno.readTextFile(p), "1");
  assertEquals(
    await Deno.readTextFile(`${cache}/models--org--m/refs/refs/pr/1`),
    hub.commitOf("org/m", "refs/pr/1"),
  );
});

test("a local model.safetensors.index.json pointing outside the model folder is refused", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/model`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${root}/outside.safetensors`, "not read");
  for (const entry of ["../outside.safetensors", `${root}/outside.safetensors`, "a\\..\\x", 7]) {
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { "wte.weight": entry } }),
    );
    const e = await assertRejects(() => readHfTensors(dir), ModelError);
    assert(e.message.includes("model.safetensors.index.json"), e.message);
    assert(e.message.includes(JSON.stringify(entry)), e.message);
  }
});

test("orphaned partial downloads: stale ones are replaced, old-style ones removed", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "w.safetensors": WEIGHTS } } });
  const cache = await Deno.makeTempDir();
  const sha = await sha256(WEIGHTS);
  const blobs = `${cache}/models--org--m/blobs`;
  await Deno.mkdir(blobs, { recursive: true });
  // Longer than the file: cannot be a prefix of it, so it is started over.
  await Deno.writeFile(`${blobs}/${sha}.incomplete`, new Uint8Array(WEIGHTS.length + 10));
  // What saeflow before this fix left behind after a kill.
  await Deno.writeFile(`${blobs}/${sha}.4242.1.abc123.incomplete`, new Uint8Array(10));
  const p = await hubDownload("org/m", "w.safetensors", hub.options(cache));
  assertEquals(await Deno.readFile(p), WEIGHTS);
  assertEquals(await listTree(blobs), [sha]);
  // A wrong prefix of the right length range is caught by the sha256 and removed.
  await Deno.remove(`${blobs}/${sha}`);
  await Deno.writeFile(`${blobs}/${sha}.incomplete`, new Uint8Array(100).fill(9));
  const e = await assertRejects(
    () => hubDownload("org/m", "w.safetensors", { ...hub.options(cache), forceDownload: false }),
    HubError,
  );
  assert(e.message.includes("integrity"), e.message);
  assertEquals(await listTree(blobs), [], "the bad prefix is gone");
  assertEquals(
    await Deno.readFile(await hubDownload("org/m", "w.safetensors", hub.options(cache))),
    WEIGHTS,
  );
});

test("two files with the same content download concurrently into one blob", async () => {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 6; i++) files[`s${i}.safetensors`] = WEIGHTS;
  await using hub = await startMockHub({ "org/m": { files } });
  const cache = await Deno.makeTempDir();
  const paths = await hubDownloadMany("org/m", Object.keys(files), {
    ...hub.options(cache),
    concurrency: 6,
  });
  for (const p of paths) assertEquals(await Deno.readFile(p), WEIGHTS);
  assertEquals(await listTree(`${cache}/models--org--m/blobs`), [await sha256(WEIGHTS)]);
});

test("a cache that cannot be written gives HubError io naming the path", async () => {
  await using hub = await startMockHub({ "org/m": { files: { "cfg.json": CFG } } });
  const cache = await Deno.makeTempDir();
  await Deno.writeTextFile(`${cache}/models--org--m`, "a file where the repo folder goes");
  const e = await assertRejects(
    () => hubDownload("org/m", "cfg.json", hub.options(cache)),
    HubError,
  ) as HubError;
  assertEquals(e.kind, "io");
  assert(e.message.includes(`${cache}/models--org--m/refs`), e.message);
});

test("SAE and model loaders pass etagTimeout through (no hang behind them)", async () => {
  await using silent = silentServer();
  const opts = {
    endpoint: silent.url,
    cacheDir: await Deno.makeTempDir(),
    token: null,
    etagTimeout: 0.1,
  };
  const e1 = await assertRejects(
    () => loadSaeFromPretrained("org/saes", "blocks.0.hook_resid_pre", opts),
    HubError,
  ) as HubError;
  assertEquals(e1.kind, "timeout");
  assert(e1.message.includes("org/saes"), e1.message);
  const e2 = await assertRejects(
    () => loadPretrained("org/lm", NO_PROCESSING, opts),
    HubError,
  ) as HubError;
  assertEquals(e2.kind, "timeout");
});
