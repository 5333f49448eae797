/**
 * `PretokenizeRunner` (SAELens §1.11) and the `pretokenize` command: tokenizes a text dataset
 * and packs it into rows of `context_size` tokens exactly as SAELens's pretokenize runner does,
 * then writes it as a Parquet dataset in the layout `push_to_hub` uploads —
 * `save_path/data/{split}-0000i-of-0000N.parquet` (one `input_ids` column, `list<int32>`, with
 * the `huggingface` features metadata) — and SAELens's `sae_lens.json` metadata beside it, so
 * the folder is read by the source stage (a pretokenized dataset: one row per sequence) and can
 * be uploaded to a hub dataset repo as it is.
 *
 * Packing (SAELens `pretokenize_dataset`): each document is encoded with the tokenizer's own
 * special tokens (`tokenizer.encode`, `add_special_tokens` on) and the documents go through
 * `concat_and_batch_sequences` with `begin_batch_token`, `begin_sequence_token`,
 * `sequence_separator_token` (defaults "bos", null, "bos") and `disable_concat_sequences`
 * ({@link TokenizeCore}). SAELens runs that per `datasets.map` batch, so the packer starts
 * afresh — dropping its partial row — at every `pretokenize_batch_size` documents, and, with
 * `num_proc` > 1 (not streaming), also at each of the `num_proc` contiguous parts `map` splits
 * the dataset into (saeflow counts the documents first to find them). With
 * `pretokenize_batch_size: null` and `num_proc: 1` (or `streaming: true`) the rows are exactly
 * the sequences the training store packs live from the same text with the same tokens (for
 * tokenizers that add no BOS of their own, like GPT-2's).
 *
 * Differences from SAELens, on purpose: the ids are written as int32 (SAELens's come from torch
 * as int64; readers widen either); `shuffle` uses saeflow's seeded Fisher–Yates (numpy's
 * permutation is not reproduced), and `seed: null` draws a random seed (recorded as null, as
 * SAELens records it); the output is Parquet in `save_path` (SAELens `save_to_disk` writes Arrow
 * there and Parquet only on the hub); `hf_num_shards` sets the number of files.
 *
 * Memory: the packed rows go to a temporary file first (the number of files and the shuffle need
 * the row count), then each Parquet file is written row group by row group; the folder replaces
 * `save_path` as a whole when complete (`io/atomic.ts`).
 * @module
 */

import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import type { HubOptions } from "../hub/env.ts";
import { loadTokenizer, loadTokenizerFromHub, type Tokenizer } from "../hub/tokenizer.ts";
import { writeFolderAtomic } from "../io/atomic.ts";
import { pretokenizeConfigFromDict, type PretokenizeRunnerConfig } from "./pretokenize_config.ts";
import { loadConfigFile } from "../config/load.ts";
import { Mulberry32, randomPermutation } from "../util/rng.ts";
import { openDataset, source } from "../stages/source.ts";
import { TokenizeCore } from "../stages/tokenize.ts";
import type { DocumentBatch } from "../stages/types.ts";
import { join } from "../util/path.ts";
import { SAE_LENS_VERSION, SAEFLOW_VERSION } from "../util/version.ts";
import { parseCommandArgs } from "./cache_activations.ts";
import { PipelineError } from "./errors.ts";
import { resolveSpecialToken } from "./special_tokens.ts";

/** SAELens's metadata file of a pretokenized dataset. */
export const SAE_LENS_METADATA_FILE = "sae_lens.json";

/** Options of {@link PretokenizeRunner}. */
export interface PretokenizeOptions {
  /** Use this tokenizer instead of loading `tokenizer_name`. */
  tokenizer?: Tokenizer;
  /** Hub settings (tokenizer and hub datasets). */
  hub?: HubOptions;
  /** Abort to stop; nothing is written. */
  signal?: AbortSignal;
  /** Progress: documents read and rows packed, then rows written. */
  onProgress?: (p: { phase: "tokenize" | "write"; docs: number; rows: number }) => void;
}

/** What {@link PretokenizeRunner.run} returns. */
export interface PretokenizeResult {
  /** The folder written (`save_path`). */
  path: string;
  /** Documents read. */
  docs: number;
  /** Rows (sequences of `context_size` tokens) written. */
  rows: number;
  /** The Parquet files, relative to `path`, in order. */
  files: string[];
}

