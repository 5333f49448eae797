/**
 * WGSL of the sparse decode / backward kernels (`scatter.ts`). Rows of width d are read as
 * `vec4<f32>` units when d and the bound tensors allow it, and each invocation covers `upi`
 * consecutive units with one accumulator each (llvmpipe pays per invocation and per load, so
 * one index load feeds several column loads).
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../kernel.ts";
import { WG } from "./_radix.ts";

/** How rows of width d are cut into units and invocations. */
export interface Layout {
  /** Cache-key fragment. */
  key: string;
  /** Units are vec4<f32> (else f32). */
  vec4: boolean;
  /** Units per row (d / 4 or d). */
  units: number;
  /** Units per invocation (divides `units`). */
  upi: number;
}

/** The layout for width `d` given the tensors bound as units (`vec4Ok` checks alignment). */
export function layoutFor(
  d: number,
  tensors: Tensor[],
  vec4Ok: (...t: Tensor[]) => boolean,
): Layout {
  const vec4 = d % 4 === 0 && vec4Ok(...tensors);
  const units = vec4 ? d / 4 : d;
  const upi = units % 4 === 0 ? 4 : units % 2 === 0 ? 2 : 1;
  return { key: `${vec4 ? "v4" : "s"}${upi}`, vec4, units, upi };
}

function prelude(lay: Layout): string {
  return `${WGSL_WG_INDEX}
alias V = ${lay.vec4 ? "vec4<f32>" : "f32"};
const UPI = ${lay.upi}u;
`;
}

/** `a0 … a{upi-1}`, each a `V` accumulator: declarations and per-unit statements. */
function accs(lay: Layout, stmt: (i: number) => string): string {
  return Array.from({ length: lay.upi }, (_, i) => stmt(i)).join("\n    ");
}

/** Bindings: U, W, IDX, VALS, OUT (rw) [, BIAS]. flags: 1 add to OUT, 2 start from BIAS. */
export function gatherWgsl(lay: Layout, bias: boolean): string {
  return /* wgsl */ `${prelude(lay)}
struct U { rows: u32, k: u32, units: u32, j0: u32, jn: u32, flags: u32, nb: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> W: array<V>;
@group(0) @binding(2) var<storage, read> IDX: array<i32>;
@group(0) @binding(3) var<storage, read> VALS: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<V>;
${bias ? "@group(0) @binding(5) var<storage, read> BIAS: array<V>;" : ""}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let id = wgIndex(wid, nwg) * ${WG}u + lid;
  if (id >= u.rows * u.nb) { return; }
  let r = id / u.nb;
  let cb = (id - r * u.nb) * UPI;
  ${accs(lay, (i) => `var a${i} = V(0.0);`)}
  ${bias ? `if ((u.flags & 2u) != 0u) { ${accs(lay, (i) => `a${i} = BIAS[cb + ${i}u];`)} }` : ""}
  for (var s = 0u; s < u.k; s++) {
    let j = IDX[r * u.k + s];
    if (j >= i32(u.j0) && j < i32(u.j0 + u.jn)) {
      let v = VALS[r * u.k + s];
      let b = (u32(j) - u.j0) * u.units + cb;
      ${accs(lay, (i) => `a${i} += v * W[b + ${i}u];`)}
    }
  }
  let o = r * u.units + cb;
  if ((u.flags & 1u) != 0u) {
    ${accs(lay, (i) => `OUT[o + ${i}u] += a${i};`)}
  } else {
    ${accs(lay, (i) => `OUT[o + ${i}u] = a${i};`)}
  }
}`;
}

/** Slots per invocation of `sparseDot` (one G load feeds this many dot products). */
export const DOT_SLOTS = 4;

/**
 * Bindings: U, G, W, IDX, OUT (rw). One invocation per (row, group of {@link DOT_SLOTS} slots);
 * `first`: this dispatch also writes 0 for invalid ids (a valid id is written by the dispatch
 * of the latent window holding it).
 */
