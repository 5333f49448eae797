/**
 * Uploads (`hub/upload.ts`) against the mock hub's upload routes: one commit, LFS (basic and
 * multipart), a round trip through `hubDownload`, and the hostile cases: no token (no request at
 * all), a read-only token (403), a failing LFS upload or commit (repo unchanged, the file named),
 * a missing branch, a hub that hangs or cannot be reached.
 */

import {
  checkUploadRepoId,
  hubDownload,
  HubError,
  type HubUploadFile,
  type HubUploadProgress,
  uploadFolder,
  uploadHubFiles,
} from "../../hub/mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { closedPort, type MockHub, startMockHub } from "./mock_hub.ts";

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_upload_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The state of a repo, to show that a failed upload left it as it was. */
function snapshot(hub: MockHub, repoId: string) {
  return { commit: hub.commitOf(repoId), files: hub.listFiles(repoId) };
}

test("upload: files in one commit (regular, LFS basic and multipart) download back identical", async () => {
  await using hub = await startMockHub({}, { lfsMultipartChunkSize: 100_000 });
  await withTmp(async (dir) => {
    const big = bytes(250_001, 1); // multipart: 3 parts, the last one short
    const mid = bytes(70_000, 2); // basic LFS upload
    await Deno.writeFile(`${dir}/big.safetensors`, big);
    const progress: HubUploadProgress[] = [];
    const r = await uploadHubFiles("me/repo", [
      { pathInRepo: "a/cfg.json", content: '{"d_in": 128}' },
      { pathInRepo: "a/big.safetensors", localPath: `${dir}/big.safetensors` },
      { pathInRepo: "b/mid.safetensors", content: mid },
    ], { ...hub.writeOptions(dir), onProgress: (p) => progress.push(p) });
    assertEquals(r.createdRepo, true);
    assertEquals(r.files, ["a/big.safetensors", "a/cfg.json", "b/mid.safetensors"]);
    assertEquals(r.commit, hub.commitOf("me/repo"));
    assertEquals(hub.commits.length, 1, "one commit for every file");
    assertEquals(hub.commits[0].summary, "Upload 3 files with saeflow");
    assertEquals(hub.listFiles("me/repo"), [
      ".gitattributes",
      "a/big.safetensors",
      "a/cfg.json",
      "b/mid.safetensors",
    ]);
    assertEquals(hub.count({ route: "lfs-upload" }), 4, "3 parts + 1 basic upload");
    assertEquals(hub.count({ route: "lfs-complete" }), 1);
    const phases = progress.filter((p) => p.event === "phase").map((p) => p.phase);
    assertEquals(phases, ["creating-repo", "preuploading", "uploadingLargeFiles", "committing"]);
    assert(progress.some((p) => p.event === "file" && p.path === "a/big.safetensors"));
    // The token goes with every request to the hub.
    const toHub = hub.requests.filter((q) => !q.url.startsWith("/mock-lfs/"));
    assert(toHub.every((q) => q.authorization === `Bearer ${hub.writeToken}`));

    const cacheDir = `${dir}/cache`;
    const got = await hubDownload("me/repo", "a/big.safetensors", hub.options(cacheDir));
    assert(sameBytes(await Deno.readFile(got), big), "the multipart file round-trips");
    const got2 = await hubDownload("me/repo", "b/mid.safetensors", hub.options(cacheDir));
    assert(sameBytes(await Deno.readFile(got2), mid));
    const cfg = await hubDownload("me/repo", "a/cfg.json", hub.options(cacheDir));
    assertEquals(await Deno.readTextFile(cfg), '{"d_in": 128}');

    // A second upload to the same repo: no new repo, a second commit on top of the first.
    const r2 = await uploadHubFiles("me/repo", [{ pathInRepo: "a/cfg.json", content: "{}" }], {
      ...hub.writeOptions(dir),
      commitMessage: "update cfg",
    });
    assertEquals(r2.createdRepo, false);
    assertEquals(hub.commits.map((c) => c.summary), ["Upload 3 files with saeflow", "update cfg"]);
    assertEquals(new TextDecoder().decode(hub.readFile("me/repo", "a/cfg.json")), "{}");
    assert(sameBytes(hub.readFile("me/repo", "a/big.safetensors"), big), "other files kept");
  });
});

