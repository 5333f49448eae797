/**
 * `SAETrainingRunner`: SAELens's `LanguageModelSAETrainingRunner` (one SAE) and
 * `MultiSAETrainingRunner` (several SAEs from one forward) built from the streaming stages:
 *
 * ```
 * source → tokenize (Worker) → hook → buffer → saeStep → checkpoint → log
 * ```
 *
 * With `use_cached_activations`, `source → tokenize → hook` is replaced by the cached-activations
 * stage reading `cached_activations_path` (checked against the run's hooks, context, widths and
 * tokenization first; see `pipeline/cache_activations.ts`); no dataset is opened.
 *
 * `run()` loads the model (without weight processing, plus `model_from_pretrained_kwargs`, as
 * SAELens's `load_model`), checks every hook and `d_in` against the model with a one-sequence
 * probe and the output folders for writing, builds or loads the SAEs (`from_pretrained_path`) and
 * their trainers, restores a checkpoint when resuming, runs the graph and returns the trained
 * SAEs (the training form, scaling factor folded in, as SAELens returns them).
 *
 * With `n_eval_batches > 0` the step stage evaluates every SAE every `wandb_log_frequency ×
 * eval_every_n_wandb_logs` steps (SAELens's `LLMSaeEvaluator`: CE loss, L2 norms, sparsity,
 * variance; `evals/training.ts`), with tokens from a stream of their own (so evals never move the
 * training batches), into `eval` events of the metrics stream. SAELens runs these evals only when
 * logging to W&B; saeflow's metrics also go to the progress output and the JSONL file, so it runs
 * them whenever `n_eval_batches > 0`.
 *
 * Resume (`resume_from_checkpoint`) is exact: the checkpoint holds each trainer's state, the
 * buffer's rows, the batches in flight and the RNG, and the dataset cursor, so the resumed run
 * ends with the same weights, bit for bit, as one that was never interrupted.
 * @module
 */

import { getGpu, type Gpu } from "../gpu/device.ts";
import type { HubOptions } from "../hub/env.ts";
import { recoverFolder } from "../io/atomic.ts";
import { HookedTransformer } from "../model/hooked_transformer.ts";
import { SAEMetadata } from "../sae/metadata.ts";
import type { TrainingSAEConfig } from "../sae/config.ts";
import { TrainingSAE } from "../sae/training/train_sae.ts";
import { SAETrainer } from "../sae/training/trainer.ts";
import { seqposSliceLength } from "../config/seqpos.ts";
import { ActivationBuffer, type BufferSnapshot } from "../stages/buffer.ts";
import { checkpoint, readPipelineState } from "../stages/checkpoint.ts";
import { checkHooks, harvest, hook } from "../stages/hook.ts";
import { logStage, type LogStageOptions } from "../stages/log.ts";
import { createStepUnit, saeStep, type StepUnit } from "../stages/sae_step.ts";
import { openDataset, source } from "../stages/source.ts";
import { encoderFor, tokenize, type TokenizeOptions } from "../stages/tokenize.ts";
import { tokenizeInWorker } from "../stages/tokenize_worker.ts";
import {
  type ActivationBlock,
  activationKey,
  type MetricsEvent,
  startCursor,
  type TokenBlock,
  type TokenCursor,
} from "../stages/types.ts";
import { join } from "../util/path.ts";
import { type PipelineConfig, pipelineConfigToDict } from "./config.ts";
import { trainerConfigFromRunner } from "./runner_config.ts";
import { loadTrainingSaeFromDisk } from "./load_sae.ts";
import { cachedActivationStream, openCacheForTraining } from "./cache_activations.ts";
import { PipelineError } from "./errors.ts";
import { ActivationsStore } from "./activations_store.ts";
import { resolveSpecialToken } from "./special_tokens.ts";
import { makeTrainingEvaluator } from "../evals/training.ts";

/** Re-exported from `special_tokens.ts`, where the stores and runners take it from. */
export { resolveSpecialToken };

