/**
 * `ActivationsStore`: SAELens's activation store API (spec §1.9, §4) as a facade over the stages
 * `source → tokenize → hook → buffer` (or, with `cachedActivationsPath`, the cached-activations
 * stage → buffer). `nextBatch()` serves shuffled training batches exactly as the training
 * runner's graph does; `getBatchTokens()` serves token sequences (for evals) from a
 * stream of its own, so reading tokens never moves the training batches (SAELens shares one
 * iterator between the two, so its evals shift the training data; saeflow keeps them apart).
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { Tensor as GpuTensor } from "../gpu/tensor.ts";
import type { HubOptions } from "../hub/env.ts";
import type { HookedTransformer } from "../model/hooked_transformer.ts";
import type { SAE } from "../sae/sae.ts";
import { type SeqposSlice, seqposSliceLength } from "../config/seqpos.ts";
import { ActivationBuffer, type BufferSnapshot } from "../stages/buffer.ts";
import { nDatasetProcessed, pipelineStateFiles, readPipelineState } from "../stages/checkpoint.ts";
import { checkHooks, harvest, hook } from "../stages/hook.ts";
import { source, type TextSampleBy } from "../stages/source.ts";
import { encoderFor, tokenize } from "../stages/tokenize.ts";
import {
  type ActivationBlock,
  activationKey,
  startCursor,
  type TokenBlock,
  type TokenCursor,
  type TrainBatch,
} from "../stages/types.ts";
import { writeFolderAtomic } from "../io/atomic.ts";
import type { RunnerConfig } from "./runner_config.ts";
import { resolveSpecialToken } from "./special_tokens.ts";
import { cachedActivationStream, openCacheFor } from "./cache_activations.ts";
import { PipelineError } from "./errors.ts";

/** Everything the store needs (SAELens's `ActivationsStore.__init__` arguments, camelCase). */
export interface ActivationsStoreOptions {
  /** The model (activations are read from it). */
  model: HookedTransformer;
  /** Local file/folder or hub dataset id. */
  dataset: string;
  /** Hook point. */
  hookName: string;
  /** One head of a 4-d hook. */
  hookHeadIndex?: number | null;
  /** Tokens per sequence. */
  contextSize: number;
  /** Width of the activations (checked against the model). */
  dIn: number;
  /** Sequences per LLM batch (default 8, as `from_sae`). */
  storeBatchSizePrompts?: number;
  /** Buffer size in LLM-batch contexts (default 8, as `from_sae`). */
  nBatchesInBuffer?: number;
  /** Rows per training batch (default 4096). */
  trainBatchSizeTokens?: number;
  /** Prepend BOS to packed rows (default true). */
  prependBos?: boolean;
  /** SAELens `seqpos_slice` (default `[null]`). */
  seqposSlice?: SeqposSlice;
  /** SAELens `exclude_special_tokens`: true (all special ids), false, or a list. */
  excludeSpecialTokens?: boolean | number[];
  /** SAELens `disable_concat_sequences`. */
  disableConcatSequences?: boolean;
  /** SAELens `sequence_separator_token` (default "bos"). */
  sequenceSeparatorToken?: "bos" | "eos" | "sep" | number | null;
  /** SAELens `activations_mixing_fraction` (default 0.5). */
  mixFraction?: number;
  /** Seed of the shuffles (default 42). */
  seed?: number;
  /** Dataset split (default "train"), revision, text rows of a `.txt`. */
  split?: string;
  /** Dataset revision. */
  revision?: string;
  /** Rows of a local `.txt` dataset. */
  textSampleBy?: TextSampleBy;
  /** Hub settings. */
  hub?: HubOptions;
  /**
   * SAELens `cached_activations_path` (when `use_cached_activations`): training batches come
   * from this cache instead of the model (default null). Tokens (`getBatchTokens`) still come
   * from the dataset.
   */
  cachedActivationsPath?: string | null;
}