test("upload: no token, a bad repo id or branch, offline, bad files: refused before any request", async () => {
  await using hub = await startMockHub({});
  await withTmp(async (dir) => {
    const files = [{ pathInRepo: "x.json", content: "{}" }];
    const noToken = await assertRejects(
      () => uploadHubFiles("me/repo", files, hub.options(dir)),
      HubError,
      "needs a Hugging Face token with write access",
    );
    assertEquals((noToken as HubError).kind, "unauthorized");
    assert(noToken.message.includes("model me/repo"), noToken.message);
    const w = hub.writeOptions(dir);
    for (
      const [repo, why] of [
        ["repo", "no namespace"],
        ["a/b/c", "more than one /"],
        ["me/a b", "may hold only"],
        ["me/.x", "starts or ends"],
        ["me/-x", "starts or ends"],
        ["me/a--b", "contains --"],
      ]
    ) {
      await assertRejects(() => uploadHubFiles(repo, files, w), HubError, why);
    }
    await assertRejects(
      () => uploadHubFiles("me/repo", files, { ...w, revision: "a".repeat(40) }),
      HubError,
      "commit hash",
    );
    await assertRejects(
      () => uploadHubFiles("me/repo", files, { ...w, revision: "../main" }),
      HubError,
      "invalid revision",
    );
    await assertRejects(
      () => uploadHubFiles("me/repo", files, { ...w, offline: true }),
      HubError,
      "offline",
    );
    await assertRejects(() => uploadHubFiles("me/repo", [], w), HubError, "empty");
    await assertRejects(
      () => uploadHubFiles("me/repo", [{ pathInRepo: "../x", content: "" }], w),
      HubError,
      "invalid file path",
    );
    await assertRejects(
      () => uploadHubFiles("me/repo", [...files, ...files], w),
      HubError,
      "listed twice",
    );
    await assertRejects(
      () => uploadHubFiles("me/repo", [{ pathInRepo: "w.bin", localPath: `${dir}/nope` }], w),
      HubError,
      "does not exist",
    );
    await assertRejects(
      () => uploadHubFiles("me/repo", [{ pathInRepo: "w.bin", localPath: dir }], w),
      HubError,
      "not a regular file",
    );
    await assertRejects(() => uploadFolder("me/repo", `${dir}/missing`, w), HubError, "not exist");
    assertEquals(hub.requests.length, 0, "the hub saw no request");
  });
  assertThrows(() => checkUploadRepoId("x".repeat(50) + "/" + "y".repeat(50)), HubError, "96");
});

test("upload: a read-only token gets a clear 403 naming the repo; nothing changes", async () => {
  await using hub = await startMockHub({
    "me/repo": { files: { "README.md": "hello", "w.safetensors": bytes(5000, 3) } },
  });
  await withTmp(async (dir) => {
    const before = snapshot(hub, "me/repo");
    const readOnly = hub.writeOptions(dir, hub.token);
    const err = await assertRejects(
      () =>
        uploadHubFiles("me/repo", [
          { pathInRepo: "w.safetensors", content: bytes(6000, 4) },
          { pathInRepo: "README.md", content: "replaced" },
        ], readOnly),
      HubError,
      "the token cannot write there (HTTP 403",
    ) as HubError;
    assertEquals(err.kind, "unauthorized");
    assertEquals(err.status, 403);
    assert(err.message.includes("model me/repo (branch main)"), err.message);
    assert(err.message.includes("the repo is unchanged"), err.message);
    assertEquals(snapshot(hub, "me/repo"), before);
    assertEquals(hub.count({ route: "commit" }), 0);
    assertEquals(hub.count({ route: "lfs-upload" }), 0);

    // A repo that does not exist is not created with that token either.
    await assertRejects(
      () => uploadHubFiles("other/new", [{ pathInRepo: "a", content: "" }], readOnly),
      HubError,
      "while creating the repo: the token cannot write there",
    );
    assert(!hub.hasRepo("other/new"));
    // With createRepo: false no creation is tried; the first write request is refused.
    const creates = hub.count({ route: "create-repo" });
    await assertRejects(
      () =>
        uploadHubFiles("me/repo", [{ pathInRepo: "a", content: "" }], {
          ...readOnly,
          createRepo: false,
        }),
      HubError,
      "while preparing the upload of 1 file(s): the token cannot write there (HTTP 403",
    );
    assertEquals(hub.count({ route: "create-repo" }), creates);
    assertEquals(snapshot(hub, "me/repo"), before);
  });
});

