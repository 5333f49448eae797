/**
 * Close matches of a misspelt name among the valid ones, for error messages ("did you mean
 * …?"), like Python's `difflib.get_close_matches` but by edit distance.
 * @module
 */

/** Levenshtein distance between `a` and `b` (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, prev[j] + 1, cur[j - 1] + 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Up to `n` entries of `candidates` closest to `name`, nearest first: those containing it or
 * contained in it (at least half as long), then those within an edit distance of a third of the
 * longer name (at least 2); ties keep the order of `candidates`.
 *
 * @example
 * ```ts
 * import { closeMatches } from "./suggest.ts";
 * const m = closeMatches("blocks.0.hook_resid_psot", ["blocks.0.hook_resid_post", "hook_embed"]);
 * if (m.length !== 1 || m[0] !== "blocks.0.hook_resid_post") throw new Error(String(m));
 * ```
 */
export function closeMatches(name: string, candidates: Iterable<string>, n = 3): string[] {
  const scored: [number, string][] = [];
  for (const c of new Set(candidates)) {
    const longer = Math.max(c.length, name.length);
    const limit = Math.max(2, Math.floor(longer / 3));
    // One inside the other (a prefix typed, a suffix missing) ranks first when it is at least
    // half of the longer name.
    const contains = 2 * Math.min(c.length, name.length) >= longer &&
      (c.includes(name) || name.includes(c));
    if (contains) {
      scored.push([0, c]);
      continue;
    }
    // Cheap bound first: the length difference alone already exceeds the limit.
    if (Math.abs(c.length - name.length) > limit) continue;
    const d = editDistance(name, c);
    if (d <= limit) scored.push([d, c]);
  }
  scored.sort((a, b) => a[0] - b[0]); // stable: ties keep the candidates' order
  return scored.slice(0, n).map(([, c]) => c);
}

/** `" (did you mean a, b?)"` for the close matches of `name`, or `""` when there are none. */
export function didYouMean(name: string, candidates: Iterable<string>, n = 3): string {
  const m = closeMatches(name, candidates, n);
  return m.length ? ` (did you mean ${m.join(", ")}?)` : "";
}
