/** What the pipeline tests share: the shipped tiny GPT-2's folder and small generated text datasets. */

import { join } from "../../util/path.ts";
import { Mulberry32 } from "../../util/rng.ts";

/** The shipped tiny GPT-2's folder. */
export const TINY_MODEL = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;

/**
 * Writes `train.jsonl` in `dir`: `rows` lines of 5-34 random words from `words`, seeded; returns
 * its path.
 */
export async function textDataset(
  dir: string,
  options: { rows?: number; seed?: number; words?: readonly string[] } = {},
): Promise<string> {
  const {
    rows = 200,
    seed = 4,
    words = ["the", "king", "and", "queen", "of", "rome", "shall", "speak", "now", "night"],
  } = options;
  const rng = new Mulberry32(seed);
  const lines = Array.from({ length: rows }, () =>
    JSON.stringify({
      text: Array.from({ length: 5 + rng.nextInt(30) }, () => words[rng.nextInt(words.length)])
        .join(" "),
    }));
  const path = join(dir, "train.jsonl");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}
