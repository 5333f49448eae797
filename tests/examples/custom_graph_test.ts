/** The hand-written graph of `examples/custom_graph.ts` runs and its own stage does its job. */

import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { dropNewlines, runCustomGraph } from "../../examples/custom_graph.ts";
import { startCursor } from "../../stages/types.ts";
import { assert, assertEquals } from "../assert.ts";

const gpu = await getGpu();

Deno.test("examples/custom_graph: two SAEs from one forward, our filter, our logger", async () => {
  const { mse, logs, stats } = await runCustomGraph(20);
  assertEquals([...mse.keys()].sort(), ["blocks.1.hook_resid_post", "blocks.3.hook_mlp_out"]);
  for (const v of mse.values()) assert(Number.isFinite(v) && v > 0, `mse ${v}`);
  assertEquals(logs, 4); // 2 SAEs × steps 10 and 20
  assertEquals(stats.get("buffer"), 20);
  assertEquals([...stats.keys()], [
    "source",
    "tokenize",
    "hook",
    "drop newlines",
    "buffer",
    "step",
    "log",
  ]);
});

Deno.test("examples/custom_graph: the filter drops exactly the newline rows of every hook", async () => {
  const acts = new Map([
    ["a", Tensor.from([0, 1, 2, 3, 4, 5, 6, 7], [4, 2], { gpu })],
    ["b", Tensor.from([10, 11, 12, 13], [4, 1], { gpu })],
  ]);
  const out = await Array.fromAsync(
    ReadableStream.from([{
      acts,
      tokenIds: Int32Array.of(65, 10, 66, 10),
      rows: 4,
      cursor: startCursor(),
    }])
      .pipeThrough(dropNewlines()),
  );
  assertEquals(out[0].rows, 2);
  assertEquals(Array.from(out[0].tokenIds), [65, 66]);
  assertEquals(Array.from(await out[0].acts.get("a")!.toArray()), [0, 1, 4, 5]);
  assertEquals(Array.from(await out[0].acts.get("b")!.toArray()), [10, 12]);
});
