import {
  assert,
  assertAllClose,
  assertClose,
  assertEquals,
  assertThrows,
} from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import { exportTopKRef, foldWDecNormRef } from "../../../../sae/reference/fold.ts";
import { topKRef } from "../../../../sae/architectures/topk/reference.ts";
import {
  decodeRef,
  encodeRef,
  forwardRef,
  trainingBackwardRef,
  trainingForwardRef,
} from "../../../../sae/reference/sae.ts";
import {
  checkGradients,
  fdSurrogate,
  l1,
  type Params64,
  randomProblem,
  smallCfg,
} from "../../reference/_helpers.ts";

const PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"];

Deno.test("topk: activation keeps the k largest, ReLUs them, ties go to the lower index", () => {
  assertAllClose(topKRef([3, -1, 2, 5], 1, 4, 2), [3, 0, 0, 5]);
  assertAllClose(topKRef([1, 2, 2, 0], 1, 4, 2), [0, 2, 2, 0]);
  assertAllClose(topKRef([2, 1, 2, 2], 1, 4, 2), [2, 0, 2, 0]); // tie on 2: indices 0, 2
  assertAllClose(topKRef([-3, -1, -2, 0.5], 1, 4, 2), [0, 0, 0, 0.5]); // fewer than k nonzero
  assertThrows(() => topKRef([1, 2], 1, 2, 3), SaeReferenceError, "exceeds");
});

/**
 * Independent float64 TopK forward + newest aux-k loss (no b_dec; rows unit-normalised when
 * rescaling). With `frozenR`, the residual is that constant (it is detached in SAELens).
 */
function auxByHand(
  cfg: ReturnType<typeof smallCfg>,
  p: Params64,
  x: Float64Array,
  n: number,
  dead: number[],
  frozenR?: Float64Array,
): { loss: number; r: Float64Array } {
  const { dIn, dSae } = cfg, k = cfg.k!, rescale = cfg.rescaleActsByDecoderNorm!;
  const norms = Array.from(
    { length: dSae },
    (_, i) => rescale ? Math.hypot(...p.W_dec.subarray(i * dIn, (i + 1) * dIn)) : 1,
  );
  const kAux0 = Math.floor(dIn / 2),
    scale = Math.min(dead.length / kAux0, 1),
    kAux = Math.min(kAux0, dead.length);
  const r = new Float64Array(n * dIn);
  let total = 0;
  for (let b = 0; b < n; b++) {
    const hs = Array.from({ length: dSae }, (_, i) => {
      let v = p.b_enc[i];
      for (let j = 0; j < dIn; j++) v += (x[b * dIn + j] - p.b_dec[j]) * p.W_enc[j * dSae + i];
      return v * norms[i];
    });
    const top = [...hs.keys()].sort((a, c) => hs[c] - hs[a]).slice(0, k);
    const aux = [...dead].sort((a, c) => hs[c] - hs[a]).slice(0, kAux);
    for (let j = 0; j < dIn; j++) {
      let xHat = p.b_dec[j], rec = 0;
      for (const i of top) xHat += (Math.max(hs[i], 0) / norms[i]) * p.W_dec[i * dIn + j];
      for (const i of aux) rec += (hs[i] / norms[i]) * p.W_dec[i * dIn + j];
      r[b * dIn + j] = frozenR ? frozenR[b * dIn + j] : x[b * dIn + j] - xHat;
      total += (rec - r[b * dIn + j]) ** 2;
    }
  }
  return { loss: (cfg.auxLossCoefficient ?? 1) * scale * total / n, r };
}

for (const rescale of [true, false]) {
  Deno.test(`topk (rescale ${rescale}): gradients match finite differences (main path and aux-k)`, () => {
    const cfg = smallCfg("topk", {
      k: 3,
      rescaleActsByDecoderNorm: rescale,
      auxLossCoefficient: 0.5,
    });
    const { p, x } = randomProblem(cfg, 4, rescale ? 41 : 42);
    const g0 = checkGradients(cfg, p, x, 4, { coefficients: {} }, PARAMS);
    assert(l1(g0.W_enc) > 0);
    const dead = [0, 2, 5, 6];
    const deadMask = Uint8Array.of(1, 0, 1, 0, 0, 1, 1);
    const out = trainingForwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    assertEquals(Object.keys(out.losses), ["mse_loss", "auxiliary_reconstruction_loss"]);
    const { loss, r } = auxByHand(cfg, p, x, 4, dead);
    assertClose(out.losses.auxiliary_reconstruction_loss, loss, 1e-12, 1e-9);
    // Aux-k gradient = difference with/without dead latents; FD target keeps r frozen.
    const g1 = trainingBackwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    const fd = fdSurrogate(p, PARAMS, () => auxByHand(cfg, p, x, 4, dead, r).loss);
    for (const name of PARAMS) {
      const diff = g1[name].map((v, i) => v - g0[name][i]);
      assertAllClose(diff, fd[name], 2e-6, 2e-5, `aux-k ∂/∂${name}`);
    }
    assert(l1(fd.W_enc) > 0 && l1(fd.W_dec) > 0, "aux-k must reach W_enc and W_dec");
    const noDead = trainingForwardRef(cfg, p, x, 4, { coefficients: {} });
    assertClose(noDead.losses.auxiliary_reconstruction_loss, 0, 0);
  });
}

