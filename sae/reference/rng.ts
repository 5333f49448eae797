/**
 * A small seeded PRNG (mulberry32) with uniform and normal sampling, so reference
 * initialisations and test problems are reproducible without any dependency.
 */

/** A seeded pseudo-random generator. */
export interface RefRng {
  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal N(0, 1) sample (Box–Muller). */
  normal(): number;
}

/**
 * Creates a mulberry32-based generator from a 32-bit integer seed.
 *
 * @example
 * ```ts
 * import { createRng } from "./rng.ts";
 * const a = createRng(42), b = createRng(42);
 * if (a.next() !== b.next()) throw new Error("not reproducible");
 * ```
 */
export function createRng(seed: number): RefRng {
  let state = seed >>> 0;
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  // Two 32-bit draws give a 53-bit mantissa (the top 27 + 26 bits).
  const next = (): number => ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
  let spare: number | null = null;
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}