/** Options of {@link SAETrainingRunner}. */
export interface RunnerOptions {
  /** The device (default: `getGpu()`). */
  gpu?: Gpu;
  /** Use this model instead of loading `model_name` (SAELens `override_model`). */
  model?: HookedTransformer;
  /** Hub settings for the model and a hub dataset. */
  hub?: HubOptions;
  /** Abort to stop after the current batch, writing a checkpoint first (Ctrl-C). */
  signal?: AbortSignal;
  /** Tokenize in a Worker (default true). */
  worker?: boolean;
  /** Log stage options (progress, JSONL, W&B); default: progress on stdout, W&B per config. */
  log?: LogStageOptions;
  /** Every event after the log stage (for tests and callers that watch the run). */
  onEvent?: (event: MetricsEvent) => void;
}

/** What {@link SAETrainingRunner.run} returns. */
export interface RunResult {
  /** The trained SAEs by name (one SAE: its hook name), training form, scaling folded in. */
  saes: Map<string, TrainingSAE>;
  /** Training samples each SAE saw. */
  tokens: number;
  /** True when the run stopped early (interrupt) after writing a checkpoint. */
  interrupted: boolean;
  /** Checkpoint folders written, in order. */
  checkpoints: string[];
}

/** Creates `dir` (and parents) and proves a file can be written there; else a named error. */
export async function checkWritable(dir: string, what: string): Promise<void> {
  const probe = join(dir, `.saeflow-write-test-${Deno.pid}`);
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(1));
    await Deno.remove(probe);
  } catch (err) {
    throw new PipelineError(
      `${what} ${dir} is not writable (${err instanceof Error ? err.message : err}); ` +
        "nothing was trained. Choose a folder you can write to.",
    );
  }
}

/** The training runner (see the module doc). */
export class SAETrainingRunner {
  /** The run's config. */
  readonly cfg: PipelineConfig;
  /** Options given. */
  readonly options: RunnerOptions;

  /** Keeps the config; nothing is loaded before {@link run}. */
  constructor(cfg: PipelineConfig, options: RunnerOptions = {}) {
    this.cfg = cfg;
    this.options = options;
  }

