import { assert, assertAllClose, assertClose, assertThrows } from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import {
  encodeRef,
  forwardRef,
  trainingBackwardRef,
  trainingForwardRef,
} from "../../../../sae/reference/sae.ts";
import { checkGradients, l1, randomProblem, smallCfg } from "../../reference/_helpers.ts";

const PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"];

Deno.test("standard: gradients match finite differences (p = 1, apply b_dec)", () => {
  const cfg = smallCfg("standard");
  const { p, x } = randomProblem(cfg, 4, 1);
  const g = checkGradients(cfg, p, x, 4, { coefficients: { l1: 0.3 } }, PARAMS);
  assert(l1(g.W_dec) > 0 && l1(g.b_dec) > 0);
});

Deno.test("standard: gradients match finite differences (p = 2, layer_norm)", () => {
  const cfg = smallCfg("standard", { lpNorm: 2, normalizeActivations: "layer_norm" });
  const { p, x } = randomProblem(cfg, 4, 2);
  checkGradients(cfg, p, x, 4, { coefficients: { l1: 0.7 } }, PARAMS);
});

Deno.test("standard: gradients match finite differences (constant_norm_rescale, no b_dec in input)", () => {
  const cfg = smallCfg("standard", {
    normalizeActivations: "constant_norm_rescale",
    applyBDecToInput: false,
  });
  const { p, x } = randomProblem(cfg, 4, 3);
  checkGradients(cfg, p, x, 4, { coefficients: { l1: 0.2 } }, PARAMS);
});

Deno.test("standard: loss values follow the SAELens definitions", () => {
  // dIn 2, dSae 2, identity encoder; decoder rows of norm 2 and 1.
  const cfg = { ...smallCfg("standard", { applyBDecToInput: false }), dIn: 2, dSae: 2 };
  const p = {
    W_enc: Float64Array.of(1, 0, 0, 1),
    b_enc: Float64Array.of(0, 0),
    W_dec: Float64Array.of(2, 0, 0, 1),
    b_dec: Float64Array.of(0, 0),
  };
  const x = Float64Array.of(1, 2, -1, 3); // token 0: f=[1,2]; token 1: f=[0,3]
  const out = trainingForwardRef(cfg, p, x, 2, { coefficients: { l1: 0.5 } });
  // x̂ = [2, 2], [0, 3] → mse = ((1)² + 0 + (1)² + 0)/2 = 1
  assertClose(out.losses.mse_loss, 1, 1e-12);
  // l1 = 0.5 · mean(1·2 + 2·1, 3·1) = 0.5 · 3.5
  assertClose(out.losses.l1_loss, 1.75, 1e-12);
  assertClose(out.loss, 2.75, 1e-12);
  const out2 = trainingForwardRef({ ...cfg, lpNorm: 2 }, p, x, 2, { coefficients: { l1: 0.5 } });
  assertClose(out2.losses.l1_loss, 0.5 * (Math.hypot(2, 2) + 3) / 2, 1e-12);
  assertAllClose(out.featureActs, [1, 2, 0, 3]);
});

Deno.test("standard: identity SAE ([I; −I]) reconstructs exactly with l0 = dIn", () => {
  const d = 3;
  const cfg = { ...smallCfg("standard"), dIn: d, dSae: 2 * d };
  const W_dec = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    W_dec[i * d + i] = 1;
    W_dec[(d + i) * d + i] = -1;
  }
  const W_enc = new Float32Array(d * 2 * d);
  for (let i = 0; i < 2 * d; i++) {
    for (let j = 0; j < d; j++) W_enc[j * 2 * d + i] = W_dec[i * d + j];
  }
  const p = { W_enc, W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) };
  const x = Float32Array.of(0.5, -2, 3, -1, 1.5, -0.25);
  const { output, featureActs } = forwardRef(cfg, p, x, 2);
  assertAllClose(output, x, 0);
  for (let b = 0; b < 2; b++) {
    assert(featureActs.subarray(b * 2 * d, (b + 1) * 2 * d).filter((v) => v !== 0).length === d);
  }
  const t = trainingForwardRef(cfg, p, x, 2, { coefficients: { l1: 0 } });
  assertClose(t.losses.mse_loss, 0, 0);
});

Deno.test("standard: error term gives output == x, and edits change x̂ but not the error", () => {
  const cfg = smallCfg("standard");
  const { p, x } = randomProblem(cfg, 4, 5);
  const plain = forwardRef(cfg, p, x, 4, { useErrorTerm: true });
  assertAllClose(plain.output, x, 1e-6);
  const edited = forwardRef(cfg, p, x, 4, {
    useErrorTerm: true,
    editFeatureActs: (f) => f.fill(20),
  });
  assertAllClose(edited.saeError!, plain.saeError!, 0);
  assert(Math.abs(edited.output[0] - plain.output[0]) > 1e-2, "edit must change the output");
});

Deno.test("standard: inference encode equals the training features", () => {
  const cfg = smallCfg("standard", { normalizeActivations: "layer_norm" });
  const { p, x } = randomProblem(cfg, 4, 6);
  const enc = encodeRef(cfg, p, x, 4);
  const t = trainingForwardRef(cfg, p, x, 4, { coefficients: { l1: 1 } });
  assertAllClose(enc.featureActs, t.featureActs, 0);
  assertAllClose(enc.hiddenPre, t.hiddenPre, 0);
});

