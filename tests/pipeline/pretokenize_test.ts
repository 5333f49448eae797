/**
 * The pretokenize runner: SAELens's packing (including where `datasets.map` batches and
 * `num_proc` parts restart it), the Parquet + `sae_lens.json` layout, and a pretokenized dataset
 * that the source stage reads into exactly the token blocks live tokenization makes.
 */

import { ConfigError } from "../../config/errors.ts";
import { pretokenizeConfigFromDict } from "../../pipeline/pretokenize_config.ts";
import { loadTokenizer } from "../../hub/tokenizer.ts";
import { ParquetFile } from "../../io/parquet.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import {
  PretokenizeRunner,
  runPretokenizeCommand,
  SAE_LENS_METADATA_FILE,
} from "../../pipeline/pretokenize.ts";
import { openDataset, source } from "../../stages/source.ts";
import { encoderFor, tokenize } from "../../stages/tokenize.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { join } from "../../util/path.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";

const MODEL = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const tok = await loadTokenizer(MODEL); // byte-level: "a" is 97; BOS/EOS is 256

async function jsonl(dir: string, texts: string[], name = "train.jsonl"): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, texts.map((text) => JSON.stringify({ text })).join("\n") + "\n");
  return path;
}

async function parquetRows(dir: string, files: string[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const f of files) {
    using pq = await ParquetFile.open(join(dir, f));
    for await (const b of pq.rows("input_ids")) out.push(...(b as number[][]));
  }
  return out;
}

