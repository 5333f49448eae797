// Saving never loses what is already on disk: bad input is refused before anything is written,
// a save replaces the SAE's files as a whole (no stale sparsity file) and keeps the user's other
// files, and a real write failure (a file-size limit: EFBIG, as disk full would be ENOSPC) is a
// FileWriteError naming the file, with the previous SAE folder and checkpoint intact.
import { getGpu } from "../../gpu/device.ts";
import { FileWriteError } from "../../io/atomic.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeLoadError } from "../../sae/errors.ts";
import { readCheckpointFolder } from "../../sae/training/checkpoint.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const gpu = await getGpu();
const REPO = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./_atomic_kill_child.ts", import.meta.url).pathname;

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    const bytes = await Deno.readFile(`${dir}/${e.name}`);
    out[e.name] = `${bytes.length}:${bytes.reduce((h, b) => (h * 31 + b) >>> 0, 7)}`;
  }
  return out;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

async function twoSaes() {
  const a = await SAE.fromConfig({ architecture: "topk", dIn: 16, dSae: 32, k: 4 }, {
    gpu,
    seed: 1,
  });
  const b = await SAE.fromConfig({ architecture: "topk", dIn: 16, dSae: 64, k: 8 }, {
    gpu,
    seed: 2,
  });
  return { a, b };
}

Deno.test("saveModel: a sparsity of the wrong length is refused before anything is written", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await twoSaes();
  await a.saveModel(`${dir}/sae`, { logSparsity: new Float32Array(32) });
  const before = await snapshot(`${dir}/sae`);
  await assertRejects(
    () => b.saveModel(`${dir}/sae`, { logSparsity: new Float32Array(32) }),
    SaeLoadError,
    `sparsity has 32 values, expected d_sae = 64; nothing was written to ${dir}/sae`,
  );
  await assertRejects(
    () => b.saveModel(`${dir}/fresh`, { featureFiringFraction: [0.5] }),
    SaeLoadError,
    "expected d_sae = 64",
  );
  assertEquals(await snapshot(`${dir}/sae`), before);
  assertEquals(names(dir), ["sae"], "no folder created for the refused save");
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveModel over an earlier save: no stale sparsity file, the user's other files kept, loads as the new SAE", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await twoSaes();
  await a.saveModel(`${dir}/sae`, { logSparsity: new Float32Array(32).fill(-3) });
  await Deno.writeTextFile(`${dir}/sae/README.md`, "my notes");
  await b.saveModel(`${dir}/sae`);
  assertEquals(names(`${dir}/sae`), ["README.md", "cfg.json", "sae_weights.safetensors"]);
  assertEquals(await Deno.readTextFile(`${dir}/sae/README.md`), "my notes");
  const loaded = await SAE.loadFromDisk(`${dir}/sae`, { gpu });
  assertEquals([loaded.cfg.dSae, loaded.cfg.k], [64, 8]);
  assertEquals((await loaded.stateDict()).W_dec.data, (await b.stateDict()).W_dec.data);
  assertEquals(names(dir), ["sae"]);
  loaded.dispose();
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "a write failure (file-size limit in a child process) is a FileWriteError naming the file; both folders stay whole",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "saeflow_efbig_" });
    const run = async (mode: string, limitKb?: number) => {
      // SIGXFSZ ignored: a write past `ulimit -f` fails with EFBIG instead of killing the process.
      const limit = limitKb ? `trap '' XFSZ; ulimit -f ${limitKb}; ` : "";
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          `${limit}exec "$0" run -A --config "$1" "$2" "$3" "$4"`,
          Deno.execPath(),
          `${REPO}deno.json`,
          CHILD,
          mode,
          root,
        ],
        cwd: REPO,
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
      return text.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    };
    await run("ref");
    const sae = await snapshot(`${root}/sae`), ck = await snapshot(`${root}/ck`);
    // A's files are at most 140 KB; B's weights (264 KB) and checkpoint state (268 KB) are not.
    const reports = await run("efbig", 200);
    assertEquals(reports.map((r) => [r.what, r.name]), [
      ["sae", "FileWriteError"],
      ["ck", "FileWriteError"],
    ]);
    assertEquals(reports[0].path, `${root}/sae/sae_weights.safetensors`);
    assert(reports[0].message.includes("File too large"), reports[0].message);
    assert(reports[0].message.includes(`${root}/sae was not changed`), reports[0].message);
    assert(
      /^cannot write .*\/ck\/(sae_weights|trainer_state)\.safetensors: File too large/.test(
        reports[1].message,
      ),
      reports[1].message,
    );
    assertEquals(await snapshot(`${root}/sae`), sae);
    assertEquals(await snapshot(`${root}/ck`), ck);
    const loaded = await SAE.loadFromDisk(`${root}/sae`, { gpu });
    assertEquals(loaded.cfg.k, 4);
    loaded.dispose();
    assertEquals((await readCheckpointFolder(`${root}/ck`)).cfg.d_sae, 128);
    assertEquals(names(root), ["ck", "refA_ck", "refA_sae", "refB_ck", "refB_sae", "sae"]);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("saveModel refuses a file in the folder's place and names it", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await twoSaes();
  await Deno.writeTextFile(`${dir}/sae`, "not a folder");
  const err = await assertRejects(
    () => a.saveModel(`${dir}/sae`),
    FileWriteError,
  ) as FileWriteError;
  assertEquals(err.path, `${dir}/sae`);
  assertEquals(await Deno.readTextFile(`${dir}/sae`), "not a folder");
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SAE.loadFromDisk finishes a save killed between its two renames and removes the leftovers", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await twoSaes();
  const child = new Deno.Command("true").spawn();
  await child.status; // a pid that is gone
  await a.saveModel(`${dir}/old`);
  await b.saveModel(`${dir}/new`);
  // The state a kill leaves after `sae` → .old and before .new → `sae`.
  await Deno.rename(`${dir}/old`, `${dir}/.sae.old-${child.pid}-00112233aabbccdd`);
  await Deno.rename(`${dir}/new`, `${dir}/.sae.new-${child.pid}-00112233aabbccdd`);
  await Deno.mkdir(`${dir}/.sae.tmp-${child.pid}-99999999aaaaaaaa`); // an earlier killed write
  const loaded = await SAE.loadFromDisk(`${dir}/sae`, { gpu });
  assertEquals([loaded.cfg.dSae, loaded.cfg.k], [64, 8]);
  assertEquals(names(dir), ["sae"]);
  loaded.dispose();
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});
