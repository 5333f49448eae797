/**
 * Private helpers of the sparse TopK-family kernels: the Matryoshka level uniform, the vector
 * width of `[·, d]` rows, and the WGSL validity test of an entry slot.
 * @module
 */

import { INVALID } from "./select.ts";
import { TrainSaeError } from "../errors.ts";

/** Most Matryoshka levels the kernels accept. */
export const MAX_LEVELS = 16;

/** Uniform with 8 u32 fields then 16 level widths. */
export const LEVEL_STRUCT = (names: string[]) =>
  `struct U { ${names.map((n) => `${n}: u32`).join(", ")}, lev: array<vec4<u32>, ${
    MAX_LEVELS / 4
  }> }
fn width(l: u32) -> u32 { return u.lev[l / 4u][l % 4u]; }
fn levelOf(i: u32) -> u32 {
  var l = 0u;
  loop { if (l + 1u >= u.m || i < width(l)) { break; } l++; }
  return l;
}`;

export function levelUniform(fields: number[], widths: number[]): Uint32Array {
  if (fields.length !== 8) throw new TrainSaeError("levelUniform: 8 fields expected");
  if (widths.length > MAX_LEVELS) {
    throw new TrainSaeError(`matryoshka: at most ${MAX_LEVELS} levels, got ${widths.length}`);
  }
  const w = new Uint32Array(8 + MAX_LEVELS);
  w.set(fields);
  w.set(widths, 8);
  return w;
}

/**
 * WGSL: whether entry slot e holds a selected latent (main: below RP[B] and not INVALID; aux:
 * within its row's AUXN count). Needs ENT (as `array<vec4<u32>>`), RP, AUXN and
 * u.{auxBase, kA, B}.
 */
export const VALID = /* wgsl */ `fn validEntry(e: u32) -> bool {
  if (e >= u.auxBase) {
    let q = e - u.auxBase;
    return (q % u.kA) < AUXN[q / u.kA];
  }
  return e < RP[u.B] && ENT[e].x != ${INVALID}u;
}`;

/**
 * WGSL for vectors of width `v` (4 when d_in is a multiple of 4, else 1): `T`, `vdot` and the
 * zero `T0`. Rows of `[·, d]` matrices are then arrays of d/v values of T.
 */
export function wgslVec(v: 1 | 4): string {
  return v === 4
    ? "alias T = vec4<f32>;\nfn vdot(a: T, b: T) -> f32 { return dot(a, b); }\nconst T0 = vec4<f32>(0.0);"
    : "alias T = f32;\nfn vdot(a: T, b: T) -> f32 { return a * b; }\nconst T0 = 0.0;";
}

/** Vector width for rows of `d` values. */
export function vecWidth(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

/** T-values per invocation of the decode. */