Deno.test("topk: aux-k loss value (k_aux = dIn//2, scale = min(N_dead/k_aux, 1))", () => {
  const cfg = smallCfg("topk", {
    k: 2,
    rescaleActsByDecoderNorm: true,
    dIn: 4,
    dSae: 6,
    auxLossCoefficient: 2,
  });
  const { p, x } = randomProblem(cfg, 3, 43);
  for (const dead of [[0, 2, 5], [4]]) { // scale 1 with k_aux 2; scale 1/2 with k_aux 1
    const deadMask = new Uint8Array(6);
    for (const i of dead) deadMask[i] = 1;
    const out = trainingForwardRef(cfg, p, x, 3, { coefficients: {}, deadMask });
    assertClose(
      out.losses.auxiliary_reconstruction_loss,
      auxByHand(cfg, p, x, 3, dead).loss,
      1e-12,
      1e-9,
    );
  }
});

Deno.test("topk: acts_pre hook is un-rescaled, training hidden_pre is rescaled", () => {
  const cfg = smallCfg("topk", { k: 3, rescaleActsByDecoderNorm: true });
  const { p, x } = randomProblem(cfg, 4, 44);
  const enc = encodeRef(cfg, p, x, 4);
  const t = trainingForwardRef(cfg, p, x, 4, { coefficients: {} });
  assertAllClose(enc.featureActs, t.featureActs, 0);
  const n0 = Math.hypot(...p.W_dec.subarray(0, 5));
  assertClose(t.hiddenPre[0], enc.hiddenPre[0] * n0, 1e-5, 1e-6);
  for (let b = 0; b < 4; b++) {
    assert(enc.featureActs.subarray(b * 7, b * 7 + 7).filter((v) => v !== 0).length <= 3);
  }
});

Deno.test("topk: export folding gives unit decoder rows and identical outputs; fold needs rescale", () => {
  const cfg = smallCfg("topk", { k: 3, rescaleActsByDecoderNorm: true });
  const { p, x } = randomProblem(cfg, 4, 45);
  const exported = exportTopKRef(cfg, p);
  for (let i = 0; i < 7; i++) {
    assertClose(Math.hypot(...exported.W_dec.subarray(i * 5, i * 5 + 5)), 1, 1e-6);
  }
  assert(
    exported.W_enc[0] !== Math.fround(p.W_enc[0]) && exported.b_enc[0] !== Math.fround(p.b_enc[0]),
  );
  const before = forwardRef(cfg, p, x, 4), after = forwardRef(cfg, exported, x, 4);
  assertAllClose(after.featureActs, before.featureActs, 1e-5);
  assertAllClose(after.output, before.output, 1e-5);
  // "Already normalised decoder": rescale false on the folded weights gives the same result.
  const plain = forwardRef({ ...cfg, rescaleActsByDecoderNorm: false }, exported, x, 4);
  assertAllClose(plain.output, before.output, 1e-5);
  assertAllClose(foldWDecNormRef(cfg, p).W_dec, exported.W_dec, 0);
  assertThrows(
    () => foldWDecNormRef({ ...cfg, rescaleActsByDecoderNorm: false }, p),
    SaeReferenceError,
    "not safe",
  );
  assertAllClose(
    exportTopKRef({ ...cfg, rescaleActsByDecoderNorm: false }, p).W_dec,
    Float32Array.from(p.W_dec),
    0,
  );
});

Deno.test("topk: decodeRef with rescale divides by the decoder norms", () => {
  const cfg = { ...smallCfg("topk", { k: 1, rescaleActsByDecoderNorm: true }), dIn: 2, dSae: 1 };
  const p = {
    W_enc: Float32Array.of(1, 0),
    b_enc: Float32Array.of(0),
    W_dec: Float32Array.of(3, 4),
    b_dec: Float32Array.of(1, 1),
  };
  assertAllClose(decodeRef(cfg, p, Float32Array.of(10), 1), [1 + 6, 1 + 8]);
  assertThrows(
    () => decodeRef({ ...cfg, rescaleActsByDecoderNorm: undefined }, p, Float32Array.of(1), 1),
    SaeReferenceError,
    "rescaleActsByDecoderNorm",
  );
});
