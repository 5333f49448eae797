// Exact resume, the hard way: `pipeline.ts train` runs as a child process, is killed with SIGKILL
// at a random moment after its first checkpoint, and `pipeline.ts resume <run folder>` finishes
// it; the final SAE files must equal, byte for byte, those of a run that was never interrupted.
// One SAE and two SAEs from one forward (SAELens's multi-SAE form). Then the in-process variant:
// `main` interrupted through its signal at a given step, resumed, same bytes.
//
// The kill points are random; a failure prints the seed (rerun with SAEFLOW_TEST_SEED=<seed>).

import { main } from "../../pipeline/cli.ts";
import { COMPLETED_FILE } from "../../pipeline/run_folder.ts";
import { exists, join } from "../../util/path.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  assertSameBytes,
  CliProcess,
  runCli,
  smallConfig,
  smallMultiConfig,
  testRandom,
  writeConfig,
} from "./_cli_helpers.ts";

const rand = testRandom();
const SAE_FILES = ["sae_weights.safetensors", "sparsity.safetensors"];

/** Output files to compare: one SAE at the top, or one folder per SAE name. */
function outputFiles(multi: boolean): string[] {
  return multi ? ["a", "b"].flatMap((n) => SAE_FILES.map((f) => `${n}/${f}`)) : SAE_FILES;
}

async function killAndResume(multi: boolean, kills: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_resume_" });
  try {
    const cfgPath = await writeConfig(
      dir,
      "run.json",
      multi ? smallMultiConfig(dir) : smallConfig(dir),
    );
    // The uninterrupted reference runs beside the first killed run.
    const reference = runCli([
      "train",
      cfgPath,
      "--checkpoint_path",
      join(dir, "ref_ck"),
      "--output_path",
      join(dir, "ref_out"),
    ]);
    const notes: string[] = [];
    for (let i = 0; i < kills; i++) {
      const runDir = join(dir, `kill${i}`);
      const p = new CliProcess([
        "train",
        cfgPath,
        `--checkpoint_path=${join(runDir, "ck")}`,
        `--output_path=${join(runDir, "out")}`,
        "--run-id",
        "run",
      ]);
      // After the 1st, 2nd or 3rd checkpoint line (3 are written), then up to 300 ms more; a
      // run that finished first is resumed from its last checkpoint, which must also work.
      const after = 1 + Math.floor(rand.next() * 3);
      await p.waitFor(/^checkpoint \d+ /, 60_000, after);
      const delay = Math.floor(rand.next() * 300);
      await new Promise((r) => setTimeout(r, delay));
      try {
        p.child.kill("SIGKILL");
      } catch { /* it had already finished */ }
      const killed = await p.status;
      const runFolder = join(runDir, "ck", "run");
      const resumeFrom = (target: string) =>
        runCli(["resume", target, "--output_path", join(runDir, "resumed")]);
      const finished = await exists(join(runFolder, COMPLETED_FILE));
      let resumed = await resumeFrom(runFolder);
      if (finished) {
        // The run got to its end before the kill landed: resuming the run folder is refused
        // with a hint naming the last checkpoint, and resuming that checkpoint trains the rest.
        assert(resumed.code !== 0, `a finished run folder was resumed:\n${resumed.output}`);
        const hint = /has finished .*pipeline\.ts resume (\S+)/.exec(resumed.output);
        assert(hint !== null, `no checkpoint named in:\n${resumed.output}`);
        resumed = await resumeFrom(hint[1]);
      }
      const from = resumed.stdout.find((l) => l.includes("resuming from:")) ?? "?";
      notes.push(
        `kill ${i}: ${delay} ms after checkpoint line ${after}, ` +
          (killed.signal === "SIGKILL" ? "killed" : `had exited with ${killed.code}`) +
          (finished ? " after finishing" : "") + `; ${from.trim()}`,
      );
      assertEquals(resumed.code, 0, `resume failed (seed ${rand.seed}):\n${resumed.output}`);
      const ref = await reference;
      assertEquals(ref.code, 0, `reference run failed:\n${ref.output}`);
      for (const f of outputFiles(multi)) {
        await assertSameBytes(
          join(dir, "ref_out", f),
          join(runDir, "resumed", f),
          `${f} after ${notes.at(-1)} (seed ${rand.seed})`,
        );
      }
    }
    console.log(`  (seed ${rand.seed}) ${notes.join("; ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("resume: one SAE, SIGKILL at 2 random points after a checkpoint, resume from the run folder gives the same bytes", async () => {
  await killAndResume(false, 2);
});

Deno.test("resume: two SAEs from one forward, SIGKILL at 2 random points, resume gives the same bytes", async () => {
  await killAndResume(true, 2);
});

Deno.test({
  name:
    "resume (in process): main interrupted through its signal at a given step exits 130; resume gives the bytes of an uninterrupted run",
  // The GPU device and the tokenizer Worker of the runs stay alive in this process.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "saeflow_resume_ip_" });
    try {
      const cfgPath = await writeConfig(dir, "run.yaml", smallConfig(dir));
      const lines: string[] = [];
      const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
      const quiet = { io, signals: false, progress: false } as const;
      const ref = await main(["train", cfgPath, "--output_path", join(dir, "ref")], quiet);
      assertEquals(ref, 0, lines.join("\n"));

      const stopAt = 3 + Math.floor(rand.next() * 15); // never at the end (24 steps)
      const ac = new AbortController();
      const code = await main(["train", cfgPath, "--run-id", "ip"], {
        ...quiet,
        signal: ac.signal,
        runner: {
          onEvent: (e) => {
            if (e.type === "step" && e.step === stopAt) ac.abort();
          },
        },
      });
      assertEquals(code, 130, lines.join("\n"));
      const hint = lines.find((l) => l.startsWith("interrupted at "));
      assert(hint !== undefined, lines.join("\n"));
      const m = /^interrupted at (\d+) tokens; resume with: deno run -A pipeline\.ts resume (\S+)$/
        .exec(hint);
      assert(m !== null, hint);
      const tokens = Number(m[1]);
      assert(tokens > stopAt * 256 && tokens < 24 * 256, `${hint} (stopped at step ${stopAt})`);
      assertEquals(m[2], join(dir, "ck", "ip", String(tokens)));

      const resumed = await main(
        ["resume", m[2], "--output_path", join(dir, "resumed")],
        quiet,
      );
      assertEquals(resumed, 0, lines.join("\n"));
      for (const f of SAE_FILES) {
        await assertSameBytes(
          join(dir, "ref", f),
          join(dir, "resumed", f),
          `${f} (stopped at step ${stopAt}, seed ${rand.seed})`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
