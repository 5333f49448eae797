// The hard way: a child deno process rewrites an SAE folder (SAE.saveModel) and a training
// checkpoint (SAETrainer.saveCheckpoint) in a loop, alternating two distinguishable contents,
// and is SIGKILLed at random points, many times. After each kill every folder under its final
// name (after the recovery its readers run) must load and be byte for byte one complete save,
// the old or the new, never a mix and never with a stale sparsity file; a file the user put in
// the SAE folder survives every kill, and no temporary sibling is left behind.
import { getGpu } from "../../gpu/device.ts";
import { SAE } from "../../sae/sae.ts";
import { readCheckpointFolder } from "../../sae/training/checkpoint.ts";
import { assert, assertEquals } from "../assert.ts";
import { mulberry32 } from "../../util/rng.ts";

const gpu = await getGpu();
const REPO = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./_atomic_kill_child.ts", import.meta.url).pathname;
const KILLS = 40;
/** Kills land 0–MAX_DELAY_MS after the child reports ready (each loop pass takes ~10–40 ms). */
const MAX_DELAY_MS = 150;

function child(mode: string, root: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${REPO}deno.json`, CHILD, mode, root],
    cwd: REPO,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) out.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
  return out;
}

function sameFiles(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, bytes] of a) {
    const other = b.get(name);
    if (!other || other.length !== bytes.length || !other.every((v, i) => v === bytes[i])) {
      return false;
    }
  }
  return true;
}

/** Which reference `files` equals, or an error naming the files that differ from both. */
function whichOf(files: Map<string, Uint8Array>, refs: Record<"A" | "B", Map<string, Uint8Array>>) {
  if (sameFiles(files, refs.A)) return "A";
  if (sameFiles(files, refs.B)) return "B";
  const describe = (m: Map<string, Uint8Array>) =>
    [...m].map(([n, b]) => `${n}:${b.length}`).sort().join(" ");
  throw new Error(
    `a mix: [${describe(files)}] is neither A [${describe(refs.A)}] nor B [${describe(refs.B)}]`,
  );
}

/** Resolves when the child prints "ready"; the rest of its output is drained in the background. */
async function waitReady(proc: Deno.ChildProcess): Promise<void> {
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) {
      const err = await new Response(proc.stderr).text();
      throw new Error(`child exited before ready: ${seen} ${err}`);
    }
    seen += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
}

Deno.test(`SIGKILL at ${KILLS} random points of saveModel and checkpoint rewrites: every folder is one whole save`, async () => {
  const root = await Deno.makeTempDir({ prefix: "saeflow_kill_" });
  const ref = child("ref", root);
  ref.stdout.cancel();
  const refErr = await new Response(ref.stderr).text();
  assertEquals((await ref.status).code, 0, refErr);
  const refs = {
    sae: { A: await filesOf(`${root}/refA_sae`), B: await filesOf(`${root}/refB_sae`) },
    ck: { A: await filesOf(`${root}/refA_ck`), B: await filesOf(`${root}/refB_ck`) },
  };
  assert(refs.sae.A.has("sparsity.safetensors") && !refs.sae.B.has("sparsity.safetensors"));
  await Deno.writeTextFile(`${root}/sae/notes.txt`, "mine");
  const expectedNames = ["ck", "refA_ck", "refA_sae", "refB_ck", "refB_sae", "sae"];
  const rng = mulberry32(7);
  const seen = { A: 0, B: 0, midWrite: 0, missing: 0 };
  for (let i = 0; i < KILLS; i++) {
    const proc = child("loop", root);
    await waitReady(proc);
    await new Promise((r) => setTimeout(r, rng() * MAX_DELAY_MS));
    proc.kill("SIGKILL");
    assertEquals((await proc.status).signal, "SIGKILL");
    proc.stderr.cancel();
    // Every third kill is left as it is: the next child's writes must recover it themselves.
    if (i % 3 === 2 && i !== KILLS - 1) continue;
    const before = [...Deno.readDirSync(root)].map((e) => e.name);
    if (before.some((n) => n.startsWith(".sae.") || n.startsWith(".ck."))) seen.midWrite++;
    if (!before.includes("sae") || !before.includes("ck")) seen.missing++;

    const sae = await SAE.loadFromDisk(`${root}/sae`, { gpu });
    const saeFiles = await filesOf(`${root}/sae`);
    assertEquals(new TextDecoder().decode(saeFiles.get("notes.txt")), "mine", `kill ${i}`);
    saeFiles.delete("notes.txt");
    const which = whichOf(saeFiles, refs.sae);
    assertEquals([sae.cfg.dSae, sae.cfg.k], which === "A" ? [256, 4] : [512, 32], `kill ${i}`);
    sae.dispose();
    seen[which]++;

    const ck = await readCheckpointFolder(`${root}/ck`);
    const ckWhich = whichOf(await filesOf(`${root}/ck`), refs.ck);
    assertEquals(ck.cfg.d_sae, ckWhich === "A" ? 128 : 256, `kill ${i}`);
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name).sort(), expectedNames);
  }
  console.log(`kills: ${KILLS}, observed`, seen);
  assert(seen.A > 0 && seen.B > 0, `both contents observed: ${JSON.stringify(seen)}`);
  assert(seen.midWrite > 0, `some kills landed mid-write: ${JSON.stringify(seen)}`);
  await Deno.remove(root, { recursive: true });
});
