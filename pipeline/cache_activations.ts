/**
 * `CacheActivationsRunner` (SAELens §1.10, §2.6) and the `cache` command: runs the model over
 * the dataset with the streaming stages (`source → tokenize → hook`, exactly as training does)
 * and writes the activations at one or several hooks as SAELens's cached-activations dataset —
 * a Hugging Face `save_to_disk` folder (`data-0000i-of-0000N.arrow` Arrow IPC streams,
 * `dataset_info.json`, `state.json`), one row per sequence: a `[sliced_context_size, d_in]`
 * float32 `Array2D` column per hook (named by the hook) and `token_ids` `[sliced_context_size]`
 * int32. Beside them: SAELens's `cache_activations_runner_cfg.json` (its config, as SAELens
 * uploads it with a cache) and saeflow's `saeflow_cache.json` (every setting that decides the
 * activations, the resolved special-token ids, the files and row counts) that training checks.
 *
 * **Shards.** Like SAELens, the cache is made of `n_buffers` shards of `n_seq_in_buffer`
 * sequences each (`buffer_size_gb` worth); each LLM batch (`model_batch_size` sequences) is one
 * Arrow record batch, written to the shard file as it comes, so memory stays at one LLM batch.
 *
 * **Resume.** Everything is built in a sibling work folder `.<name>.cache-partial` (its settings
 * in `.<name>.cache-partial.json`); a shard is
 * complete when its file is renamed into place and its marker (rows, bytes, the tokenizer
 * cursor after it) is written. An interrupted run (`signal`, Ctrl-C, a crash) rerun with the same
 * config continues after the last complete shard; a different config is refused. When every
 * file is written the work folder is renamed to `new_cached_activations_path` in one step, so
 * the cache folder appears complete or not at all. The target must be absent or empty (as in
 * SAELens).
 *
 * **Shuffling.** `shuffle` (default true) stores the sequences in a seeded random order over the
 * whole cache (memory: one LLM batch; the rows are gathered from the unshuffled shards by
 * random access). SAELens 6.49's folder on disk is *not* shuffled (only the dataset it returns
 * and pushes to the hub is, via an index mapping — a bug PR #612 fixes); saeflow writes what
 * PR #612 writes. Its permutation is saeflow's seeded Fisher–Yates, not numpy's, so the order
 * differs from Python's for the same seed. `shuffle_across_sequences` (PR #612) also permutes
 * the token positions within each shard across its sequences (memory: one shard). Training
 * then reads rows in stored order, so **a shuffled cache gives different batches than live
 * harvesting**; a cache made with `shuffle: false`, `shuffle_across_sequences: false`, the run's
 * tokenization options and `model_batch_size = store_batch_size_prompts` gives exactly the
 * batches live harvesting gives with the same seed (tested bit for bit), as long as training
 * reads fewer rows than the cache holds: at its end the cache wraps to row 0 (SAELens), where
 * the live store would start a new dataset epoch. Another `model_batch_size` stores the same
 * sequences unless a dataset epoch ends inside the cache (the live store then drops the block
 * it was filling, whose size is the batch size); the forward's values did not depend on the
 * batch size on the adapters tested (llvmpipe, Vulkan and GL), but no kernel promises that.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import { readAll, type Tensor } from "../gpu/tensor.ts";
import type { HubOptions } from "../hub/env.ts";
import { writeJsonAtomic, writeTextFileAtomic } from "../io/atomic.ts";
import { ArrowStreamFile, ArrowStreamWriter } from "../io/arrow_ipc.ts";
import {
  arrowColumnFor,
  datasetInfoJson,
  datasetStateJson,
  hfDataFileName,
  type HfFeature,
  hfSchemaMetadata,
  openHfDataset,
} from "../io/hf_dataset.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import {
  type CacheRunnerConfig,
  cacheRunnerConfigFromDict,
  cacheRunnerConfigToDict,
  cacheRunnerSettings,
  type CacheSizes,
  cacheSizes,
  resolveCacheContextSize,
} from "./cache_config.ts";
import { loadConfigFile } from "../config/load.ts";
import { seqposSliceLength } from "../config/seqpos.ts";
import { Mulberry32, randomPermutation } from "../util/rng.ts";
import {
  cachedActivations,
  type CachedActivationsOptions,
  type CachedColumn,
  checkCachedColumns,
} from "../stages/cached_activations.ts";
import { checkHooks, harvest } from "../stages/hook.ts";
import { openDataset, source } from "../stages/source.ts";
import { encoderFor, tokenize, type TokenizeOptions } from "../stages/tokenize.ts";
import { tokenizeInWorker } from "../stages/tokenize_worker.ts";
import {
  type ActivationBlock,
  startCursor,
  type TokenBlock,
  type TokenCursor,
} from "../stages/types.ts";
import { basename, dirname, join } from "../util/path.ts";
import { SAEFLOW_VERSION } from "../util/version.ts";
import type { PipelineConfig } from "./config.ts";
import { parseOverrideValue } from "./config.ts";
import { PipelineError } from "./errors.ts";
import { resolveSpecialToken } from "./special_tokens.ts";

/** SAELens's config file name for a cache (it uploads it beside a pushed cache). */
export const CACHE_RUNNER_CFG_FILE = "cache_activations_runner_cfg.json";
/** saeflow's cache metadata file (what training checks a cache against). */
export const SAEFLOW_CACHE_FILE = "saeflow_cache.json";
/** The token-id column. */
export const TOKEN_IDS_COLUMN = "token_ids";

