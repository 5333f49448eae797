/**
 * Shared helpers of the GPU training-step tests: a random small problem, one GPU step through
 * `TrainingSAE.recordStep` and the same step through the reference `trainingStepRef`, and the
 * comparisons (losses, x̂, f, every gradient, firing counts, recon sums, l0, metrics).
 */
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { getGpu, type Gpu } from "../../../gpu/device.ts";
import { readAll, Tensor } from "../../../gpu/tensor.ts";
import { createTrainingConfig, type TrainingSAEConfig } from "../../../sae/config.ts";
import { createRng } from "../../../util/rng.ts";
import { trainingStepRef } from "../../../sae/reference/mod.ts";
import { refConfigOf, type TrainingExtras, TrainingSAE } from "../../../sae/training/train_sae.ts";

export { getGpu };

/** A test problem: config, host params (f32) and x (transcoders: and the target y). */
export interface Problem {
  cfg: TrainingSAEConfig;
  params: Record<string, Float32Array>;
  x: Float32Array;
  n: number;
  /** Transcoders: the activations to reconstruct `[n, dOut]`. */
  target?: Float32Array;
}

/** Transcoder architectures (their problems get a target and d_out-wide decoders). */
const TRANSCODERS = new Set([
  "transcoder",
  "skip_transcoder",
  "jumprelu_transcoder",
  "jumprelu_skip_transcoder",
]);

/** Random params around SAELens' init (biases and thresholds nonzero) and x ~ N(0, 1). */
export function problem(
  fields: Record<string, unknown>,
  n: number,
  seed: number,
): Problem {
  const transcoder = TRANSCODERS.has(String(fields.architecture));
  const cfg = createTrainingConfig({
    dIn: 8,
    dSae: 16,
    ...(transcoder ? { dOut: 6, applyBDecToInput: false } : {}),
    ...fields,
  } as never);
  const rng = createRng(seed);
  const normal = (len: number, s: number, mean = 0) =>
    Float32Array.from({ length: len }, () => mean + s * rng.normal());
  const { dIn, dSae } = cfg;
  const dOut = transcoder ? cfg.dOut! : dIn;
  const params: Record<string, Float32Array> = {
    W_enc: normal(dIn * dSae, 0.5),
    W_dec: normal(dSae * dOut, 0.4),
    b_dec: normal(dOut, 0.2),
  };
  const arch = cfg.architecture;
  if (arch.endsWith("skip_transcoder")) params.W_skip = normal(dOut * dIn, 0.2);
  if (arch === "gated") {
    params.b_gate = normal(dSae, 0.3);
    params.r_mag = normal(dSae, 0.3);
    params.b_mag = normal(dSae, 0.3);
  } else params.b_enc = normal(dSae, 0.3);
  if (arch === "jumprelu" || arch.startsWith("jumprelu_")) {
    params.threshold = normal(dSae, 0.2, 0.3);
  }
  if (arch === "batchtopk" || arch === "matryoshka_batchtopk") {
    params.topk_threshold = Float32Array.of(0.25);
  }
  const x = normal(n * dIn, 1);
  return transcoder ? { cfg, params, x, n, target: normal(n * dOut, 1) } : { cfg, params, x, n };
}

/** Everything one GPU step produced, read back. */
export interface GpuStep {
  losses: Float32Array;
  grads: Record<string, Float32Array>;
  firedCounts: Float32Array;
  recon: Float32Array;
  l0Sum: number;
  metrics: Float32Array;
  saeOut: Float32Array | null;
  featureActs: Float32Array | null;
  state: Map<string, Float32Array>;
  sae: TrainingSAE;
}

/** Runs `steps` GPU steps (same x) and reads the last one back; the SAE stays alive. */
export async function gpuStep(
  gpu: Gpu,
  pb: Problem,
  coef: number[],
  dead: Uint32Array | null,
  opts: TrainingExtras & { maxWindowRows?: number; steps?: number } = {},
): Promise<GpuStep> {
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu, ...opts });
  const x = Tensor.from(pb.x, [pb.n, pb.cfg.dIn], { gpu });
  const c = Tensor.from(Float32Array.from(coef), [coef.length], { gpu });
  const dm = dead ? Tensor.from(dead, [dead.length], { gpu }) : null;
  const y = pb.target ? Tensor.from(pb.target, [pb.n, pb.target.length / pb.n], { gpu }) : null;
  let out = sae.recordStep(x, c, dm, y);
  for (let s = 1; s < (opts.steps ?? 1); s++) out = sae.recordStep(x, c, dm, y);
  const dbg = sae.debugStep();
  const names = [...sae.grads.keys()];
  const tensors = [
    out.losses,
    out.firedCounts,
    out.recon,
    out.l0Sum,
    out.metrics,
    ...names.map((k) => sae.grads.get(k)!),
  ];
  if (dbg.saeOut) tensors.push(dbg.saeOut);
  if (dbg.featureActs) tensors.push(dbg.featureActs);
  const data = (await readAll(tensors)) as Float32Array[];
  const grads: Record<string, Float32Array> = {};
  names.forEach((k, i) => (grads[k] = data[5 + i]));
  let at = 5 + names.length;
  const saeOut = dbg.saeOut ? data[at++] : null;
  const featureActs = dbg.featureActs ? data[at++] : null;
  const state = await sae.stateDict();
  x.dispose();
  c.dispose();
  dm?.dispose();
  y?.dispose();
  return {
    losses: data[0],
    firedCounts: data[1],
    recon: data[2],
    l0Sum: data[3][0],
    metrics: data[4],
    grads,
    saeOut,
    featureActs,
    state,
    sae,
  };
}

