// Folder-level atomic writes (io/atomic.ts): whole-folder replacement, kept foreign entries,
// failures that change nothing and name the path, every kill point of the swap reproduced by
// hand and recovered, cleanup of dead writers' siblings only, symlinked and refused targets.
import {
  FileWriteError,
  recoverFolder,
  writeFileAtomic,
  writeFolderAtomic,
} from "../../io/atomic.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(r);
      else out[r] = await Deno.readTextFile(`${dir}/${r}`);
    }
  };
  await walk("");
  return out;
}

/** A folder with `files` (name → text) written by hand, not through the primitive. */
async function handMade(path: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    const full = `${path}/${name}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("writeFolderAtomic: creates, then replaces the folder as a whole; nothing is left beside it", async () => {
  const dir = await Deno.makeTempDir();
  await writeFolderAtomic(`${dir}/sub/out`, async (w) => {
    await w.writeText("a.txt", "v1");
    await w.writeJson("deep/b.json", { v: 1 });
  });
  assertEquals(await tree(`${dir}/sub/out`), { "a.txt": "v1", "deep/b.json": '{\n  "v": 1\n}\n' });
  await writeFolderAtomic(`${dir}/sub/out`, (w) => w.writeText("c.txt", "v2"));
  assertEquals(await tree(`${dir}/sub/out`), { "c.txt": "v2" });
  assertEquals(await names(`${dir}/sub`), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic with owned: owned names not rewritten disappear, other entries are kept", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/out`;
  await handMade(out, {
    "cfg.json": "old cfg",
    "sparsity.safetensors": "old sparsity",
    "README.md": "mine",
    "notes/n.txt": "also mine",
  });
  await Deno.symlink("README.md", `${out}/link`);
  const owned = ["cfg.json", "sparsity.safetensors"];
  await writeFolderAtomic(out, (w) => w.writeText("cfg.json", "new cfg"), { owned });
  assertEquals(await tree(out), {
    "cfg.json": "new cfg",
    "README.md": "mine",
    "notes/n.txt": "also mine",
    "link": "mine",
  });
  assertEquals(await Deno.readLink(`${out}/link`), "README.md");
  assertEquals(await names(dir), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic: an error thrown by the fill propagates as is; the old folder stays", async () => {
  const dir = await Deno.makeTempDir();
  await handMade(`${dir}/out`, { "a.txt": "old" });
  const boom = new Error("boom");
  const got = await assertRejects(() =>
    writeFolderAtomic(`${dir}/out`, async (w) => {
      await w.writeText("a.txt", "new");
      throw boom;
    })
  );
  assert(got === boom, "the fill's own error is not wrapped");
  assertEquals(await tree(`${dir}/out`), { "a.txt": "old" });
  assertEquals(await names(dir), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic: a disk-full write is a FileWriteError naming the file; nothing changes", async () => {
  const dir = await Deno.makeTempDir();
  await handMade(`${dir}/out`, { "a.bin": "old a", "b.bin": "old b" });
  let calls = 0;
  const writeFile = async (path: string, data: Uint8Array) => {
    if (++calls === 2) throw new Error("No space left on device (os error 28)");
    await Deno.writeFile(path, data);
  };
  const err = await assertRejects(
    () =>
      writeFolderAtomic(`${dir}/out`, async (w) => {
        await w.writeFile("a.bin", enc("new a"));
        await w.writeFile("b.bin", enc("new b"));
      }, { writeFile }),
    FileWriteError,
    `cannot write ${dir}/out/b.bin: No space left on device (os error 28)`,
  ) as FileWriteError;
  assertEquals(err.path, `${dir}/out/b.bin`);
  assert(err.message.includes(`${dir}/out was not changed`), err.message);
  assertEquals(await tree(`${dir}/out`), { "a.bin": "old a", "b.bin": "old b" });
  assertEquals(await names(dir), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic refuses a file target, a name escaping the folder, a root and the working directory", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/file`, "keep");
  await assertRejects(
    () => writeFolderAtomic(`${dir}/file`, (w) => w.writeText("a", "x")),
    FileWriteError,
    `cannot write ${dir}/file: it exists and is not a folder`,
  );
  assertEquals(await Deno.readTextFile(`${dir}/file`), "keep");
  await assertRejects(
    () => writeFolderAtomic(`${dir}/out`, (w) => w.writeText("../escape", "x")),
    FileWriteError,
    "expected a relative name inside the folder",
  );
  assertEquals(await names(dir), ["file"]);
  await assertRejects(() => writeFolderAtomic("/", () => {}), FileWriteError, "a root");
  const cwd = Deno.cwd();
  await Deno.mkdir(`${dir}/a/b`, { recursive: true });
  Deno.chdir(`${dir}/a/b`);
  try {
    for (const p of [".", `${dir}/a`, ".."]) {
      await assertRejects(
        () => writeFolderAtomic(p, () => {}),
        FileWriteError,
        "working directory",
      );
    }
  } finally {
    Deno.chdir(cwd);
  }
  assertEquals(await names(`${dir}/a`), ["b"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic through a symlink replaces the folder it points to and keeps the link", async () => {
  const dir = await Deno.makeTempDir();
  await handMade(`${dir}/real`, { "a.txt": "old" });
  await Deno.symlink("real", `${dir}/link`);
  await writeFolderAtomic(`${dir}/link`, (w) => w.writeText("a.txt", "new"));
  assert((await Deno.lstat(`${dir}/link`)).isSymlink, "the link is still a link");
  assertEquals(await tree(`${dir}/real`), { "a.txt": "new" });
  assertEquals(await names(dir), ["link", "real"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFolderAtomic: concurrent writes of one folder in one process are queued; each is whole", async () => {
  const dir = await Deno.makeTempDir();
  await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      writeFolderAtomic(`${dir}/out`, async (w) => {
        await w.writeText("a.txt", `${i}`);
        await w.writeText("b.txt", `${i}`);
      })),
  );
  const t = await tree(`${dir}/out`);
  assertEquals(t["a.txt"], t["b.txt"]);
  assertEquals(await names(dir), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

// Each kill point of the swap, reproduced by hand with the siblings of a dead writer.
Deno.test("recoverFolder: killed between the two renames → the complete new folder is restored", async () => {
  const dir = await Deno.makeTempDir();
  const pid = await deadPid();
  await handMade(`${dir}/.out.old-${pid}-00000000aaaaaaaa`, { "v.txt": "old" });
  await handMade(`${dir}/.out.new-${pid}-00000000aaaaaaaa`, { "v.txt": "new" });
  assertEquals(await recoverFolder(`${dir}/out`), true);
  assertEquals(await tree(`${dir}/out`), { "v.txt": "new" });
  assertEquals(await names(dir), ["out"]);
  assertEquals(await recoverFolder(`${dir}/out`), false, "nothing left to do");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("recoverFolder: only an old copy left (name and new copy gone) → the old one is restored", async () => {
  const dir = await Deno.makeTempDir();
  const pid = await deadPid();
  await handMade(`${dir}/.out.old-${pid}-00000000aaaaaaaa`, { "v.txt": "old" });
  await handMade(`${dir}/.out.tmp-${pid}-00000000bbbbbbbb`, { "v.txt": "partial" });
  assertEquals(await recoverFolder(`${dir}/out`), true);
  assertEquals(await tree(`${dir}/out`), { "v.txt": "old" });
  assertEquals(await names(dir), ["out"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("recoverFolder: the folder is kept and every sibling of dead writes removed; live ones and strangers stay", async () => {
  const dir = await Deno.makeTempDir();
  const dead = await deadPid();
  await handMade(`${dir}/out`, { "v.txt": "current" });
  for (const kind of ["tmp", "new", "old", "del"]) {
    await handMade(`${dir}/.out.${kind}-${dead}-00000000aaaaaaaa`, { "v.txt": kind });
  }
  // This process, but no write in flight: gone.
  await handMade(`${dir}/.out.tmp-${Deno.pid}-00000000cccccccc`, { "v.txt": "mine" });
  // pid 1 is alive: its unfinished write is left alone.
  await handMade(`${dir}/.out.tmp-1-00000000dddddddd`, { "v.txt": "live" });
  // Not siblings of `out`: never touched.
  const strangers = [
    ".out.tmp-x",
    ".out.bak",
    "out.tmp-1-00000000eeeeeeee",
    ".outer.tmp-1-0000000f",
  ];
  for (const s of strangers) await handMade(`${dir}/${s}`, { "v.txt": "stranger" });
  assertEquals(await recoverFolder(`${dir}/out`), false);
  assertEquals(await tree(`${dir}/out`), { "v.txt": "current" });
  assertEquals(await names(dir), [...strangers, ".out.tmp-1-00000000dddddddd", "out"].sort());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("recoverFolder: killed before the swap → the old folder stays and the unswapped copies go", async () => {
  const dir = await Deno.makeTempDir();
  const pid = await deadPid();
  await handMade(`${dir}/out`, { "v.txt": "old" });
  await handMade(`${dir}/.out.new-${pid}-00000000aaaaaaaa`, { "v.txt": "new" });
  await writeFolderAtomic(`${dir}/out`, (w) => w.writeText("v.txt", "newer"));
  assertEquals(await tree(`${dir}/out`), { "v.txt": "newer" });
  assertEquals(await names(dir), ["out"], "the writer recovers first, too");
  assertEquals(await recoverFolder(`${dir}/missing/parent`), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic: a failure is a FileWriteError naming the file; the old file stays", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/blocker`, "a file, not a folder");
  const err = await assertRejects(
    () => writeFileAtomic(`${dir}/blocker/x.json`, enc("{}")),
    FileWriteError,
    `cannot write ${dir}/blocker/x.json`,
  ) as FileWriteError;
  assertEquals(err.path, `${dir}/blocker/x.json`);
  await Deno.writeTextFile(`${dir}/f.txt`, "old");
  await Deno.mkdir(`${dir}/f.txt.dir`);
  // Renaming a file over a folder fails: the temporary file is removed, f.txt.dir stays.
  await assertRejects(() => writeFileAtomic(`${dir}/f.txt.dir`, enc("new")), FileWriteError);
  assertEquals(await names(dir), ["blocker", "f.txt", "f.txt.dir"]);
  await Deno.remove(dir, { recursive: true });
});
