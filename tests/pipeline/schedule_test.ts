// `pipeline.ts schedule`: the cron handler (ScheduledRun.trigger) called directly, never by
// waiting for cron. It trains a fresh run, resumes an interrupted one from its latest checkpoint
// (also from a new process's point of view: a new ScheduledRun on the same config finds the same
// run folder), skips a finished run, never runs two at once (in-process lock, and the lock file
// of another live process), takes over a stale lock, and `startSchedule` registers the job with
// Deno.cron and stops on Ctrl-C.

import { Interrupts } from "../../pipeline/commands.ts";
import { main } from "../../pipeline/cli.ts";
import { COMPLETED_FILE, listCheckpoints, LOCK_FILE } from "../../pipeline/run_folder.ts";
import { ScheduledRun, scheduleRunId, startSchedule } from "../../pipeline/schedule.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals } from "../assert.ts";
import { runCli, smallConfig, writeConfig } from "./_cli_helpers.ts";

function context(lines: string[], onStep?: (step: number, interrupts: Interrupts) => void) {
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const interrupts = new Interrupts(io, (code) => {
    throw new Error(`exit(${code}) called`);
  });
  return {
    io,
    interrupts,
    progress: false as const,
    runner: {
      onEvent: (e: { type: string; step?: number }) => {
        if (e.type === "step") onStep?.(e.step!, interrupts);
      },
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "schedule: the handler trains, resumes an interrupted run from its latest checkpoint, skips a finished one, and never runs two at once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "saeflow_sched_" });
    const sleeper = new Deno.Command(Deno.execPath(), {
      args: ["eval", "await new Promise((r) => setTimeout(r, 60_000))"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const cfgPath = await writeConfig(dir, "run.yaml", smallConfig(dir));
      const lines: string[] = [];
      // The first process: interrupted (as Ctrl-C) at step 9.
      const first = await ScheduledRun.create({
        configPath: cfgPath,
        overrides: [],
        ctx: context(lines, (step, i) => step === 9 && i.interrupt("SIGINT")),
      });
      assert(/^sched-[0-9a-f]{12}$/.test(first.runId), first.runId);
      assertEquals(first.runFolder, join(dir, "ck", first.runId));

      // Another live process holds the run folder's lock: the trigger is skipped.
      await Deno.mkdir(first.runFolder, { recursive: true });
      const lockPath = join(first.runFolder, LOCK_FILE);
      const stat = await Deno.readTextFile(`/proc/${sleeper.pid}/stat`).catch(() => null);
      const procStart = stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
      await Deno.writeTextFile(
        lockPath,
        JSON.stringify({ pid: sleeper.pid, hostname: Deno.hostname(), procStart, since: "then" }),
      );
      assertEquals((await first.trigger()).status, "locked");
      assert(lines.some((l) => l.includes(`locked by process ${sleeper.pid}`)), lines.join("\n"));
      assertEquals(await listCheckpoints(first.runFolder), []);

      // That process is gone: its lock is stale and taken over. A second trigger while the
      // first runs is skipped (in-process lock); the first is interrupted after step 9.
      sleeper.kill("SIGKILL");
      await sleeper.status;
      const running = first.trigger();
      const concurrent = await first.trigger();
      assertEquals(concurrent.status, "busy");
      const interrupted = await running;
      assertEquals(interrupted.status, "interrupted", lines.join("\n"));
      assert(!(await exists(lockPath)), "the lock was not released");
      const kept = await listCheckpoints(first.runFolder);
      assert(kept.length > 0, lines.join("\n"));
      const latest = kept.at(-1)!;
      assert(latest.samples >= 10 * 256 && latest.samples < 24 * 256, latest.name);
      assert(!(await exists(join(first.runFolder, COMPLETED_FILE))));

      // A later process (same config → same run id) resumes from the latest checkpoint.
      const again = await ScheduledRun.create({
        configPath: cfgPath,
        overrides: [],
        ctx: context(lines),
      });
      assertEquals(again.runFolder, first.runFolder);
      const resumed = await again.trigger();
      assertEquals(resumed.status, "resumed", lines.join("\n"));
      assertEquals(resumed.resumedFrom, latest.path);
      assert(await exists(join(dir, "out", "sae_weights.safetensors")));
      assert(await exists(join(first.runFolder, COMPLETED_FILE)));

      // Finished: later triggers do nothing.
      const before = (await listCheckpoints(first.runFolder)).map((c) => c.name);
      assertEquals((await again.trigger()).status, "finished");
      assertEquals((await listCheckpoints(first.runFolder)).map((c) => c.name), before);

      // The same run resumed by hand with `resume <run folder>` is refused as finished.
      const refused = await main(["resume", first.runFolder], {
        io: { out: () => {}, err: (l) => lines.push(l) },
        signals: false,
        progress: false,
      });
      assertEquals(refused, 1);
      assert(lines.at(-1)!.includes("has finished"), lines.at(-1));
    } finally {
      try {
        sleeper.kill("SIGKILL");
      } catch { /* already gone */ }
      await sleeper.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("schedule: run ids come from the config (key order does not matter), else --run-id or logger.wandb_id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sched_id_" });
  try {
    const cfg = smallConfig(dir);
    const a = await writeConfig(dir, "a.yaml", cfg);
    const reversed = Object.fromEntries(Object.entries(cfg).reverse());
    const b = await writeConfig(dir, "b.yaml", reversed);
    const ctx = context([]);
    const ra = await ScheduledRun.create({ configPath: a, overrides: [], ctx });
    const rb = await ScheduledRun.create({ configPath: b, overrides: [], ctx });
    assertEquals(ra.runId, rb.runId);
    assertEquals(ra.runId, await scheduleRunId(ra.dict));
    const lr = await ScheduledRun.create({
      configPath: a,
      overrides: [{ path: "lr", value: "0.001" }],
      ctx,
    });
    assert(lr.runId !== ra.runId, "a changed config must be a new run");
    const named = await ScheduledRun.create({
      configPath: a,
      overrides: [],
      runId: "nightly",
      ctx,
    });
    assertEquals(named.runFolder, join(dir, "ck", "nightly"));
    const wandb = await ScheduledRun.create({
      configPath: a,
      overrides: [{ path: "logger.wandb_id", value: "w123" }],
      ctx,
    });
    assertEquals(wandb.runId, "w123");
    let msg = "";
    try {
      await ScheduledRun.create({
        configPath: a,
        overrides: [{ path: "checkpoint_path", value: "none" }],
        ctx,
      });
    } catch (e) {
      msg = String(e);
    }
    assert(msg.includes("checkpoint_path is null"), msg);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("schedule: startSchedule registers the handler with cron and returns 130 on Ctrl-C while idle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sched_cron_" });
  try {
    const cfgPath = await writeConfig(dir, "run.yaml", smallConfig(dir));
    const lines: string[] = [];
    const ctx = context(lines);
    const registered: { name: string; schedule: string; signal?: AbortSignal }[] = [];
    const cronFn = (
      name: string,
      schedule: string,
      options: { signal?: AbortSignal },
      _handler: () => Promise<void> | void,
    ) => {
      registered.push({ name, schedule, signal: options.signal });
      return new Promise<void>((resolve) =>
        options.signal?.addEventListener("abort", () => resolve())
      );
    };
    const done = startSchedule({
      configPath: cfgPath,
      overrides: [],
      runId: "nightly",
      cron: "0 3 * * *",
      cronFn,
      ctx,
    });
    while (registered.length === 0) await new Promise((r) => setTimeout(r, 5));
    assertEquals(registered[0].name, "saeflow nightly");
    assertEquals(registered[0].schedule, "0 3 * * *");
    ctx.interrupts.interrupt("SIGINT");
    assertEquals(await done, 130);
    assert(registered[0].signal?.aborted, "the cron job was not stopped");
    assert(
      lines.some((l) => l.startsWith("schedule: run nightly on '0 3 * * *'")),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("schedule (process): a bad --cron expression is one clear line, and schedule without --unstable-cron says how to run it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sched_proc_" });
  try {
    const cfgPath = await writeConfig(dir, "run.yaml", smallConfig(dir));
    const noFlag = await runCli(["schedule", cfgPath, "--cron", "0 3 * * *"]);
    assertEquals(noFlag.code, 2, noFlag.output);
    assert(noFlag.stderr[0].includes("--unstable-cron"), noFlag.output);
    const p = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-cron",
        new URL("../../pipeline.ts", import.meta.url).pathname,
        "schedule",
        cfgPath,
        "--cron",
        "every night",
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await p.output();
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
    assertEquals(out.code, 1, stderr.join("\n"));
    assertEquals(stderr.length, 1, stderr.join("\n"));
    assert(stderr[0].includes('--cron "every night" was refused'), stderr[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