/** The store (see the module doc). */
export class ActivationsStore implements AsyncIterable<Tensor> {
  /** The resolved options. */
  readonly options:
    & Required<
      Omit<ActivationsStoreOptions, "hub" | "revision" | "hookHeadIndex">
    >
    & Pick<ActivationsStoreOptions, "hub" | "revision" | "hookHeadIndex">;
  /** Positions per sequence after `seqpos_slice` (SAELens `training_context_size`). */
  readonly trainingContextSize: number;
  #tokens: ReadableStreamDefaultReader<TokenBlock> | null = null;
  #batches: ReadableStreamDefaultReader<TrainBatch> | null = null;
  #batchesP: Promise<ReadableStreamDefaultReader<TrainBatch>> | null = null;
  #closeCache: (() => void) | null = null;
  #buffer: ActivationBuffer | null = null;
  #restore: BufferSnapshot | undefined;
  #cursor: TokenCursor = startCursor();
  #lastIndex = -1;

  /** Checks the hook and `d_in` lazily (first use); see {@link ActivationsStore.fromSae}. */
  constructor(options: ActivationsStoreOptions) {
    this.options = {
      hookHeadIndex: null,
      storeBatchSizePrompts: 8,
      nBatchesInBuffer: 8,
      trainBatchSizeTokens: 4096,
      prependBos: true,
      seqposSlice: [null],
      excludeSpecialTokens: false,
      disableConcatSequences: false,
      sequenceSeparatorToken: "bos",
      mixFraction: 0.5,
      seed: 42,
      split: "train",
      textSampleBy: "line",
      cachedActivationsPath: null,
      ...options,
    };
    this.trainingContextSize = seqposSliceLength(options.contextSize, this.options.seqposSlice);
    checkHooks(options.model, [{ hookName: options.hookName, headIndex: options.hookHeadIndex }]);
  }

  /**
   * SAELens `ActivationsStore.from_sae`: hook, head, context size, BOS and position slice from
   * the SAE's metadata (an error names the missing field).
   */
  static fromSae(
    args:
      & { model: HookedTransformer; sae: SAE; dataset: string }
      & Partial<ActivationsStoreOptions>,
  ): ActivationsStore {
    const m = args.sae.cfg.metadata;
    const need = (v: unknown, name: string) => {
      if (v === null || v === undefined) {
        throw new PipelineError(`ActivationsStore.fromSae: the SAE's metadata has no ${name}`);
      }
      return v;
    };
    const { sae, ...rest } = args;
    return new ActivationsStore({
      hookName: need(m.hookName, "hook_name") as string,
      hookHeadIndex: m.hookHeadIndex ?? null,
      contextSize: (args.contextSize ?? need(m.contextSize, "context_size")) as number,
      prependBos: need(m.prependBos, "prepend_bos") as boolean,
      seqposSlice: (m.seqposSlice as SeqposSlice | null) ?? [null],
      dIn: sae.cfg.dIn,
      ...rest,
    });
  }

  /** SAELens `ActivationsStore.from_config` for a runner config. */
  static fromConfig(
    model: HookedTransformer,
    cfg: RunnerConfig,
    options: { hub?: HubOptions } = {},
  ): ActivationsStore {
    return new ActivationsStore({
      model,
      dataset: cfg.datasetPath,
      hookName: cfg.hookName,
      hookHeadIndex: cfg.hookHeadIndex,
      contextSize: cfg.contextSize,
      dIn: cfg.sae.dIn,
      storeBatchSizePrompts: cfg.storeBatchSizePrompts,
      nBatchesInBuffer: cfg.nBatchesInBuffer,
      trainBatchSizeTokens: cfg.trainBatchSizeTokens,
      prependBos: cfg.prependBos,
      seqposSlice: cfg.seqposSlice,
      excludeSpecialTokens: cfg.excludeSpecialTokens,
      disableConcatSequences: cfg.disableConcatSequences,
      sequenceSeparatorToken: cfg.sequenceSeparatorToken,
      mixFraction: cfg.activationsMixingFraction,
      seed: cfg.seed,
      split: cfg.datasetSplit,
      revision: cfg.datasetRevision ?? undefined,
      textSampleBy: cfg.datasetTextSampleBy,
      hub: options.hub,
      cachedActivationsPath: cfg.useCachedActivations ? cfg.cachedActivationsPath : null,
    });
  }