/** The reference step for the same problem. */
export function refStep(
  pb: Problem,
  coefficients: Record<string, number>,
  dead: Uint32Array | null,
  extras: TrainingExtras = {},
) {
  return trainingStepRef(refConfigOf(pb.cfg, extras), pb.params, pb.x, pb.n, {
    coefficients,
    deadMask: dead ? Uint8Array.from(dead) : undefined,
    target: pb.target,
  });
}

/**
 * Relative-to-scale closeness: |a − e| ≤ rtol·max(|e|∞, 1e-3) elementwise. Returns the worst
 * |a − e| / max(|e|∞, 1e-3) (reported by `deno task gpu-check`).
 */
export function closeScaled(
  a: ArrayLike<number>,
  e: ArrayLike<number>,
  rtol: number,
  msg: string,
): number {
  let m = 1e-3;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(e[i]));
  assertAllClose(a, e, rtol * m, 0, msg);
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]) / m);
  return worst;
}

/**
 * Compares a GPU step with the reference step (tolerance `rtol`, scaled per tensor); returns the
 * worst scaled error of each compared tensor (see {@link closeScaled}).
 */
export function compareStep(
  pb: Problem,
  g: GpuStep,
  coefficients: Record<string, number>,
  dead: Uint32Array | null,
  extras: TrainingExtras = {},
  rtol = 1e-4,
): Record<string, number> {
  const ref = refStep(pb, coefficients, dead, extras);
  const err: Record<string, number> = {};
  const { dIn, dSae } = pb.cfg, n = pb.n;
  const keys = g.sae.lossKeys;
  assertEquals(keys, Object.keys(ref.forward.losses), "loss keys");
  const expLosses = [ref.forward.loss, ...keys.map((k) => ref.forward.losses[k])];
  err.losses = closeScaled(g.losses, expLosses, rtol, "losses");
  for (const [name, e] of Object.entries(ref.grads)) {
    assert(g.grads[name], `grad ${name} exists`);
    err[`grad_${name}`] = closeScaled(g.grads[name], e, rtol, `grad ${name}`);
  }
  if (g.saeOut) err.sae_out = closeScaled(g.saeOut, ref.forward.sae_out, rtol, "sae_out");
  if (g.featureActs) {
    const fa = g.featureActs.subarray(0, n * dSae);
    err.feature_acts = closeScaled(fa, ref.forward.featureActs, rtol, "featureActs");
  }
  const f = ref.forward.featureActs;
  const fired = new Float32Array(dSae);
  for (let k = 0; k < n * dSae; k++) if (f[k] !== 0) fired[k % dSae]++;
  assertAllClose(g.firedCounts, fired, 0, 0, "firedCounts");
  assertClose(g.l0Sum, fired.reduce((s, v) => s + v, 0), 0, 0, "l0Sum");
  // §5.2 recon terms from the reference x̂ (against the target for transcoders).
  const x = pb.target ?? pb.x, xh = ref.forward.sae_out, d = x.length / n;
  void dIn;
  const mean = new Float64Array(d);
  for (let t = 0; t < n; t++) for (let j = 0; j < d; j++) mean[j] += x[t * d + j] / n;
  const r = [0, 0, 0, 0];
  for (let t = 0; t < n; t++) {
    let sq = 0, v = 0;
    for (let j = 0; j < d; j++) {
      sq += (xh[t * d + j] - x[t * d + j]) ** 2;
      v += (x[t * d + j] - mean[j]) ** 2;
    }
    r[0] += sq;
    r[1] += v;
    r[2] += 1 - sq / v;
    r[3] += (1 - sq / v) ** 2;
  }
  err.recon = closeScaled(g.recon, r, rtol, "recon");
  const m = g.sae.metricKeys.map((k) => ref.forward.metrics[k]);
  err.metrics = closeScaled(g.metrics, m, rtol, "metrics");
  return err;
}

/** A u32 dead mask with the given latents dead. */
export function deadMask(dSae: number, dead: number[]): Uint32Array {
  const m = new Uint32Array(dSae);
  for (const i of dead) m[i] = 1;
  return m;
}
