/**
 * Checks before reading a file the caller named: it must exist and be a regular file (a FIFO
 * would block the read forever, a device could stream without end), and may be capped in size.
 * @module
 */

/** What a path is, in words, for error messages. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  return "not a regular file";
}

/**
 * Stats `path` and returns its size in bytes when it is a regular file (symlinks followed) of at
 * most `maxBytes`; otherwise throws the error `fail` makes from a message that names the path.
 *
 * @example
 * ```ts
 * import { regularFileSize } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, "{}");
 * if (await regularFileSize(`${dir}/a.json`, (m) => new Error(m)) !== 2) throw new Error();
 * let msg = "";
 * try {
 *   await regularFileSize(dir, (m) => new Error(m));
 * } catch (err) {
 *   msg = (err as Error).message;
 * }
 * if (!msg.includes("is a directory")) throw new Error(msg);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function regularFileSize(
  path: string,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes = Infinity,
): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw fail(`${path}: file not found`, err);
    throw fail(`${path}: cannot stat: ${(err as Error)?.message ?? err}`, err);
  }
  return checkInfo(path, info, fail, maxBytes);
}

/** {@link regularFileSize}, synchronously (for files read synchronously). */
export function regularFileSizeSync(
  path: string,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes = Infinity,
): number {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw fail(`${path}: file not found`, err);
    throw fail(`${path}: cannot stat: ${(err as Error)?.message ?? err}`, err);
  }
  return checkInfo(path, info, fail, maxBytes);
}

function checkInfo(
  path: string,
  info: Deno.FileInfo,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes: number,
): number {
  if (!info.isFile) throw fail(`${path}: is ${kindOf(info)}, expected a regular file`);
  if (info.size > maxBytes) {
    throw fail(`${path}: is ${info.size} bytes, more than the ${maxBytes} bytes allowed`);
  }
  return info.size;
}

/**
 * Reads a text file the caller named, after {@link regularFileSize}'s checks; every failure
 * (missing, not a regular file, too large, unreadable) is the error `fail` makes.
 *
 * @example
 * ```ts
 * import { readRegularTextFile } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "hi");
 * if (await readRegularTextFile(`${dir}/a.txt`, (m) => new Error(m)) !== "hi") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readRegularTextFile(
  path: string,
  fail: (message: string, cause?: unknown) => Error,
  maxBytes = Infinity,
): Promise<string> {
  await regularFileSize(path, fail, maxBytes);
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw fail(`${path}: cannot read: ${(err as Error)?.message ?? err}`, err);
  }
}
