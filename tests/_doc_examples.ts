/**
 * Finds the suite's files: every `*_test.ts` under `tests/`, and every runnable code example in
 * the JSDoc of the library's source files (what `deno test --doc` would run), so that
 * `tests/all.ts` can run all of them in one isolate.
 * @module
 */

/** The repository root (this file lives in `tests/`). */
export const REPO_ROOT: URL = new URL("../", import.meta.url);

/** Top-level folders that hold no library code (their JSDoc examples are not run). */
const NOT_LIBRARY = new Set(["tests", "bench", "data", "node_modules", "out", "checkpoints"]);

/** Code-block languages that run as examples, as `deno test --doc` runs them. */
const RUNNABLE = new Set(["ts", "typescript", "mts", "js", "javascript", "mjs", "tsx", "jsx"]);

/** One runnable code example from a JSDoc comment. */
export interface DocExample {
  /** Path of the source file relative to the repository root, with `/` separators. */
  file: string;
  /** 1-based line of the opening fence. */
  startLine: number;
  /** 1-based line of the closing fence. */
  endLine: number;
  /** Language of the fence (`ts`, `js`, ...). */
  lang: string;
  /** The example's code, with the comment's leading ` * ` removed. */
  code: string;
}

async function walk(dir: URL, out: string[], keep: (path: string) => boolean): Promise<void> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) await walk(url, out, keep);
    else if (entry.isFile && keep(url.pathname)) out.push(url.pathname);
  }
}

function relative(path: string): string {
  const root = decodeURIComponent(REPO_ROOT.pathname);
  const p = decodeURIComponent(path);
  if (!p.startsWith(root)) throw new Error(`${p} is outside the repository ${root}`);
  return p.slice(root.length);
}

/** Every `*_test.ts` file under `tests/`, as paths relative to the repository root, sorted. */
export async function testFiles(): Promise<string[]> {
  const out: string[] = [];
  await walk(new URL("tests/", REPO_ROOT), out, (p) => p.endsWith("_test.ts"));
  return out.map(relative);
}

/**
 * The library's TypeScript source files (`mod.ts` and every top-level folder except tests,
 * benchmarks and data), as paths relative to the repository root, sorted.
 */
export async function librarySources(): Promise<string[]> {
  const out: string[] = ["mod.ts"];
  for await (const entry of Deno.readDir(REPO_ROOT)) {
    if (!entry.isDirectory || entry.name.startsWith(".") || NOT_LIBRARY.has(entry.name)) continue;
    const files: string[] = [];
    await walk(
      new URL(entry.name + "/", REPO_ROOT),
      files,
      (p) => p.endsWith(".ts") && !p.endsWith("_test.ts"),
    );
    out.push(...files.map(relative));
  }
  return out.sort();
}

/**
 * The code examples in the JSDoc comments (`/** … *\/`) of `text`: fenced blocks whose language
 * is TypeScript or JavaScript and that are not marked `ignore`.
 */
export function extractDocExamples(file: string, text: string): DocExample[] {
  const lines = text.split("\n");
  const examples: DocExample[] = [];
  let inJsDoc = false;
  let fence: { lang: string; run: boolean; start: number; body: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!inJsDoc) {
      const open = line.indexOf("/**");
      if (open >= 0 && !line.includes("*/", open + 3)) inJsDoc = true;
      continue;
    }
    if (line.includes("*/")) {
      if (fence) throw new Error(`${file}:${fence.start}: code fence not closed before */`);
      inJsDoc = false;
      continue;
    }
    const content = line.replace(/^\s*\* ?/, "");
    const marker = content.match(/^\s*```\s*([A-Za-z]*)(.*)$/);
    if (!fence) {
      if (marker) {
        const lang = marker[1].toLowerCase();
        const attrs = marker[2].trim().split(/\s+/);
        fence = {
          lang,
          run: RUNNABLE.has(lang) && !attrs.includes("ignore"),
          start: i + 1,
          body: [],
        };
      }
    } else if (marker && marker[1] === "" && marker[2].trim() === "") {
      if (fence.run) {
        examples.push({
          file,
          startLine: fence.start,
          endLine: i + 1,
          lang: fence.lang,
          code: fence.body.join("\n") + "\n",
        });
      }
      fence = null;
    } else {
      fence.body.push(content);
    }
  }
  return examples;
}

/**
 * `code` with its relative module specifiers (`"./x.ts"`, `"../y.ts"`) made absolute against
 * `base`, and `import.meta.url` / `.filename` / `.dirname` replaced by those of `base`, so that
 * the example runs from anywhere as it would beside its source file.
 */
export function rebaseExample(code: string, base: URL): string {
  const abs = (spec: string) => new URL(spec, base).href;
  const filename = decodeURIComponent(base.pathname);
  const dirname = filename.slice(0, filename.lastIndexOf("/"));
  return code
    .replace(/\bimport\.meta\.url\b/g, JSON.stringify(base.href))
    .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(filename))
    .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname))
    .replace(
      /(\bfrom\s*)(["'])(\.\.?\/[^"']*)\2/g,
      (_, pre, q, spec) => `${pre}${q}${abs(spec)}${q}`,
    )
    .replace(
      /(\bimport\s*)(["'])(\.\.?\/[^"']*)\2/g,
      (_, pre, q, spec) => `${pre}${q}${abs(spec)}${q}`,
    )
    .replace(
      /(\bimport\s*\(\s*)(["'])(\.\.?\/[^"']*)\2/g,
      (_, pre, q, spec) => `${pre}${q}${abs(spec)}${q}`,
    );
}

/** Every runnable JSDoc example of the library's source files, in file and line order. */
export async function docExamples(): Promise<DocExample[]> {
  const out: DocExample[] = [];
  for (const file of await librarySources()) {
    out.push(...extractDocExamples(file, await Deno.readTextFile(new URL(file, REPO_ROOT))));
  }
  return out;
}
