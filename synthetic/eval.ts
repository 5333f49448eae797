/**
 * Evaluating an SAE against the synthetic model's ground truth (SAELens
 * `eval_sae_on_synthetic_data`): fresh samples from an evaluation stream of the model (stream 1
 * by default, never seen in training), encoded and decoded by the SAE on the GPU, read back and
 * scored by {@link SyntheticMetrics}. A training SAE is evaluated as the inference SAE it exports
 * (`TrainingSAE.exportInference`: TopK norms folded, BatchTopK and Matryoshka as JumpReLU with
 * the learned global threshold, so each sample is encoded on its own).
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { readAll } from "../gpu/tensor.ts";
import { SAE } from "../sae/sae.ts";
import type { TrainingSAE } from "../sae/training/train_sae.ts";
import { SyntheticDecoder } from "./decode.ts";
import { SyntheticError } from "./errors.ts";
import { type SyntheticEvalResult, SyntheticMetrics } from "./metrics.ts";
import type { SyntheticModel } from "./model.ts";

/** Options of {@link evalSaeOnSynthetic}. */
export interface SyntheticEvalOptions {
  /** Samples to evaluate (rounded up to whole blocks; default 16384). */
  samples?: number;
  /** Rows per evaluated block (default 4096). */
  blockRows?: number;
  /** Model stream to sample (default 1; training streams use 0). */
  stream?: number;
}

/**
 * The inference SAE a training SAE exports (a new GPU SAE the caller disposes).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { createTrainingConfig } from "../sae/config.ts";
 * import { TrainingSAE } from "../sae/training/train_sae.ts";
 * import { inferenceSaeOf } from "./eval.ts";
 * const gpu = await getGpu();
 * const t = TrainingSAE.create(createTrainingConfig({ architecture: "batchtopk", dIn: 4, dSae: 8, k: 2 }), { gpu });
 * const sae = await inferenceSaeOf(t);
 * if (sae.cfg.architecture !== "jumprelu") throw new Error(sae.cfg.architecture);
 * sae.dispose();
 * t.dispose();
 * ```
 */
export async function inferenceSaeOf(sae: TrainingSAE): Promise<SAE> {
  const { cfg, params } = await sae.exportInference();
  return await SAE.fromParams(cfg, Object.fromEntries(params), { gpu: sae.gpu });
}

/**
 * Scores `sae` (an inference SAE, or a training SAE through {@link inferenceSaeOf}) on
 * `options.samples` fresh samples of `model`. Blocks are deterministic, so two SAEs evaluated
 * with the same options see the same samples.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { SAE } from "../sae/sae.ts";
 * import { evalSaeOnSynthetic } from "./eval.ts";
 * import { SyntheticModel } from "./model.ts";
 * const gpu = await getGpu();
 * const model = new SyntheticModel({ dIn: 8, nFeatures: 8, seed: 1 });
 * // An SAE whose encoder and decoder are the true dictionary recovers it exactly.
 * const W_dec = model.dictionary, W_enc = new Float32Array(64);
 * for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) W_enc[j * 8 + i] = W_dec[i * 8 + j];
 * const sae = await SAE.fromParams(
 *   { architecture: "standard", dIn: 8, dSae: 8 },
 *   { W_enc, W_dec, b_enc: new Float32Array(8), b_dec: new Float32Array(8) },
 *   { gpu },
 * );
 * const r = await evalSaeOnSynthetic(sae, model, { samples: 512, blockRows: 256 });
 * if (Math.abs(r.mcc - 1) > 1e-6 || r.samples !== 512) throw new Error(JSON.stringify(r));
 * sae.dispose();
 * ```
 */
export async function evalSaeOnSynthetic(
  sae: SAE | TrainingSAE,
  model: SyntheticModel,
  options: SyntheticEvalOptions = {},
): Promise<SyntheticEvalResult> {
  const samples = options.samples ?? 16384;
  const blockRows = options.blockRows ?? 4096;
  const stream = options.stream ?? 1;
  for (const [name, v] of [["samples", samples], ["blockRows", blockRows]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new SyntheticError(`evalSaeOnSynthetic: ${name} is ${v}, expected an integer >= 1`);
    }
  }
  const own = sae instanceof SAE ? null : await inferenceSaeOf(sae);
  const inf = own ?? (sae as SAE);
  try {
    if (inf.cfg.dIn !== model.dIn) {
      throw new SyntheticError(
        `evalSaeOnSynthetic: the SAE's d_in is ${inf.cfg.dIn}, the model's width is ${model.dIn}`,
      );
    }
    const gpu: Gpu = inf.gpu;
    const decoder = new SyntheticDecoder(model, gpu);
    try {
      const metrics = new SyntheticMetrics({
        decoder: await inf.W_dec.toArray() as Float32Array,
        truth: model.dictionary,
        dIn: model.dIn,
      });
      for (let b = 0; b * blockRows < samples; b++) {
        const rows = Math.min(blockRows, samples - b * blockRows);
        const codes = model.sampleBlock(b, rows, stream);
        using x = decoder.decode(codes);
        using f = inf.encode(x);
        using xHat = inf.decode(f);
        const [xs, fs, hs] = await readAll([x, f, xHat]);
        metrics.add({
          x: xs as Float32Array,
          xHat: hs as Float32Array,
          latents: fs as Float32Array,
          codes,
        });
      }
      return metrics.result();
    } finally {
      decoder.dispose();
    }
  } finally {
    own?.dispose();
  }
}