/** Options of {@link CacheActivationsRunner}. */
export interface CacheRunnerOptions {
  /** The device (default `getGpu()`). */
  gpu?: Gpu;
  /** Use this model instead of loading `model_name`. */
  model?: HookedTransformer;
  /** Hub settings (model and hub datasets). */
  hub?: HubOptions;
  /** Abort to stop after the current LLM batch; completed shards are kept for a rerun. */
  signal?: AbortSignal;
  /** Tokenize in a Worker (default true). */
  worker?: boolean;
  /** Progress reports (one per LLM batch and per shuffled shard). */
  onProgress?: (p: CacheProgress) => void;
}

/** A progress report. */
export interface CacheProgress {
  /** `"harvest"` (running the model), `"shuffle"` (writing the shuffled files), `"done"`. */
  phase: "harvest" | "shuffle" | "done";
  /** Sequences written in this phase so far. */
  rows: number;
  /** Sequences the phase writes in all. */
  totalRows: number;
}

/** What {@link CacheActivationsRunner.run} returns. */
export interface CacheRunResult {
  /** The cache folder. */
  path: string;
  /** Sequences (rows) in the cache. */
  rows: number;
  /** Its data files, in order. */
  files: string[];
  /** Shards found complete from an earlier, interrupted run. */
  resumedShards: number;
  /** True when the run stopped early (signal); rerun to continue. */
  interrupted: boolean;
}

/** `saeflow_cache.json`: what made the cache (see the module doc). */
export interface CacheMetadata {
  /** saeflow version that wrote it. */
  saeflow_version: string;
  /** Format version (1). */
  format: number;
  /** Every setting, snake_case (SAELens's keys, PR #612's, saeflow's). */
  settings: Record<string, unknown>;
  /** Positions per row (`sliced_context_size`). */
  sliced_context_size: number;
  /** Resolved token ids the packing used. */
  token_ids: { begin_batch_token_id: number | null; sequence_separator_token_id: number | null };
  /** Rows (sequences) in all. */
  rows: number;
  /** The data files. */
  files: { filename: string; rows: number; bytes: number }[];
}

interface ShardMarker {
  rows: number;
  bytes: number;
  cursor: {
    doc: TokenCursor["doc"];
    carry: number[];
    skipRows: number;
    docsRead: number;
    sequences: number;
  };
}

const pad5 = (n: number) => String(n).padStart(5, "0");

