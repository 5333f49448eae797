/** Minimal POSIX/Windows-tolerant path helpers (JSR's `@std/path` is unreachable here). */

/** The directory part of `path` (`"."` when there is none). */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (i < 0) return ".";
  if (i === 0) return path[0];
  return path.slice(0, i);
}

/** The last segment of `path`. */
export function basename(path: string): string {
  const trimmed = path.replace(/[/\\]+$/, "");
  const i = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  return trimmed.slice(i + 1);
}

/** Joins segments with `/`, collapsing duplicate separators. */
export function join(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join("/").replace(/\/+/g, "/");
}

/**
 * True when a file or directory exists at `path` (false also when a parent is a file, so
 * `exists("a_file/cfg.json")` is false rather than a raw NotADirectory error).
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw err;
  }
}

/**
 * Why `path` is not a safe relative path inside some folder (a repo snapshot, a model folder),
 * or `undefined` when it is: it must be non-empty, relative (no leading `/`, no drive letter),
 * use `/` only (no `\`), have no empty segment, no control character, and no segment that is
 * `.` or `..`, also once percent-decoded (any case, any depth: `%2e%2e`, `%2E.`, `%252e%252e`),
 * and no percent-encoded separator (`%2f`, `%5c`), since such names turn into dot segments or
 * separators when they pass through a URL.
 *
 * @example
 * ```ts
 * import { unsafeRelativePath } from "./path.ts";
 * if (unsafeRelativePath("model-00001-of-00002.safetensors") !== undefined) throw new Error();
 * for (const p of ["../x", "%2e%2e/x", "a/%2E%2e/b", "/etc/passwd", "a\\b", "C:x", "a//b", ""]) {
 *   if (unsafeRelativePath(p) === undefined) throw new Error(`accepted ${p}`);
 * }
 * ```
 */
export function unsafeRelativePath(path: string): string | undefined {
  if (typeof path !== "string" || path.length === 0) return "it is empty";
  if (path.length > 4096) return "it is longer than 4096 characters";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return "it contains a control character";
  if (path.includes("\\")) return 'it contains "\\" (only "/" separates folders)';
  if (path.startsWith("/")) return "it is absolute";
  if (/^[A-Za-z]:/.test(path)) return "it starts with a drive letter";
  for (const seg of path.split("/")) {
    if (seg === "") return "it has an empty segment";
    let decoded = seg;
    for (let i = 0; i < 4 && decoded.includes("%"); i++) {
      let next: string;
      try {
        next = decodeURIComponent(decoded);
      } catch {
        break; // a lone "%" is a literal character
      }
      if (next === decoded) break;
      decoded = next;
    }
    if (decoded === "." || decoded === "..") {
      return seg === decoded
        ? `it has a "${seg}" segment`
        : `segment "${seg}" decodes to "${decoded}"`;
    }
    if (decoded !== seg && /[/\\]/.test(decoded)) {
      return `segment "${seg}" decodes to a path separator`;
    }
  }
  return undefined;
}
