import { assert, assertAllClose, assertClose, assertThrows } from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import { calculatePreActLossRef } from "../../../../sae/architectures/jumprelu/reference.ts";
import {
  encodeRef,
  forwardRef,
  trainingBackwardRef,
  trainingForwardRef,
} from "../../../../sae/reference/sae.ts";
import {
  checkGradients,
  l1,
  type Params64,
  randomProblem,
  smallCfg,
} from "../../reference/_helpers.ts";

const NON_THETA = ["W_enc", "b_enc", "W_dec", "b_dec"];

Deno.test("jumprelu: Appendix A forward vector", () => {
  const cfg = { ...smallCfg("jumprelu"), dIn: 2, dSae: 3 };
  const p = {
    W_enc: new Float32Array(6).fill(1),
    W_dec: new Float32Array(6).fill(1),
    b_enc: new Float32Array(3),
    b_dec: new Float32Array(2),
    threshold: Float32Array.of(1, 0.5, 0.25),
  };
  const x = Float32Array.of(0.3, 0.3);
  const enc = encodeRef(cfg, p, x, 1);
  assertAllClose(enc.hiddenPre, [0.6, 0.6, 0.6], 1e-6);
  assertAllClose(enc.featureActs, [0, 0.6, 0.6], 1e-6);
  assertAllClose(forwardRef(cfg, p, x, 1).output, [1.2, 1.2], 1e-6);
  // θ is ReLU-clamped: a negative threshold acts like 0 (strict h > 0).
  p.threshold[0] = -5;
  assertAllClose(encodeRef(cfg, p, Float32Array.of(-0.3, -0.3), 1).featureActs, [0, 0, 0]);
});

Deno.test("jumprelu: pre-act loss vector = 1.3, and 0 without a dead mask", () => {
  const theta = [1, 2, 1.5, 0.5];
  const h = [0.5, 1.5, 1.0, 0.8, 0.8, 2.5, 1.2, 0.2];
  const dead = Uint8Array.of(1, 0, 1, 0);
  const norms = [2, 1, 1.5, 3];
  assertClose(calculatePreActLossRef(1.0, theta, h, dead, norms, 2, 4), 1.3, 1e-6);
  assertClose(calculatePreActLossRef(1.0, theta, h, undefined, norms, 2, 4), 0, 0);
  // Same numbers through the full training pass: identity encoder, W_dec = diag(norms).
  const cfg = {
    ...smallCfg("jumprelu", { applyBDecToInput: false, preActLossCoefficient: 1.0 }),
    dIn: 4,
    dSae: 4,
  };
  const eye = new Float64Array(16), wDec = new Float64Array(16);
  for (let i = 0; i < 4; i++) {
    eye[i * 5] = 1;
    wDec[i * 5] = norms[i];
  }
  const p = {
    W_enc: eye,
    b_enc: new Float64Array(4),
    W_dec: wDec,
    b_dec: new Float64Array(4),
    threshold: Float64Array.from(theta),
  };
  const out = trainingForwardRef(cfg, p, Float64Array.from(h), 2, {
    coefficients: { l0: 1 },
    deadMask: dead,
  });
  assertClose(out.losses.pre_act_loss, 1.3, 1e-9);
  assertClose(out.loss, out.losses.mse_loss + out.losses.l0_loss + out.losses.pre_act_loss, 1e-12);
  // Step L0: h > θ at (0,3), (1,1) → mean 1.
  assertClose(out.losses.l0_loss, 1, 0);
});

Deno.test("jumprelu: tanh mode — larger scale gives a larger l0_loss; bad mode throws", () => {
  const cfg = smallCfg("jumprelu", { jumpreluSparsityLossMode: "tanh" });
  const { p, x } = randomProblem(cfg, 4, 21);
  const opts = { coefficients: { l0: 1 } };
  const a = trainingForwardRef({ ...cfg, jumpreluTanhScale: 4 }, p, x, 4, opts);
  const b = trainingForwardRef({ ...cfg, jumpreluTanhScale: 8 }, p, x, 4, opts);
  assertAllClose(a.featureActs, b.featureActs, 0);
  assert(b.losses.l0_loss > a.losses.l0_loss && a.losses.l0_loss > 0);
  assertThrows(
    () => trainingForwardRef({ ...cfg, jumpreluSparsityLossMode: "l1" }, p, x, 4, opts),
    SaeReferenceError,
    "invalid sparsity loss mode",
  );
});