/** The work folder of a cache being built: `<parent>/.<name>.cache-partial`. */
export function cacheWorkDir(path: string): string {
  const p = path.replace(/[/\\]+$/, "");
  return join(dirname(p), `.${basename(p)}.cache-partial`);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new PipelineError(`${path} is unreadable or not JSON (${(err as Error).message})`);
  }
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} (partial: ${JSON.stringify(a[k])}, now: ${JSON.stringify(b[k])})`);
}

/** Runs one sequence through the model and returns each hook's row width. */
async function hookWidths(
  model: HookedTransformer,
  hooks: readonly string[],
  contextSize: number,
): Promise<Map<string, number>> {
  if (contextSize > model.cfg.nCtx) {
    throw new PipelineError(
      `context_size is ${contextSize}, but ${model.cfg.modelName} handles at most ` +
        `${model.cfg.nCtx} tokens`,
    );
  }
  const out = await harvest(model, {
    tokens: new Int32Array(contextSize),
    nSeq: 1,
    contextSize,
    cursor: startCursor(),
  }, { hooks: hooks.map((hookName) => ({ hookName })) });
  const widths = new Map<string, number>();
  for (const [k, t] of out.acts) {
    widths.set(k, t.shape[1]);
    t.dispose();
  }
  return widths;
}

/** The runner (see the module doc). */
export class CacheActivationsRunner {
  /** The config (its `contextSize` is resolved by {@link run} when it was -1). */
  readonly cfg: CacheRunnerConfig;
  /** The options given. */
  readonly options: CacheRunnerOptions;

  /** Keeps the config; nothing is loaded before {@link run}. */
  constructor(cfg: CacheRunnerConfig, options: CacheRunnerOptions = {}) {
    this.cfg = cfg;
    this.options = options;
  }

  /** Builds (or finishes) the cache; see the module doc. */
  async run(): Promise<CacheRunResult> {
    const cfg = this.cfg;
    const target = cfg.newCachedActivationsPath.replace(/[/\\]+$/, "");
    const st = await statOrNull(target);
    if (st && !st.isDirectory) {
      throw new PipelineError(
        `new_cached_activations_path ${target} exists and is not a folder; choose another path`,
      );
    }
    if (st) {
      for await (const e of Deno.readDir(target)) {
        throw new PipelineError(
          `Activations directory (${target}) is not empty (it holds ${e.name}). Please delete ` +
            "it or specify a different path (nothing was written).",
        );
      }
    }

    // The dataset first: a missing file or context_size fails before the model loads.
    const sourceOptions = {
      datasetPath: cfg.datasetPath,
      split: cfg.datasetSplit,
      revision: cfg.datasetRevision ?? undefined,
      hub: this.options.hub,
      textSampleBy: cfg.datasetTextSampleBy,
    };
    const info = await openDataset(sourceOptions);
    if (info.commit) sourceOptions.revision = info.commit;
    resolveCacheContextSize(cfg, info.kind === "tokens" ? info.firstRowLength : undefined);
    const sizes = cacheSizes(cfg);

    const gpu = this.options.gpu ?? await getGpu();
    const model = this.options.model ??
      await HookedTransformer.fromPretrainedNoProcessing(cfg.modelName, {
        ...cfg.modelFromPretrainedKwargs,
        ...this.options.hub,
        gpu,
      });
    const tok = model.tokenizer;
    const hooks = cfg.hookNames.map((hookName) => ({ hookName }));
    checkHooks(model, hooks);
    const widths = await hookWidths(model, cfg.hookNames, cfg.contextSize);
    for (const h of cfg.hookNames) {
      if (widths.get(h) !== cfg.dIn[h]) {
        throw new PipelineError(
          `d_in is ${cfg.dIn[h]}, but ${h} of ${cfg.modelName} has width ${widths.get(h)}`,
        );
      }
    }
    const tokenIds = {
      begin_batch_token_id: cfg.prependBos ? tok?.bosTokenId ?? null : null,
      sequence_separator_token_id: resolveSpecialToken(
        cfg.sequenceSeparatorToken,
        tok,
        "sequence_separator_token",
      ),
    };

    // The work folder: fresh, or a partial run of the same settings.
    const work = cacheWorkDir(target);
    const harvestDir = join(work, "harvest");
    const settings = cacheRunnerSettings(cfg);
    // The settings of the partial run sit beside the work folder (which holds only what the
    // cache folder will hold), and go only after the rename.
    const runFile = `${work}.json`;
    const previous = await readJson(runFile) as Record<string, unknown> | undefined;
    if (previous !== undefined) {
      const diff = diffKeys((previous?.settings ?? {}) as Record<string, unknown>, settings);
      if (diff.length > 0) {
        throw new PipelineError(
          `a partial cache made with other settings is in ${work}: ${diff.join("; ")}. Rerun ` +
            "with the same config to finish it, or delete that folder to start over",
        );
      }
    } else {
      if (await statOrNull(work)) await Deno.remove(work, { recursive: true });
      await Deno.mkdir(harvestDir, { recursive: true });
      await writeJsonAtomic(runFile, { settings, token_ids: tokenIds });
    }
    await Deno.mkdir(harvestDir, { recursive: true });

    const features = new Map<string, HfFeature>();
    for (const h of cfg.hookNames) {
      features.set(h, {
        type: "Array2D",
        shape: [sizes.slicedContextSize, cfg.dIn[h]],
        dtype: "float32",
      });
    }
    features.set(TOKEN_IDS_COLUMN, {
      type: "List",
      feature: { type: "Value", dtype: "int32" },
      length: sizes.slicedContextSize,
    });
    const finalNames = Array.from(
      { length: sizes.nBuffers },
      (_, i) => hfDataFileName(i, sizes.nBuffers),
    );
    const done = await Promise.all(finalNames.map((n) => statOrNull(join(work, n))));
    const allFinal = done.every((s) => s !== null);

    // Harvest.
    let resumedShards = 0;
    if (!allFinal) {
      const markers = await completeShards(harvestDir, sizes, (i) => join(work, finalNames[i]));
      resumedShards = markers.length;
      const result = await this.#harvest(
        model,
        { ...sourceOptions, start: undefined },
        tokenIds,
        sizes,
        features,
        harvestDir,
        markers,
      );
      if (result === "interrupted") {
        return {
          path: target,
          rows: 0,
          files: [],
          resumedShards,
          interrupted: true,
        };
      }
      // Final files.
      if (!cfg.shuffle && !cfg.shuffleAcrossSequences) {
        for (let i = 0; i < sizes.nBuffers; i++) {
          const dst = join(work, finalNames[i]);
          if (!(await statOrNull(dst))) {
            await Deno.rename(join(harvestDir, `shard_${pad5(i)}.arrow`), dst);
          }
        }
      } else {
        const r = await this.#shuffle(work, harvestDir, finalNames, sizes, features);
        if (r === "interrupted") {
          return { path: target, rows: 0, files: [], resumedShards, interrupted: true };
        }
      }
    }

    // Metadata (state.json last: the dataset is loadable only once it is there), then the folder.
    const files: CacheMetadata["files"] = [];
    for (const name of finalNames) {
      using f = await ArrowStreamFile.open(join(work, name));
      files.push({ filename: name, rows: f.numRows, bytes: f.byteLength });
    }
    const meta: CacheMetadata = {
      saeflow_version: SAEFLOW_VERSION,
      format: 1,
      settings,
      sliced_context_size: sizes.slicedContextSize,
      token_ids: tokenIds,
      rows: files.reduce((a, f) => a + f.rows, 0),
      files,
    };
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(meta))),
    );
    const fingerprint = [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    await writeTextFileAtomic(join(work, "dataset_info.json"), datasetInfoJson(features));
    await writeJsonAtomic(join(work, CACHE_RUNNER_CFG_FILE), cacheRunnerConfigToDict(cfg));
    await writeJsonAtomic(join(work, SAEFLOW_CACHE_FILE), meta);
    await writeTextFileAtomic(join(work, "state.json"), datasetStateJson(finalNames, fingerprint));
    await Deno.remove(harvestDir, { recursive: true }).catch(() => {});
    if (await statOrNull(target)) await Deno.remove(target); // empty (checked above)
    await Deno.rename(work, target);
    await Deno.remove(runFile).catch(() => {});
    this.options.onProgress?.({ phase: "done", rows: meta.rows, totalRows: meta.rows });
    return { path: target, rows: meta.rows, files: finalNames, resumedShards, interrupted: false };
  }

  async #harvest(
    model: HookedTransformer,
    sourceOptions: Parameters<typeof source>[0],
    tokenIds: CacheMetadata["token_ids"],
    sizes: CacheSizes,
    features: Map<string, HfFeature>,
    dir: string,
    markers: ShardMarker[],
  ): Promise<"done" | "interrupted"> {
    const cfg = this.cfg, tok = model.tokenizer;
    const S = sizes.nSeqInBuffer;
    if (markers.length >= sizes.nBuffers) return "done";
    const last = markers.at(-1)?.cursor;
    const cursor: TokenCursor = last
      ? { ...last, doc: { ...last.doc }, carry: Int32Array.from(last.carry) }
      : startCursor();
    const tokenizeOptions: Omit<TokenizeOptions, "encode"> = {
      contextSize: cfg.contextSize,
      blockSize: cfg.modelBatchSize,
      beginBatchTokenId: tokenIds.begin_batch_token_id,
      sequenceSeparatorTokenId: tokenIds.sequence_separator_token_id,
      disableConcatSequences: cfg.disableConcatSequences,
      start: cursor,
    };
    const src = { ...sourceOptions, start: cursor.doc, repeat: true };
    const blocks: ReadableStream<TokenBlock> = this.options.worker === false || !tok?.source
      ? source(src).pipeThrough(
        tokenize({ ...tokenizeOptions, encode: tok ? encoderFor(tok) : null }),
      )
      : tokenizeInWorker({ source: src, tokenize: tokenizeOptions, tokenizer: tok.source });
    const reader = blocks.getReader();
    const columns = [...features].map(([k, f]) => arrowColumnFor(k, f));
    const schemaMeta = hfSchemaMetadata(features);
    const hooks = cfg.hookNames.map((hookName) => ({ hookName }));
    let shard = markers.length;
    let writer: ArrowStreamWriter | null = null;
    const totalRows = sizes.nBuffers * S;
    try {
      while (shard < sizes.nBuffers) {
        if (this.options.signal?.aborted) return "interrupted";
        const r = await reader.read();
        if (r.done) throw new PipelineError("cache: the token stream ended unexpectedly");
        const block = r.value;
        const acts = await harvest(model, block, { hooks, seqposSlice: cfg.seqposSlice });
        let host: Float32Array[];
        try {
          host = (await readAll(cfg.hookNames.map((h) => acts.acts.get(h)!))) as Float32Array[];
        } finally {
          for (const t of acts.acts.values()) (t as Tensor).dispose();
        }
        const data: Record<string, Float32Array | Int32Array> = {};
        cfg.hookNames.forEach((h, i) => (data[h] = host[i]));
        data[TOKEN_IDS_COLUMN] = acts.tokenIds;
        const part = join(dir, `.shard_${pad5(shard)}.arrow.part`);
        writer ??= await ArrowStreamWriter.create(part, columns, schemaMeta);
        await writer.write(block.nSeq, data);
        this.options.onProgress?.({
          phase: "harvest",
          rows: shard * S + writer.rows,
          totalRows,
        });
        if (writer.rows >= S) {
          const bytes = await writer.close();
          writer = null;
          await Deno.rename(part, join(dir, `shard_${pad5(shard)}.arrow`));
          const c = block.cursor;
          const marker: ShardMarker = {
            rows: S,
            bytes,
            cursor: { ...c, carry: [...c.carry] },
          };
          await writeJsonAtomic(join(dir, `shard_${pad5(shard)}.json`), marker);
          shard++;
        }
      }
      return "done";
    } finally {
      await writer?.abort();
      await reader.cancel().catch(() => {});
    }
  }

  /** Writes the shuffled data files from the harvest shards (resumable per file). */
  async #shuffle(
    work: string,
    harvestDir: string,
    finalNames: string[],
    sizes: CacheSizes,
    features: Map<string, HfFeature>,
  ): Promise<"done" | "interrupted"> {
    const cfg = this.cfg;
    const S = sizes.nSeqInBuffer, N = sizes.nBuffers, T = sizes.slicedContextSize;
    const total = S * N;
    const rng = new Mulberry32(cfg.seed);
    const perm = new Uint32Array(total);
    if (cfg.shuffle) randomPermutation(total, rng, perm);
    else for (let i = 0; i < total; i++) perm[i] = i;
    const shards: ArrowStreamFile[] = [];
    const columns = [...features].map(([k, f]) => arrowColumnFor(k, f));
    const schemaMeta = hfSchemaMetadata(features);
    const chunk = cfg.modelBatchSize;
    try {
      for (let i = 0; i < N; i++) {
        shards.push(await ArrowStreamFile.open(join(harvestDir, `shard_${pad5(i)}.arrow`)));
      }
      for (let k = 0; k < N; k++) {
        // Every file draws its position permutation, so a resumed run draws the same ones.
        const posPerm = cfg.shuffleAcrossSequences ? randomPermutation(S * T, rng) : null;
        const dst = join(work, finalNames[k]);
        if (await statOrNull(dst)) continue;
        if (this.options.signal?.aborted) return "interrupted";
        const part = join(work, `.${finalNames[k]}.part`);
        const w = await ArrowStreamWriter.create(part, columns, schemaMeta);
        try {
          const gather = async (first: number, n: number) => {
            const data: Record<string, Float32Array | Int32Array> = {};
            for (const [name, f] of features) {
              const per = f.type === "Array2D" ? f.shape[0] * f.shape[1] : T;
              const out = f.type === "Array2D"
                ? new Float32Array(n * per)
                : new Int32Array(n * per);
              for (let j = 0; j < n; j++) {
                const g = perm[k * S + first + j];
                const src = shards[Math.floor(g / S)], row = g % S;
                const v = f.type === "Array2D"
                  ? await src.readArray2D(name, row, 1, f.shape)
                  : await src.readIntList(name, row, 1, T);
                out.set(v, j * per);
              }
              data[name] = out;
            }
            return data;
          };
          if (posPerm) {
            const all = await gather(0, S);
            const mixed: Record<string, Float32Array | Int32Array> = {};
            for (const [name, f] of features) {
              const d = f.type === "Array2D" ? f.shape[1] : 1;
              const src = all[name];
              const out = src instanceof Float32Array
                ? new Float32Array(src.length)
                : new Int32Array(src.length);
              for (let p = 0; p < S * T; p++) {
                out.set(src.subarray(posPerm[p] * d, posPerm[p] * d + d), p * d);
              }
              mixed[name] = out;
            }
            for (let first = 0; first < S; first += chunk) {
              const n = Math.min(chunk, S - first);
              const part: Record<string, Float32Array | Int32Array> = {};
              for (const [name, arr] of Object.entries(mixed)) {
                const per = arr.length / S;
                part[name] = arr.subarray(first * per, (first + n) * per);
              }
              await w.write(n, part);
            }
          } else {
            for (let first = 0; first < S; first += chunk) {
              const n = Math.min(chunk, S - first);
              await w.write(n, await gather(first, n));
            }
          }
          await w.close();
        } catch (err) {
          await w.abort();
          throw err;
        }
        await Deno.rename(part, dst);
        this.options.onProgress?.({ phase: "shuffle", rows: (k + 1) * S, totalRows: total });
      }
      return "done";
    } finally {
      for (const s of shards) s.close();
    }
  }
}

/**
 * Markers of the complete harvest shards 0, 1, … (a shard already moved to its final name
 * counts); files of later or partial shards are removed.
 */
async function completeShards(
  dir: string,
  sizes: CacheSizes,
  finalPath: (i: number) => string,
): Promise<ShardMarker[]> {
  const out: ShardMarker[] = [];
  for (let i = 0; i < sizes.nBuffers; i++) {
    const m = await readJson(join(dir, `shard_${pad5(i)}.json`)) as ShardMarker | undefined;
    const st = await statOrNull(join(dir, `shard_${pad5(i)}.arrow`)) ??
      await statOrNull(finalPath(i));
    if (!m || !st || st.size !== m.bytes || m.rows !== sizes.nSeqInBuffer) break;
    out.push(m);
  }
  for await (const e of Deno.readDir(dir)) {
    const m = /^shard_(\d+)\.(arrow|json)$/.exec(e.name);
    if ((m && Number(m[1]) >= out.length) || e.name.startsWith(".shard_")) {
      await Deno.remove(join(dir, e.name));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Training from a cache

/** Reads `saeflow_cache.json` of a cache folder (undefined for a cache SAELens made). */
export async function readCacheMetadata(dir: string): Promise<CacheMetadata | undefined> {
  const path = join(dir, SAEFLOW_CACHE_FILE);
  const m = await readJson(path);
  if (m === undefined) return undefined;
  const ok = typeof m === "object" && m !== null &&
    typeof (m as CacheMetadata).settings === "object" &&
    Number.isSafeInteger((m as CacheMetadata).rows);
  if (!ok) throw new PipelineError(`${path}: not saeflow cache metadata (settings, rows)`);
  return m as CacheMetadata;
}

/** A cache checked for a training run ({@link openCacheForTraining}). */
export interface TrainingCache {
  /** The cache folder. */
  dir: string;
  /** Rows (sequences) it holds. */
  rows: number;
  /** Columns by activation key. */
  columns: CachedColumn[];
  /** saeflow's metadata (undefined for a SAELens-made cache). */
  metadata?: CacheMetadata;
}

/**
 * Opens a checked cache and returns the stage's stream of activation blocks (see
 * `stages/cached_activations.ts`) and a `close` for the files (call it when the run ends; on
 * an error here the files are closed already).
 */
export async function cachedActivationStream(
  cache: TrainingCache,
  options: Omit<CachedActivationsOptions, "dataset" | "columns">,
): Promise<{ stream: ReadableStream<ActivationBlock>; close: () => void }> {
  const dataset = await openHfDataset(cache.dir);
  try {
    if (dataset.numRows !== cache.rows) {
      throw new PipelineError(`cached activations ${cache.dir} changed while the run started`);
    }
    const stream = cachedActivations({ ...options, dataset, columns: cache.columns });
    return { stream, close: () => dataset.close() };
  } catch (err) {
    dataset.close();
    throw err;
  }
}

/** What a run expects of a cache (see {@link openCacheFor}). */
export interface CacheExpectations {
  /** The SAEs (or the store) reading it: name, hook, head index, width. */
  readers: { id: string; hookName: string; hookHeadIndex: number | null; dIn: number }[];
  /** `context_size` of the run. */
  contextSize: number;
  /** `seqpos_slice` of the run. */
  seqposSlice: readonly (number | null)[];
  /** `prepend_bos`. */
  prependBos: boolean;
  /** `disable_concat_sequences`. */
  disableConcatSequences: boolean;
  /** `sequence_separator_token`. */
  sequenceSeparatorToken: unknown;
  /** `model_name` (undefined: not compared). */
  modelName?: string;
}

/**
 * Checks the cache folder `dir` against what a run expects and returns its columns: a hook it
 * lacks, another context size, `seqpos_slice`, `d_in`, model, `prepend_bos`,
 * `disable_concat_sequences` or `sequence_separator_token` are refused (each error names the
 * cache's value and the run's). A cache SAELens made (no `saeflow_cache.json`) is checked on its
 * columns and shapes only. The files are closed again ({@link cachedActivationStream} opens them
 * for reading).
 */
export async function openCacheFor(dir: string, expect: CacheExpectations): Promise<TrainingCache> {
  for (const s of expect.readers) {
    if (s.hookHeadIndex !== null) {
      throw new PipelineError(
        `SAE ${s.id}: hook_head_index ${s.hookHeadIndex} cannot be read from cached activations ` +
          "(a cache holds whole hooks, as SAELens's)",
      );
    }
  }
  const metadata = await readCacheMetadata(dir);
  const dataset = await openHfDataset(dir);
  try {
    const T = seqposSliceLength(expect.contextSize, expect.seqposSlice);
    if (metadata) {
      const m = metadata.settings;
      const where = `cached activations ${dir}`;
      const hooks = (m.hook_names as string[] | undefined) ?? [m.hook_name as string];
      for (const s of expect.readers) {
        if (!hooks.includes(s.hookName)) {
          throw new PipelineError(
            `${where} was made at hook(s) ${JSON.stringify(hooks)}, but SAE ${s.id} reads ` +
              `hook_name ${JSON.stringify(s.hookName)}`,
          );
        }
      }
      const same: [string, unknown, unknown][] = [
        ["context_size", m.context_size, expect.contextSize],
        ["seqpos_slice", m.seqpos_slice, expect.seqposSlice],
        ["prepend_bos", m.prepend_bos, expect.prependBos],
        ["disable_concat_sequences", m.disable_concat_sequences, expect.disableConcatSequences],
        ["sequence_separator_token", m.sequence_separator_token, expect.sequenceSeparatorToken],
      ];
      if (expect.modelName !== undefined) {
        same.splice(2, 0, ["model_name", m.model_name, expect.modelName]);
      }
      for (const [k, theirs, mine] of same) {
        if (JSON.stringify(theirs) !== JSON.stringify(mine)) {
          throw new PipelineError(
            `${where} was made with ${k} = ${JSON.stringify(theirs)}, but this run has ${k} = ` +
              `${JSON.stringify(mine)}; cache with the run's settings (the batches would differ)`,
          );
        }
      }
      const dIn = m.d_in as Record<string, number>;
      for (const s of expect.readers) {
        if (dIn?.[s.hookName] !== undefined && dIn[s.hookName] !== s.dIn) {
          throw new PipelineError(
            `${where} has d_in ${dIn[s.hookName]} at ${s.hookName}, but SAE ${s.id} has ` +
              `d_in ${s.dIn}`,
          );
        }
      }
      if (metadata.rows !== dataset.numRows) {
        throw new PipelineError(
          `${where}: ${SAEFLOW_CACHE_FILE} says ${metadata.rows} rows, but the data files hold ` +
            `${dataset.numRows}; the cache is incomplete or was changed`,
        );
      }
    }
    const columns = expect.readers.map((s) => ({
      key: s.hookName,
      column: s.hookName,
      dIn: s.dIn,
    }));
    try {
      checkCachedColumns(dataset, columns, T, false, TOKEN_IDS_COLUMN);
    } catch (err) {
      throw new PipelineError((err as Error).message, { cause: err });
    }
    return { dir, rows: dataset.numRows, columns, metadata };
  } finally {
    dataset.close();
  }
}

