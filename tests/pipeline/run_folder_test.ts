// Run folders without training: which checkpoint is the latest (by training samples, final_*
// last), half-written checkpoints ignored, a checkpoint killed between its renames restored,
// what `resume` accepts, and the run lock (held by a live process, stale once it is gone).

import {
  acquireRunLock,
  latestCheckpoint,
  listCheckpoints,
  LOCK_FILE,
  resolveResumeTarget,
} from "../../pipeline/run_folder.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import { main } from "../../pipeline/cli.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

/** A fake complete checkpoint folder (what `listCheckpoints` looks for). */
async function fakeCheckpoint(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "runner_cfg.json"), "{}");
  await Deno.writeFile(join(dir, "pipeline_state.safetensors"), new Uint8Array(8));
}

Deno.test("run folder: checkpoints ordered by training samples, final_* last; partial ones ignored; a killed swap restored", async () => {
  const run = await Deno.makeTempDir({ prefix: "saeflow_runfolder_" });
  try {
    assertEquals(await latestCheckpoint(run), null);
    for (const n of ["512", "10240", "2048", "final_9000"]) await fakeCheckpoint(join(run, n));
    // Not checkpoints: a half-written temp folder, a folder without pipeline state, files.
    await fakeCheckpoint(join(run, ".99999.tmp-1-0123456789abcdef"));
    await Deno.mkdir(join(run, "123456"));
    await Deno.writeTextFile(join(run, "metrics.jsonl"), "");
    await Deno.writeTextFile(join(run, "777"), "a file");
    assertEquals((await listCheckpoints(run)).map((c) => c.name), [
      "512",
      "2048",
      "10240",
      "final_9000",
    ]);
    const latest = await latestCheckpoint(run);
    assertEquals([latest?.name, latest?.samples, latest?.final], ["final_9000", 9000, true]);

    // A checkpoint whose write was killed between "complete" and "in place" (a `.new` sibling of
    // a dead writer) is restored and counts.
    await Deno.remove(join(run, "final_9000"), { recursive: true });
    await fakeCheckpoint(join(run, ".20480.new-999999999-0123456789abcdef"));
    const restored = await latestCheckpoint(run);
    assertEquals(restored?.name, "20480");
    await Deno.stat(join(run, "20480", "pipeline_state.safetensors"));
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("resume target: a checkpoint folder, a run folder (latest), and clear errors otherwise", async () => {
  const root = await Deno.makeTempDir({ prefix: "saeflow_resume_target_" });
  try {
    const run = join(root, "ck", "abc");
    await fakeCheckpoint(join(run, "100"));
    await fakeCheckpoint(join(run, "300"));
    const byRun = await resolveResumeTarget(run + "/");
    assertEquals([byRun.checkpoint, byRun.runFolder], [join(run, "300"), run]);
    const byCk = await resolveResumeTarget(join(run, "100"));
    assertEquals([byCk.checkpoint, byCk.runFolder, byCk.entry.samples], [
      join(run, "100"),
      run,
      100,
    ]);

    // The final checkpoint of a finished run: nothing left to train.
    await fakeCheckpoint(join(run, "final_400"));
    const errors: string[] = [];
    const code = await main(["resume", run], {
      io: { out: () => {}, err: (l) => errors.push(l) },
      signals: false,
    });
    assertEquals(code, 1);
    assert(errors[0].includes("final checkpoint of a finished run"), errors[0]);

    const missing = await assertRejects(
      () => resolveResumeTarget(join(root, "nope")),
      PipelineError,
    );
    assert(missing.message.includes("does not exist"), missing.message);
    await Deno.mkdir(join(root, "empty"));
    const empty = await assertRejects(
      () => resolveResumeTarget(join(root, "empty")),
      PipelineError,
    );
    assert(empty.message.includes("holds no checkpoint"), empty.message);
    // A final SAE output (runner_cfg.json, no pipeline state) is not a checkpoint.
    await Deno.mkdir(join(root, "out"));
    await Deno.writeTextFile(join(root, "out", "runner_cfg.json"), "{}");
    const output = await assertRejects(() => resolveResumeTarget(join(root, "out")), PipelineError);
    assert(output.message.includes("not a saeflow checkpoint"), output.message);
    await Deno.writeTextFile(join(root, "file"), "x");
    const file = await assertRejects(() => resolveResumeTarget(join(root, "file")), PipelineError);
    assert(file.message.includes("is a file"), file.message);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("run lock: held while its process lives (also another process), stale and taken over once it is gone", async () => {
  const run = await Deno.makeTempDir({ prefix: "saeflow_lock_" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "await new Promise((r) => setTimeout(r, 60_000))"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const mine = await acquireRunLock(run);
    assert(typeof mine !== "string", String(mine));
    const held = await acquireRunLock(run);
    assert(typeof held === "string" && held.includes(`process ${Deno.pid}`), String(held));
    await mine.release();
    await mine.release(); // idempotent

    // Another live process holds it.
    const lockPath = join(run, LOCK_FILE);
    await Deno.writeTextFile(
      lockPath,
      JSON.stringify({ pid: child.pid, hostname: Deno.hostname(), procStart: null, since: "x" }),
    );
    const other = await acquireRunLock(run);
    if (Deno.build.os === "linux") {
      assert(typeof other === "string" && other.includes(`process ${child.pid}`), String(other));
    } else {
      assert(typeof other === "string", "a lock of another process must hold");
    }
    child.kill("SIGKILL");
    await child.status;
    if (Deno.build.os === "linux") {
      // Gone: the stale lock is taken over.
      const taken = await acquireRunLock(run);
      assert(typeof taken !== "string", String(taken));
      const info = JSON.parse(await Deno.readTextFile(lockPath));
      assertEquals(info.pid, Deno.pid);
      await taken.release();
      // A lock whose pid now belongs to another process (pid 1, started at another time than
      // the lock says) is stale too.
      await Deno.writeTextFile(
        lockPath,
        JSON.stringify({ pid: 1, hostname: Deno.hostname(), procStart: "-1", since: "x" }),
      );
      const reused = await acquireRunLock(run);
      assert(typeof reused !== "string", String(reused));
      await reused.release();
    }
    // A lock written on another host cannot be checked: held, and the message says what to do.
    await Deno.writeTextFile(
      lockPath,
      JSON.stringify({ pid: 1, hostname: "elsewhere", procStart: null, since: "x" }),
    );
    const remote = await acquireRunLock(run);
    assert(typeof remote === "string" && remote.includes(`remove ${lockPath}`), String(remote));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(run, { recursive: true });
  }
});
