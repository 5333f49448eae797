// Ctrl-C: `pipeline.ts train` gets SIGINT after its first log line, finishes the batch, writes a
// checkpoint, prints how to resume and exits with 130; that command finishes the run with the
// bytes of an uninterrupted run. SIGTERM also writes a checkpoint and exits with 130. A second SIGINT exits at once.

import { listCheckpoints } from "../../pipeline/run_folder.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals } from "../assert.ts";
import { assertSameBytes, CliProcess, runCli, smallConfig, writeConfig } from "./_cli_helpers.ts";

const RESUME_HINT =
  /^interrupted at (\d+) tokens; resume with: deno run -A pipeline\.ts resume (\S+)$/;

Deno.test("Ctrl-C: SIGINT after the first log line writes a checkpoint and exits 130; the printed resume command gives the uninterrupted bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sigint_" });
  try {
    // 40 steps: a busy machine may let the run go on for a while before the signal lands.
    const cfgPath = await writeConfig(
      dir,
      "run.yaml",
      smallConfig(dir, { training_tokens: 256 * 40 }),
    );
    const reference = runCli(["train", cfgPath, "--output_path", join(dir, "ref")]);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const p = new CliProcess(["train", cfgPath, "--run-id", sig]);
      await p.waitFor(/step \d+ \|/); // the first progress (log) line
      p.child.kill(sig);
      const { code } = await p.status;
      assertEquals(code, 130, p.output());
      const hint = p.stderr.find((l) => RESUME_HINT.test(l));
      assert(hint !== undefined, `no resume hint:\n${p.output()}`);
      const [, tokens, path] = RESUME_HINT.exec(hint)!;
      assertEquals(path, join(dir, "ck", sig, tokens));
      assert(Number(tokens) < 40 * 256, `the run was not interrupted: ${hint}`);
      // The checkpoint is complete (listed as a checkpoint of the run folder).
      const listed = await listCheckpoints(join(dir, "ck", sig));
      assertEquals(listed.at(-1)?.path, path);
      assert(!p.stderr.some((l) => l.includes("    at ")), `a stack trace:\n${p.output()}`);

      if (sig === "SIGTERM") continue; // the same path as SIGINT from here on
      const resumed = await runCli(["resume", path, "--output_path", join(dir, `out_${sig}`)]);
      assertEquals(resumed.code, 0, resumed.output);
      const ref = await reference;
      assertEquals(ref.code, 0, ref.output);
      for (const f of ["sae_weights.safetensors", "sparsity.safetensors"]) {
        await assertSameBytes(join(dir, "ref", f), join(dir, `out_${sig}`, f), `${sig}: ${f}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Ctrl-C twice: the second SIGINT exits at once with 130, without a checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_sigint2_" });
  try {
    // A large buffer: the first step (where the first Ctrl-C takes effect) comes only after
    // hundreds of sequences went through the model, so the second Ctrl-C lands before it.
    const cfgPath = await writeConfig(
      dir,
      "run.yaml",
      smallConfig(dir, { training_tokens: 256 * 2000, n_batches_in_buffer: 800 }),
    );
    const p = new CliProcess(["train", cfgPath, "--run-id", "twice"]);
    await p.waitFor(/^saeflow: run /);
    p.child.kill("SIGINT");
    await p.waitFor(/^Ctrl-C: finishing the current batch/);
    p.child.kill("SIGINT");
    const { code } = await p.status;
    assertEquals(code, 130, p.output());
    assert(p.stderr.some((l) => l.startsWith("Ctrl-C again: exiting now")), p.output());
    assert(!p.stdout.some((l) => l.startsWith("checkpoint ")), p.output());
    assertEquals(await listCheckpoints(join(dir, "ck", "twice")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
