/**
 * A stand-in for the GPU `TrainingSAE` built on `sae/reference/` (`trainingStepRef`): it
 * implements the trainer's `TrainableSAE` interface by reading the step inputs back, computing
 * forward/backward on the host and uploading gradients and step outputs. Slow and with extra
 * submits per step, but numerically the reference: tests use it to check the trainer loop
 * independently of the GPU kernels.
 */

import type { Gpu } from "../../../gpu/device.ts";
import { readAll, Tensor } from "../../../gpu/tensor.ts";
import { inferenceConfigOf, type SAEConfig, type TrainingSAEConfig } from "../../../sae/config.ts";
import {
  exportBatchTopKRef,
  exportTopKRef,
  foldActivationNormScalingFactorRef,
  initTrainingParamsRef,
  type RefSaeConfig,
  trainingStepRef,
} from "../../../sae/reference/mod.ts";
import { createRng } from "../../../util/rng.ts";
import type {
  CoefficientSpec,
  StepOutputs,
  TrainableSAE,
} from "../../../sae/training/trainer_types.ts";

const BUFFER_NAMES = new Set(["topk_threshold"]);

/** SAELens `get_coefficients()` of a training config. */
export function coefficientsOf(cfg: TrainingSAEConfig): CoefficientSpec[] {
  switch (cfg.architecture) {
    case "standard":
    case "gated":
      return [{ name: "l1", value: cfg.l1Coefficient ?? 1, warmUpSteps: cfg.l1WarmUpSteps ?? 0 }];
    case "jumprelu":
      return [{ name: "l0", value: cfg.l0Coefficient ?? 1, warmUpSteps: cfg.l0WarmUpSteps ?? 0 }];
    default:
      return [];
  }
}

/** Per-batch reconstruction sums of the `StepOutputs.recon` contract, in float64. */
export function reconSums(x: Float32Array, xHat: Float32Array, n: number, d: number): number[] {
  const mean = new Float64Array(d);
  for (let t = 0; t < n; t++) for (let j = 0; j < d; j++) mean[j] += x[t * d + j] / n;
  let a = 0, b = 0, c = 0, e = 0;
  for (let t = 0; t < n; t++) {
    let l2 = 0, v = 0;
    for (let j = 0; j < d; j++) {
      l2 += (xHat[t * d + j] - x[t * d + j]) ** 2;
      v += (x[t * d + j] - mean[j]) ** 2;
    }
    const legacy = 1 - l2 / v;
    a += l2;
    b += v;
    c += legacy;
    e += legacy * legacy;
  }
  return [a, b, c, e];
}

/** The reference-backed stand-in (see the module doc). */
export class RefTrainingSAE implements TrainableSAE {
  readonly params = new Map<string, Tensor>();
  readonly grads = new Map<string, Tensor>();
  readonly buffers = new Map<string, Tensor>();
  readonly lossKeys: string[];
  readonly metricKeys: string[];
  /** Number of recordStep calls (tests check the trainer calls it once per step). */
  steps = 0;
  readonly #out: StepOutputs;