/**
 * Where `datasets.map(batched=True, batch_size, num_proc)` batches start, as a function that
 * says whether document `i` (0-based) opens a new batch: every `batchSize` documents within each
 * of `numProc` contiguous parts of `n` documents (`Dataset.shard(contiguous=True)`).
 *
 * @example
 * ```ts
 * import { mapBatchStarts } from "./pretokenize.ts";
 * // 10 documents, 3 processes (parts of 4, 3, 3), batches of 2
 * const starts = Array.from({ length: 10 }, (_, i) => i).filter(mapBatchStarts(10, 3, 2));
 * if (starts.join() !== "0,2,4,6,7,9") throw new Error(starts.join());
 * ```
 */
export function mapBatchStarts(
  n: number,
  numProc: number,
  batchSize: number | null,
): (i: number) => boolean {
  const p = Math.max(1, Math.min(numProc, n));
  const div = Math.floor(n / p), mod = n % p;
  const partStarts: number[] = [];
  for (let r = 0; r < p; r++) partStarts.push(div * r + Math.min(r, mod));
  partStarts.push(n);
  return (i: number) => {
    let lo = 0, hi = p - 1; // the part holding document i: the last start <= i
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (partStarts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    const off = i - partStarts[lo];
    return batchSize === null ? off === 0 : off % batchSize === 0;
  };
}

/** `Dataset.shard(num_shards, index, contiguous=True)`'s row range. */
function contiguousShard(n: number, shards: number, index: number): [number, number] {
  const div = Math.floor(n / shards), mod = n % shards;
  const start = div * index + Math.min(index, mod);
  return [start, start + div + (index < mod ? 1 : 0)];
}

/** A hyparquet writer that streams the file to disk (1 MB chunks) instead of keeping it. */
class FileByteWriter extends ByteWriter {
  readonly #file: Deno.FsFile;
  constructor(file: Deno.FsFile) {
    super(1 << 20);
    this.#file = file;
  }
  #drain(): void {
    const chunk = new Uint8Array(this.buffer, 0, this.index);
    let at = 0;
    while (at < chunk.length) at += this.#file.writeSync(chunk.subarray(at));
    this.index = 0;
  }
  override ensure(size: number): void {
    if (this.index > 1 << 20) this.#drain();
    super.ensure(size);
  }
  override finish(): void {
    this.#drain();
  }
  override getBuffer(): ArrayBuffer {
    throw new PipelineError("FileByteWriter: the bytes went to the file");
  }
}

/** The runner (see the module doc). */
export class PretokenizeRunner {
  /** The config. */
  readonly cfg: PretokenizeRunnerConfig;
  /** The options given. */
  readonly options: PretokenizeOptions;

  /** Keeps the config; nothing is read before {@link run}. */
  constructor(cfg: PretokenizeRunnerConfig, options: PretokenizeOptions = {}) {
    this.cfg = cfg;
    this.options = options;
  }

