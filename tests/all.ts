/**
 * The whole test suite in one isolate: every `tests/**\/*_test.ts` file, then every runnable
 * JSDoc example of the library (as `deno test --doc` would run them, relative imports resolved
 * against the example's own file). `deno task test` runs this file:
 *
 * ```sh
 * deno test -A tests/all.ts                 # everything
 * deno test -A tests/all.ts --filter matmul # a part
 * deno test -A tests/gpu/matmul_test.ts     # one file, on its own
 * ```
 *
 * Why one isolate: `deno test` gives every test module and every doc example an isolate of its
 * own, and each isolate that touches WebGPU opens its own wgpu instance. On wgpu's GL backend
 * (Mesa EGL/llvmpipe, what a machine without a Vulkan driver gets) a process that opened more
 * than one instance can abort at exit, after every test passed, with a glibc heap message
 * ("double free or corruption", "corrupted size vs. prev_size in fastbins", exit 134). Measured
 * on Deno 2.9.6 + Mesa 22.3.6 with modules that only call `navigator.gpu.requestAdapter()`:
 * 40 modules aborted in 6 runs of 30, the same 40 calls from one module in 0 of 60, and 0 of 30
 * on the Vulkan backend (lavapipe). It is in native teardown, not in saeflow, and destroying
 * every device before exit does not prevent it. One isolate opens one instance. That makes it
 * rare, not impossible: the whole suite in one isolate on GL still aborted this way after
 * "0 failed" in 1 of 25 runs (0 of 10 on Vulkan, which `.ci/run` uses).
 *
 * For test authors: every file shares this isolate, so a test restores what it patches (globals,
 * `Deno.env`), registers architectures or hooks under names no other file uses, and destroys the
 * devices it opens itself (`Gpu.create()`); tests run in file order, then the doc examples.
 *
 * Doc examples are type-checked separately by `deno check --doc` (the test task runs it first):
 * the imports here are computed, so `deno test` cannot check them.
 * @module
 */

import { docExamples, rebaseExample, REPO_ROOT, testFiles } from "./_doc_examples.ts";

for (const file of await testFiles()) {
  await import(new URL(file, REPO_ROOT).href);
}

const examplesDir = await Deno.makeTempDir({ prefix: "saeflow_doc_examples_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(examplesDir, { recursive: true });
  } catch {
    // already gone
  }
});

for (const example of await docExamples()) {
  const where = `${example.file}#${example.startLine}-${example.endLine}`;
  const source = new URL(example.file, REPO_ROOT);
  const ext = example.lang.startsWith("j") || example.lang === "mjs" ? "js" : "ts";
  const path = `${examplesDir}/${where.replaceAll("/", "__").replace("#", "_")}.${ext}`;
  await Deno.writeTextFile(
    path,
    `// doc example from ${where}\n${rebaseExample(example.code, source)}`,
  );
  Deno.test(`doc example ${where}`, async () => {
    await import(new URL(`file://${path}`).href);
  });
}
