/**
 * `SAETrainer`: SAELens' model-agnostic training loop (spec §5.1, §3.10, §3.11) on WebGPU. Each
 * step is one `gpu.write` (step scalars and coefficients) and one submit: input check/scaling,
 * dead mask, the SAE's fused forward/backward, firing statistics, gradient clipping and Adam all
 * stay on the GPU. Metrics are snapshotted on logging steps and read back one logging period
 * later; NaN/±Inf inputs or losses set a GPU flag that freezes the weights and surfaces as a
 * {@link NonFiniteStepError} at the next readback, before any later checkpoint is written.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { ActivationScaler } from "./activation_scaler.ts";
import { CoefficientScheduler } from "./coefficient_scheduler.ts";
import { TrainingError } from "./errors.ts";
import { logFeatureSparsity } from "./firing_stats.ts";
import { isPeriodicStep } from "./metrics.ts";
import { createLrScheduler, type LrScheduler } from "./schedulers.ts";
import { checkpointThresholds } from "../../config/derived.ts";
import { type SAETrainerConfig, totalSteps } from "./trainer_config.ts";
import { TrainerGpuState } from "./trainer_gpu.ts";
import {
  badStepOf,
  LogQueue,
  type SnapshotLayout,
  snapshotLayout,
  type StepLogContext,
  type TrainerLogger,
} from "./trainer_log.ts";
import { TrainerOptimizer } from "./trainer_optim.ts";
import type {
  CoefficientSpec,
  Evaluator,
  SAETrainerOptions,
  StepOutputs,
  TrainableSAE,
} from "./trainer_types.ts";
import {
  type BatchIterator,
  batchIterator,
  type DataProvider,
  estimateScalingFactor,
  type TranscoderBatch,
} from "./trainer_data.ts";
import {
  type LoadableState,
  readForResume,
  type TrainerSnapshot,
  writeTrainerCheckpoint,
} from "./trainer_checkpoint.ts";
import type { TrainerState } from "./state.ts";
import { trainingConfigToDict } from "../config.ts";
import { SaeflowError } from "../../util/errors.ts";

export type { Evaluator, SAETrainerOptions, TrainerLogger };

/**
 * The training loop.
 *
 * @example
 * ```ts ignore
 * const trainer = new SAETrainer(createTrainerConfig({ totalTrainingSamples: 1 << 20,
 *   trainBatchSizeSamples: 4096 }), sae, activationStream, { logger: console.log });
 * const trained = await trainer.fit();
 * ```
 */
export class SAETrainer {
  /** Trainer config. */
  readonly cfg: SAETrainerConfig;
  /** The SAE being trained. */
  readonly sae: TrainableSAE;
  /** GPU of the SAE. */
  readonly gpu: Gpu;
  /** Source of activation batches. */
  readonly dataProvider: DataProvider;
  /** Learning-rate schedule. */
  readonly lrScheduler: LrScheduler;
  /** One per entry of `sae.coefficients()`, by name. */
  readonly coefficientSchedulers: Map<string, CoefficientScheduler> = new Map();
  /** Activation normalisation (SAELens `ActivationScaler`). */
  readonly activationScaler: ActivationScaler = new ActivationScaler();
  /** Clipped Adam over the SAE's parameters. */
  readonly optimizer: TrainerOptimizer;
  /** Options given at construction. */
  readonly options: SAETrainerOptions;
  #nTrainingSteps = 0;
  #nTrainingSamples = 0;
  #nFracActiveSamples = 0;
  #startedFineTuning = false;
  #checkpointThresholds: number[];
  readonly #gs: TrainerGpuState;
  readonly #coefs: CoefficientSpec[];
  readonly #layout: SnapshotLayout;
  readonly #it: BatchIterator;
  readonly #logs: LogQueue;
  #disposed = false;