test("upload: an LFS upload that fails stops before the commit and names the file", async () => {
  const old = bytes(3000, 5);
  await using hub = await startMockHub({ "me/repo": { files: { "w.safetensors": old } } });
  await withTmp(async (dir) => {
    const before = snapshot(hub, "me/repo");
    const a = bytes(40_000, 6), b = bytes(50_000, 7);
    const oidB = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>)),
      (x) => x.toString(16).padStart(2, "0"),
    ).join("");
    hub.fail({ route: "lfs-upload", oid: oidB }, 500);
    const err = await assertRejects(
      () =>
        uploadHubFiles("me/repo", [
          { pathInRepo: "cfg.json", content: "{}" },
          { pathInRepo: "sae_a/w.safetensors", content: a },
          { pathInRepo: "sae_b/w.safetensors", content: b },
          { pathInRepo: "w.safetensors", content: bytes(100, 8) },
        ], hub.writeOptions(dir)),
      HubError,
      "sae_b/w.safetensors",
    ) as HubError;
    assert(err.message.includes("while uploading"), err.message);
    assert(err.message.includes("Nothing was committed: the repo is unchanged"), err.message);
    assertEquals(err.kind, "protocol");
    assertEquals(hub.count({ route: "commit" }), 0, "no commit after a failed LFS upload");
    assertEquals(snapshot(hub, "me/repo"), before);
    assert(sameBytes(hub.readFile("me/repo", "w.safetensors"), old));

    // The same upload succeeds once the storage works; objects already stored are not resent.
    hub.fail(null);
    const sentBefore = hub.count({ route: "lfs-upload" });
    await uploadHubFiles("me/repo", [
      { pathInRepo: "sae_a/w.safetensors", content: a },
      { pathInRepo: "sae_b/w.safetensors", content: b },
    ], hub.writeOptions(dir));
    assert(sameBytes(hub.readFile("me/repo", "sae_b/w.safetensors"), b));
    assertEquals(hub.count({ route: "lfs-upload", oid: oidB }) - 1, 1, "b sent again, once");
    assert(hub.count({ route: "lfs-upload" }) - sentBefore === 1, "a was already stored");
  });
});

test("upload: a failed commit, a missing branch, a hung hub and an unreachable one", async () => {
  await using hub = await startMockHub({ "me/repo": { files: { "a.txt": "a" } } });
  await withTmp(async (dir) => {
    const before = snapshot(hub, "me/repo");
    const files = [{ pathInRepo: "b.txt", content: "b" }];
    hub.fail({ route: "commit" }, 500);
    await assertRejects(
      () => uploadHubFiles("me/repo", files, hub.writeOptions(dir)),
      HubError,
      "while committing 1 file(s): HTTP 500",
    );
    hub.fail(null);
    assertEquals(snapshot(hub, "me/repo"), before);

    await assertRejects(
      () => uploadHubFiles("me/repo", files, { ...hub.writeOptions(dir), revision: "dev" }),
      HubError,
      'Invalid rev id: dev); the repo and its branch "dev" must exist',
    );

    hub.hang({ route: "commit" });
    const err = await assertRejects(
      () =>
        uploadHubFiles("me/repo", files, {
          ...hub.writeOptions(dir),
          etagTimeout: 0.2,
          downloadTimeout: 0.2,
        }),
      HubError,
      "may or may not have been applied",
    ) as HubError;
    assertEquals(err.kind, "timeout");
    hub.hang(null);
    // The mock applied that commit before going silent: why the error cannot say "unchanged".
    assertEquals(hub.listFiles("me/repo"), ["a.txt", "b.txt"]);
  });
  await withTmp(async (dir) => {
    const err = await assertRejects(
      () =>
        uploadHubFiles("me/repo", [{ pathInRepo: "b.txt", content: "b" }], {
          endpoint: `http://127.0.0.1:${closedPort()}`,
          token: "hf_x",
          cacheDir: dir,
        }),
      HubError,
      "cannot reach the hub",
    ) as HubError;
    assertEquals(err.kind, "unreachable");
  });
});

