/**
 * The Matching Pursuit reference: a hand-computed pursuit (argmax of ReLU scores, early stop
 * when the support stops growing), b_dec only with apply_b_dec_to_input, the iteration cap and
 * the residual threshold, SAELens's metrics, gradients through the unrolled pursuit against
 * finite differences, and the refused fold.
 */
import {
  assert,
  assertAllClose,
  assertClose,
  assertEquals,
  assertThrows,
} from "../../../assert.ts";
import { createRng } from "../../../../util/rng.ts";
import { SaeReferenceError } from "../../../../sae/reference/errors.ts";
import { foldWDecNormRef } from "../../../../sae/reference/fold.ts";
import {
  decodeRef,
  encodeRef,
  trainingForwardRef,
  trainingStepRef,
} from "../../../../sae/reference/sae.ts";
import type { RefSaeConfig } from "../../../../sae/reference/common.ts";

const S = Math.SQRT1_2;

function cfgOf(extra: Record<string, unknown> = {}): RefSaeConfig {
  return {
    architecture: "matching_pursuit",
    dIn: 3,
    dSae: 4,
    applyBDecToInput: false,
    normalizeActivations: "none",
    ...extra,
  } as RefSaeConfig;
}

// Rows e1, e2, e3 and (e1 + e2)/√2.
const W_DEC = Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1, S, S, 0);

Deno.test("matching pursuit: a hand-computed pursuit", () => {
  const p = { W_dec: W_DEC, b_dec: Float32Array.of(0.5, 0.5, 0.5) };
  // x = (2, 1, −1): scores (2, 1, −1, 3/√2) → row 3 with v = 3/√2, r = (0.5, −0.5, −1);
  // then row 0 with v = 0.5, r = (0, −0.5, −1); then every score ≤ 0: v = 0, support
  // unchanged → done.
  const { featureActs } = encodeRef(cfgOf(), p, Float32Array.of(2, 1, -1), 1);
  assertAllClose(featureActs, [0.5, 0, 0, 3 * S], 1e-6);
  // b_dec only enters with apply_b_dec_to_input (then x̃ = x − b_dec and ŷ adds it back).
  assertAllClose(decodeRef(cfgOf(), p, featureActs, 1), [2, 1.5, 0], 1e-6); // x − r
  const applied = cfgOf({ applyBDecToInput: true });
  const f2 = encodeRef(applied, p, Float32Array.of(2.5, 1.5, -0.5), 1).featureActs;
  assertAllClose(f2, [0.5, 0, 0, 3 * S], 1e-6);
  assertAllClose(decodeRef(applied, p, f2, 1), [2.5, 2, 0.5], 1e-6);
  // One iteration only; or stop once ‖r‖ < 1.2 (after two iterations ‖r‖ = √1.25 ≈ 1.118).
  assertAllClose(
    encodeRef(cfgOf({ maxIterations: 1 }), p, Float32Array.of(2, 1, -1), 1).featureActs,
    [0, 0, 0, 3 * S],
    1e-6,
  );
  const stopped = encodeRef(
    cfgOf({ residualThreshold: 1.2, stopOnDuplicateSupport: false }),
    p,
    Float32Array.of(2, 1, -1),
    1,
  );
  assertAllClose(stopped.featureActs, [0.5, 0, 0, 3 * S], 1e-6);
  assertThrows(() => foldWDecNormRef(cfgOf(), p), SaeReferenceError, "not safe");
});

Deno.test("matching pursuit: training losses and SAELens's metrics", () => {
  const p = { W_dec: W_DEC, b_dec: new Float32Array(3) };
  const x = Float32Array.of(2, 1, -1, 0, 0.5, 0);
  const out = trainingForwardRef(cfgOf(), p, x, 2, { coefficients: {} });
  assertEquals(Object.keys(out.losses), ["mse_loss"]);
  // Row 0 leaves r = (0, −0.5, −1) (‖r‖² = 1.25, L0 2); row 1 is reconstructed exactly (L0 1).
  assertClose(out.losses.mse_loss, 1.25 / 2, 1e-6);
  assertEquals([out.metrics.max_l0, out.metrics.min_l0], [2, 1]);
  assertClose(out.metrics.residual_norm, Math.sqrt(1.25) / 2, 1e-6);
  assertClose(out.metrics.residual_threshold_converged_portion, 0.5, 1e-12);
  assertEquals(out.hiddenPre.every((v) => v === 0), true);
});

/** Central differences of the loss w.r.t. every entry of `p[name]`. */
function fd(
  cfg: RefSaeConfig,
  p: Record<string, Float64Array>,
  x: Float64Array,
  n: number,
  name: string,
) {
  const t = p[name], g = new Float64Array(t.length), eps = 1e-6;
  for (let i = 0; i < t.length; i++) {
    const v = t[i];
    t[i] = v + eps;
    const up = trainingForwardRef(cfg, p, x, n, { coefficients: {} }).loss;
    t[i] = v - eps;
    const down = trainingForwardRef(cfg, p, x, n, { coefficients: {} }).loss;
    t[i] = v;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

for (
  const extra of [
    {},
    { applyBDecToInput: true },
    { applyBDecToInput: true, normalizeActivations: "layer_norm" },
    { maxIterations: 2 },
    { stopOnDuplicateSupport: false, maxIterations: 6 },
  ]
) {
  Deno.test(`matching pursuit ${JSON.stringify(extra)}: gradients match finite differences`, () => {
    const rng = createRng(41);
    const cfg = { ...cfgOf(extra), dIn: 5, dSae: 9 } as RefSaeConfig;
    const r = (len: number, s: number) =>
      Float64Array.from({ length: len }, () => s * rng.normal());
    const p = { W_dec: r(9 * 5, 0.6), b_dec: r(5, 0.3) };
    const x = r(6 * 5, 1);
    const { grads, forward } = trainingStepRef(cfg, p, x, 6, { coefficients: {} });
    assert(forward.metrics.max_l0 >= 1, "the pursuit selected latents");
    for (const name of ["W_dec", "b_dec"]) {
      assertAllClose(grads[name], fd(cfg, p, x, 6, name), 2e-6, 2e-5, `∂/∂${name}`);
    }
    if (!cfg.applyBDecToInput) assert(grads.b_dec.every((v) => v === 0), "b_dec unused");
  });
}