  /** Trains the SAEs (see the module doc). */
  async run(): Promise<RunResult> {
    const { runner, saes: specs } = this.cfg;
    // A cache replaces the dataset for training; evals still read token batches from it.
    if (runner.datasetPath === "" && !(runner.useCachedActivations && runner.nEvalBatches === 0)) {
      throw new PipelineError(
        "dataset_path is empty: give a local file or folder, or a hub dataset id",
      );
    }
    if (
      runner.modelClassName !== "HookedTransformer" &&
      runner.modelClassName !== "HookedSAETransformer"
    ) {
      throw new PipelineError(
        `model_class_name ${runner.modelClassName} is not supported; saeflow runs TransformerLens ` +
          "models (HookedTransformer)",
      );
    }
    for (
      const [field, dir] of [["checkpoint_path", runner.checkpointPath], [
        "output_path",
        runner.outputPath,
      ]] as const
    ) {
      if (dir !== null) await checkWritable(dir, field);
    }
    const gpu = this.options.gpu ?? await getGpu();
    const model = this.options.model ??
      await HookedTransformer.fromPretrainedNoProcessing(runner.modelName, {
        ...runner.modelFromPretrainedKwargs,
        ...this.options.hub,
        gpu,
      });
    const tok = model.tokenizer;

    // Hooks and widths: checked against the model (or the cache) before anything trains. A
    // transcoder's output hook is captured from the same forward as every input hook.
    const hookSpecs = specs.map((s) => ({ hookName: s.hookName, headIndex: s.hookHeadIndex }));
    for (const s of specs) {
      if (s.hookNameOut === null) continue;
      const out = { hookName: s.hookNameOut, headIndex: null };
      if (!hookSpecs.some((h) => activationKey(h) === activationKey(out))) hookSpecs.push(out);
    }
    const cache = runner.useCachedActivations ? await openCacheForTraining(this.cfg) : null;
    if (!cache) checkHooks(model, hookSpecs);
    const widths = cache
      ? new Map(cache.columns.map((c) => [c.key, c.dIn]))
      : await probeWidths(model, hookSpecs, runner.contextSize);
    for (const s of specs) {
      const d = widths.get(activationKey({ hookName: s.hookName, headIndex: s.hookHeadIndex }))!;
      if (d !== s.sae.dIn) {
        throw new PipelineError(
          `SAE ${s.id}: d_in is ${s.sae.dIn}, but ${s.hookName}` +
            (s.hookHeadIndex === null ? "" : ` head ${s.hookHeadIndex}`) +
            ` of ${runner.modelName} has width ${d}`,
        );
      }
      if (s.hookNameOut === null) continue;
      const dOut = widths.get(activationKey({ hookName: s.hookNameOut, headIndex: null }))!;
      if (dOut !== s.sae.dOut) {
        throw new PipelineError(
          `SAE ${s.id}: d_out is ${s.sae.dOut}, but its output hook ${s.hookNameOut} of ` +
            `${runner.modelName} has width ${dOut}`,
        );
      }
    }

    // The dataset: open it now so a missing file, split or column fails before training.
    const sourceOptions = {
      datasetPath: runner.datasetPath,
      split: runner.datasetSplit,
      revision: runner.datasetRevision ?? undefined,
      hub: this.options.hub,
      textSampleBy: runner.datasetTextSampleBy,
    };
    const info = cache ? null : await openDataset(sourceOptions);
    if (info?.commit) sourceOptions.revision = info.commit;

    // SAEs and trainers.
    const metadata = {
      modelName: runner.modelName,
      modelClassName: runner.modelClassName,
      datasetPath: runner.datasetPath,
      contextSize: runner.contextSize,
      seqposSlice: runner.seqposSlice,
      modelFromPretrainedKwargs: runner.modelFromPretrainedKwargs,
      prependBos: runner.prependBos,
      excludeSpecialTokens: runner.excludeSpecialTokens,
      sequenceSeparatorToken: runner.sequenceSeparatorToken,
      disableConcatSequences: runner.disableConcatSequences,
    };
    const units: StepUnit[] = [];
    for (const s of specs) {
      const cfg: TrainingSAEConfig = {
        ...s.sae,
        metadata: new SAEMetadata({
          ...s.sae.metadata?.toDict?.() ?? {},
          ...metadata,
          hookName: s.hookName,
          hookHeadIndex: s.hookHeadIndex,
        }),
      };
      const sae = runner.fromPretrainedPath !== null
        ? await loadTrainingSaeFromDisk(runner.fromPretrainedPath, { gpu, expect: cfg })
        : TrainingSAE.create(cfg, { gpu, seed: runner.seed });
      units.push(createStepUnit({
        id: s.id,
        hookName: s.hookName,
        headIndex: s.hookHeadIndex,
        hookNameOut: s.hookNameOut,
        sae,
        trainerConfig: trainerConfigFromRunner(runner, {
          nBatchesForNormEstimate: runner.nBatchesForNormEstimate,
        }),
      }));
    }

    // Resume.
    let cursor: TokenCursor = startCursor();
    let restore: BufferSnapshot | undefined;
    if (runner.resumeFromCheckpoint !== null) {
      const dir = runner.resumeFromCheckpoint;
      await recoverFolder(dir);
      for (const u of units) {
        const sub = this.cfg.multi ? join(dir, u.id) : dir;
        const resumed = await SAETrainer.resume(
          sub,
          u.trainer.cfg,
          u.trainer.sae,
          [],
          u.trainer.options,
        );
        // SAETrainer.resume built a second trainer on the same SAE; keep its restored state.
        u.trainer.dispose();
        u.trainer = resumed;
      }
      const state = await readPipelineState(dir);
      if (state.buffer) {
        restore = state.buffer;
        if (state.buffer.cursor) cursor = state.buffer.cursor;
      }
    }

    // The graph.
    const tokenizeOptions: Omit<TokenizeOptions, "encode"> = {
      contextSize: runner.contextSize,
      blockSize: runner.storeBatchSizePrompts,
      beginBatchTokenId: runner.prependBos ? tok?.bosTokenId ?? null : null,
      sequenceSeparatorTokenId: resolveSpecialToken(
        runner.sequenceSeparatorToken,
        tok,
        "sequence_separator_token",
      ),
      disableConcatSequences: runner.disableConcatSequences,
      start: cursor,
    };
    const src = { ...sourceOptions, start: cursor.doc, repeat: true };
    const blocks = (): ReadableStream<TokenBlock> =>
      this.options.worker === false || !tok?.source
        ? source(src).pipeThrough(
          tokenize({ ...tokenizeOptions, encode: tok ? encoderFor(tok) : null }),
        )
        : tokenizeInWorker({ source: src, tokenize: tokenizeOptions, tokenizer: tok.source });
    const exclude = runner.excludeSpecialTokens === true
      ? tok?.specialTokenIds() ?? []
      : runner.excludeSpecialTokens === false
      ? null
      : runner.excludeSpecialTokens;
    const trainingContext = seqposSliceLength(runner.contextSize, runner.seqposSlice);
    const keys = new Map<string, number>();
    for (const u of units) {
      keys.set(u.key, u.dIn);
      if (u.outputKey) keys.set(u.outputKey, u.trainer.sae.cfg.dOut!);
    }
    const buffer = new ActivationBuffer({
      bufferSize: runner.nBatchesInBuffer * trainingContext,
      batchSize: runner.trainBatchSizeTokens,
      mixFraction: runner.activationsMixingFraction,
      widths: keys,
      blockRows: runner.storeBatchSizePrompts * trainingContext,
      seed: runner.seed,
      gpu,
      restore,
    });
    // Evals during training (SAELens's LLMSaeEvaluator): eval token batches come from a token
    // stream of their own, so evaluating never moves the training batches.
    let evalStore: ActivationsStore | null = null;
    let evaluate:
      | ((unit: StepUnit) => Promise<Record<string, number | number[]> | null>)
      | undefined;
    if (runner.nEvalBatches > 0) {
      evalStore = new ActivationsStore({
        model,
        dataset: runner.datasetPath,
        hookName: specs[0].hookName,
        hookHeadIndex: specs[0].hookHeadIndex,
        contextSize: runner.contextSize,
        dIn: specs[0].sae.dIn,
        storeBatchSizePrompts: runner.storeBatchSizePrompts,
        prependBos: runner.prependBos,
        disableConcatSequences: runner.disableConcatSequences,
        sequenceSeparatorToken: runner.sequenceSeparatorToken,
        split: runner.datasetSplit,
        revision: sourceOptions.revision,
        textSampleBy: runner.datasetTextSampleBy,
        hub: this.options.hub,
      });
      const evaluateSae = makeTrainingEvaluator({
        model,
        tokens: evalStore,
        nEvalBatches: runner.nEvalBatches,
        evalBatchSizePrompts: runner.evalBatchSizePrompts,
        excludeSpecialTokens: exclude ?? false,
      });
      // SAELens's evals splice an SAE in at its hook; a transcoder's output goes elsewhere, so
      // transcoders are not evaluated during training (no eval events for them).
      evaluate = (unit) => unit.outputKey ? Promise.resolve(null) : evaluateSae(unit);
    }
    const configDict = pipelineConfigToDict(this.cfg);
    const checkpoints: string[] = [];
    const cached = cache
      ? await cachedActivationStream(cache, {
        contextSize: trainingContext,
        blockSize: runner.storeBatchSizePrompts,
        excludeSpecialTokens: exclude,
        start: cursor,
        gpu,
      })
      : null;
    const acts: ReadableStream<ActivationBlock> = cached ? cached.stream : blocks().pipeThrough(
      hook(model, {
        hooks: hookSpecs,
        seqposSlice: runner.seqposSlice,
        excludeSpecialTokens: exclude,
      }),
    );
    const events = acts
      .pipeThrough(buffer)
      .pipeThrough(saeStep({
        units,
        nCheckpoints: runner.nCheckpoints,
        saveFinalCheckpoint: runner.saveFinalCheckpoint,
        checkpoints: runner.checkpointPath !== null,
        captureBuffer: (i) => buffer.snapshot(i),
        signal: this.options.signal,
        evaluate,
        evalEvery: runner.logger.wandbLogFrequency * runner.logger.evalEveryNWandbLogs,
      }))
      .pipeThrough(checkpoint({
        checkpointPath: runner.checkpointPath,
        outputPath: runner.outputPath,
        runnerConfig: configDict,
        perSaeFolders: this.cfg.multi,
      }));
    const logged = events.pipeThrough(withStart<MetricsEvent>(
      {
        type: "start",
        runName: runner.logger.runName ?? "",
        totalTokens: runner.trainingTokens,
        saes: units.map((u) => ({
          id: u.id,
          hookName: u.hookName,
          architecture: u.architecture,
          dIn: u.dIn,
          dSae: u.dSae,
        })),
        config: configDict,
        memory: { buffer: buffer.memoryBytes },
      },
    )).pipeThrough(logStage({
      ...(this.options.log ?? {
        progress: {},
        logger: runner.logger,
        metricsFile: defaultMetricsPath(runner.checkpointPath, runner.outputPath),
      }),
      signal: this.options.signal,
    }));
    let sawEnd = false;
    try {
      await logged.pipeTo(
        new WritableStream<MetricsEvent>({
          write: (e) => {
            if (e.type === "checkpoint") checkpoints.push(e.path);
            if (e.type === "end") sawEnd = true;
            this.options.onEvent?.(e);
          },
        }),
      );
    } finally {
      cached?.close();
      await evalStore?.close();
    }
    return {
      saes: new Map(units.map((u) => [u.id, u.trainer.sae as TrainingSAE])),
      tokens: units[0].trainer.nTrainingSamples,
      interrupted: !sawEnd,
      checkpoints,
    };
  }
}