test("uploadFolder: a dataset folder under a path, skipping .git and unfinished writes", async () => {
  await using hub = await startMockHub({});
  await withTmp(async (dir) => {
    const root = `${dir}/tokenized`;
    await Deno.mkdir(`${root}/data/nested`, { recursive: true });
    await Deno.mkdir(`${root}/.git`);
    await Deno.writeTextFile(`${root}/.git/HEAD`, "ref");
    await Deno.writeTextFile(`${root}/sae_lens.json`, '{"context_size": 128}');
    const shard = bytes(20_000, 9);
    await Deno.writeFile(`${root}/data/train-00000.parquet`, shard);
    await Deno.writeTextFile(`${root}/data/nested/x.txt`, "x");
    // Names a file URL could misread: a literal "%20", "#", "?" and a space.
    await Deno.writeTextFile(`${root}/data/nested/a%20b #1?.txt`, "odd");
    await Deno.writeTextFile(`${root}/data/nested/a b #1?.txt`, "plain");
    await Deno.writeTextFile(`${root}/data/.x.txt.tmp-1-0123456789abcdef`, "junk");
    const r = await uploadFolder("me/ds", root, {
      ...hub.writeOptions(dir),
      repoType: "dataset",
      pathInRepo: "v1",
      allow: (p) => !p.endsWith(".txt") || p.startsWith("data/nested/"),
    });
    assertEquals(r.files, [
      "v1/data/nested/a b #1?.txt",
      "v1/data/nested/a%20b #1?.txt",
      "v1/data/nested/x.txt",
      "v1/data/train-00000.parquet",
      "v1/sae_lens.json",
    ]);
    const text = (p: string) =>
      new TextDecoder().decode(hub.readFile("me/ds", p, "main", "dataset"));
    assertEquals(text("v1/data/nested/a%20b #1?.txt"), "odd");
    assertEquals(text("v1/data/nested/a b #1?.txt"), "plain");
    assert(hub.hasRepo("me/ds", "dataset") && !hub.hasRepo("me/ds", "model"));
    const p = await hubDownload("me/ds", "v1/data/train-00000.parquet", {
      ...hub.options(`${dir}/cache`),
      repoType: "dataset",
    });
    assert(sameBytes(await Deno.readFile(p), shard));
    await Deno.symlink(`${root}/data`, `${root}/link`);
    await assertRejects(
      () => uploadFolder("me/ds", root, { ...hub.writeOptions(dir), repoType: "dataset" }),
      HubError,
      "link to a folder",
    );
  });
});

test("upload: a failure while local files stream out cancels them cleanly (no stray errors)", async () => {
  await using hub = await startMockHub({});
  await withTmp(async (dir) => {
    const files: HubUploadFile[] = [];
    let failOid = "";
    for (let i = 0; i < 4; i++) {
      const data = bytes(6_000_000 + i, 20 + i); // 6 chunks of the file stream each
      await Deno.writeFile(`${dir}/f${i}.safetensors`, data);
      if (i === 3) {
        failOid = Array.from(
          new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>)),
          (x) => x.toString(16).padStart(2, "0"),
        ).join("");
      }
      files.push({ pathInRepo: `s/f${i}.safetensors`, localPath: `${dir}/f${i}.safetensors` });
    }
    hub.fail({ route: "lfs-upload", oid: failOid });
    await assertRejects(
      () => uploadHubFiles("me/big", files, hub.writeOptions(dir)),
      HubError,
      "s/f3.safetensors",
    );
    assertEquals(hub.count({ route: "commit" }), 0);
    // Give any stray stream callback the chance to throw before the test ends.
    await new Promise((r) => setTimeout(r, 200));
  });
});
