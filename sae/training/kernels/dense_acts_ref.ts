/**
 * Plain-TS references of the dense activation kernels (`dense_acts.ts`): the forward
 * activation and the fused backward with its per-latent sums, float64 inside.
 * @module
 */

/** Per-latent sums of each architecture's backward pass, in order:
 * standard: fired, Σ w·f (w = (f·n/T)^{p−1}, 1 for p = 1), Σ ∂L/∂h;
 * jumprelu: fired, l0 term (count or Σ tanh), Σ ReLU(θ − h) on dead, ∂L/∂θ, ∂L/∂n, Σ ∂L/∂h;
 * gated: fired, Σ ReLU(π_gate), ∂L/∂b_mag, ∂L/∂r_mag, ∂L/∂b_gate, Σ (∂L/∂z). */
export const DENSE_Q = { standard: 3, jumprelu: 6, gated: 6 } as const;

/**
 * Reference of `denseForward`: standard → [ReLU(h), dead ? exp(h) : 0]; jumprelu →
 * [h·1[h > max(θ, 0)]]; gated (h = z) → [f, ReLU(π_gate)] (concatenated as `[2·rows, n]`; with
 * `hAux`, the second half is ReLU(z_aux + b_gate)).
 *
 * @example
 * ```ts
 * import { denseForwardRef } from "./dense_acts_ref.ts";
 * const [f] = denseForwardRef("jumprelu", new Float32Array([0.5, 2]), 1, 2,
 *   { threshold: new Float32Array([1, 1]) });
 * if (f[0] !== 0 || f[1] !== 2) throw new Error(String(f));
 * ```
 */
export function denseForwardRef(
  arch: "standard" | "jumprelu" | "gated",
  h: Float32Array,
  rows: number,
  n: number,
  p: {
    dead?: Uint32Array;
    threshold?: Float32Array;
    b_gate?: Float32Array;
    r_mag?: Float32Array;
    b_mag?: Float32Array;
    /** gated split mode: the aux gate's own encoder output `[rows, n]`. */
    hAux?: Float32Array;
  },
): Float32Array[] {
  const count = rows * n;
  if (arch === "standard") {
    const f = new Float32Array(count), ed = new Float32Array(count);
    for (let k = 0; k < count; k++) {
      f[k] = Math.max(h[k], 0);
      ed[k] = p.dead![k % n] ? Math.exp(h[k]) : 0;
    }
    return [f, ed];
  }
  if (arch === "jumprelu") {
    return [Float32Array.from(h, (v, k) => (v > Math.max(p.threshold![k % n], 0) ? v : 0))];
  }
  const fa = new Float32Array(2 * count);
  for (let k = 0; k < count; k++) {
    const i = k % n, pg = h[k] + p.b_gate![i], pm = h[k] * Math.exp(p.r_mag![i]) + p.b_mag![i];
    fa[k] = pg > 0 && pm > 0 ? pm : 0;
    fa[count + k] = Math.max(p.hAux ? p.hAux[k] + p.b_gate![i] : pg, 0);
  }
  return [fa];
}

/** Arguments of {@link denseBackwardRef} (all rows at once). */
export interface DenseBackwardRefArgs {
  rows: number;
  n: number;
  B: number;
  /** standard: f; jumprelu: h; gated: z. */
  acts: Float32Array;
  /** gated split mode: z_aux, the aux gate's own encoder output (∂L/∂z_aux then follows ∂L/∂z). */
  actsAux?: Float32Array;
  /** ∂L/∂f (gated: `[2·rows, n]`). */
  gf: Float32Array;
  norms: Float32Array;
  coef: number;
  lp?: number;
  /** standard, lp ≠ 1: T per row. */
  tokenNorm?: Float32Array;
  expDead?: Float32Array;
  ghostDot?: Float32Array;
  threshold?: Float32Array;
  eps?: number;
  tanhScale?: number;
  tanh?: boolean;
  ste?: boolean;
  /** jumprelu: pre-act loss active (coefficient set and some latent dead) and its mask. */
  preCoef?: number;
  dead?: Uint32Array;
  b_gate?: Float32Array;
  r_mag?: Float32Array;
  b_mag?: Float32Array;
}

/** Reference of `denseBackward`: ∂L/∂h `[rows, n]` and the per-latent sums `[Q, n]`. */
export function denseBackwardRef(
  arch: "standard" | "jumprelu" | "gated",
  a: DenseBackwardRefArgs,
): { gh: Float32Array; sums: Float32Array } {
  const { rows, n } = a;
  const q = DENSE_Q[arch];
  const split = arch === "gated" && !!a.actsAux;
  const sums = new Float64Array(q * n), gh = new Float32Array((split ? 2 : 1) * rows * n);
  const li = a.coef / a.B;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const k = r * n + i, nrm = a.norms[i];
      const acc = (j: number, v: number) => (sums[j * n + i] += v);
      if (arch === "standard") {
        const f = a.acts[k];
        let g = 0;
        if (f > 0) {
          const lp = a.lp ?? 1;
          const w = lp === 1 ? 1 : ((f * nrm) / a.tokenNorm![r]) ** (lp - 1);
          g = a.gf[k] + li * w * nrm;
          acc(0, 1);
          acc(1, w * f);
        }
        if (a.expDead) g += a.expDead[k] * a.ghostDot![k];
        gh[k] = g;
        acc(2, g);
      } else if (arch === "jumprelu") {
        const h = a.acts[k], th = Math.max(a.threshold![i], 0), eps = a.eps!;
        const on = h > th, f = on ? h : 0;
        let g = a.gf[k];
        if (a.tanh) {
          const t = Math.tanh(a.tanhScale! * f * nrm);
          const dd = li * a.tanhScale! * (1 - t * t);
          g += dd * nrm;
          acc(4, dd * f);
          acc(1, t);
        } else if (on) acc(1, 1);
        let out = on ? g : 0;
        const u = (h - th) / eps;
        if (u > -0.5 && u < 0.5) {
          const tg = (th / eps) * g + (a.tanh ? 0 : li) / eps;
          acc(3, -tg);
          if (a.ste) out += tg;
        }
        if (a.preCoef !== undefined && a.dead && a.dead[i] && a.dead.some((v) => v !== 0)) {
          const u2 = th - h;
          if (u2 > 0) {
            const pc = a.preCoef / a.B;
            acc(3, pc * nrm);
            out -= pc * nrm;
            acc(4, pc * u2);
            acc(2, u2);
          }
        }
        if (on) acc(0, 1);
        gh[k] = out;
        acc(5, out);
      } else {
        const z = a.acts[k], e = Math.exp(a.r_mag![i]);
        const pg = z + a.b_gate![i], pm = z * e + a.b_mag![i];
        const g = a.gf[k];
        let gz = 0, gg = 0;
        if (pg > 0 && pm > 0) {
          acc(0, 1);
          acc(2, g);
          acc(3, g * z * e);
          gz = g * e;
        }
        const pa = a.actsAux ? a.actsAux[k] + a.b_gate![i] : pg;
        if (pa > 0) {
          gg = a.gf[rows * n + k] + li * nrm;
          acc(1, pa);
        }
        acc(4, gg);
        if (a.actsAux) {
          gh[k] = gz;
          gh[rows * n + k] = gg;
        } else gh[k] = gz + gg;
        acc(5, gz + gg);
      }
    }
  }
  return { gh, sums: Float32Array.from(sums) };
}
