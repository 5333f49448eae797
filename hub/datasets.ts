/**
 * Which files of a dataset (a Hugging Face dataset repo, or a local folder) hold a split, by the
 * conventions of the `datasets` library (`data_files.py`, `get_data_patterns`), tried in order:
 *
 * 1. sharded split files `data/{split}-NNNNN-of-NNNNN*.*` (any split name);
 * 2. folders named after a split: `**∕train/**`, `**∕train-x/**`, `**∕x_train/**`, … ;
 * 3. file names containing a split keyword between separators (`-._ ` or a digit):
 *    `train.jsonl`, `train-0.txt`, `my_train_data.parquet`, `data/test-1.json`, … ;
 * 4. otherwise every file forms the `train` split.
 *
 * Split keywords: train = `train`, `training`; validation = `validation`, `valid`, `dev`, `val`;
 * test = `test`, `testing`, `eval`, `evaluation` (case-sensitive, as in `datasets`). Hidden files
 * and folders (`.gitattributes`, `.cache/…`), folders starting with `__`, and `README.md`,
 * `config.json`, `dataset_info.json`, `dataset_infos.json`, `dataset_dict.json`,
 * `dummy_data.zip` are never data files. Within a split, the most common data format is kept
 * (as `datasets` infers one builder per dataset) and the files are sorted.
 *
 * Not followed: `configs:` / `data_files:` declared in a dataset card's YAML header, and loading
 * scripts (`trust_remote_code`): both need Python.
 * @module
 */

import { DatasetError } from "../io/dataset_error.ts";
import { hubListFiles } from "./download.ts";
import type { HubOptions } from "./env.ts";
import { HubError } from "./errors.ts";

/** Data formats saeflow reads (each optionally `.gz`/`.zst` compressed, except Parquet). */
export type DataFormat = "text" | "json" | "parquet";

/** Formats `datasets` loads that saeflow does not (used to refuse, not to read). */
const OTHER_FORMATS: Record<string, string> = {
  csv: "csv",
  tsv: "csv",
  arrow: "arrow",
  tar: "webdataset",
  zip: "zip archive",
  xml: "xml",
  h5: "hdf5",
  hdf5: "hdf5",
  lance: "lance",
  sql: "sql",
};

/** File names `datasets` never treats as data. */
export const FILES_TO_IGNORE: readonly string[] = [
  "README.md",
  "config.json",
  "dataset_info.json",
  "dataset_infos.json",
  "dummy_data.zip",
  "dataset_dict.json",
];

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * The data format of a file from its name (`.txt`, `.json`, `.jsonl`, `.parquet`; text and
 * JSON may end in `.gz`, `.zst` or `.zstd`), or `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { dataFileFormat } from "./datasets.ts";
 * if (dataFileFormat("data/train-00000-of-00002.parquet") !== "parquet") throw new Error();
 * if (dataFileFormat("shard.jsonl.zst") !== "json") throw new Error();
 * if (dataFileFormat("README.md") !== undefined) throw new Error();
 * ```
 */
export function dataFileFormat(path: string): DataFormat | undefined {
  let name = baseName(path).toLowerCase();
  let compressed = false;
  const m = /\.(gz|zst|zstd)$/.exec(name);
  if (m) {
    name = name.slice(0, m.index);
    compressed = true;
  }
  if (name.endsWith(".txt")) return "text";
  if (name.endsWith(".jsonl") || name.endsWith(".json")) return "json";
  if (name.endsWith(".parquet") && !compressed) return "parquet";
  return undefined;
}

/** Format name of a file `datasets` would load but saeflow cannot, if any. */
function otherFormat(path: string): string | undefined {
  const name = baseName(path).toLowerCase().replace(/\.(gz|zst|zstd|bz2|xz)$/, "");
  const ext = name.slice(name.lastIndexOf(".") + 1);
  return name.includes(".") ? OTHER_FORMATS[ext] : undefined;
}

/**
 * True for paths `datasets` never reads as data: hidden files or folders, folders starting with
 * `__`, and {@link FILES_TO_IGNORE}.
 */
export function isIgnoredDatasetPath(path: string): boolean {
  const parts = path.split("/");
  if (parts.some((p) => p.startsWith(".") && !/^\.+$/.test(p))) return true;
  if (parts.slice(0, -1).some((p) => p.startsWith("__"))) return true;
  return FILES_TO_IGNORE.includes(parts[parts.length - 1]);
}

