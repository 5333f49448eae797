import { assert, assertAllClose, assertClose, assertEquals } from "../../../assert.ts";
import { encodeRef, forwardRef, trainingForwardRef } from "../../../../sae/reference/sae.ts";
import { checkGradients, l1, randomProblem, smallCfg } from "../../reference/_helpers.ts";

const PARAMS = ["W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"];

function appendixCfgParams() {
  const cfg = { ...smallCfg("gated"), dIn: 2, dSae: 3 };
  const p = {
    W_enc: new Float32Array(6).fill(1),
    W_dec: new Float32Array(6).fill(1),
    b_dec: new Float32Array(2),
    b_gate: Float32Array.of(-2, 0, 1),
    r_mag: Float32Array.of(1, 2, 3),
    b_mag: Float32Array.of(1, 1, 1),
  };
  return { cfg, p, x: Float32Array.of(0.3, 0.3) };
}

Deno.test("gated: Appendix A forward vector", () => {
  const { cfg, p, x } = appendixCfgParams();
  const enc = encodeRef(cfg, p, x, 1);
  assertAllClose(enc.hiddenPre, [2.631, 5.4334, 13.0513], 1e-3);
  assertAllClose(enc.featureActs, [0, 5.4334, 13.0513], 1e-3);
  assertAllClose(forwardRef(cfg, p, x, 1).output, [18.4848, 18.4848], 1e-3);
  assertAllClose(forwardRef(cfg, p, x, 1, { useErrorTerm: true }).output, x, 1e-6);
});

Deno.test("gated: training loss = mse + λ·Σ ReLU(π_gate)·n + aux reconstruction", () => {
  const { cfg, p, x } = appendixCfgParams();
  // Unit decoder rows (as with decoder_init_norm 1.0): n = 1.
  p.W_dec.fill(Math.SQRT1_2);
  const out = trainingForwardRef(cfg, p, x, 1, { coefficients: { l1: 0.5 } });
  const f = [0, 0.6 * Math.exp(2) + 1, 0.6 * Math.exp(3) + 1];
  const xHat = (f[1] + f[2]) * Math.SQRT1_2;
  const mse = 2 * (xHat - 0.3) ** 2;
  const gate = [0, 0.6, 1.6]; // ReLU(0.6 + b_gate)
  const l1Loss = 0.5 * (gate[0] + gate[1] + gate[2]);
  const auxRecon = (gate[0] + gate[1] + gate[2]) * Math.SQRT1_2;
  const aux = 2 * (auxRecon - 0.3) ** 2;
  assertClose(out.losses.mse_loss, mse, 0, 1e-5);
  assertClose(out.losses.l1_loss, l1Loss, 0, 1e-6);
  assertClose(out.losses.auxiliary_reconstruction_loss, aux, 0, 1e-6);
  assertClose(out.loss, mse + l1Loss + aux, 0, 1e-5);
  assertEquals(Object.keys(out.losses), ["mse_loss", "l1_loss", "auxiliary_reconstruction_loss"]);
});

Deno.test("gated: gradients match finite differences (aux not detached)", () => {
  const cfg = smallCfg("gated");
  const { p, x } = randomProblem(cfg, 4, 11);
  const g = checkGradients(cfg, p, x, 4, { coefficients: { l1: 0.4 } }, PARAMS);
  assert(l1(g.b_gate) > 0 && l1(g.r_mag) > 0, "gate and magnitude paths must both get gradient");
});

Deno.test("gated: gradients match finite differences with layer_norm (aux path un-normalised)", () => {
  const cfg = smallCfg("gated", { normalizeActivations: "layer_norm" });
  const { p, x } = randomProblem(cfg, 4, 12);
  checkGradients(cfg, p, x, 4, { coefficients: { l1: 0.4 } }, PARAMS);
});