  /** Sets up schedulers, optimiser and GPU state for training `sae` on `dataProvider`. */
  constructor(
    cfg: SAETrainerConfig,
    sae: TrainableSAE,
    dataProvider: DataProvider,
    options: SAETrainerOptions = {},
  ) {
    this.cfg = cfg;
    this.sae = sae;
    this.dataProvider = dataProvider;
    this.options = options;
    this.#it = batchIterator(dataProvider);
    const first = sae.params.values().next().value;
    if (!first) throw new TrainingError("the SAE has no parameters to train");
    this.gpu = first.gpu;
    for (const [name, p] of sae.params) {
      const g = sae.grads.get(name);
      if (!g || g.shape.join() !== p.shape.join()) {
        throw new TrainingError(
          `the SAE's gradient for ${name} is ${g ?? "missing"}, expected ${p}`,
        );
      }
    }
    this.lrScheduler = createLrScheduler({
      lr: cfg.lr,
      lrSchedulerName: cfg.lrSchedulerName,
      lrWarmUpSteps: cfg.lrWarmUpSteps,
      lrDecaySteps: cfg.lrDecaySteps,
      lrEnd: cfg.lrEnd,
      nRestartCycles: cfg.nRestartCycles,
      totalSteps: totalSteps(cfg),
    });
    this.#coefs = sae.coefficients();
    for (const c of this.#coefs) {
      this.coefficientSchedulers.set(c.name, new CoefficientScheduler(c.value, c.warmUpSteps));
    }
    this.optimizer = new TrainerOptimizer(this.gpu, sae.params, {
      beta1: cfg.adamBeta1,
      beta2: cfg.adamBeta2,
    });
    this.#gs = new TrainerGpuState(this.gpu, sae.cfg.dSae, this.#coefs.length);
    this.#layout = snapshotLayout(sae.lossKeys.length, sae.metricKeys.length);
    this.#logs = new LogQueue(this.#layout);
    this.#checkpointThresholds = cfg.nCheckpoints > 0
      ? checkpointThresholds(cfg.totalTrainingSamples, cfg.nCheckpoints)
      : [];
  }

  /** Training steps taken. */
  get nTrainingSteps(): number {
    return this.#nTrainingSteps;
  }

  /** Training samples seen. */
  get nTrainingSamples(): number {
    return this.#nTrainingSamples;
  }

  /** SAELens `n_frac_active_samples`. */
  get nFracActiveSamples(): number {
    return this.#nFracActiveSamples;
  }

  /** SAELens `started_fine_tuning`. */
  get startedFineTuning(): boolean {
    return this.#startedFineTuning;
  }

  /** Remaining sample counts after which a checkpoint is written (a copy). */
  get checkpointThresholds(): number[] {
    return [...this.#checkpointThresholds];
  }

  /** Current coefficient values by name (SAELens `get_coefficients()`). */
  getCoefficients(): Record<string, number> {
    return Object.fromEntries(
      [...this.coefficientSchedulers].map(([name, s]) => [name, s.value]),
    );
  }

  /** The GPU state (firing counters, flag, params buffer); for tests and tools. */
  get gpuState(): TrainerGpuState {
    return this.#gs;
  }

  /** Trains until `totalTrainingSamples` and returns the SAE (scaling factor folded in). */
  async fit(): Promise<TrainableSAE> {
    this.#checkLive("fit");
    if (
      this.sae.cfg.normalizeActivations === "expected_average_only_in" &&
      this.activationScaler.scalingFactor === null
    ) {
      this.activationScaler.scalingFactor = await estimateScalingFactor(
        this.#it,
        this.cfg.nBatchesForNormEstimate,
        this.gpu,
        (b, i) => this.#checkBatch(b, `norm estimation batch ${i}`),
        this.options.disposeBatches !== false,
      );
    }
    while (this.nTrainingSamples < this.cfg.totalTrainingSamples) {
      const next = await this.#it.next();
      if (next.done) {
        throw new TrainingError(
          `the data provider ended after ${this.nTrainingSteps} steps (${this.nTrainingSamples} ` +
            `samples), expected ${this.cfg.totalTrainingSamples} samples`,
        );
      }
      const item = next.value as Tensor | TranscoderBatch;
      if (item instanceof Tensor) await this.step(item);
      else await this.step(item?.input, item?.target);
    }
    return await this.finish();
  }

  /**
   * What `fit()` does after its last step: delivers the pending logs (throwing if a step was
   * bad), folds the activation scaling factor into the weights (config → "none"), and writes
   * checkpoint `final_<n>` when `saveFinalCheckpoint`. For loops that call {@link step} themselves.
   */
  async finish(): Promise<TrainableSAE> {
    await this.flushLogs();
    const s = this.activationScaler.scalingFactor;
    if (s !== null) {
      this.sae.foldActivationNormScalingFactor(s);
      this.sae.cfg.normalizeActivations = "none";
      this.activationScaler.scalingFactor = null;
    }
    if (this.cfg.saveFinalCheckpoint) await this.saveCheckpoint(`final_${this.nTrainingSamples}`);
    return this.sae;
  }

  /**
   * Host copies of everything a checkpoint holds (config, weights, Adam moments, firing
   * statistics, counters, schedulers, scaling factor, RNG), read back in one submit after the
   * pending logs are delivered; throws if a bad step was flagged. {@link restore} puts such a
   * snapshot back; `checkpointWriteOf(snapshot)` is what a checkpoint folder of it holds.
   */
  async snapshot(): Promise<TrainerSnapshot> {
    await this.#logs.drain(Infinity, this.options.logger);
    const snap = await this.#gather();
    const bad = badStepOf(snap.flag);
    if (bad) throw bad;
    return snap;
  }

  /** Reads the SAE weights, Adam moments, firing counters and flag back (one submit). */
  async #gather(): Promise<TrainerSnapshot> {
    const [firing, optimizer, weights] = await Promise.all([
      this.#gs.read(),
      this.optimizer.state(),
      this.sae.stateDict(),
    ]);
    const state: TrainerState = {
      nTrainingSamples: this.#nTrainingSamples,
      nTrainingSteps: this.#nTrainingSteps,
      startedFineTuning: this.#startedFineTuning,
      actFreqScores: firing.actFreq,
      nForwardPassesSinceFired: firing.passes,
      nFracActiveSamples: this.#nFracActiveSamples,
      optimizer,
      lrScheduler: this.lrScheduler.stateDict(),
      coefficientSchedulers: Object.fromEntries(
        [...this.coefficientSchedulers].map(([name, s]) => [name, s.stateDict()]),
      ),
      rngState: this.options.rng?.getState() ?? null,
    };
    const shapes = new Map<string, readonly number[]>();
    for (const m of [this.sae.params, this.sae.buffers]) {
      for (const [k, t] of m) shapes.set(k, t.shape);
    }
    return {
      cfg: trainingConfigToDict(this.sae.cfg),
      weights,
      shapes,
      state,
      scalingFactor: this.activationScaler.scalingFactor,
      flag: firing.flag,
    };
  }