/**
 * Where the JSONL metrics go by default: `<checkpoint_path>/metrics.jsonl` (the run's own folder,
 * appended to on resume), else `<output_path>/metrics.jsonl`, else nowhere.
 */
export function defaultMetricsPath(
  checkpointPath: string | null,
  outputPath: string | null,
): string | null {
  const dir = checkpointPath ?? outputPath;
  return dir === null ? null : join(dir, "metrics.jsonl");
}

/** Puts `first` in front of a stream. */
function withStart<T>(first: T): TransformStream<T, T> {
  return new TransformStream<T, T>({
    start(controller) {
      controller.enqueue(first);
    },
  });
}

/** Runs one sequence through the model and returns the row width of every hook key. */
async function probeWidths(
  model: HookedTransformer,
  hooks: { hookName: string; headIndex: number | null }[],
  contextSize: number,
): Promise<Map<string, number>> {
  const n = Math.max(1, Math.min(contextSize, model.cfg.nCtx));
  if (contextSize > model.cfg.nCtx) {
    throw new PipelineError(
      `context_size is ${contextSize}, but ${model.cfg.modelName} handles at most ${model.cfg.nCtx} tokens`,
    );
  }
  const block: TokenBlock = {
    tokens: new Int32Array(n),
    nSeq: 1,
    contextSize: n,
    cursor: startCursor(),
  };
  const out = await harvest(model, block, { hooks });
  const widths = new Map<string, number>();
  for (const [k, t] of out.acts) {
    widths.set(k, t.shape[1]);
    t.dispose();
  }
  return widths;
}
