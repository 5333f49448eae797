/**
 * Training-step checks at the shapes users train (d_in 128, d_sae 2048, batch 128; transcoders
 * with d_out 96-160): one GPU step of `TrainingSAE` against `trainingStepRef` for every trainable
 * architecture, comparing losses,
 * x̂, f, every gradient, firing counts, recon sums and metrics (tolerance 1e-4 of each tensor's
 * largest value). TopK-family cases take k past the 32-entry chunk of the sparse backward
 * (k 16 / 48 / 64 / 200), aux-k with half of the latents dead (⌊d_in/2⌋ = 64 aux slots per row)
 * and Matryoshka widths that cross the kernels' chunk and workgroup boundaries.
 *
 * Run by `tests/realistic/train_step_*_test.ts` and by `deno task gpu-check`.
 * @module
 */

import type { Gpu } from "../../gpu/device.ts";
import type { TrainingExtras } from "../../sae/training/train_sae.ts";
import {
  compareStep,
  deadMask,
  gpuStep,
  type Problem,
  problem,
} from "../sae/training/_train_sae_helpers.ts";

/** One training-step check. */
export interface TrainStepCase {
  name: string;
  architecture: string;
  /** Config fields besides the architecture (dIn/dSae default to 128/2048). */
  fields: Record<string, unknown>;
  batch: number;
  /** Coefficient values in `sae.coefficients()` order, with their reference names. */
  coef: [string, number][];
  /** Dead latents: none (no mask), `"half"` (every other latent) or an explicit list. */
  dead?: "half" | number[];
  extras?: TrainingExtras;
  /** Micro-batch windows of at most this many rows. */
  windows?: number;
  seed?: number;
  /** Tolerance (scaled per tensor); default 1e-4. */
  rtol?: number;
  /** Unit-norm decoder rows (matching pursuit assumes them; SAELens initialises them so). */
  unitDecoderRows?: boolean;
}

/** Realistic shape of the checks. */
export const D_IN = 128, D_SAE = 2048, BATCH = 128;

const half = "half" as const;

