/**
 * `gatherRows` against `gatherRowsRef` (exact: pure copies): tiny cases, widths that are not
 * multiples of 4, more rows than one workgroup covers, the windowed path (forced with
 * `windowRows`) with unaligned window starts, writes at an unaligned `outRow` of an existing
 * tensor, an i32 index tensor, a realistic buffer shape, and bad indices.
 */

import { getGpu, GpuError } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { gatherRows, gatherRowsRef } from "../../gpu/kernels/gather.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { assertEquals, assertThrows } from "../assert.ts";

await getGpu();

function data(n: number, seed: number): Float32Array {
  const rng = new Mulberry32(seed);
  return Float32Array.from({ length: n }, () => rng.nextFloat() * 2 - 1);
}

function indices(m: number, n: number, seed: number): Int32Array {
  const rng = new Mulberry32(seed);
  return Int32Array.from({ length: m }, () => rng.nextInt(n));
}

const CASES: { name: string; n: number; w: number; m: number; windowRows?: number }[] = [
  { name: "one row", n: 1, w: 1, m: 1 },
  { name: "tiny", n: 3, w: 2, m: 5 },
  { name: "width 7", n: 40, w: 7, m: 33 },
  { name: "many rows", n: 300, w: 5, m: 1000 },
  { name: "windowed, unaligned windows", n: 97, w: 3, m: 61, windowRows: 7 },
  { name: "windowed, one row per window", n: 9, w: 5, m: 12, windowRows: 1 },
  { name: "realistic: 4096 of 16384 rows of 128", n: 16384, w: 128, m: 4096 },
];

for (const c of CASES) {
  Deno.test(`gatherRows: ${c.name} equals the reference`, async () => {
    const host = data(c.n * c.w, c.n + c.w);
    const idx = indices(c.m, c.n, c.m);
    using src = Tensor.from(host, [c.n, c.w]);
    using out = gatherRows(src, idx, { windowRows: c.windowRows });
    assertEquals(out.shape, [c.m, c.w]);
    assertEquals(await out.toArray(), gatherRowsRef(host, c.w, idx));
  });
}

Deno.test("gatherRows: into rows [outRow, outRow + m) of an existing tensor, windowed too", async () => {
  for (const windowRows of [undefined, 3]) {
    const w = 5, n = 20, rows = 30, outRow = 7;
    const host = data(n * w, 3);
    const idx = indices(11, n, 4);
    const before = data(rows * w, 5);
    using src = Tensor.from(host, [n, w]);
    using out = Tensor.from(before, [rows, w]);
    gatherRows(src, idx, { out, outRow, windowRows });
    const want = before.slice();
    want.set(gatherRowsRef(host, w, idx), outRow * w);
    assertEquals(await out.toArray(), want);
  }
});

Deno.test("gatherRows: an i32 index tensor", async () => {
  const host = data(12, 1);
  using src = Tensor.from(host, [4, 3]);
  using idx = Tensor.from(Int32Array.of(3, 3, 0));
  using out = gatherRows(src, idx);
  assertEquals(await out.toArray(), gatherRowsRef(host, 3, Int32Array.of(3, 3, 0)));
});

Deno.test("gatherRows: bad indices and shapes are named errors", () => {
  using src = Tensor.from([1, 2, 3, 4], [2, 2]);
  assertThrows(() => gatherRows(src, Int32Array.of(0, 2)), GpuError, "idx[1] = 2 is outside");
  assertThrows(() => gatherRows(src, Int32Array.of(-1)), GpuError, "idx[0] = -1");
  using small = Tensor.zeros([1, 2]);
  assertThrows(
    () => gatherRows(src, Int32Array.of(0, 1), { out: small }),
    GpuError,
    "cannot take 2 rows",
  );
});