async function pretokenize(cfg: Record<string, unknown>) {
  return await new PretokenizeRunner(pretokenizeConfigFromDict(cfg), { tokenizer: tok }).run();
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

Deno.test("pretokenize: the packer restarts at each datasets.map batch and num_proc part, as SAELens's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Byte tokens: abcde = 97..101, fgh = 102..104, ijklmn = 105..110, op = 111,112, qrstu = 113..117.
    const data = await jsonl(dir, ["abcde", "fgh", "ijklmn", "op", "qrstu"]);
    const base = {
      tokenizer_name: MODEL,
      dataset_path: data,
      context_size: 4,
      begin_batch_token: null,
      sequence_separator_token: null,
      shuffle: false,
    };
    // num_proc 2 splits 5 documents into [0, 1, 2] and [3, 4]; batches of 2 within each part:
    // {abcde fgh} {ijklmn} {op qrstu}; each batch's last partial row is dropped.
    const a = await pretokenize({
      ...base,
      save_path: join(dir, "a"),
      num_proc: 2,
      pretokenize_batch_size: 2,
      hf_num_shards: 3,
    });
    assertEquals(a.docs, 5);
    assertEquals(a.files, [
      "data/train-00000-of-00003.parquet",
      "data/train-00001-of-00003.parquet",
      "data/train-00002-of-00003.parquet",
    ]);
    assertEquals(await parquetRows(a.path, a.files), [
      range(97, 101),
      range(101, 105),
      range(105, 109),
      range(111, 115),
    ]);
    // One batch, one process: the documents run on across rows.
    const b = await pretokenize({
      ...base,
      save_path: join(dir, "b"),
      num_proc: 1,
      pretokenize_batch_size: null,
    });
    assertEquals(
      await parquetRows(b.path, b.files),
      [97, 101, 105, 109, 113].map((s) => range(s, s + 4)),
    );
    // The default special tokens: BOS (256) begins every row and separates documents.
    const c = await pretokenize({
      ...base,
      begin_batch_token: "bos",
      sequence_separator_token: "bos",
      save_path: join(dir, "c"),
      num_proc: 1,
    });
    assertEquals((await parquetRows(c.path, c.files)).slice(0, 3), [
      [256, 97, 98, 99],
      [256, 100, 101, 256],
      [256, 102, 103, 104],
    ]);
    const meta = JSON.parse(await Deno.readTextFile(join(c.path, SAE_LENS_METADATA_FILE)));
    assertEquals(meta.tokenizer_name, MODEL);
    assertEquals(meta.context_size, 4);
    assertEquals(meta.begin_batch_token, "bos");
    assertEquals(meta.begin_sequence_token, null);
    assertEquals(meta.sequence_separator_token, "bos");
    assertEquals(meta.shuffled, false);
    for (
      const k of [
        "sae_lens_version",
        "original_dataset",
        "original_dataset_name",
        "original_split",
        "original_data_files",
        "original_column_name",
        "seed",
        "disable_concat_sequences",
      ]
    ) assert(k in meta, k);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretokenize: the source stage reads the folder into exactly the live token blocks; shuffling permutes rows", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rng = new Mulberry32(9);
    const words = ["the", "king", "and", "queen", "of", "rome", "shall", "speak"];
    const texts = Array.from(
      { length: 150 },
      () => Array.from({ length: 3 + rng.nextInt(25) }, () => words[rng.nextInt(8)]).join(" "),
    );
    const data = await jsonl(dir, texts);
    const out = join(dir, "pretok");
    const r = await pretokenize({
      tokenizer_name: MODEL,
      dataset_path: data,
      context_size: 32,
      shuffle: false,
      num_proc: 1,
      pretokenize_batch_size: null,
      hf_num_shards: 4,
      save_path: out,
    });
    assertEquals(r.files.length, 4);
    const info = await openDataset({ datasetPath: out });
    assertEquals(info.kind, "tokens");
    assertEquals(info.column, "input_ids");
    assertEquals(info.shards.map((s) => s.name), r.files);

    const blocks = async (stream: ReadableStream<{ tokens: Int32Array }>, n: number) => {
      const got: Int32Array[] = [];
      for await (const b of stream) {
        got.push(b.tokens);
        if (got.length === n) break;
      }
      return got;
    };
    const nBlocks = Math.floor(r.rows / 8);
    assert(nBlocks >= 10, `only ${nBlocks} blocks`);
    const live = await blocks(
      source({ datasetPath: data }).pipeThrough(tokenize({
        contextSize: 32,
        blockSize: 8,
        encode: encoderFor(tok),
        beginBatchTokenId: tok.bosTokenId,
        sequenceSeparatorTokenId: tok.bosTokenId,
      })),
      nBlocks,
    );
    const fromFolder = await blocks(
      source({ datasetPath: out }).pipeThrough(tokenize({ contextSize: 32, blockSize: 8 })),
      nBlocks,
    );
    assertEquals(fromFolder.length, nBlocks);
    for (let i = 0; i < nBlocks; i++) assertEquals(fromFolder[i], live[i], `block ${i}`);
    // The live first epoch has exactly the pretokenized rows.
    let liveRows = 0;
    for await (
      const b of source({ datasetPath: data, repeat: false }).pipeThrough(tokenize({
        contextSize: 32,
        blockSize: 1,
        encode: encoderFor(tok),
        beginBatchTokenId: tok.bosTokenId,
        sequenceSeparatorTokenId: tok.bosTokenId,
      }))
    ) liveRows += b.nSeq;
    assertEquals(liveRows, r.rows);

    // Shuffled with a seed: the same rows in another, reproducible order.
    const s1 = await pretokenize({
      tokenizer_name: MODEL,
      dataset_path: data,
      context_size: 32,
      num_proc: 1,
      seed: 5,
      save_path: join(dir, "s1"),
    });
    const s2 = await runPretokenizeCommand([
      await writeYaml(dir, { tokenizer_name: MODEL, dataset_path: data, context_size: 32 }),
      "--num_proc",
      "1",
      "--seed=5",
      "--save_path",
      join(dir, "s2"),
    ], { tokenizer: tok, quiet: true });
    const plain = (await parquetRows(out, r.files)).map((x) => x.join());
    const mixed = (await parquetRows(s1.path, s1.files)).map((x) => x.join());
    assertEquals([...mixed].sort(), [...plain].sort());
    assert(mixed.some((x, i) => x !== plain[i]), "shuffle changed nothing");
    assertEquals((await parquetRows(s2.path, s2.files)).map((x) => x.join()), mixed);
    assertEquals(s1.files.length, 64);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function writeYaml(dir: string, obj: Record<string, unknown>): Promise<string> {
  const path = join(dir, "pretok.yaml");
  await Deno.writeTextFile(
    path,
    Object.entries(obj).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n",
  );
  return path;
}

Deno.test("pretokenize: bad input is refused before anything is written; a failed run keeps the old folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await jsonl(dir, ["abc def", "ghi"]);
    assertThrows(
      () => pretokenizeConfigFromDict({ dataset_path: data }),
      ConfigError,
      /save_path is not set/,
    );
    assertThrows(
      () => pretokenizeConfigFromDict({ dataset_path: data, save_path: "x", hf_repo_id: "a/b" }),
      ConfigError,
      /hf_repo_id/,
    );
    assertThrows(
      () => pretokenizeConfigFromDict({ dataset_path: data, save_path: "x", streaming: true }),
      ConfigError,
      /num_proc must be 1 when streaming/,
    );
    const out = join(dir, "out");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "keep.txt"), "old");
    await assertRejects(
      () => pretokenize({ dataset_path: data, save_path: out, column_name: "problem" }),
      PipelineError,
      /column_name is "problem", .* "text"/,
    );
    // Too short for one row: nothing written, the old folder kept as it was.
    await assertRejects(
      () => pretokenize({ dataset_path: data, save_path: out, context_size: 64 }),
      PipelineError,
      /no sequence of context_size = 64 tokens/,
    );
    assertEquals(await Deno.readTextFile(join(out, "keep.txt")), "old");
    // Already tokenized input is refused.
    const tokenized = await pretokenize({
      dataset_path: data,
      save_path: join(dir, "tok"),
      context_size: 4,
      num_proc: 1,
    });
    await assertRejects(
      () => pretokenize({ dataset_path: tokenized.path, save_path: join(dir, "again") }),
      PipelineError,
      /already tokenized/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