/** Every trainable architecture at d_in 128, d_sae 2048, batch 128. */
export const TRAIN_STEP_CASES: TrainStepCase[] = [
  { name: "standard l1", architecture: "standard", fields: {}, batch: BATCH, coef: [["l1", 5]] },
  {
    name: "standard lp 2, ghost grads, half dead, windows of 48",
    architecture: "standard",
    fields: { lpNorm: 2 },
    batch: BATCH,
    coef: [["l1", 2]],
    dead: half,
    extras: { useGhostGrads: true },
    windows: 48,
    // The legacy ghost loss rescales each element by resid² / (diff² + 1e-6): where the scaled
    // ghost output almost equals the residual (|diff| ≈ 5e-4 of 16k elements here), f32
    // rounding of diff moves that element's gradient by percents. Measured: worst 3.4e-4 of
    // the largest gradient (2e-7 without ghost grads); a wrong kernel is off by O(1).
    rtol: 2e-3,
  },
  { name: "gated", architecture: "gated", fields: {}, batch: BATCH, coef: [["l1", 3]] },
  {
    name: "gated layer_norm, windows of 48",
    architecture: "gated",
    fields: { normalizeActivations: "layer_norm" },
    batch: BATCH,
    coef: [["l1", 3]],
    windows: 48,
  },
  {
    name: "jumprelu step, pre-act loss, half dead",
    architecture: "jumprelu",
    fields: { preActLossCoefficient: 0.5, jumpreluBandwidth: 0.05 },
    batch: BATCH,
    coef: [["l0", 0.8]],
    dead: half,
  },
  {
    name: "jumprelu tanh, straight-through",
    architecture: "jumprelu",
    fields: { jumpreluSparsityLossMode: "tanh", jumpreluBandwidth: 0.05 },
    batch: BATCH,
    coef: [["l0", 0.8]],
    extras: { jumpreluSteToInput: true },
  },
  {
    name: "transcoder d_out 96, lp 1.5, windows of 48",
    architecture: "transcoder",
    fields: { dOut: 96, applyBDecToInput: false, lpNorm: 1.5 },
    batch: BATCH,
    coef: [["l1", 2]],
    windows: 48,
  },
  {
    name: "skip transcoder d_out 160",
    architecture: "skip_transcoder",
    fields: { dOut: 160, applyBDecToInput: false },
    batch: BATCH,
    coef: [["l1", 2]],
  },
  {
    name: "jumprelu transcoder d_out 96, pre-act loss, half dead",
    architecture: "jumprelu_transcoder",
    fields: { dOut: 96, applyBDecToInput: false, preActLossCoefficient: 0.5 },
    batch: BATCH,
    coef: [["l0", 0.8]],
    dead: half,
  },
  {
    name: "jumprelu skip transcoder d_out 128, tanh, straight-through, windows of 48",
    architecture: "jumprelu_skip_transcoder",
    fields: { dOut: 128, applyBDecToInput: false, jumpreluSparsityLossMode: "tanh" },
    batch: BATCH,
    coef: [["l0", 0.8]],
    extras: { jumpreluSteToInput: true },
    windows: 48,
  },
  {
    name: "matching pursuit, 32 iterations, b_dec on the input, windows of 48",
    architecture: "matching_pursuit",
    fields: { maxIterations: 32, applyBDecToInput: true, decoderInitNorm: 1 },
    batch: BATCH,
    coef: [],
    windows: 48,
    unitDecoderRows: true,
  },
  { name: "topk k 16", architecture: "topk", fields: { k: 16 }, batch: BATCH, coef: [] },
  { name: "topk k 48", architecture: "topk", fields: { k: 48 }, batch: BATCH, coef: [] },
  {
    name: "topk k 64, half dead (aux-k 64)",
    architecture: "topk",
    fields: { k: 64 },
    batch: BATCH,
    coef: [],
    dead: half,
  },
  {
    name: "topk k 200, no rescale, half dead, windows of 48",
    architecture: "topk",
    fields: { k: 200, rescaleActsByDecoderNorm: false },
    batch: BATCH,
    coef: [],
    dead: half,
    windows: 48,
  },
  {
    name: "topk k 40, 20 dead (aux-k takes them all)",
    architecture: "topk",
    fields: { k: 40 },
    batch: BATCH,
    coef: [],
    dead: Array.from({ length: 20 }, (_, i) => 97 * i + 5),
  },
  {
    // 512·160 + 512·64 aux entries: the entry sort's chunks grow past 256 entries.
    name: "topk k 160, batch 512, half dead",
    architecture: "topk",
    fields: { k: 160 },
    batch: 512,
    coef: [],
    dead: half,
  },
  { name: "batchtopk k 16", architecture: "batchtopk", fields: { k: 16 }, batch: BATCH, coef: [] },
  {
    name: "batchtopk k 64, half dead",
    architecture: "batchtopk",
    fields: { k: 64 },
    batch: BATCH,
    coef: [],
    dead: half,
  },
  {
    name: "batchtopk k 200, no rescale, windows of 48",
    architecture: "batchtopk",
    fields: { k: 200, rescaleActsByDecoderNorm: false },
    batch: BATCH,
    coef: [],
    windows: 48,
  },
  {
    name: "matryoshka k 64, widths [65, 300, 1000] (+2048), half dead",
    architecture: "matryoshka_batchtopk",
    fields: { k: 64, matryoshkaWidths: [65, 300, 1000] },
    batch: BATCH,
    coef: [],
    dead: half,
  },
  {
    name: "matryoshka k 64, per-level aux loss, widths [65, 300, 1000] (+2048), half dead",
    architecture: "matryoshka_batchtopk",
    fields: { k: 64, matryoshkaWidths: [65, 300, 1000] },
    batch: BATCH,
    coef: [],
    dead: half,
    extras: { useMatryoshkaAuxLoss: true },
  },
  {
    name: "matryoshka k 40, per-level aux loss, widths [256, 513, 1024], no rescale, windows of 48",
    architecture: "matryoshka_batchtopk",
    fields: { k: 40, matryoshkaWidths: [256, 513, 1024], rescaleActsByDecoderNorm: false },
    batch: BATCH,
    coef: [],
    dead: Array.from({ length: 300 }, (_, i) => 7 * i + 3),
    extras: { useMatryoshkaAuxLoss: true },
    windows: 48,
  },
  {
    name: "matryoshka k 200, widths [256, 513, 1024, 2048], no rescale, windows of 48",
    architecture: "matryoshka_batchtopk",
    fields: { k: 200, matryoshkaWidths: [256, 513, 1024, 2048], rescaleActsByDecoderNorm: false },
    batch: BATCH,
    coef: [],
    windows: 48,
  },
];

/**
 * The problem of a case: `problem()`'s random parameters with W_enc scaled to std 1/√d_in, so
 * that pre-activations are O(1) as at SAELens's init.
 */
export function caseProblem(c: TrainStepCase): Problem {
  const pb = problem(
    { architecture: c.architecture, dIn: D_IN, dSae: D_SAE, ...c.fields },
    c.batch,
    c.seed ?? 1234,
  );
  const s = 1 / (0.5 * Math.sqrt(pb.cfg.dIn));
  pb.params.W_enc = pb.params.W_enc.map((v) => v * s);
  if (c.unitDecoderRows) {
    const w = pb.params.W_dec, d = w.length / pb.cfg.dSae;
    for (let i = 0; i < pb.cfg.dSae; i++) {
      const row = w.subarray(i * d, (i + 1) * d), len = Math.hypot(...row);
      for (let j = 0; j < d; j++) row[j] /= len;
    }
  }
  return pb;
}

/**
 * Runs one case (GPU step, then the reference) and throws on any mismatch; returns the worst
 * scaled error per compared tensor and the step's mean L0.
 */
export async function runTrainStepCase(
  gpu: Gpu,
  c: TrainStepCase,
): Promise<{ errors: Record<string, number>; l0: number }> {
  const pb = caseProblem(c);
  const n = pb.cfg.dSae;
  const dead = c.dead === undefined
    ? null
    : deadMask(n, c.dead === "half" ? Array.from({ length: n / 2 }, (_, i) => 2 * i) : c.dead);
  const g = await gpuStep(gpu, pb, c.coef.map(([, v]) => v), dead, {
    ...c.extras,
    maxWindowRows: c.windows,
  });
  try {
    const errors = compareStep(pb, g, Object.fromEntries(c.coef), dead, c.extras ?? {}, c.rtol);
    return { errors, l0: g.l0Sum / pb.n };
  } finally {
    g.sae.dispose();
  }
}
