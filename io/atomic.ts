/**
 * Atomic file output: every checkpoint and output file saeflow writes goes to a temporary file
 * beside its destination, is flushed, and is renamed over the destination. A crash or an error
 * half-way leaves the previous file untouched.
 * @module
 */

import { dirname } from "../util/path.ts";

let counter = 0;

/** Path of the temporary sibling used while `path` is being written. */
function tempPathFor(path: string): string {
  counter += 1;
  return `${path}.${Deno.pid}.${Date.now()}.${counter}.tmp`;
}

/**
 * Writes `data` to `path` atomically (temp file in the same directory, fsync, rename).
 * Parent directories are created.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("hi"));
 * if (await Deno.readTextFile(`${dir}/a.txt`) !== "hi") throw new Error("not written");
 * if ([...Deno.readDirSync(dir)].length !== 1) throw new Error("a temp file was left behind");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < data.length) written += await file.write(data.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Writes a UTF-8 text file atomically. */
export async function writeTextFileAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Writes `value` as pretty JSON (2-space indent, trailing newline) atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeTextFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
