import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../io/dtypes.ts";
import { assert, assertEquals } from "../assert.ts";

/** Bit pattern of a float32 value. */
function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** Float32 value of a bit pattern. */
function fromBits(b: number): number {
  return new Float32Array(new Uint32Array([b]).buffer)[0];
}

const h = (x: number) => f32ToF16(new Float32Array([x]))[0];
const hx = (bits: number) => f16ToF32(new Uint16Array([bits]))[0];

Deno.test("f16: known bit patterns encode and decode", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [0.5, 0x3800],
    [0.333251953125, 0x3555],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
  ];
  for (const [value, bits] of cases) {
    assertEquals(h(value), bits, `encode ${value}`);
    assertEquals(hx(bits), value, `decode 0x${bits.toString(16)}`);
  }
  assertEquals(h(-0), 0x8000);
  assert(Object.is(hx(0x8000), -0), "0x8000 decodes to -0");
  const nan = h(NaN);
  assert((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, `NaN encodes as NaN, got ${nan}`);
  assert(Number.isNaN(hx(0x7e00)) && Number.isNaN(hx(0xfc01)), "NaN patterns decode to NaN");
});

Deno.test("f16: rounding is to nearest, ties to even, with overflow and underflow", () => {
  assertEquals(h(1 + 2 ** -11), 0x3c00, "tie between 0x3c00 and 0x3c01 goes to even");
  assertEquals(h(1 + 3 * 2 ** -11), 0x3c02, "tie between 0x3c01 and 0x3c02 goes to even");
  assertEquals(h(fromBits(bitsOf(1 + 2 ** -11) + 1)), 0x3c01, "just above the tie rounds up");
  assertEquals(h(65519), 0x7bff, "below the 65520 midpoint stays finite");
  assertEquals(h(65520), 0x7c00, "65520 ties to even: infinity");
  assertEquals(h(-1e6), 0xfc00);
  assertEquals(h(2 ** -25), 0x0000, "half the smallest subnormal ties to 0");
  assertEquals(h(fromBits(bitsOf(2 ** -25) + 1)), 0x0001, "just above half rounds up");
  assertEquals(h(3 * 2 ** -25), 0x0002, "1.5 ulp subnormal ties to even 2");
  assertEquals(h(2 ** -14 - 2 ** -26), 0x0400, "rounding carries into the smallest normal");
  assertEquals(h(1e-10), 0x0000);
  assertEquals(h(-1e-10), 0x8000, "underflow keeps the sign");
  assertEquals(h(fromBits(1)), 0x0000, "f32 subnormals flush to zero");
});

Deno.test("f16: every pattern round-trips f16 -> f32 -> f16 exactly, values increase", () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  const f = f16ToF32(all);
  assertEquals(f32ToF16(f), all);
  // Positive patterns 0..0x7c00 are ordered by value; negatives mirror them.
  for (let i = 1; i <= 0x7c00; i++) {
    if (!(f[i] > f[i - 1])) throw new Error(`decode not increasing at 0x${i.toString(16)}`);
    if (!Object.is(f[i | 0x8000], -f[i])) throw new Error(`sign wrong at 0x${i.toString(16)}`);
  }
  for (let i = 0x7c01; i < 0x8000; i++) assert(Number.isNaN(f[i]), `0x${i.toString(16)} is NaN`);
});

Deno.test("f16: random float32 values encode to the nearest f16 (ties to even)", () => {
  let s = 0x9e3779b9;
  const n = 20000;
  const x = new Float32Array(n);
  const xBits = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Exponents 98..145 cover underflow, subnormals, normals and overflow of f16.
    xBits[i] = (s & 0x807fffff) | ((98 + (s % 48)) << 23);
  }
  const enc = f32ToF16(x);
  for (let i = 0; i < n; i++) {
    const v = x[i], e = enc[i];
    const mag = e & 0x7fff;
    if (mag === 0x7c00) {
      assert(Math.abs(v) >= 65520, `${v} overflowed to inf`);
      continue;
    }
    const err = Math.abs(hx(e) - v);
    for (const nb of [mag - 1, mag + 1]) {
      if (nb < 0 || nb >= 0x7c00) continue;
      const other = Math.abs(hx((e & 0x8000) | nb) - v);
      assert(err < other || (err === other && (mag & 1) === 0), `${v} -> 0x${e.toString(16)}`);
    }
  }
});

Deno.test("f16: conversions respect subarray offsets", () => {
  const base = new Float32Array([7, 1, -2, 9]);
  assertEquals(f32ToF16(base.subarray(1, 3)), new Uint16Array([0x3c00, 0xc000]));
  const bits = new Uint16Array([0, 0x3c00, 0xc000]);
  assertEquals(f16ToF32(bits.subarray(1)), new Float32Array([1, -2]));
});

Deno.test("bf16: known patterns, ties to even, NaN stays NaN", () => {
  const b = (x: number) => f32ToBf16(new Float32Array([x]))[0];
  assertEquals(b(1), 0x3f80);
  assertEquals(b(-2), 0xc000);
  assertEquals(b(Infinity), 0x7f80);
  assertEquals(b(-Infinity), 0xff80);
  assertEquals(b(fromBits(0x3f808000)), 0x3f80, "tie with even lower half stays");
  assertEquals(b(fromBits(0x3f818000)), 0x3f82, "tie with odd lower half rounds up to even");
  assertEquals(b(fromBits(0x3f808001)), 0x3f81, "above the tie rounds up");
  assertEquals(b(fromBits(0x3f807fff)), 0x3f80, "below the tie rounds down");
  assertEquals(b(fromBits(0x7f7fffff)), 0x7f80, "max float32 rounds to inf");
  for (const nanBits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
    const out = b(fromBits(nanBits));
    assert((out & 0x7f80) === 0x7f80 && (out & 0x7f) !== 0, `NaN 0x${nanBits.toString(16)}`);
  }
  assertEquals(bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x0001]))[2], fromBits(0x00010000));
});

Deno.test("bf16: every pattern decodes to its f32 top half and round-trips", () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  const f = bf16ToF32(all);
  const fb = new Uint32Array(f.buffer);
  for (let i = 0; i < 65536; i++) {
    if (fb[i] !== i * 65536) throw new Error(`bf16 0x${i.toString(16)} decoded wrong`);
  }
  assertEquals(f32ToBf16(f), all);
});