/** Independent ghost-grads loss with ν, the rescale s and the residual frozen (detached). */
function ghostSurrogate(
  p: Record<string, Float64Array>,
  x: Float64Array,
  n: number,
  dIn: number,
  dSae: number,
  dead: number[],
  frozen: { nu: number[]; s: number[]; r: number[] },
): number {
  let loss = 0;
  for (let b = 0; b < n; b++) {
    const raw = new Array(dIn).fill(0);
    for (const i of dead) {
      let h = p.b_enc[i];
      for (let j = 0; j < dIn; j++) h += (x[b * dIn + j] - p.b_dec[j]) * p.W_enc[j * dSae + i];
      for (let j = 0; j < dIn; j++) raw[j] += Math.exp(h) * p.W_dec[i * dIn + j];
    }
    for (let j = 0; j < dIn; j++) {
      const k = b * dIn + j;
      loss += frozen.s[k] * (raw[j] * frozen.nu[b] - frozen.r[k]) ** 2;
    }
  }
  return loss / (n * dIn);
}

Deno.test("standard: legacy ghost grads — value and gradient of the detached-factor loss", () => {
  const cfg = smallCfg("standard", { useGhostGrads: true });
  const n = 4, { dIn, dSae } = cfg;
  const { p, x } = randomProblem(cfg, n, 7);
  const deadMask = Uint8Array.of(1, 0, 0, 1, 0, 1, 0);
  const dead = [0, 3, 5];
  const opts = { coefficients: { l1: 0.3 }, deadMask };
  const base = trainingForwardRef(cfg, p, x, n, opts);
  // Frozen factors from the base point, computed independently here.
  const xHat = trainingForwardRef({ ...cfg, useGhostGrads: false }, p, x, n, opts).sae_out;
  const frozen = { nu: [] as number[], s: [] as number[], r: [] as number[] };
  for (let b = 0; b < n; b++) {
    const raw = new Array(dIn).fill(0);
    for (const i of dead) {
      let h = p.b_enc[i];
      for (let j = 0; j < dIn; j++) h += (x[b * dIn + j] - p.b_dec[j]) * p.W_enc[j * dSae + i];
      for (let j = 0; j < dIn; j++) raw[j] += Math.exp(h) * p.W_dec[i * dIn + j];
    }
    let rr = 0;
    for (let j = 0; j < dIn; j++) rr += (x[b * dIn + j] - xHat[b * dIn + j]) ** 2;
    frozen.nu.push(Math.sqrt(rr) / (1e-6 + 2 * Math.hypot(...raw)));
    for (let j = 0; j < dIn; j++) {
      const r = x[b * dIn + j] - xHat[b * dIn + j];
      frozen.r.push(r);
      frozen.s.push(r * r / ((raw[j] * frozen.nu[b] - r) ** 2 + 1e-6));
    }
  }
  const surrogate0 = ghostSurrogate(p, x, n, dIn, dSae, dead, frozen);
  assertClose(base.losses.ghost_grad_loss, surrogate0, 1e-6, 1e-5);
  assertClose(
    base.loss,
    base.losses.mse_loss + base.losses.l1_loss + base.losses.ghost_grad_loss,
    1e-12,
  );

  const withGhost = trainingBackwardRef(cfg, p, x, n, opts);
  const without = trainingBackwardRef({ ...cfg, useGhostGrads: false }, p, x, n, opts);
  const eps = 1e-6;
  for (const name of PARAMS) {
    const t = p[name];
    const fd = new Float64Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const o = t[i];
      t[i] = o + eps;
      const up = ghostSurrogate(p, x, n, dIn, dSae, dead, frozen);
      t[i] = o - eps;
      const down = ghostSurrogate(p, x, n, dIn, dSae, dead, frozen);
      t[i] = o;
      fd[i] = (up - down) / (2 * eps);
    }
    const diff = withGhost[name].map((v, i) => v - without[name][i]);
    assertAllClose(diff, fd, 2e-6, 2e-5, `ghost ∂/∂${name}`);
  }
  assert(
    l1(withGhost.W_dec.map((v, i) => v - without.W_dec[i])) > 1e-6,
    "ghost grads must reach W_dec",
  );
});

Deno.test("standard: ghost grads are 0 without dead latents", () => {
  const cfg = smallCfg("standard", { useGhostGrads: true });
  const { p, x } = randomProblem(cfg, 4, 8);
  const out = trainingForwardRef(cfg, p, x, 4, {
    coefficients: { l1: 1 },
    deadMask: new Uint8Array(7),
  });
  assertClose(out.losses.ghost_grad_loss, 0, 0);
});

Deno.test("reference: unknown architecture, bad shapes and missing coefficients are reported", () => {
  const cfg = smallCfg("standard");
  const { p, x } = randomProblem(cfg, 4, 9);
  assertThrows(
    () => encodeRef({ ...cfg, architecture: "crosscoder" }, p, x, 4),
    SaeReferenceError,
    "unknown",
  );
  assertThrows(() => encodeRef(cfg, p, x, 3), SaeReferenceError, "x: expected [3, 5]");
  assertThrows(
    () => encodeRef(cfg, { ...p, W_enc: new Float64Array(3) }, x, 4),
    SaeReferenceError,
    "params.W_enc",
  );
  assertThrows(
    () => trainingForwardRef(cfg, p, x, 4, { coefficients: {} }),
    SaeReferenceError,
    "coefficients.l1",
  );
  assertThrows(
    () =>
      trainingForwardRef(cfg, p, x, 4, { coefficients: { l1: 1 }, deadMask: new Uint8Array(3) }),
    SaeReferenceError,
    "deadMask",
  );
});
