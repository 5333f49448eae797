/**
 * The suite runner's discovery (tests/_doc_examples.ts): which files and JSDoc examples
 * `tests/all.ts` runs, and the rule that every runnable example checks its result.
 */

import {
  docExamples,
  extractDocExamples,
  librarySources,
  rebaseExample,
  REPO_ROOT,
  testFiles,
} from "./_doc_examples.ts";
import { assert, assertEquals } from "./assert.ts";

const SOURCE = [
  "/** A module. @module */",
  "/**",
  " * Adds.",
  " *",
  " * @example",
  " * ```ts",
  ' * import { add } from "./add.ts";',
  ' * if (add(1, 2) !== 3) throw new Error("add");',
  " * ```",
  " *",
  " * ```ts ignore",
  " * await somethingSlow();",
  " * ```",
  " * ```sh",
  " * deno task test",
  " * ```",
  " * ```js",
  " * const x = 1;",
  " * ```",
  " */",
  "export function add(a: number, b: number): number { return a + b; }",
  "/* not JSDoc",
  " * ```ts",
  " * notRun();",
  " * ```",
  " */",
  "// ```ts",
  "/**",
  "   * ```typescript",
  "   * const indented = true;",
  "   * ```",
  "   */",
].join("\n");

Deno.test("extractDocExamples: ts/js fences in JSDoc only, ignore and other languages skipped", () => {
  const got = extractDocExamples("x/add.ts", SOURCE);
  assertEquals(got.map((e) => [e.startLine, e.endLine, e.lang]), [
    [6, 9, "ts"],
    [17, 19, "js"],
    [29, 31, "typescript"],
  ]);
  assertEquals(
    got[0].code,
    'import { add } from "./add.ts";\nif (add(1, 2) !== 3) throw new Error("add");\n',
  );
  assertEquals(got[1].code, "const x = 1;\n");
  assertEquals(got[2].code, "const indented = true;\n");
  assert(got.every((e) => e.file === "x/add.ts"));
});

Deno.test("extractDocExamples: an unclosed fence is an error naming the file and line", () => {
  let message = "";
  try {
    extractDocExamples("x/bad.ts", "/**\n * ```ts\n * const a = 1;\n */\n");
  } catch (err) {
    message = (err as Error).message;
  }
  assertEquals(message, "x/bad.ts:2: code fence not closed before */");
});

Deno.test("rebaseExample: relative specifiers and import.meta point at the example's own file", () => {
  const base = new URL("file:///repo/hub/tokenizer.ts");
  const code = [
    'import { a } from "./a.ts";',
    "import { b } from '../util/b.ts';",
    'import "./side.ts";',
    'export { c } from "./c.ts";',
    'const d = await import("../d.ts");',
    'import { parse } from "yaml";',
    'import x from "npm:x@1";',
    'const dir = new URL("../data", import.meta.url);',
    "const f = import.meta.filename, g = import.meta.dirname;",
  ].join("\n");
  assertEquals(
    rebaseExample(code, base).split("\n"),
    [
      'import { a } from "file:///repo/hub/a.ts";',
      "import { b } from 'file:///repo/util/b.ts';",
      'import "file:///repo/hub/side.ts";',
      'export { c } from "file:///repo/hub/c.ts";',
      'const d = await import("file:///repo/d.ts");',
      'import { parse } from "yaml";',
      'import x from "npm:x@1";',
      'const dir = new URL("../data", "file:///repo/hub/tokenizer.ts");',
      'const f = "/repo/hub/tokenizer.ts", g = "/repo/hub";',
    ],
  );
});

Deno.test("testFiles: every *_test.ts under tests/, sorted, and nothing else", async () => {
  const files = await testFiles();
  assert(files.includes("tests/doc_examples_test.ts"), files.join());
  assert(files.includes("tests/gpu/device_errors_test.ts"), "device_errors_test runs too");
  assert(files.every((f) => f.startsWith("tests/") && f.endsWith("_test.ts")), files.join());
  assertEquals([...files].sort(), files);
  assert(files.length >= 80, `${files.length} test files`);
});

Deno.test("librarySources: mod.ts and the library folders; no tests, benchmarks or demos", async () => {
  const files = await librarySources();
  for (const f of ["mod.ts", "gpu/device.ts", "sae/architectures/mod.ts", "util/env.ts"]) {
    assert(files.includes(f), `${f} missing`);
  }
  assert(!files.some((f) => /^(tests|bench|data)\//.test(f) || f.startsWith("demo")), files.join());
});

Deno.test("every runnable JSDoc example checks its result (throws or asserts when wrong)", async () => {
  const examples = await docExamples();
  assert(examples.length >= 140, `only ${examples.length} examples found`);
  assert(examples.some((e) => e.file === "gpu/device.ts"), "gpu/device.ts has an example");
  const silent = examples
    .filter((e) => !/\bthrow\b|\bassert\w*\s*\(/.test(e.code))
    .map((e) => `${e.file}#${e.startLine}-${e.endLine}`);
  assertEquals(silent, [], "examples that check nothing (make them throw when wrong)");
});

Deno.test("the repository root is this checkout", async () => {
  assert((await Deno.stat(new URL("deno.json", REPO_ROOT))).isFile);
});