  /** Tokenizes, packs and writes the dataset (see the module doc). */
  async run(): Promise<PretokenizeResult> {
    const cfg = this.cfg;
    const savePath = cfg.savePath!;
    const srcOptions = {
      datasetPath: cfg.datasetPath,
      split: cfg.split,
      revision: cfg.datasetRevision ?? undefined,
      hub: this.options.hub,
      textSampleBy: cfg.datasetTextSampleBy,
    };
    const info = await openDataset(srcOptions);
    if (info.commit) srcOptions.revision = info.commit;
    if (info.kind !== "text") {
      throw new PipelineError(
        `${info.describe} is already tokenized (column ${info.column}); expected a text dataset`,
      );
    }
    if (info.column !== cfg.columnName) {
      throw new PipelineError(
        `column_name is ${JSON.stringify(cfg.columnName)}, but saeflow reads the column ` +
          `SAELens's store picks, ${JSON.stringify(info.column)}, in ${info.describe} (columns ` +
          `${JSON.stringify(info.columns)}); set column_name to ${JSON.stringify(info.column)}`,
      );
    }
    const tok = this.options.tokenizer ?? await this.#tokenizer();
    const ids = {
      beginBatchTokenId: resolveSpecialToken(cfg.beginBatchToken, tok, "begin_batch_token"),
      beginSequenceTokenId: resolveSpecialToken(
        cfg.beginSequenceToken,
        tok,
        "begin_sequence_token",
      ),
      sequenceSeparatorTokenId: resolveSpecialToken(
        cfg.sequenceSeparatorToken,
        tok,
        "sequence_separator_token",
      ),
    };
    const docs = () => source({ ...srcOptions, repeat: false, signal: this.options.signal });

    // Where datasets.map's batches start (num_proc parts need the document count).
    let opensBatch: (i: number) => boolean;
    if (!cfg.streaming && cfg.numProc > 1) {
      let n = 0;
      for await (const b of docs()) n += b.docs.length;
      opensBatch = mapBatchStarts(n, cfg.numProc, cfg.pretokenizeBatchSize);
    } else {
      const B = cfg.pretokenizeBatchSize;
      opensBatch = (i) => B === null ? i === 0 : i % B === 0;
    }

    const ctx = cfg.contextSize;
    const result: PretokenizeResult = { path: savePath, docs: 0, rows: 0, files: [] };
    await writeFolderAtomic(savePath, async (w) => {
      const rowsPath = join(w.dir, ".rows.tmp");
      const rowsFile = await Deno.open(rowsPath, {
        read: true,
        write: true,
        create: true,
        truncate: true,
      });
      try {
        // 1. Pack every document into rows, appended to the temporary file.
        const chunkRows = Math.max(1, Math.floor((1 << 22) / ctx));
        let pending = new Int32Array(chunkRows * ctx), nPending = 0;
        const flush = async () => {
          const bytes = new Uint8Array(pending.buffer, 0, nPending * ctx * 4);
          let at = 0;
          while (at < bytes.length) at += await rowsFile.write(bytes.subarray(at));
          nPending = 0;
        };
        let core: TokenizeCore | null = null;
        let d = 0;
        for await (const batch of docs()) {
          for (let j = 0; j < batch.docs.length; j++, d++) {
            if (opensBatch(d) || !core) {
              core = new TokenizeCore({
                contextSize: ctx,
                blockSize: 1,
                encode: (t) => tok.encodeWithSpecialTokens(t),
                disableConcatSequences: cfg.disableConcatSequences,
                ...ids,
              });
            }
            const one: DocumentBatch = {
              docs: [batch.docs[j]],
              start: { ...batch.start, row: batch.start.row + j },
              cursor: { ...batch.start, row: batch.start.row + j + 1 },
            };
            for (const block of core.push(one)) {
              pending.set(block.tokens, nPending * ctx);
              nPending++;
              result.rows++;
              if (nPending === chunkRows) await flush();
            }
          }
          this.options.onProgress?.({ phase: "tokenize", docs: d, rows: result.rows });
        }
        await flush();
        pending = new Int32Array(0);
        result.docs = d;
        const R = result.rows;
        if (R === 0) {
          throw new PipelineError(
            `${info.describe}: no sequence of context_size = ${ctx} tokens could be packed ` +
              `from ${d} documents; nothing was written`,
          );
        }

        // 2. The Parquet files (rows permuted when shuffling).
        let perm: Uint32Array | null = null;
        if (cfg.shuffle) {
          const seed = cfg.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
          perm = randomPermutation(R, new Mulberry32(seed));
        }
        const nFiles = Math.min(cfg.hfNumShards, R);
        const groupRows = Math.max(1, Math.min(10_000, Math.floor((1 << 20) / ctx)));
        const readRows = async (first: number, n: number): Promise<Int32Array> => {
          const out = new Int32Array(n * ctx);
          const bytes = new Uint8Array(out.buffer);
          const readAt = async (row: number, dst: Uint8Array) => {
            await rowsFile.seek(row * ctx * 4, Deno.SeekMode.Start);
            let at = 0;
            while (at < dst.length) {
              const k = await rowsFile.read(dst.subarray(at));
              if (k === null) throw new PipelineError(`${rowsPath} ended early`);
              at += k;
            }
          };
          if (!perm) await readAt(first, bytes);
          else {
            for (let i = 0; i < n; i++) {
              await readAt(perm[first + i], bytes.subarray(i * ctx * 4, (i + 1) * ctx * 4));
            }
          }
          return out;
        };
        const pad = (n: number) => String(n).padStart(5, "0");
        const features = {
          input_ids: { feature: { dtype: "int32", _type: "Value" }, _type: "Sequence" },
        };
        await Deno.mkdir(join(w.dir, "data"), { recursive: true });
        let written = 0;
        for (let i = 0; i < nFiles; i++) {
          this.options.signal?.throwIfAborted();
          const name = `data/${cfg.split}-${pad(i)}-of-${pad(nFiles)}.parquet`;
          const [s, e] = contiguousShard(R, nFiles, i);
          const file = await Deno.open(join(w.dir, name), {
            write: true,
            create: true,
            truncate: true,
          });
          try {
            const pw = new ParquetWriter({
              writer: new FileByteWriter(file),
              schema: [
                { name: "schema", num_children: 1 },
                {
                  name: "input_ids",
                  repetition_type: "OPTIONAL",
                  converted_type: "LIST",
                  num_children: 1,
                },
                { name: "list", repetition_type: "REPEATED", num_children: 1 },
                { name: "element", type: "INT32", repetition_type: "OPTIONAL" },
              ],
              kvMetadata: [{ key: "huggingface", value: JSON.stringify({ info: { features } }) }],
              createdBy: `saeflow ${SAEFLOW_VERSION} (hyparquet-writer)`,
            });
            for (let g = s; g < e; g += groupRows) {
              const n = Math.min(groupRows, e - g);
              const rows = await readRows(g, n);
              const data = Array.from(
                { length: n },
                (_, r) => Array.from(rows.subarray(r * ctx, (r + 1) * ctx)),
              );
              pw.write({ columnData: [{ name: "input_ids", data }], rowGroupSize: n });
              written += n;
              this.options.onProgress?.({ phase: "write", docs: d, rows: written });
            }
            pw.finish();
            await file.sync();
          } finally {
            file.close();
          }
          result.files.push(name);
        }

        // 3. SAELens's metadata (PretokenizedDatasetMetadata) plus saeflow's version.
        await w.writeJson(SAE_LENS_METADATA_FILE, {
          sae_lens_version: SAE_LENS_VERSION,
          tokenizer_name: cfg.tokenizerName,
          original_dataset: cfg.datasetPath,
          original_dataset_name: cfg.datasetName,
          original_split: cfg.split,
          original_data_files: cfg.dataFiles,
          original_column_name: cfg.columnName,
          context_size: ctx,
          shuffled: cfg.shuffle,
          seed: cfg.seed,
          begin_batch_token: cfg.beginBatchToken,
          begin_sequence_token: cfg.beginSequenceToken,
          sequence_separator_token: cfg.sequenceSeparatorToken,
          disable_concat_sequences: cfg.disableConcatSequences,
          use_chat_formatting: cfg.useChatFormatting,
          saeflow_version: SAEFLOW_VERSION,
        });
      } finally {
        rowsFile.close();
        await Deno.remove(rowsPath).catch(() => {});
      }
    });
    return result;
  }

