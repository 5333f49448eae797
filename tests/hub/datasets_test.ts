import {
  dataFileFormat,
  datasetSplits,
  isIgnoredDatasetPath,
  selectSplitFiles,
} from "../../hub/datasets.ts";
import { DatasetError } from "../../io/dataset_error.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

Deno.test("dataFileFormat: extensions and compression", () => {
  const cases: [string, string | undefined][] = [
    ["a.txt", "text"],
    ["dir/a.TXT", "text"],
    ["a.txt.gz", "text"],
    ["a.jsonl", "json"],
    ["a.json", "json"],
    ["a.jsonl.zst", "json"],
    ["a.json.zstd", "json"],
    ["a.jsonl.gz", "json"],
    ["data/train-00000-of-00001.parquet", "parquet"],
    ["a.parquet.gz", undefined],
    ["a.csv", undefined],
    ["README.md", undefined],
    ["jsonl", undefined],
  ];
  for (const [p, want] of cases) assertEquals(dataFileFormat(p), want, p);
});

Deno.test("isIgnoredDatasetPath: hidden, __dirs and datasets' FILES_TO_IGNORE", () => {
  for (const p of [".gitattributes", ".cache/a.jsonl", "x/.hidden.txt", "__pycache__/a.txt"]) {
    assert(isIgnoredDatasetPath(p), p);
  }
  for (const p of ["README.md", "sub/dataset_info.json", "dataset_infos.json", "config.json"]) {
    assert(isIgnoredDatasetPath(p), p);
  }
  for (const p of ["a.jsonl", "data/train.txt", "__init__.txt", "readme.md", "x/README.mdx"]) {
    assert(!isIgnoredDatasetPath(p), p);
  }
});

Deno.test("datasetSplits: sharded data/{split}-NNNNN-of-NNNNN files win; split order", () => {
  const s = datasetSplits([
    "README.md",
    ".gitattributes",
    "data/train-00001-of-00002.parquet",
    "data/random-00000-of-00001.parquet",
    "data/test-00000-of-00001.parquet",
    "data/train-00000-of-00002.parquet",
    "train/other.parquet", // a train folder: not used once sharded files exist
    "data/zeta-00000-of-00001.parquet",
  ]);
  assertEquals(Object.keys(s), ["train", "test", "random", "zeta"]);
  assertEquals(s.train, ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]);
  assertThrows(
    () => datasetSplits(["data/my-split-00000-of-00001.parquet"]),
    DatasetError,
    "not valid split names",
  );
});

Deno.test("datasetSplits: folders named after splits (and keyword variants)", () => {
  const s = datasetSplits([
    "data/train/b.jsonl",
    "data/train/a.jsonl",
    "data/train/nested/c.jsonl",
    "train-clean/d.jsonl",
    "my_train/e.jsonl",
    "data/test/a.jsonl",
    "dev/a.jsonl",
    "other.jsonl", // matches no split folder: not part of any split
    "trainer/x.jsonl", // "trainer" is not a split keyword
  ]);
  assertEquals(s, {
    train: [
      "data/train/a.jsonl",
      "data/train/b.jsonl",
      "data/train/nested/c.jsonl",
      "my_train/e.jsonl",
      "train-clean/d.jsonl",
    ],
    validation: ["dev/a.jsonl"],
    test: ["data/test/a.jsonl"],
  });
});

Deno.test("datasetSplits: split keywords in file names between separators", () => {
  const s = datasetSplits([
    "train.jsonl",
    "train_0.jsonl",
    "train1.jsonl",
    "my-train-data.jsonl",
    "1train.jsonl",
    "training.jsonl",
    "trainer.jsonl", // not a keyword: dropped once keywords matched
    "validation.jsonl",
    "data/val.jsonl",
    "interval.jsonl", // "val" needs a separator before it
    "test.jsonl",
    "eval-set.jsonl",
    "Train.jsonl", // case-sensitive, as in datasets
  ]);
  assertEquals(s, {
    train: [
      "1train.jsonl",
      "my-train-data.jsonl",
      "train.jsonl",
      "train1.jsonl",
      "train_0.jsonl",
      "training.jsonl",
    ],
    validation: ["data/val.jsonl", "validation.jsonl"],
    test: ["eval-set.jsonl", "test.jsonl"],
  });
});

Deno.test("datasetSplits: no split names → every non-ignored file is train", () => {
  const s = datasetSplits([
    "README.md",
    ".gitattributes",
    "b.jsonl",
    "a.jsonl",
    "sub/c.jsonl",
    "__pycache__/x.jsonl",
    ".hidden/y.jsonl",
    "dataset_info.json",
  ]);
  assertEquals(s, { train: ["a.jsonl", "b.jsonl", "sub/c.jsonl"] });
  assertEquals(datasetSplits([]), {});
});

Deno.test("selectSplitFiles: keeps the split's most common format, lists what it ignores", () => {
  const s = selectSplitFiles(
    ["train-0.jsonl", "train-1.jsonl.zst", "train-2.parquet", "train-notes.md", "test.jsonl"],
    "train",
    "repo x",
  );
  assertEquals(s.files, ["train-0.jsonl", "train-1.jsonl.zst"]);
  assertEquals(s.format, "json");
  assertEquals(s.ignored, ["train-2.parquet", "train-notes.md"]);
  assertEquals(s.splits, { train: 4, test: 1 });
});

Deno.test("selectSplitFiles: missing split, no data, foreign formats are clear errors", () => {
  const missing = assertThrows(
    () => selectSplitFiles(["train.jsonl", "test.jsonl", "README.md"], "validation", "repo org/d"),
    DatasetError,
  );
  assert(missing.message.includes('repo org/d has no split "validation"'), missing.message);
  assert(missing.message.includes('["train","test"]'), missing.message);
  assert(missing.message.includes("train.jsonl") && missing.message.includes("test.jsonl"));

  const empty = assertThrows(
    () => selectSplitFiles(["README.md"], "train", "repo e"),
    DatasetError,
  );
  assert(empty.message.includes("repo e has no data files"), empty.message);
  assert(empty.message.includes("README.md"), empty.message);

  const unreadable = assertThrows(
    () => selectSplitFiles(["LICENSE", "notes.md"], "train", "repo u"),
    DatasetError,
  );
  assert(unreadable.message.includes("no data file saeflow can read"), unreadable.message);

  const csv = assertThrows(
    () => selectSplitFiles(["a.csv", "b.csv", "c.jsonl"], "train", "repo c"),
    DatasetError,
  );
  assert(csv.message.includes("stored as csv files"), csv.message);
});