const SPLIT_KEYWORDS: Record<string, string[]> = {
  train: ["train", "training"],
  validation: ["validation", "valid", "dev", "val"],
  test: ["test", "testing", "eval", "evaluation"],
};
const DEFAULT_SPLITS = ["train", "validation", "test"];
const SEP = "[-._ 0-9]";
const SHARDED = /^data\/(.+)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]*$/;
const SPLIT_NAME = /^\w+(\.\w+)*$/;

function dirPatterns(k: string): RegExp[] {
  return [
    `^(?:.*/)?${k}/.+$`,
    `^(?:.*/)?${k}${SEP}[^/]*/.+$`,
    `^(?:.*/)?[^/]*${SEP}${k}/.+$`,
    `^(?:.*/)?[^/]*${SEP}${k}${SEP}[^/]*/.+$`,
  ].map((s) => new RegExp(s));
}
function filePatterns(k: string): RegExp[] {
  return [`^(?:.*/)?${k}${SEP}[^/]*$`, `^(?:.*/)?[^/]*${SEP}${k}${SEP}[^/]*$`].map((s) =>
    new RegExp(s)
  );
}

/**
 * Groups a dataset's files into splits by the `datasets` conventions (see the module doc).
 * `paths` are relative, `/`-separated; ignored paths are dropped first. Splits come in the order
 * train, validation, test, then others sorted; each split's files sorted.
 *
 * @throws {DatasetError} when sharded file names give a split name `datasets` would reject.
 *
 * @example
 * ```ts
 * import { datasetSplits } from "./datasets.ts";
 * const s = datasetSplits(["README.md", "train.jsonl", "test.jsonl", "data/extra.txt"]);
 * if (JSON.stringify(s) !== '{"train":["train.jsonl"],"test":["test.jsonl"]}') throw new Error();
 * const all = datasetSplits([".gitattributes", "a.txt", "b/c.txt"]);
 * if (JSON.stringify(all) !== '{"train":["a.txt","b/c.txt"]}') throw new Error();
 * ```
 */
export function datasetSplits(paths: readonly string[]): Record<string, string[]> {
  const files = [...new Set(paths.filter((p) => !isIgnoredDatasetPath(p)))].sort();
  const out: Record<string, string[]> = {};
  // 1. data/{split}-00000-of-00001.*
  const sharded = new Map<string, string[]>();
  for (const f of files) {
    const m = SHARDED.exec(f);
    if (m) sharded.set(m[1], [...(sharded.get(m[1]) ?? []), f]);
  }
  if (sharded.size) {
    const bad = [...sharded.keys()].filter((s) => !SPLIT_NAME.test(s));
    if (bad.length) {
      throw new DatasetError(
        `split names ${JSON.stringify(bad)} from files like data/{split}-00000-of-00001.* are ` +
          `not valid split names (expected letters, digits and "_", as in "train")`,
      );
    }
    const names = [
      ...DEFAULT_SPLITS.filter((s) => sharded.has(s)),
      ...[...sharded.keys()].filter((s) => !DEFAULT_SPLITS.includes(s)).sort(),
    ];
    for (const s of names) out[s] = sharded.get(s)!;
    return out;
  }
  // 2. folders named after splits, 3. file names with split keywords: the first kind that
  // matches anything decides; each split takes every file any of its patterns matches.
  for (const patterns of [dirPatterns, filePatterns]) {
    for (const split of DEFAULT_SPLITS) {
      const res = SPLIT_KEYWORDS[split].flatMap(patterns);
      const matched = files.filter((f) => res.some((r) => r.test(f)));
      if (matched.length) out[split] = matched;
    }
    if (Object.keys(out).length) return out;
  }
  // 4. everything is train.
  if (files.length) out.train = files;
  return out;
}

/** The files of one split, as {@link selectSplitFiles} picks them. */
export interface SplitFiles {
  /** The split's data files of the chosen format, sorted. */
  files: string[];
  /** Their format. */
  format: DataFormat;
  /** Files of the split that are not read (other formats, unknown extensions). */
  ignored: string[];
  /** Every split found, with its file count. */
  splits: Record<string, number>;
}

