/** Shared helpers for the reference-SAE tests: random small problems and FD gradient checks. */
import { assertAllClose } from "../../assert.ts";
import { createRng } from "../../../util/rng.ts";
import type { RefSaeConfig, TrainOptions } from "../../../sae/reference/common.ts";
import { trainingBackwardRef, trainingForwardRef } from "../../../sae/reference/sae.ts";

export type Params64 = Record<string, Float64Array>;

/** Small config: dIn 5, dSae 7 (override anything). */
export function smallCfg(architecture: string, extra: Partial<RefSaeConfig> = {}): RefSaeConfig {
  return {
    architecture,
    dIn: 5,
    dSae: 7,
    applyBDecToInput: true,
    normalizeActivations: "none",
    ...extra,
  };
}

/** Random float64 parameters for `cfg` (normal entries, scaled) and random input x [n, dIn]. */
export function randomProblem(
  cfg: RefSaeConfig,
  n: number,
  seed: number,
): { p: Params64; x: Float64Array } {
  const rng = createRng(seed);
  const normal = (len: number, s: number, mean = 0) =>
    Float64Array.from({ length: len }, () => mean + s * rng.normal());
  const { dIn, dSae } = cfg;
  const p: Params64 = {
    W_enc: normal(dIn * dSae, 0.6),
    W_dec: normal(dSae * dIn, 0.6),
    b_dec: normal(dIn, 0.2),
  };
  switch (cfg.architecture) {
    case "gated":
      p.b_gate = normal(dSae, 0.3);
      p.r_mag = normal(dSae, 0.3);
      p.b_mag = normal(dSae, 0.3);
      break;
    case "jumprelu":
      p.b_enc = normal(dSae, 0.3);
      p.threshold = normal(dSae, 0.2, 0.3);
      break;
    case "batchtopk":
    case "matryoshka_batchtopk":
      p.b_enc = normal(dSae, 0.3);
      p.topk_threshold = Float64Array.of(0.5);
      break;
    default:
      p.b_enc = normal(dSae, 0.3);
  }
  return { p, x: normal(n * dIn, 1) };
}

/** Central-difference gradient of the total loss w.r.t. every entry of `params[name]`. */
export function fdGrad(
  cfg: RefSaeConfig,
  p: Params64,
  x: Float64Array,
  n: number,
  opts: TrainOptions,
  name: string,
  eps = 1e-6,
): Float64Array {
  const t = p[name];
  const g = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const orig = t[i];
    t[i] = orig + eps;
    const up = trainingForwardRef(cfg, p, x, n, opts).loss;
    t[i] = orig - eps;
    const down = trainingForwardRef(cfg, p, x, n, opts).loss;
    t[i] = orig;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** Asserts analytic gradients equal central differences for each listed parameter. */
export function checkGradients(
  cfg: RefSaeConfig,
  p: Params64,
  x: Float64Array,
  n: number,
  opts: TrainOptions,
  names: string[],
): Record<string, Float32Array> {
  const grads = trainingBackwardRef(cfg, p, x, n, opts);
  for (const name of names) {
    const fd = fdGrad(cfg, p, x, n, opts, name);
    assertAllClose(grads[name], fd, 2e-6, 2e-5, `${cfg.architecture} ∂loss/∂${name}`);
  }
  return grads;
}

/** Sum of |v| (used to assert a gradient is not trivially zero). */
export function l1(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += Math.abs(v[i]);
  return s;
}

/** Central differences of any float64 function of the params (e.g. a frozen-factor surrogate). */
export function fdSurrogate(
  p: Params64,
  names: string[],
  fn: () => number,
  eps = 1e-6,
): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const name of names) {
    const t = p[name];
    out[name] = new Float64Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const o = t[i];
      t[i] = o + eps;
      const up = fn();
      t[i] = o - eps;
      const down = fn();
      t[i] = o;
      out[name][i] = (up - down) / (2 * eps);
    }
  }
  return out;
}

/**
 * Independent aux-k surrogate on dead latents in [lo, hi) with a FROZEN residual r (it is
 * detached in SAELens): scale · mean_b Σ_j (Σ_{i ∈ top-k_aux dead} (h_i/n_i)·W_dec[i, j] − r_j)²,
 * h rescaled by n when `rescaleActsByDecoderNorm` (no coefficient, no b_dec).
 */
export function auxKSurrogate(
  cfg: RefSaeConfig,
  p: Params64,
  x: ArrayLike<number>,
  n: number,
  deadMask: Uint8Array,
  lo: number,
  hi: number,
  r: ArrayLike<number>,
): number {
  const { dIn, dSae } = cfg, rescale = cfg.rescaleActsByDecoderNorm!;
  const norms = Array.from(
    { length: dSae },
    (_, i) => rescale ? Math.hypot(...p.W_dec.subarray(i * dIn, (i + 1) * dIn)) : 1,
  );
  const dead = [...Array(hi - lo).keys()].map((t) => t + lo).filter((i) => deadMask[i]);
  if (dead.length === 0) return 0;
  const kAux0 = Math.floor(dIn / 2),
    scale = Math.min(dead.length / kAux0, 1),
    kAux = Math.min(kAux0, dead.length);
  let total = 0;
  for (let b = 0; b < n; b++) {
    const hs = (i: number) => {
      let v = p.b_enc[i];
      for (let j = 0; j < dIn; j++) {
        v += (x[b * dIn + j] - (cfg.applyBDecToInput ? p.b_dec[j] : 0)) * p.W_enc[j * dSae + i];
      }
      return v * norms[i];
    };
    const aux = [...dead].sort((a, c) => hs(c) - hs(a)).slice(0, kAux);
    for (let j = 0; j < dIn; j++) {
      let rec = 0;
      for (const i of aux) rec += (hs(i) / norms[i]) * p.W_dec[i * dIn + j];
      total += (rec - r[b * dIn + j]) ** 2;
    }
  }
  return scale * total / n;
}