/** {@link openCacheFor} with a run config's `cached_activations_path`, SAEs and settings. */
export async function openCacheForTraining(cfg: PipelineConfig): Promise<TrainingCache> {
  const { runner, saes } = cfg;
  const dir = runner.cachedActivationsPath;
  if (dir === null) throw new PipelineError("use_cached_activations needs cached_activations_path");
  return await openCacheFor(dir, {
    readers: saes.map((s) => ({
      id: s.id,
      hookName: s.hookName,
      hookHeadIndex: s.hookHeadIndex,
      dIn: s.sae.dIn,
    })),
    contextSize: runner.contextSize,
    seqposSlice: runner.seqposSlice,
    modelName: runner.modelName,
    prependBos: runner.prependBos,
    disableConcatSequences: runner.disableConcatSequences,
    sequenceSeparatorToken: runner.sequenceSeparatorToken,
  });
}

// ---------------------------------------------------------------------------------------------
// The command

/** One line of usage of the `cache` command. */
export const CACHE_USAGE =
  "cache <config.yaml|json> [--key value ...]   cache activations as SAELens's cached-activations dataset (CacheActivationsRunnerConfig keys; rerun to resume)";

/** Splits `config.yaml --key value --flag=value` into the path and the parsed overrides. */
export function parseCommandArgs(
  args: readonly string[],
  command: string,
): { path: string; overrides: Record<string, unknown> } {
  let path: string | undefined;
  const overrides: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const key = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      let value: string;
      if (eq >= 0) value = a.slice(eq + 1);
      else {
        if (i + 1 >= args.length) {
          throw new PipelineError(`${command}: --${key} needs a value`);
        }
        value = args[++i];
      }
      if (key === "") throw new PipelineError(`${command}: an empty --option`);
      overrides[key] = parseOverrideValue(value);
    } else if (path === undefined) path = a;
    else throw new PipelineError(`${command}: unexpected argument ${JSON.stringify(a)}`);
  }
  if (path === undefined) {
    throw new PipelineError(
      `${command}: give a config file (usage: ${command} <config> [--key value ...])`,
    );
  }
  return { path, overrides };
}

