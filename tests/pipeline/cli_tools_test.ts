/** `pipeline.ts eval …` goes to the eval command: help, a bad call as one error line, a run. */

import { main } from "../../pipeline/cli.ts";
import { assert, assertEquals } from "../assert.ts";

function io() {
  const out: string[] = [], err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

Deno.test("pipeline.ts eval: help, and a missing SAE as one error line", async () => {
  const a = io();
  assertEquals(await main(["eval", "--help"], { io: a.io, signals: false }), 0);
  assert(a.err.join("\n").includes("pipeline.ts eval <sae-folder"), a.err.join("\n"));
  const b = io();
  assertEquals(await main(["eval", "/nonexistent/sae"], { io: b.io, signals: false }), 1);
  assertEquals(b.err.length, 1, b.err.join("\n"));
  assert(b.err[0].startsWith("error:") && b.err[0].includes("/nonexistent/sae"), b.err[0]);
  const c = io();
  assertEquals(await main(["--help"], { io: c.io, signals: false }), 0);
  assert(c.out.some((l) => l.startsWith("  eval: pipeline.ts eval")), "the top help lists eval");
});

Deno.test("pipeline.ts cache / pretokenize: a missing config is one error line", async () => {
  for (const cmd of ["cache", "pretokenize"]) {
    const a = io();
    assertEquals(await main([cmd], { io: a.io, signals: false }), 1, cmd);
    assertEquals(a.err.length, 1, a.err.join("\n"));
    assert(a.err[0].includes(`${cmd}: give a config file`), a.err[0]);
  }
});
