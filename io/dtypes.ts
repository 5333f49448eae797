/**
 * Conversions between float32 and the 16-bit float formats stored in safetensors files:
 * IEEE half precision (`F16`) and bfloat16 (`BF16`). 16-bit values travel as `Uint16Array`
 * bit patterns. All loops work on integer views of the buffers (no per-element allocation),
 * since they convert whole model checkpoints of 100M+ elements.
 *
 * Like every saeflow file reader, these assume a little-endian host (every platform Deno runs on).
 * @module
 */

let f16Table: Uint32Array | undefined;

/** Float32 bit pattern of one f16 bit pattern (used once per pattern to build the table). */
function _decodeF16(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13); // inf, or NaN keeping its payload
  if (exp !== 0) return sign | ((exp + 112) << 23) | (mant << 13); // normal: rebias 15 -> 127
  if (mant === 0) return sign; // ±0
  // Subnormal mant * 2^-24: normalize so the leading one becomes the implicit bit.
  const lead = 31 - Math.clz32(mant); // 0..9
  return sign | ((lead + 103) << 23) | ((mant << (23 - lead)) & 0x7fffff);
}

/**
 * The 65536-entry f16 -> f32 bit table (256 KiB), built on first use. Bits, not numbers:
 * reading a signaling NaN through a JS number would quiet it and change its payload.
 */
function _f16Table(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = _decodeF16(h);
  }
  return f16Table;
}

/**
 * Converts f16 bit patterns to float32 (exact: every f16 value is representable in f32).
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./dtypes.ts";
 * const x = f16ToF32(new Uint16Array([0x3c00, 0xc000]));
 * if (x[0] !== 1 || x[1] !== -2) throw new Error("bad f16 decode");
 * ```
 */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = _f16Table();
  const n = bits.length;
  const out = new Float32Array(n);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) outBits[i] = table[bits[i]];
  return out;
}

/** Converts one float32 bit pattern to the nearest f16 bit pattern (ties to even). */
function _f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    // NaN: keep the top payload bits; force a non-zero mantissa so it stays NaN.
    const mant = (abs >>> 13) & 0x3ff;
    return sign | 0x7c00 | (mant === 0 ? 0x200 : mant);
  }
  // 65520 is halfway between 65504 (max f16, odd mantissa) and 65536: ties to even -> inf.
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    // Normal f16: rebias the exponent (127 -> 15), then round 13 dropped bits to nearest even.
    // A carry out of the mantissa correctly bumps the exponent.
    const m = abs - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  // Subnormal f16: value / 2^-24 = mant24 * 2^(exp - 126), rounded to nearest even.
  const exp = abs >>> 23;
  if (exp < 101) return sign; // below half the smallest subnormal: rounds to ±0
  const mant24 = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp; // 14..25
  let q = mant24 >>> shift;
  const rem = mant24 & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) q += 1; // may carry into the smallest normal
  return sign | q;
}

/**
 * Converts float32 values to f16 bit patterns, rounding to nearest with ties to even.
 * Values beyond the f16 range become ±Infinity, tiny values become subnormals or ±0,
 * and NaN stays NaN (keeping the top payload bits).
 *
 * @example
 * ```ts
 * import { f32ToF16 } from "./dtypes.ts";
 * const h = f32ToF16(new Float32Array([1, 65504, 1e6]));
 * if (h[0] !== 0x3c00 || h[1] !== 0x7bff || h[2] !== 0x7c00) throw new Error("bad f16 encode");
 * ```
 */
export function f32ToF16(x: Float32Array): Uint16Array {
  const n = x.length;
  const src = new Uint32Array(x.buffer, x.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = _f32BitsToF16(src[i]);
  return out;
}

/**
 * Converts bfloat16 bit patterns to float32 (exact: bf16 is the top half of an f32).
 *
 * @example
 * ```ts
 * import { bf16ToF32 } from "./dtypes.ts";
 * if (bf16ToF32(new Uint16Array([0x3f80]))[0] !== 1) throw new Error("bad bf16 decode");
 * ```
 */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const n = bits.length;
  const out = new Float32Array(n);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) outBits[i] = bits[i] << 16;
  return out;
}

/**
 * Converts float32 values to bfloat16 bit patterns, rounding to nearest with ties to even.
 * NaN stays NaN (a payload that would be cut to zero gets the quiet bit instead).
 *
 * @example
 * ```ts
 * import { f32ToBf16 } from "./dtypes.ts";
 * if (f32ToBf16(new Float32Array([1]))[0] !== 0x3f80) throw new Error("bad bf16 encode");
 * ```
 */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const n = x.length;
  const src = new Uint32Array(x.buffer, x.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const b = src[i];
    if ((b & 0x7fffffff) > 0x7f800000) {
      const hi = b >>> 16;
      out[i] = (hi & 0x7f) === 0 ? hi | 0x40 : hi;
    } else {
      // Cannot pass 2^32 for non-NaN input: the largest is -inf, 0xff800000.
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}
