import { assertAllClose, assertClose, assertThrows } from "../../assert.ts";
import { SaeReferenceError } from "../../../sae/reference/common.ts";
import { normalizeInRef, normalizeOutRef } from "../../../sae/reference/normalization.ts";
import { decodeRef, encodeRef, forwardRef } from "../../../sae/reference/sae.ts";
import { randomProblem, smallCfg } from "./_helpers.ts";

const x = Float32Array.of(1, 2, 3, 4, -2, 0.5, 0, 7);

Deno.test("normalization: constant_norm_rescale gives norm sqrt(d) and round-trips", () => {
  const { x: xn, state } = normalizeInRef("constant_norm_rescale", x, 2, 4);
  for (let b = 0; b < 2; b++) assertClose(Math.hypot(...xn.subarray(b * 4, b * 4 + 4)), 2, 1e-6);
  assertAllClose(normalizeOutRef(state, xn, 2, 4), x, 1e-6);
});

Deno.test("normalization: layer_norm uses the unbiased std + 1e-5 and round-trips approximately", () => {
  const { x: xn, state } = normalizeInRef("layer_norm", x, 2, 4);
  const mu = 2.5, sigma = Math.sqrt((1.5 ** 2 * 2 + 0.5 ** 2 * 2) / 3);
  assertClose(xn[0], (1 - mu) / (sigma + 1e-5), 1e-6);
  assertAllClose(normalizeOutRef(state, xn, 2, 4), x, 1e-4);
});

Deno.test("normalization: none / expected_average_only_in are identities; unknown mode throws", () => {
  assertAllClose(normalizeInRef("none", x, 2, 4).x, x, 0);
  assertAllClose(normalizeInRef("expected_average_only_in", x, 2, 4).x, x, 0);
  assertThrows(() => normalizeInRef("batch_norm", x, 2, 4), SaeReferenceError, "unknown mode");
});

Deno.test("normalization: SAE encode/decode apply it around the SAE; decode needs the state", () => {
  for (const mode of ["constant_norm_rescale", "layer_norm"]) {
    const cfg = smallCfg("standard", { normalizeActivations: mode });
    const { p, x: xs } = randomProblem(cfg, 4, 91);
    const enc = encodeRef(cfg, p, xs, 4);
    const plainCfg = smallCfg("standard");
    const { x: xn, state } = normalizeInRef(mode, xs, 4, 5);
    const encPlain = encodeRef(plainCfg, p, xn, 4);
    assertAllClose(enc.featureActs, encPlain.featureActs, 1e-6);
    const expected = normalizeOutRef(state, decodeRef(plainCfg, p, encPlain.featureActs, 4), 4, 5);
    assertAllClose(decodeRef(cfg, p, enc.featureActs, 4, enc.normState), expected, 1e-5);
    assertAllClose(forwardRef(cfg, p, xs, 4).output, expected, 1e-5);
    assertThrows(() => decodeRef(cfg, p, enc.featureActs, 4), SaeReferenceError, "normState");
  }
});
