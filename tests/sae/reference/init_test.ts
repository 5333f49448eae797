import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { initTrainingParamsRef } from "../../../sae/reference/init.ts";
import { createRng } from "../../../util/rng.ts";
import { smallCfg } from "./_helpers.ts";

function transposeOf(wDec: Float32Array, dSae: number, dIn: number): Float32Array {
  const t = new Float32Array(dIn * dSae);
  for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) t[j * dSae + i] = wDec[i * dIn + j];
  return t;
}

Deno.test("init: decoder rows at decoder_init_norm, W_enc = W_decᵀ, zero biases", () => {
  for (const norm of [undefined, 0.7]) {
    const cfg = smallCfg("standard", { decoderInitNorm: norm, dIn: 6, dSae: 12 });
    const p = initTrainingParamsRef(cfg, createRng(1));
    for (let i = 0; i < 12; i++) {
      assertClose(Math.hypot(...p.W_dec.subarray(i * 6, i * 6 + 6)), norm ?? 0.1, 1e-6);
    }
    assertAllClose(p.W_enc, transposeOf(p.W_dec, 12, 6), 0);
    assertAllClose(p.b_enc, new Float32Array(12), 0);
    assertAllClose(p.b_dec, new Float32Array(6), 0);
  }
});

Deno.test("init: without decoder_init_norm, W_dec ~ U(±√(6/dIn)) (Kaiming, fan_in = dIn)", () => {
  const cfg = smallCfg("standard", { decoderInitNorm: null, dIn: 8, dSae: 64 });
  const p = initTrainingParamsRef(cfg, createRng(2));
  const bound = Math.sqrt(6 / 8);
  const maxAbs = Math.max(...p.W_dec.map(Math.abs));
  assert(maxAbs <= bound && maxAbs > 0.95 * bound, `max |W_dec| ${maxAbs} vs bound ${bound}`);
  const mean = p.W_dec.reduce((s, v) => s + v, 0) / p.W_dec.length;
  assert(Math.abs(mean) < 0.1);
});

Deno.test("init: architecture-specific parameters", () => {
  const g = initTrainingParamsRef(smallCfg("gated"), createRng(3));
  assertEquals(Object.keys(g).sort(), ["W_dec", "W_enc", "b_dec", "b_gate", "b_mag", "r_mag"]);
  assertAllClose(g.r_mag, new Float32Array(7), 0);
  const j = initTrainingParamsRef(smallCfg("jumprelu"), createRng(3));
  assertAllClose(j.threshold, new Array(7).fill(0.01), 1e-9);
  assertAllClose(
    initTrainingParamsRef(smallCfg("jumprelu", { jumpreluInitThreshold: 0.5 }), createRng(3))
      .threshold,
    new Array(7).fill(0.5),
  );
  const b = initTrainingParamsRef(smallCfg("matryoshka_batchtopk"), createRng(3));
  assertEquals(b.topk_threshold, new Float32Array(1));
  // Same seed → same weights; the W_dec draw is the same across architectures.
  assertAllClose(g.W_dec, j.W_dec, 0);
  const other = initTrainingParamsRef(smallCfg("gated"), createRng(4));
  assert(other.W_dec[0] !== g.W_dec[0]);
});

Deno.test("init: transcoders get independent Kaiming W_enc (fan_in dSae), zero W_skip/threshold", () => {
  const cfg = {
    ...smallCfg("jumprelu_skip_transcoder", { applyBDecToInput: false }),
    dIn: 4,
    dSae: 50,
    dOut: 3,
  };
  const p = initTrainingParamsRef(cfg, createRng(5));
  assertEquals(p.W_dec.length, 150);
  assertEquals(p.W_enc.length, 200);
  assertEquals(p.b_dec.length, 3);
  assertAllClose(p.W_skip, new Float32Array(12), 0);
  assertAllClose(p.threshold, new Float32Array(50), 0);
  const encBound = Math.sqrt(6 / 50), decBound = Math.sqrt(6 / 3);
  assert(Math.max(...p.W_enc.map(Math.abs)) <= encBound);
  assert(
    Math.max(...p.W_dec.map(Math.abs)) > encBound && Math.max(...p.W_dec.map(Math.abs)) <= decBound,
  );
});

Deno.test("rng: reproducible uniform and normal draws with sane moments", () => {
  const a = createRng(9), b = createRng(9);
  const xs = Array.from({ length: 20000 }, () => a.normal());
  assertEquals(xs.slice(0, 5), Array.from({ length: 5 }, () => b.normal()));
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length;
  assertClose(mean, 0, 0.03);
  assertClose(variance, 1, 0.05);
  const u = createRng(10);
  const us = Array.from({ length: 20000 }, () => u.next());
  assert(us.every((v) => v >= 0 && v < 1));
  assertClose(us.reduce((s, v) => s + v, 0) / us.length, 0.5, 0.01);
});
