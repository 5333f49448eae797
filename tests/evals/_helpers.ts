/** Helpers of the eval tests: the shipped tiny GPT-2, identity / noisy SAEs, token sources. */

import type { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import type { EvalTokenSource } from "../../evals/run_evals.ts";
import type { RefEvalModel, RefEvalSae } from "../../evals/reference.ts";
import { loadModelFromDir } from "../../model/load/local.ts";
import { referenceForward } from "../../model/reference/forward.ts";
import { decodeRef, encodeRef, type RefSaeConfig } from "../../sae/reference/mod.ts";
import { createRng } from "../../util/rng.ts";
import { SAE } from "../../sae/sae.ts";

/** The shipped model's folder. */
export const MODEL_DIR = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
/** Its BOS / EOS id (the only special token). */
export const BOS = 256;

/** `[I, −I]` encoder and `[I; −I]` decoder of width d: relu(x) − relu(−x) = x exactly. */
export function identityParams(d: number): Record<string, Float32Array> {
  const W_enc = new Float32Array(2 * d * d), W_dec = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    W_enc[i * 2 * d + i] = 1;
    W_enc[i * 2 * d + d + i] = -1;
    W_dec[i * d + i] = 1;
    W_dec[(d + i) * d + i] = -1;
  }
  return { W_enc, W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) };
}

/** The identity SAE at `hookName` (optionally one head). */
export async function identitySae(
  gpu: Gpu,
  d: number,
  hookName: string,
  hookHeadIndex: number | null = null,
): Promise<SAE> {
  return await SAE.fromParams(
    { architecture: "standard", dIn: d, dSae: 2 * d, metadata: { hookName, hookHeadIndex } },
    identityParams(d),
    { gpu },
  );
}

/**
 * A "trained-ish" SAE: the identity dictionary with noise and a negative encoder bias, so that
 * it reconstructs well but not exactly and some latents stay off.
 */
export function noisyParams(
  d: number,
  arch: string,
  seed: number,
  noise = 0.04,
): Record<string, Float32Array> {
  const p = identityParams(d);
  const rng = createRng(seed);
  for (const k of ["W_enc", "W_dec"]) p[k] = p[k].map((v) => v + noise * rng.normal());
  p.b_enc = p.b_enc.map(() => -0.05 + 0.05 * rng.normal());
  p.b_dec = p.b_dec.map(() => 0.02 * rng.normal());
  if (arch === "jumprelu") p.threshold = Float32Array.from({ length: 2 * d }, () => 0.1);
  return p;
}

/** A host SAE (the `sae/reference` math) with the same config and weights as a GPU SAE. */
export async function refSae(sae: SAE): Promise<RefEvalSae> {
  const state = await sae.stateDict();
  const p = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, t.data]));
  const cfg = sae.cfg as unknown as RefSaeConfig;
  return {
    dIn: sae.cfg.dIn,
    dSae: sae.cfg.dSae,
    encode: (x, n) => encodeRef(cfg, p, x, n).featureActs,
    decode: (f, n) => decodeRef(cfg, p, f, n),
    W_enc: p.W_enc,
    W_dec: p.W_dec,
    b_enc: p.b_enc,
  };
}

const raw = await loadModelFromDir(MODEL_DIR);

/** The reference forward of the shipped model as the reference evals see it. */
export function refModel(hookName: string): RefEvalModel {
  const stop = /^blocks\.(\d+)\./.exec(hookName);
  return {
    logits: (tokens, replace) =>
      referenceForward(raw.cfg, raw.params, tokens, {
        namesFilter: [],
        hooks: replace ? (name, v) => (name === hookName ? replace(v) : undefined) : undefined,
      }).logits!,
    hookValue: (tokens) =>
      referenceForward(raw.cfg, raw.params, tokens, {
        namesFilter: [hookName],
        stopAtLayer: stop ? Number(stop[1]) + 1 : undefined,
      }).cache.get(hookName)!,
  };
}

const CORPUS = await Deno.readFile(new URL("../../data/tinyshakespeare.txt", import.meta.url));

/**
 * `n` batches `[B][T]` of Shakespeare (the model's byte tokens) from random offsets, BOS first
 * in every row and once in the middle of row 1.
 */
export function tokenBatches(n: number, B: number, T: number, seed: number): number[][][] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () =>
    Array.from({ length: B }, (_, b) => {
      const start = Math.floor(rng.uniform(0, CORPUS.length - T));
      return Array.from({ length: T }, (_, p) =>
        p === 0 || (b === 1 && p === 7) ? BOS : CORPUS[start + p]);
    }));
}

/** A token source serving `batches` in order (then failing), counting the calls. */
export function listSource(
  gpu: Gpu,
  batches: number[][][],
): EvalTokenSource & { calls: number } {
  const src = {
    calls: 0,
    options: { contextSize: batches[0][0].length, storeBatchSizePrompts: batches[0].length },
    getBatchTokens(n: number): Promise<Tensor> {
      const b = batches[src.calls++];
      if (!b) return Promise.reject(new Error("no more batches"));
      if (b.length !== n) return Promise.reject(new Error(`asked ${n} prompts, have ${b.length}`));
      return Promise.resolve(
        Tensor.from(Int32Array.from(b.flat()), [b.length, b[0].length], { gpu }),
      );
    },
  };
  return src;
}