/** Independent float64 ∂loss/∂f for the mse (+ tanh) terms, and the STE θ-gradient. */
function steThetaGrad(
  cfg: ReturnType<typeof smallCfg>,
  p: Params64,
  x: Float64Array,
  n: number,
  lambda: number,
): { theta: Float64Array; steInput: Float64Array } {
  const { dIn, dSae } = cfg;
  const eps = cfg.jumpreluBandwidth!, c = cfg.jumpreluTanhScale ?? 4;
  const theta = Array.from(p.threshold, (t) => Math.max(t, 0));
  const norms = Array.from(
    { length: dSae },
    (_, i) => Math.hypot(...p.W_dec.subarray(i * dIn, (i + 1) * dIn)),
  );
  const gTheta = new Float64Array(dSae), steInput = new Float64Array(dSae);
  for (let b = 0; b < n; b++) {
    const h: number[] = [], f: number[] = [];
    for (let i = 0; i < dSae; i++) {
      let v = p.b_enc[i];
      for (let j = 0; j < dIn; j++) v += (x[b * dIn + j] - p.b_dec[j]) * p.W_enc[j * dSae + i];
      h.push(v);
      f.push(v > theta[i] ? v : 0);
    }
    const xHat = Array.from(
      { length: dIn },
      (_, j) => p.b_dec[j] + f.reduce((s, fi, i) => s + fi * p.W_dec[i * dIn + j], 0),
    );
    for (let i = 0; i < dSae; i++) {
      let gF = 0;
      for (let j = 0; j < dIn; j++) {
        gF += (2 / n) * (xHat[j] - x[b * dIn + j]) * p.W_dec[i * dIn + j];
      }
      let gStep = 0;
      if (cfg.jumpreluSparsityLossMode === "tanh") {
        gF += (lambda / n) * c * norms[i] * (1 - Math.tanh(c * f[i] * norms[i]) ** 2);
      } else {
        gStep = lambda / n;
      }
      const u = (h[i] - theta[i]) / eps;
      if (u > -0.5 && u < 0.5) {
        const term = -(theta[i] / eps) * gF - gStep / eps;
        if (p.threshold[i] > 0) gTheta[i] += term;
        steInput[i] -= term; // per-latent sum of the STE-to-input extra (into b_enc)
      }
    }
  }
  return { theta: gTheta, steInput };
}

for (const mode of ["step", "tanh"]) {
  Deno.test(`jumprelu (${mode}): FD gradients for W/b, STE formula for θ, pre-act on dead latents`, () => {
    const cfg = smallCfg("jumprelu", {
      jumpreluSparsityLossMode: mode,
      jumpreluBandwidth: 0.5,
      preActLossCoefficient: 0.3,
    });
    const { p, x } = randomProblem(cfg, 4, mode === "step" ? 31 : 32);
    p.threshold[6] = -0.2; // clamped: no gradient through ReLU(θ)
    const deadMask = Uint8Array.of(0, 1, 0, 1, 1, 0, 0);
    const opts = { coefficients: { l0: 0.7 }, deadMask };
    const grads = checkGradients(cfg, p, x, 4, opts, NON_THETA);
    // θ: STE estimator (not the true derivative) + the exact pre-act derivative.
    const ste = steThetaGrad(cfg, p, x, 4, 0.7);
    const noPre = trainingBackwardRef({ ...cfg, preActLossCoefficient: null }, p, x, 4, opts);
    assertAllClose(noPre.threshold, ste.theta, 1e-6, 1e-5, "STE θ-gradient");
    assert(l1(ste.theta) > 0, "some h must fall inside the rectangle");
    assertClose(grads.threshold[6], 0, 0);
    const preOnly = new Float64Array(7);
    const eps = 1e-6;
    for (let i = 0; i < 7; i++) {
      const o = p.threshold[i];
      p.threshold[i] = o + eps;
      const up = trainingForwardRef(cfg, p, x, 4, opts).losses.pre_act_loss;
      p.threshold[i] = o - eps;
      const down = trainingForwardRef(cfg, p, x, 4, opts).losses.pre_act_loss;
      p.threshold[i] = o;
      preOnly[i] = (up - down) / (2 * eps);
    }
    assert(l1(preOnly) > 0, "pre-act loss must depend on θ here");
    assertAllClose(
      grads.threshold.map((v, i) => v - noPre.threshold[i]),
      preOnly,
      1e-6,
      1e-5,
      "pre-act θ-gradient",
    );
    // Optional STE to the input adds the negated θ-estimator terms to ∂/∂h (seen in b_enc).
    const withSte = trainingBackwardRef(
      { ...cfg, preActLossCoefficient: null, jumpreluSteToInput: true },
      p,
      x,
      4,
      opts,
    );
    assertAllClose(
      withSte.b_enc.map((v, i) => v - noPre.b_enc[i]),
      ste.steInput,
      1e-6,
      1e-5,
      "STE to input",
    );
  });
}