export function sparseDotWgsl(lay: Layout): string {
  const slots = Array.from({ length: DOT_SLOTS }, (_, t) => t);
  return /* wgsl */ `${prelude(lay)}
struct U { rows: u32, k: u32, units: u32, j0: u32, jn: u32, first: u32, dSae: u32, groups: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> G: array<V>;
@group(0) @binding(2) var<storage, read> W: array<V>;
@group(0) @binding(3) var<storage, read> IDX: array<i32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;
fn vdot(a: V, b: V) -> f32 { return ${lay.vec4 ? "dot(a, b)" : "a * b"}; }
fn inWindow(j: i32) -> bool { return j >= i32(u.j0) && j < i32(u.j0 + u.jn); }
fn finish(r: u32, s: u32, j: i32, acc: f32) {
  if (s >= u.k) { return; }
  if (inWindow(j)) { OUT[r * u.k + s] = acc; }
  else if (u.first == 1u && (j < 0 || u32(j) >= u.dSae)) { OUT[r * u.k + s] = 0.0; }
}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let id = wgIndex(wid, nwg) * ${WG}u + lid;
  if (id >= u.rows * u.groups) { return; }
  let r = id / u.groups;
  let s0 = (id - r * u.groups) * ${DOT_SLOTS}u;
  let gb = r * u.units;
  ${
    slots.map((t) =>
      `let j${t} = select(-1, IDX[r * u.k + min(s0 + ${t}u, u.k - 1u)], s0 + ${t}u < u.k);
  let w${t} = select(0u, (u32(j${t}) - u.j0) * u.units, inWindow(j${t}));
  var a${t} = 0.0;`
    ).join("\n  ")
  }
  for (var c = 0u; c < u.units; c++) {
    let g = G[gb + c];
    ${slots.map((t) => `a${t} += vdot(g, W[w${t} + c]);`).join("\n    ")}
  }
  ${slots.map((t) => `finish(r, s0 + ${t}u, j${t}, a${t});`).join("\n  ")}
}`;
}

/**
 * Bindings: U, OFF, ORDER, COEF, X (row window r0…), OUT (rw, latent window j0…). Entries
 * `[e0, e0 + en)` of each latent's segment (rounds bound llvmpipe's loop budget).
 */
export function scatterRowsWgsl(lay: Layout): string {
  return /* wgsl */ `${prelude(lay)}
struct U { jn: u32, j0: u32, units: u32, k: u32, r0: u32, rn: u32, add: u32, nb: u32,
  e0: u32, en: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> OFF: array<u32>;
@group(0) @binding(2) var<storage, read> ORDER: array<u32>;
@group(0) @binding(3) var<storage, read> COEF: array<f32>;
@group(0) @binding(4) var<storage, read> X: array<V>;
@group(0) @binding(5) var<storage, read_write> OUT: array<V>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let id = wgIndex(wid, nwg) * ${WG}u + lid;
  if (id >= u.jn * u.nb) { return; }
  let jl = id / u.nb;
  let cb = (id - jl * u.nb) * UPI;
  let s0 = OFF[u.j0 + jl];
  let len = OFF[u.j0 + jl + 1u] - s0;
  ${accs(lay, (i) => `var a${i} = V(0.0);`)}
  if (u.e0 < len) {
    let end = s0 + u.e0 + min(len - u.e0, u.en);
    for (var e = s0 + u.e0; e < end; e++) {
      let p = ORDER[e];
      let r = p / u.k;
      if (r >= u.r0 && r < u.r0 + u.rn) {
        let c = COEF[p];
        let xb = (r - u.r0) * u.units + cb;
        ${accs(lay, (i) => `a${i} += c * X[xb + ${i}u];`)}
      }
    }
  }
  let o = jl * u.units + cb;
  if (u.add == 1u) {
    ${accs(lay, (i) => `OUT[o + ${i}u] += a${i};`)}
  } else {
    ${accs(lay, (i) => `OUT[o + ${i}u] = a${i};`)}
  }
}`;
}

/** Bindings: U, OFF, ORDER, VALS, OUT (rw). One invocation per latent; entries [e0, e0 + en). */
export function scatterValuesWgsl(): string {
  return /* wgsl */ `${WGSL_WG_INDEX}
struct U { dSae: u32, add: u32, e0: u32, en: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> OFF: array<u32>;
@group(0) @binding(2) var<storage, read> ORDER: array<u32>;
@group(0) @binding(3) var<storage, read> VALS: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let j = wgIndex(wid, nwg) * ${WG}u + lid;
  if (j >= u.dSae) { return; }
  let s0 = OFF[j];
  let len = OFF[j + 1u] - s0;
  var acc = 0.0;
  if (u.e0 < len) {
    let end = s0 + u.e0 + min(len - u.e0, u.en);
    for (var e = s0 + u.e0; e < end; e++) { acc += VALS[ORDER[e]]; }
  }
  if (u.add == 1u) { OUT[j] += acc; } else { OUT[j] = acc; }
}`;
}