  #blocks(blockSize: number, start: TokenCursor): ReadableStream<TokenBlock> {
    const o = this.options, tok = o.model.tokenizer;
    return source({
      datasetPath: o.dataset,
      split: o.split,
      revision: o.revision,
      hub: o.hub,
      textSampleBy: o.textSampleBy,
      start: start.doc,
    }).pipeThrough(tokenize({
      contextSize: o.contextSize,
      blockSize,
      encode: tok ? encoderFor(tok) : null,
      beginBatchTokenId: o.prependBos ? tok?.bosTokenId ?? null : null,
      sequenceSeparatorTokenId: resolveSpecialToken(
        o.sequenceSeparatorToken,
        tok,
        "sequence_separator_token",
      ),
      disableConcatSequences: o.disableConcatSequences,
      start,
    }));
  }

  #exclude(): number[] | null {
    const e = this.options.excludeSpecialTokens;
    if (e === true) return this.options.model.tokenizer?.specialTokenIds() ?? [];
    return e === false ? null : e;
  }

  /**
   * SAELens `get_batch_tokens`: `batchSize` (default `storeBatchSizePrompts`) sequences of
   * `contextSize` tokens as an i32 GPU tensor `[batchSize, contextSize]`, from the store's token
   * stream (restarting at the end of the dataset).
   */
  async getBatchTokens(batchSize = this.options.storeBatchSizePrompts): Promise<Tensor> {
    const ctx = this.options.contextSize;
    this.#tokens ??= this.#blocks(1, startCursor()).getReader();
    const out = new Int32Array(batchSize * ctx);
    for (let i = 0; i < batchSize; i++) {
      const r = await this.#tokens.read();
      if (r.done) throw new PipelineError("ActivationsStore: the dataset ended");
      out.set(r.value.tokens, i * ctx);
    }
    return GpuTensor.from(out, [batchSize, ctx], { gpu: this.options.model.gpu });
  }

  /**
   * SAELens `get_activations`: the hook's activations for `tokens` (i32 `[n, contextSize]`),
   * `[n·T′, dIn]` after the position slice (special tokens are not dropped here, as in SAELens).
   */
  async getActivations(tokens: Int32Array): Promise<Tensor> {
    const o = this.options;
    const n = tokens.length / o.contextSize;
    if (!Number.isInteger(n)) {
      throw new PipelineError(
        `getActivations: ${tokens.length} tokens is not a whole number of sequences of ${o.contextSize}`,
      );
    }
    const spec = { hookName: o.hookName, headIndex: o.hookHeadIndex };
    const out = await harvest(o.model, {
      tokens,
      nSeq: n,
      contextSize: o.contextSize,
      cursor: startCursor(),
    }, { hooks: [spec], seqposSlice: o.seqposSlice });
    return out.acts.get(activationKey(spec))!;
  }

  #training(): Promise<ReadableStreamDefaultReader<TrainBatch>> {
    this.#batchesP ??= this.#startTraining();
    return this.#batchesP;
  }

  async #startTraining(): Promise<ReadableStreamDefaultReader<TrainBatch>> {
    const o = this.options;
    const spec = { hookName: o.hookName, headIndex: o.hookHeadIndex };
    const key = activationKey(spec);
    const start = this.#restore?.cursor ?? this.#cursor;
    let acts: ReadableStream<ActivationBlock>;
    if (o.cachedActivationsPath !== null) {
      const cache = await openCacheFor(o.cachedActivationsPath, {
        readers: [{
          id: key,
          hookName: o.hookName,
          hookHeadIndex: o.hookHeadIndex ?? null,
          dIn: o.dIn,
        }],
        contextSize: o.contextSize,
        seqposSlice: o.seqposSlice,
        prependBos: o.prependBos,
        disableConcatSequences: o.disableConcatSequences,
        sequenceSeparatorToken: o.sequenceSeparatorToken,
      });
      const cached = await cachedActivationStream(cache, {
        contextSize: this.trainingContextSize,
        blockSize: o.storeBatchSizePrompts,
        excludeSpecialTokens: this.#exclude(),
        start,
        gpu: o.model.gpu,
      });
      this.#closeCache = cached.close;
      acts = cached.stream;
    } else {
      acts = this.#blocks(o.storeBatchSizePrompts, start).pipeThrough(
        hook(o.model, {
          hooks: [spec],
          seqposSlice: o.seqposSlice,
          excludeSpecialTokens: this.#exclude(),
        }),
      );
    }
    this.#buffer = new ActivationBuffer({
      bufferSize: o.nBatchesInBuffer * this.trainingContextSize,
      batchSize: o.trainBatchSizeTokens,
      mixFraction: o.mixFraction,
      widths: new Map([[key, o.dIn]]),
      blockRows: o.storeBatchSizePrompts * this.trainingContextSize,
      seed: o.seed,
      gpu: o.model.gpu,
      restore: this.#restore,
    });
    this.#batches = acts.pipeThrough(this.#buffer).getReader();
    return this.#batches;
  }

  /** SAELens `next_batch`: the next shuffled training batch `[trainBatchSizeTokens, dIn]`. */
  async nextBatch(): Promise<Tensor> {
    const r = await (await this.#training()).read();
    if (r.done) throw new PipelineError("ActivationsStore: the training stream ended");
    this.#lastIndex = r.value.index;
    const key = activationKey({
      hookName: this.options.hookName,
      headIndex: this.options.hookHeadIndex,
    });
    return r.value.acts.get(key)!;
  }

  /** Iterates training batches forever (SAELens: the store is an iterator). */
  async *[Symbol.asyncIterator](): AsyncIterator<Tensor> {
    while (true) yield await this.nextBatch();
  }

  /** SAELens `state_dict()`: `{ n_dataset_processed }` (documents the training stream has passed). */
  stateDict(): { n_dataset_processed: number } {
    return { n_dataset_processed: nDatasetProcessed(this.#buffer?.cursor?.docsRead ?? 0) };
  }

  /**
   * SAELens `save_to_checkpoint(dir)`: writes `activations_store_state.safetensors` and saeflow's
   * `pipeline_state.safetensors` (the buffer, batches in flight, RNG and cursor) into `dir`, so
   * {@link loadFromCheckpoint} continues with exactly the next batch.
   */
  async saveToCheckpoint(dir: string): Promise<void> {
    const buffer = this.#buffer ? await this.#buffer.snapshot(this.#lastIndex) : null;
    const files = pipelineStateFiles(dir, {
      name: "",
      tokens: 0,
      batchIndex: this.#lastIndex,
      reason: "threshold",
      units: [],
      buffer,
    });
    await writeFolderAtomic(dir, async (w) => {
      for (const [name, bytes] of files) await w.writeFile(name, bytes);
    }, { owned: [...files.keys()] });
  }

  /** SAELens `load_from_checkpoint(dir)`: continue from a {@link saveToCheckpoint} (before use). */
  async loadFromCheckpoint(dir: string): Promise<void> {
    if (this.#batchesP) {
      throw new PipelineError("loadFromCheckpoint: call it before the first nextBatch()");
    }
    const state = await readPipelineState(dir);
    this.#restore = state.buffer ?? undefined;
    this.#lastIndex = state.batchIndex;
  }

  /** Stops the streams and frees the buffer. */
  async close(): Promise<void> {
    await this.#tokens?.cancel().catch(() => {});
    await this.#batches?.cancel().catch(() => {});
    this.#tokens = this.#batches = this.#batchesP = null;
    this.#buffer = null;
    this.#closeCache?.();
    this.#closeCache = null;
  }
}
