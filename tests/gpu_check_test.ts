/**
 * `deno task gpu-check` end to end on a fast subset (one check family, no benchmarks): the
 * argument parser, the adapter record, one JSON line per check and the summary.
 */
import { gpuCheck, parseGpuCheckArgs } from "../bench/gpu_check.ts";
import { getGpu } from "../gpu/device.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

Deno.test("gpu-check: arguments", () => {
  const o = parseGpuCheckArgs(["--small", "--out", "x.jsonl", "--only", "topk,scatter"]);
  assertEquals([o.small, o.out, o.only, o.checks, o.bench], [
    true,
    "x.jsonl",
    ["topk", "scatter"],
    true,
    true,
  ]);
  assertThrows(() => parseGpuCheckArgs(["--fast"]), Error, "unknown argument --fast");
  assertThrows(() => parseGpuCheckArgs(["--out"]), Error, "--out needs a value");
  assertThrows(() => parseGpuCheckArgs(["--budget-s", "-1"]), Error, "positive");
});

Deno.test("gpu-check: the optimizer checks write adapter, check and summary lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_gpu_check_" });
  try {
    const out = `${dir}/check.jsonl`;
    const o = parseGpuCheckArgs(["--out", out, "--only", "optimizer", "--no-bench"]);
    const log = console.log;
    console.log = () => {};
    let failed: number;
    try {
      failed = await gpuCheck(o, await getGpu());
    } finally {
      console.log = log;
    }
    assertEquals(failed, 0);
    const recs = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(recs.map((r) => r.record), ["adapter", "check", "summary"]);
    assertEquals(recs[0].description, (await getGpu()).info.description);
    assert(Array.isArray(recs[0].adapter_features), "adapter features listed");
    assertEquals([recs[1].family, recs[1].ok], ["optimizer", true]);
    assert(recs[1].errors.total_norm <= 1, "errors within tolerance are reported");
    assertEquals([recs[2].checks_passed, recs[2].checks_failed], [1, 0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
