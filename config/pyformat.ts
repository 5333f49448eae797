/**
 * Python number formatting, reproduced exactly where SAELens puts numbers into names
 * (the default run name `…-LR-{lr}-Tokens-{training_tokens:3.3e}`).
 * @module
 */

/**
 * Python's `repr(float)` / `str(float)`: shortest round-trip digits, scientific notation when the
 * decimal exponent is < -4 or ≥ 16 (`1e-05`, `1e+16`), otherwise fixed with at least one decimal
 * (`0.0003`, `2.0`).
 *
 * @example
 * ```ts
 * import { pythonFloatRepr } from "./pyformat.ts";
 * if (pythonFloatRepr(3e-4) !== "0.0003") throw new Error();
 * if (pythonFloatRepr(5e-5) !== "5e-05") throw new Error();
 * if (pythonFloatRepr(2) !== "2.0") throw new Error();
 * ```
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // JS's toExponential() without an argument also yields the shortest round-trip digits.
  const [mant, expText] = Math.abs(x).toExponential().split("e");
  const digits = mant.replace(".", "");
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const intLen = exp + 1;
  if (digits.length <= intLen) return `${sign}${digits.padEnd(intLen, "0")}.0`;
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}

/** The exact value of a finite double as `D × 10^scale` with `D` a non-negative BigInt. */
function exactDecimal(x: number): { d: bigint; scale: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0), lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074; // subnormal
  } else {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (exp2 >= 0) return { d: mantissa << BigInt(exp2), scale: 0 };
  // m · 2^-k = m · 5^k / 10^k
  return { d: mantissa * 5n ** BigInt(-exp2), scale: exp2 };
}

/**
 * Python's `format(x, "{width}.{precision}e")`: correctly rounded (round-half-even on the exact
 * binary value, as CPython does), exponent with sign and at least two digits, left-padded with
 * spaces to `width`.
 *
 * @example
 * ```ts
 * import { formatPythonExp } from "./pyformat.ts";
 * if (formatPythonExp(2_000_000, 3, 3) !== "2.000e+06") throw new Error();
 * if (formatPythonExp(12345, 3) !== "1.234e+04") throw new Error(); // half-even, JS gives 1.235
 * ```
 */
export function formatPythonExp(x: number, precision: number, width = 0): string {
  let text: string;
  if (Number.isNaN(x)) text = "nan";
  else if (!Number.isFinite(x)) text = x > 0 ? "inf" : "-inf";
  else {
    const sign = x < 0 || Object.is(x, -0) ? "-" : "";
    const { d, scale } = exactDecimal(x);
    let digits: string;
    let exp: number;
    if (d === 0n) {
      digits = "0".repeat(precision + 1);
      exp = 0;
    } else {
      const full = d.toString();
      exp = full.length - 1 + scale;
      const keep = precision + 1;
      if (full.length <= keep) {
        digits = full.padEnd(keep, "0");
      } else {
        const div = 10n ** BigInt(full.length - keep);
        let q = d / div;
        const twiceRem = (d % div) * 2n;
        if (twiceRem > div || (twiceRem === div && q % 2n === 1n)) q += 1n;
        digits = q.toString();
        if (digits.length > keep) { // rounding carried into a new digit (9.9995 → 10.000)
          digits = digits.slice(0, keep);
          exp += 1;
        }
      }
    }
    const mant = precision > 0 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const expSign = exp < 0 ? "-" : "+";
    text = `${sign}${mant}e${expSign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return text.padStart(width, " ");
}