  constructor(
    readonly cfg: TrainingSAEConfig,
    host: Record<string, Float32Array>,
    readonly gpu: Gpu,
  ) {
    for (const [name, data] of Object.entries(host)) {
      const shape = this.#shapeOf(name, data.length);
      const t = Tensor.from(data, shape, { gpu });
      if (BUFFER_NAMES.has(name)) this.buffers.set(name, t);
      else {
        this.params.set(name, t);
        this.grads.set(name, Tensor.zeros(shape, "f32", { gpu }));
      }
    }
    // Loss and metric names come from one reference pass on a zero batch.
    const probe = trainingStepRef(this.#ref(), host, new Float32Array(cfg.dIn), 1, {
      coefficients: Object.fromEntries(coefficientsOf(cfg).map((c) => [c.name, c.value])),
      deadMask: new Uint8Array(cfg.dSae),
    }).forward;
    this.lossKeys = Object.keys(probe.losses);
    this.metricKeys = Object.keys(probe.metrics);
    this.#out = {
      losses: Tensor.zeros([1 + this.lossKeys.length], "f32", { gpu }),
      firedCounts: Tensor.zeros([cfg.dSae], "f32", { gpu }),
      recon: Tensor.zeros([4], "f32", { gpu }),
      l0Sum: Tensor.zeros([1], "f32", { gpu }),
      metrics: Tensor.zeros([Math.max(1, this.metricKeys.length)], "f32", { gpu }),
    };
  }

  /** A fresh SAE with the reference training init. */
  static create(cfg: TrainingSAEConfig, opts: { gpu: Gpu; seed?: number }): RefTrainingSAE {
    const host = initTrainingParamsRef(cfg as unknown as RefSaeConfig, createRng(opts.seed ?? 0));
    return new RefTrainingSAE(cfg, host, opts.gpu);
  }

  #ref(): RefSaeConfig {
    return this.cfg as unknown as RefSaeConfig;
  }

  #shapeOf(name: string, length: number): number[] {
    const { dIn, dSae } = this.cfg;
    if (name === "W_enc") return [dIn, dSae];
    if (name === "W_dec") return [dSae, dIn];
    return [length];
  }

  coefficients(): CoefficientSpec[] {
    return coefficientsOf(this.cfg);
  }

  async #hostParams(): Promise<Record<string, Float32Array>> {
    await this.#pendingFold;
    return await this.#readParams();
  }

  async #readParams(): Promise<Record<string, Float32Array>> {
    const names = [...this.params.keys(), ...this.buffers.keys()];
    const tensors = names.map((n) => this.params.get(n) ?? this.buffers.get(n)!);
    const data = await readAll(tensors);
    return Object.fromEntries(names.map((n, i) => [n, data[i] as Float32Array]));
  }

  async recordStep(x: Tensor, coef: Tensor, deadMask: Tensor | null): Promise<StepOutputs> {
    this.steps++;
    const [n, d] = x.shape;
    const reads = await readAll([x, coef, ...(deadMask ? [deadMask] : [])]);
    const xh = reads[0] as Float32Array, ch = reads[1] as Float32Array;
    const coefficients = Object.fromEntries(this.coefficients().map((c, i) => [c.name, ch[i]]));
    const mask = deadMask ? Uint8Array.from(reads[2] as Uint32Array) : undefined;
    const p = await this.#hostParams();
    const { forward, grads } = trainingStepRef(this.#ref(), p, xh, n, {
      coefficients,
      deadMask: mask,
    });
    const g = this.gpu;
    for (const [name, t] of this.grads) g.write(t.buffer, t.offset, grads[name]);
    if (forward.topkThreshold !== undefined) {
      const t = this.buffers.get("topk_threshold")!;
      g.write(t.buffer, t.offset, Float32Array.of(forward.topkThreshold));
    }
    const o = this.#out;
    g.write(
      o.losses.buffer,
      0,
      Float32Array.from([forward.loss, ...this.lossKeys.map((k) => forward.losses[k])]),
    );
    const counts = new Float32Array(this.cfg.dSae);
    let l0 = 0;
    for (let t = 0; t < n; t++) {
      for (let i = 0; i < this.cfg.dSae; i++) {
        if (forward.featureActs[t * this.cfg.dSae + i] !== 0) {
          counts[i]++;
          l0++;
        }
      }
    }
    g.write(o.firedCounts.buffer, 0, counts);
    g.write(o.recon.buffer, 0, Float32Array.from(reconSums(xh, forward.sae_out, n, d)));
    g.write(o.l0Sum.buffer, 0, Float32Array.of(l0));
    if (this.metricKeys.length) {
      g.write(
        o.metrics.buffer,
        0,
        Float32Array.from(this.metricKeys.map((k) => forward.metrics[k])),
      );
    }
    return {
      ...o,
      metrics: new Tensor(g, o.metrics.buffer, [this.metricKeys.length], "f32", 0, false),
    };
  }

  async stateDict(): Promise<Map<string, Float32Array>> {
    return new Map(Object.entries(await this.#hostParams()));
  }

  loadStateDict(state: Map<string, Float32Array>): void {
    for (const [name, data] of state) {
      const t = this.params.get(name) ?? this.buffers.get(name);
      if (!t || t.size !== data.length) throw new Error(`loadStateDict: bad tensor ${name}`);
      this.gpu.write(t.buffer, t.offset, data);
    }
  }

  foldActivationNormScalingFactor(s: number): void {
    // Synchronous contract: fold on the GPU would be the real class's job; here read, fold, write.
    this.#pendingFold = (async () => {
      const folded = foldActivationNormScalingFactorRef(await this.#readParams(), s);
      this.loadStateDict(new Map(Object.entries(folded)));
    })();
    this.cfg.normalizeActivations = "none";
  }
  #pendingFold: Promise<void> | null = null;

  /** Waits for a fold started by {@link foldActivationNormScalingFactor}. */
  async settle(): Promise<void> {
    await this.#pendingFold;
  }

  async exportInference(): Promise<{ cfg: SAEConfig; params: Map<string, Float32Array> }> {
    let p = await this.#hostParams();
    const arch = this.cfg.architecture;
    if (arch === "topk") p = exportTopKRef(this.#ref(), p);
    if (arch === "batchtopk" || arch === "matryoshka_batchtopk") {
      p = exportBatchTopKRef(this.#ref(), p);
    }
    return { cfg: inferenceConfigOf(this.cfg), params: new Map(Object.entries(p)) };
  }

  dispose(): void {
    for (const m of [this.params, this.grads, this.buffers]) {
      for (const t of m.values()) t.dispose();
    }
    for (const t of Object.values(this.#out)) t.dispose();
  }
}
