/**
 * saeflow's one seeded pseudo-random generator, Mulberry32, and what is drawn from it: shuffles
 * and permutations (the mixing buffer, activation-buffer permutations), Gaussian draws (the
 * synthetic generator), and the float64 uniform/normal draws of reference initialisations and
 * test problems (`createRng`). SAELens draws from torch's global RNG and never applies the
 * runner's `seed` (spec §11); saeflow uses an explicit, checkpointable generator instead.
 * @module
 */

import { SaeflowError } from "./errors.ts";

/** A bad argument to a random-number function (names it and what was expected). */
export class RngError extends SaeflowError {}

function requireInt(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RngError(`${name} is ${value}, expected an integer >= ${min}`);
  }
}

/** A source of uniformly distributed 32-bit integers whose whole state is one number. */
export interface Rng {
  /** Next uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** Next uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number;
  /** Uniform integer in [0, n), unbiased (rejection sampling); `n` in [1, 2^32]. */
  nextInt(n: number): number;
  /** The generator's full state (restore it with `setState`). */
  getState(): number;
  /** Restores a state previously returned by `getState`. */
  setState(state: number): void;
}

const TWO_32 = 4294967296;

/**
 * Mulberry32 (Tommy Ettinger's 32-bit generator): tiny, fast, passes gjrand/PractRand at the
 * sizes we use, and its state is a single uint32, so checkpointing it is trivial.
 *
 * @example
 * ```ts
 * import { Mulberry32 } from "./rng.ts";
 * const a = new Mulberry32(7), b = new Mulberry32(7);
 * if (a.nextUint32() !== b.nextUint32()) throw new Error("same seed must give same stream");
 * ```
 */
export class Mulberry32 implements Rng {
  #state: number;

  /** Seeds the generator; any finite number is reduced to uint32. */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new RngError(`rng seed is ${seed}, expected a number`);
    this.#state = seed >>> 0;
  }

  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  nextFloat(): number {
    return this.nextUint32() / TWO_32;
  }

  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_32) {
      throw new RngError(`nextInt bound is ${n}, expected an integer in [1, 2^32]`);
    }
    // Reject the top partial bucket so every residue is equally likely.
    const limit = TWO_32 - (TWO_32 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  getState(): number {
    return this.#state;
  }

  setState(state: number): void {
    if (!Number.isInteger(state) || state < 0 || state >= TWO_32) {
      throw new RngError(`rng state is ${state}, expected a uint32`);
    }
    this.#state = state;
  }
}

/**
 * A uniformly random permutation of 0..n−1 (Fisher–Yates), written into `out` when given
 * (its first `n` entries) so hot loops can reuse one buffer.
 *
 * @example
 * ```ts
 * import { Mulberry32, randomPermutation } from "./rng.ts";
 * const p = randomPermutation(5, new Mulberry32(1));
 * if ([...p].sort().join() !== "0,1,2,3,4") throw new Error("not a permutation");
 * ```
 */
export function randomPermutation(n: number, rng: Rng, out?: Uint32Array): Uint32Array {
  requireInt(n, "permutation length", 0);
  if (out !== undefined && out.length < n) {
    throw new RngError(`permutation buffer has length ${out.length}, expected >= ${n}`);
  }
  const perm = out ?? new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  shuffleInPlace(perm, rng, n);
  return perm;
}

/**
 * Shuffles the first `n` entries (default: all) of `values` in place (Fisher–Yates).
 *
 * @example
 * ```ts
 * import { Mulberry32, shuffleInPlace } from "./rng.ts";
 * const v = Int32Array.of(1, 2, 3);
 * shuffleInPlace(v, new Mulberry32(3));
 * if (v.length !== 3) throw new Error("length changed");
 * ```
 */
export function shuffleInPlace(
  values: { [i: number]: number; length: number },
  rng: Rng,
  n: number = values.length,
): void {
  if (n > values.length) {
    throw new RngError(`shuffle length ${n} exceeds the array length ${values.length}`);
  }
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = values[i];
    values[i] = values[j];
    values[j] = tmp;
  }
}

/**
 * The uniform floats in [0, 1) of a {@link Mulberry32} stream seeded with `seed`, as a function
 * (`nextFloat` of a fresh generator): the shorthand of tests and fixtures.
 *
 * @example
 * ```ts
 * import { Mulberry32, mulberry32 } from "./rng.ts";
 * const f = mulberry32(9), g = new Mulberry32(9);
 * if (f() !== g.nextFloat() || f() !== g.nextFloat()) throw new Error("not the same stream");
 * ```
 */
export function mulberry32(seed: number): () => number {
  const rng = new Mulberry32(seed);
  return () => rng.nextFloat();
}

/**
 * Standard-normal draws (Box–Muller; the second value of each pair is kept for the next call),
 * reproducible from the state of `rng`.
 *
 * @example
 * ```ts
 * import { GaussianSource, Mulberry32 } from "./rng.ts";
 * const g = new GaussianSource(new Mulberry32(1));
 * let s = 0, s2 = 0;
 * for (let i = 0; i < 20000; i++) { const z = g.next(); s += z; s2 += z * z; }
 * if (Math.abs(s / 20000) > 0.05 || Math.abs(s2 / 20000 - 1) > 0.05) throw new Error();
 * ```
 */
export class GaussianSource {
  #spare = 0;
  #hasSpare = false;
  /** Draws from `rng` (which the caller may also use directly). */
  constructor(readonly rng: Rng) {}

  /** One N(0, 1) value. */
  next(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const u = 1 - this.rng.nextFloat(); // (0, 1]
    const v = this.rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    this.#hasSpare = true;
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** Float64 draws: what reference initialisations and test problems take. */
export interface RefRng {
  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal N(0, 1) sample (Box–Muller). */
  normal(): number;
}

/**
 * {@link RefRng} on a {@link Mulberry32} stream: a uniform takes two 32-bit draws (the top 27 + 26
 * bits make a 53-bit mantissa); normals are Box–Muller over two uniforms (u = 0 redrawn), the
 * second value of each pair kept for the next call.
 *
 * @example
 * ```ts
 * import { Mulberry32Float64 } from "./rng.ts";
 * const a = new Mulberry32Float64(42), b = new Mulberry32Float64(42);
 * if (a.normal() !== b.normal() || a.next() !== b.next()) throw new Error("not reproducible");
 * ```
 */
export class Mulberry32Float64 implements RefRng {
  #bits: Mulberry32;
  #spare: number | null = null;

  /** Seeds the stream (reduced to uint32, as {@link Mulberry32}). */
  constructor(seed: number) {
    this.#bits = new Mulberry32(seed);
  }

  // Bound (arrow) methods: callers may pass `rng.next` or `rng.normal` around on their own.

  /** Uniform float in [0, 1) with 53 random bits. */
  readonly next = (): number => {
    const hi = this.#bits.nextUint32() >>> 5, lo = this.#bits.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };

  /** Uniform float in [lo, hi). */
  readonly uniform = (lo: number, hi: number): number => lo + (hi - lo) * this.next();

  /** Standard normal N(0, 1) sample (Box–Muller). */
  readonly normal = (): number => {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/**
 * A {@link RefRng} seeded with the 32-bit integer `seed` (a {@link Mulberry32Float64}).
 *
 * @example
 * ```ts
 * import { createRng } from "./rng.ts";
 * const a = createRng(42), b = createRng(42);
 * if (a.next() !== b.next()) throw new Error("not reproducible");
 * ```
 */
export function createRng(seed: number): RefRng {
  return new Mulberry32Float64(seed);
}