/**
 * The `cache` command: `cache config.yaml [--key value ...]`. Prints progress to stderr; Ctrl-C
 * stops after the current LLM batch (rerun the same command to continue).
 */
export async function runCacheCommand(
  args: readonly string[],
  options: Omit<CacheRunnerOptions, "signal" | "onProgress"> & { quiet?: boolean } = {},
): Promise<CacheRunResult> {
  const { path, overrides } = parseCommandArgs(args, "cache");
  const dict = await loadConfigFile(path);
  const cfg = cacheRunnerConfigFromDict({ ...dict, ...overrides }, { where: path });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  let listening = false;
  try {
    Deno.addSignalListener("SIGINT", onSigint);
    listening = true;
  } catch { /* no signals here (e.g. no permission): run without */ }
  const enc = new TextEncoder();
  let last = 0;
  try {
    const result = await new CacheActivationsRunner(cfg, {
      ...options,
      signal: controller.signal,
      onProgress: options.quiet ? undefined : (p) => {
        const now = Date.now();
        if (p.phase !== "done" && now - last < 500 && p.rows !== p.totalRows) return;
        last = now;
        Deno.stderr.writeSync(enc.encode(`\r${p.phase}: ${p.rows}/${p.totalRows} sequences`));
        if (p.phase === "done" || p.rows === p.totalRows) Deno.stderr.writeSync(enc.encode("\n"));
      },
    }).run();
    if (!options.quiet) {
      const msg = result.interrupted
        ? "interrupted: rerun the same command to continue\n"
        : `cached ${result.rows} sequences in ${result.files.length} file(s) at ${result.path}\n`;
      Deno.stderr.writeSync(enc.encode(msg));
    }
    return result;
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onSigint);
  }
}