  /**
   * Puts a snapshot (or a checkpoint folder's contents) back: counters, schedulers, Adam, firing
   * statistics, the scaling factor, the data RNG and — when given — the SAE's weights. Checks
   * first that Adam's betas and the coefficient schedulers match this trainer, so a mismatch
   * changes nothing.
   */
  restore(snapshot: LoadableState): void {
    this.#checkLive("restore");
    const { state } = snapshot;
    const o = this.optimizer.options, so = state.optimizer;
    if (so.beta1 !== o.beta1 || so.beta2 !== o.beta2 || so.eps !== o.eps) {
      throw new TrainingError(
        `trainer state: Adam betas (${so.beta1}, ${so.beta2}) eps ${so.eps} differ from the ` +
          `config's (${o.beta1}, ${o.beta2}) eps ${o.eps}`,
      );
    }
    const saved = Object.keys(state.coefficientSchedulers).sort().join(", ");
    const mine = [...this.coefficientSchedulers.keys()].sort().join(", ");
    if (saved !== mine) {
      throw new TrainingError(
        `trainer state: coefficient schedulers [${saved}], expected [${mine}] for this SAE`,
      );
    }
    if (snapshot.weights) this.sae.loadStateDict(snapshot.weights);
    this.#gs.loadFiring(state.nForwardPassesSinceFired, state.actFreqScores);
    this.optimizer.load(so);
    this.lrScheduler.loadStateDict(state.lrScheduler);
    for (const [name, s] of this.coefficientSchedulers) {
      s.loadStateDict(state.coefficientSchedulers[name]);
    }
    this.#nTrainingSamples = state.nTrainingSamples;
    this.#nTrainingSteps = state.nTrainingSteps;
    this.#nFracActiveSamples = state.nFracActiveSamples;
    this.#startedFineTuning = state.startedFineTuning;
    // Thresholds already passed were written (or skipped) by the interrupted run.
    this.#checkpointThresholds = this.#checkpointThresholds.filter(
      (t) => t >= state.nTrainingSamples,
    );
    this.activationScaler.scalingFactor = snapshot.scalingFactor;
    if (this.options.rng && state.rngState !== null) this.options.rng.setState(state.rngState);
  }

  /**
   * One full iteration of SAELens' loop on a raw batch [n, dIn]: sparsity-window reset, the
   * train step (one submit), logging, evals, checkpoint, step counter. Returns the step's GPU
   * outputs (overwritten by the next step).
   */
  async step(batch: Tensor, target?: Tensor | null): Promise<StepOutputs> {
    this.#checkLive("step");
    const t = this.nTrainingSteps, gs = this.#gs, cfg = this.cfg, logger = this.options.logger;
    this.#checkBatch(batch, `training step ${t}`);
    this.#checkTarget(batch, target, `training step ${t}`);
    gs.writeStep(
      t,
      this.optimizer.scalars(this.lrScheduler.lr),
      this.#coefs.map((c) => this.coefficientSchedulers.get(c.name)!.value),
    );
    if (isPeriodicStep(t, cfg.featureSamplingWindow)) {
      if (logger) {
        this.#logs.push({
          step: t,
          kind: "sparsity",
          data: gs.readActFreqLater(),
          nFrac: this.nFracActiveSamples,
        });
      }
      gs.resetWindow();
      this.#nFracActiveSamples = 0;
    }
    this.#nTrainingSamples += batch.shape[0];
    const x = gs.prepareInput(batch, this.activationScaler.scalingFactor);
    gs.recordDeadMask(cfg.deadFeatureWindow);
    const out = await this.sae.recordStep(x, gs.coefficients, gs.deadMask, target ?? null);
    gs.recordAfterStep(out);
    // The real rows (SAELens adds the configured batch size even for a short batch, which put
    // feature sparsity and dead-feature decisions off by the shortfall).
    this.#nFracActiveSamples += batch.shape[0];
    this.optimizer.record(this.sae.grads, gs.adamBinding, 0, gs.flag);
    this.optimizer.step++;
    this.lrScheduler.step();
    for (const s of this.coefficientSchedulers.values()) s.step();
    const logging = isPeriodicStep(t, cfg.logEvery);
    if (logging) {
      this.#logs.push(
        logger
          ? {
            step: t,
            kind: "train",
            data: gs.snapshotLater(out, this.#layout, cfg.deadFeatureWindow),
            ctx: this.#logContext(batch.shape[0]),
          }
          : { step: t, kind: "flag", data: gs.readFlagLater() },
      );
    }
    this.gpu.flush();
    // Safe right after the submit: later uses of the pooled buffer are queued behind this step.
    if (this.options.disposeBatches !== false) {
      batch.dispose();
      target?.dispose();
    }
    if (logging) await this.#logs.drain(t, logger);
    if (logger && this.options.evaluator && isPeriodicStep(t, cfg.logEvery * cfg.evalEveryNLogs)) {
      await this.#logs.drain(Infinity, logger);
      const metrics = await this.options.evaluator(
        this.sae,
        this.dataProvider,
        this.activationScaler,
      );
      await logger(t, metrics);
    }
    // Counted before the checkpoint so a checkpoint records completed steps (SAELens saves one
    // less and repeats that step index after resuming).
    this.#nTrainingSteps++;
    if (
      this.#checkpointThresholds.length > 0 &&
      this.#nTrainingSamples > this.#checkpointThresholds[0]
    ) {
      await this.saveCheckpoint(String(this.#nTrainingSamples));
      this.#checkpointThresholds.shift();
    }
    return out;
  }

  #logContext(nRows: number): StepLogContext {
    return {
      nRows,
      dSae: this.sae.cfg.dSae,
      lossKeys: this.sae.lossKeys,
      metricKeys: this.sae.metricKeys,
      lr: this.lrScheduler.lr,
      nTrainingSamples: this.nTrainingSamples,
      coefficients: this.getCoefficients(),
    };
  }

  #checkLive(op: string): void {
    if (this.#disposed) throw new TrainingError(`SAETrainer.${op}: the trainer was disposed`);
  }

  /** A transcoder's target: required, `[n, d_out]` f32 on the SAE's device; others: none. */
  #checkTarget(batch: Tensor, target: Tensor | null | undefined, where: string): void {
    const dOut = this.sae.cfg.dOut;
    if (!this.sae.needsTarget) {
      if (target) {
        throw new TrainingError(
          `${where}: a target was given, but a ${this.sae.cfg.architecture} SAE reconstructs its input`,
        );
      }
      return;
    }
    if (!(target instanceof Tensor)) {
      throw new TrainingError(
        `${where}: a ${this.sae.cfg.architecture} needs the target activations [n, ${dOut}] ` +
          "(from hook_name_out) with every batch; the data provider gave none",
      );
    }
    const n = batch.shape[0];
    if (
      target.dtype !== "f32" || target.rank !== 2 || target.shape[0] !== n ||
      target.shape[1] !== dOut
    ) {
      throw new TrainingError(
        `${where}: target has shape [${target.shape.join(", ")}] (${target.dtype}), expected ` +
          `[${n}, ${dOut}] f32 (the batch's rows, d_out = ${dOut})`,
      );
    }
    if (target.gpu.device !== this.gpu.device) {
      throw new TrainingError(`${where}: target lives on another GPU device than the SAE`);
    }
  }

  #checkBatch(batch: Tensor, where: string): void {
    const dIn = this.sae.cfg.dIn;
    if (!(batch instanceof Tensor)) {
      throw new TrainingError(
        `${where}: the data provider gave ${batch}, expected a GPU Tensor [n, ${dIn}]`,
      );
    }
    if (batch.dtype !== "f32" || batch.rank !== 2 || batch.shape[1] !== dIn || batch.shape[0] < 1) {
      throw new TrainingError(
        `${where}: batch has shape [${batch.shape.join(", ")}] (${batch.dtype}), expected ` +
          `[n, ${dIn}] f32 with n >= 1 (d_in = ${dIn})`,
      );
    }
    if (batch.gpu.device !== this.gpu.device) {
      throw new TrainingError(`${where}: batch lives on another GPU device than the SAE`);
    }
  }

  async #throwIfBad(): Promise<void> {
    const { flag } = await this.#gs.read();
    const bad = badStepOf(flag);
    if (bad) throw bad;
  }

  /**
   * Delivers every pending log entry to the logger and throws a {@link NonFiniteStepError} if a
   * bad step was flagged (reads back; `fit` does this itself at the end).
   */
  async flushLogs(): Promise<void> {
    await this.#logs.drain(Infinity, this.options.logger);
    await this.#throwIfBad();
  }

  /** SAELens `feature_sparsity`: act_freq_scores / n_frac_active_samples (reads back). */
  async featureSparsity(): Promise<Float32Array> {
    const { actFreq } = await this.#gs.read();
    const n = Math.fround(this.#nFracActiveSamples);
    return actFreq.map((v) => v / n);
  }

  /** SAELens `log_feature_sparsity`: log10(feature sparsity + 1e-10) (reads back). */
  async logFeatureSparsity(): Promise<Float32Array> {
    return logFeatureSparsity(await this.featureSparsity());
  }

  /** SAELens `dead_neurons` (reads back). */
  async deadNeurons(): Promise<Uint8Array> {
    const { passes } = await this.#gs.read();
    return Uint8Array.from(passes, (p) => (p > this.cfg.deadFeatureWindow ? 1 : 0));
  }

  /**
   * Writes checkpoint `name` under `basePath` (default `cfg.checkpointPath`; nothing when both
   * are null) after logging what is pending and checking the bad-step flag.
   */
  async saveCheckpoint(name: string, basePath?: string | null): Promise<void> {
    this.#checkLive("saveCheckpoint");
    const base = basePath ?? this.cfg.checkpointPath;
    await this.#logs.drain(Infinity, this.options.logger);
    if (base === null) {
      await this.#throwIfBad();
      return;
    }
    const snapshot = await this.#gather();
    const bad = badStepOf(snapshot.flag);
    if (bad) throw bad;
    const dir = `${base}/${name}`;
    try {
      await writeTrainerCheckpoint(dir, snapshot, this.options.saveCheckpointFn);
    } catch (err) {
      if (err instanceof SaeflowError) throw err;
      // A file in the way, a bad name, no permission, a full disk: name the folder.
      throw new TrainingError(
        `checkpoint ${dir}: cannot write: ${(err as Error)?.message ?? err}`,
        { cause: err },
      );
    }
  }

  /**
   * Resumes a run from checkpoint folder `dir`: loads the SAE weights into `sae` (built from
   * the folder's `cfg.json`), then the trainer state, so that `fit()` continues the interrupted
   * run bit for bit given the same remaining batches.
   */
  static async resume(
    dir: string,
    cfg: SAETrainerConfig,
    sae: TrainableSAE,
    dataProvider: DataProvider,
    options: SAETrainerOptions = {},
  ): Promise<SAETrainer> {
    const contents = await readForResume(dir, sae);
    const trainer = new SAETrainer(cfg, sae, dataProvider, options);
    trainer.restore(contents);
    return trainer;
  }

  /** Frees the trainer's GPU buffers (not the SAE's). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.optimizer.dispose();
    this.#gs.dispose();
  }
}