/**
 * The data files of `split` among a dataset's files (see {@link datasetSplits}), keeping the
 * split's most common data format.
 *
 * @param describe names the dataset in errors (e.g. `dataset repo org/name@main`).
 * @throws {DatasetError} when the split does not exist (the splits and files found are listed),
 * has no data file saeflow reads, or is mostly in a format saeflow does not read (csv, arrow…).
 *
 * @example
 * ```ts
 * import { selectSplitFiles } from "./datasets.ts";
 * const s = selectSplitFiles(["data/train-00001-of-00002.parquet", "data/train-00000-of-00002.parquet"], "train", "x");
 * if (s.files[0] !== "data/train-00000-of-00002.parquet" || s.format !== "parquet") throw new Error();
 * ```
 */
export function selectSplitFiles(
  paths: readonly string[],
  split: string,
  describe: string,
): SplitFiles {
  const splits = datasetSplits(paths);
  const counts = Object.fromEntries(Object.entries(splits).map(([k, v]) => [k, v.length]));
  const shown = (xs: readonly string[]) =>
    xs.length > 20 ? `${JSON.stringify(xs.slice(0, 20))} and ${xs.length - 20} more` : (
      JSON.stringify(xs)
    );
  const files = splits[split];
  if (!files) {
    const found = Object.keys(splits);
    throw new DatasetError(
      found.length
        ? `${describe} has no split ${JSON.stringify(split)}: the splits found are ` +
          `${JSON.stringify(found)} (files: ${
            shown(paths.filter((p) => !isIgnoredDatasetPath(p)))
          })`
        : `${describe} has no data files (files found: ${shown(paths)}); expected .txt, ` +
          `.json, .jsonl (optionally .gz/.zst) or .parquet files`,
    );
  }
  const tally = new Map<string, string[]>();
  for (const f of files) {
    const k = dataFileFormat(f) ?? (otherFormat(f) ? `other:${otherFormat(f)}` : undefined);
    if (k) tally.set(k, [...(tally.get(k) ?? []), f]);
  }
  let best: string | undefined;
  for (const [k, v] of tally) if (!best || v.length > tally.get(best)!.length) best = k;
  if (!best) {
    throw new DatasetError(
      `${describe}: split ${JSON.stringify(split)} has no data file saeflow can read ` +
        `(files: ${shown(files)}); expected .txt, .json, .jsonl (optionally .gz/.zst) or ` +
        `.parquet files`,
    );
  }
  if (best.startsWith("other:")) {
    throw new DatasetError(
      `${describe}: split ${JSON.stringify(split)} is stored as ${best.slice(6)} files ` +
        `(${shown(tally.get(best)!)}), a format saeflow does not read; expected .txt, .json, ` +
        `.jsonl (optionally .gz/.zst) or .parquet files`,
    );
  }
  const chosen = tally.get(best)!;
  return {
    files: chosen,
    format: best as DataFormat,
    ignored: files.filter((f) => !chosen.includes(f)),
    splits: counts,
  };
}

/** Options of {@link listHubDatasetFiles}. */
export interface HubDatasetOptions {
  /** Branch, tag or commit (default `"main"`). */
  revision?: string;
  /** Endpoint, token, cache, offline (see `hub/env.ts`). */
  hub?: HubOptions;
}

/**
 * Every file path of a hub dataset repo at a revision (sorted). Offline, the cached snapshot's
 * files (only those downloaded so far).
 *
 * @throws {DatasetError} when the repo or revision does not exist, is gated without a valid
 * token, or the hub cannot be reached (the hub's message, with the {@link HubError} as cause).
 */
export async function listHubDatasetFiles(
  repoId: string,
  opts: HubDatasetOptions = {},
): Promise<string[]> {
  const revision = opts.revision ?? "main";
  try {
    return await hubListFiles(repoId, { ...opts.hub, repoType: "dataset", revision });
  } catch (err) {
    if (!(err instanceof HubError)) throw err;
    const what = err.kind === "not_found"
      ? `no dataset repo ${repoId} (or no revision ${JSON.stringify(revision)} of it) on the hub`
      : `cannot list the files of dataset repo ${repoId}@${revision}`;
    throw new DatasetError(`${what}: ${err.message}`, { cause: err });
  }
}