  async #tokenizer(): Promise<Tokenizer> {
    const name = this.cfg.tokenizerName;
    let local = false;
    try {
      local = (await Deno.stat(name)).isDirectory;
    } catch { /* not a local folder */ }
    return local ? await loadTokenizer(name) : await loadTokenizerFromHub(name, this.options.hub);
  }
}

/** One line of usage of the `pretokenize` command. */
export const PRETOKENIZE_USAGE =
  "pretokenize <config.yaml|json> [--key value ...]   tokenize and pack a text dataset into Parquet with sae_lens.json (PretokenizeRunnerConfig keys)";

/** The `pretokenize` command: `pretokenize config.yaml [--key value ...]`. */
export async function runPretokenizeCommand(
  args: readonly string[],
  options: Omit<PretokenizeOptions, "onProgress" | "signal"> & { quiet?: boolean } = {},
): Promise<PretokenizeResult> {
  const { path, overrides } = parseCommandArgs(args, "pretokenize");
  const dict = await loadConfigFile(path);
  const cfg = pretokenizeConfigFromDict({ ...dict, ...overrides }, { where: path });
  const enc = new TextEncoder();
  let last = 0;
  const result = await new PretokenizeRunner(cfg, {
    ...options,
    onProgress: options.quiet ? undefined : (p) => {
      const now = Date.now();
      if (now - last < 500) return;
      last = now;
      Deno.stderr.writeSync(enc.encode(`\r${p.phase}: ${p.docs} documents, ${p.rows} rows`));
    },
  }).run();
  if (!options.quiet) {
    Deno.stderr.writeSync(
      enc.encode(
        `\rpretokenized ${result.docs} documents into ${result.rows} rows of ` +
          `${cfg.contextSize} tokens in ${result.files.length} file(s) at ${result.path}\n`,
      ),
    );
  }
  return result;
}
