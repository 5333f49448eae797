/**
 * Every function-scope WGSL `var` in the kernels has an explicit initializer. The WGSL rule that
 * a `var` without one is zeroed each time its declaration runs (in every loop iteration) is not
 * kept by the naga translation Deno 2.9 uses (gfx-rs/wgpu#9489: such a var is zeroed once at
 * function entry), which made the TopK-family gradients wrong past 32 entries per row. This scan
 * of the kernel sources fails on any `var name: type;` (module-scope `var<…>` are excluded).
 */
import { assertEquals } from "../assert.ts";

const ROOTS = ["gpu", "sae", "model", "stages", "bench"];
const root = new URL("../../", import.meta.url);

async function* tsFiles(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* tsFiles(u);
    else if (e.name.endsWith(".ts")) yield u;
  }
}

Deno.test("WGSL: no function-scope var relies on implicit zeroing", async () => {
  const bad: string[] = [];
  let scanned = 0;
  for (const r of ROOTS) {
    for await (const f of tsFiles(new URL(`${r}/`, root))) {
      const lines = (await Deno.readTextFile(f)).split("\n");
      lines.forEach((line, i) => {
        // `var name: type;` (the name may be built with ${…}); `var<…>` and `var x = …` pass.
        if (/\bvar\s+[\w${}]+\s*:[^=;]*;/.test(line)) {
          bad.push(`${f.pathname.slice(root.pathname.length)}:${i + 1}: ${line.trim()}`);
        }
      });
      scanned++;
    }
  }
  if (scanned < 50) throw new Error(`scanned only ${scanned} files`);
  assertEquals(bad, []);
});
