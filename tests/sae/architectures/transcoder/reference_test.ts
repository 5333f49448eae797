import { assertAllClose, assertClose, assertEquals, assertThrows } from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import { foldWDecNormRef } from "../../../../sae/reference/fold.ts";
import { createRng } from "../../../../util/rng.ts";
import {
  decodeRef,
  encodeRef,
  forwardRef,
  trainingForwardRef,
  trainingStepRef,
} from "../../../../sae/reference/sae.ts";

const dIn = 3, dSae = 4, dOut = 2, n = 2;

function problem(architecture: string) {
  const rng = createRng(71);
  const r = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
  const cfg = {
    architecture,
    dIn,
    dSae,
    dOut,
    applyBDecToInput: false,
    normalizeActivations: "none",
  };
  const p: Record<string, Float32Array> = {
    W_enc: r(dIn * dSae),
    b_enc: r(dSae),
    W_dec: r(dSae * dOut),
    b_dec: r(dOut),
    W_skip: r(dOut * dIn),
    threshold: Float32Array.of(0.2, 0.5, -0.3, 0.1),
  };
  return { cfg, p, x: r(n * dIn) };
}

/** Independent transcoder forward. */
function byHand(p: Record<string, Float32Array>, x: Float32Array, jump: boolean, skip: boolean) {
  const f = new Float64Array(n * dSae), y = new Float64Array(n * dOut);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < dSae; i++) {
      let h = p.b_enc[i];
      for (let j = 0; j < dIn; j++) h += x[b * dIn + j] * p.W_enc[j * dSae + i];
      f[b * dSae + i] = h > 0 && (!jump || h > p.threshold[i]) ? h : 0;
    }
    for (let o = 0; o < dOut; o++) {
      let s = p.b_dec[o];
      for (let i = 0; i < dSae; i++) s += f[b * dSae + i] * p.W_dec[i * dOut + o];
      if (skip) { for (let j = 0; j < dIn; j++) s += x[b * dIn + j] * p.W_skip[o * dIn + j]; }
      y[b * dOut + o] = s;
    }
  }
  return { f, y };
}

for (
  const arch of ["transcoder", "skip_transcoder", "jumprelu_transcoder", "jumprelu_skip_transcoder"]
) {
  Deno.test(`${arch}: forward matches an independent computation (no b_dec subtraction)`, () => {
    const { cfg, p, x } = problem(arch);
    const jump = arch.startsWith("jumprelu"), skip = arch.includes("skip");
    const expect = byHand(p, x, jump, skip);
    const out = forwardRef(cfg, p, x, n);
    assertAllClose(out.featureActs, expect.f, 1e-6);
    assertAllClose(out.output, expect.y, 1e-5);
    // decode alone never adds the skip connection.
    const dec = decodeRef(cfg, p, out.featureActs, n);
    assertAllClose(dec, byHand(p, x, jump, false).y, 1e-5);
    // Folding decoder norms keeps the output (JumpReLU variants also scale θ).
    const folded = foldWDecNormRef(cfg, p);
    assertAllClose(forwardRef(cfg, folded, x, n).output, out.output, 1e-5);
    if (jump) {
      assertClose(
        folded.threshold[0],
        p.threshold[0] * Math.hypot(...p.W_dec.subarray(0, dOut)),
        1e-6,
      );
    }
    assertEquals(encodeRef(cfg, p, x, n).hiddenPre.length, n * dSae);
  });
}

Deno.test("transcoders: misuse is reported", () => {
  const { cfg, p, x } = problem("transcoder");
  assertThrows(
    () => forwardRef({ ...cfg, applyBDecToInput: true }, p, x, n),
    SaeReferenceError,
    "applyBDecToInput",
  );
  assertThrows(
    () => forwardRef(cfg, p, x, n, { useErrorTerm: true }),
    SaeReferenceError,
    "error term",
  );
  // Transcoders train (saeflow), but only against a target read at hook_name_out.
  assertThrows(
    () => trainingForwardRef(cfg, p, x, n, { coefficients: { l1: 1 } }),
    SaeReferenceError,
    "target",
  );
  assertThrows(() => forwardRef({ ...cfg, dOut: undefined }, p, x, n), SaeReferenceError, "dOut");
});

// ---- Training (saeflow): the decoder reconstructs a target at hook_name_out ----

/** Float64 parameters (W_dec [dSae, dOut]) and an input and target for a training check. */
function trainingProblem(architecture: string, seed: number) {
  const rng = createRng(seed);
  const r = (len: number, s = 0.6, mean = 0) =>
    Float64Array.from({ length: len }, () => mean + s * rng.normal());
  const cfg = {
    architecture,
    dIn: 5,
    dSae: 7,
    dOut: 4,
    applyBDecToInput: false,
    normalizeActivations: "none",
    jumpreluBandwidth: 0.3,
  };
  const p: Record<string, Float64Array> = {
    W_enc: r(5 * 7),
    b_enc: r(7, 0.3),
    W_dec: r(7 * 4),
    b_dec: r(4, 0.2),
  };
  if (architecture.includes("skip")) p.W_skip = r(4 * 5, 0.3);
  if (architecture.startsWith("jumprelu")) p.threshold = r(7, 0.2, 0.3);
  return { cfg, p, x: r(6 * 5, 1), y: r(6 * 4, 1) };
}

/** Central differences of the total loss w.r.t. every entry of `p[name]`. */
function fd(
  cfg: Parameters<typeof trainingForwardRef>[0],
  p: Record<string, Float64Array>,
  x: Float64Array,
  opts: Parameters<typeof trainingForwardRef>[4],
  name: string,
): Float64Array {
  const t = p[name], g = new Float64Array(t.length), eps = 1e-6;
  for (let i = 0; i < t.length; i++) {
    const v = t[i];
    t[i] = v + eps;
    const up = trainingForwardRef(cfg, p, x, 6, opts).loss;
    t[i] = v - eps;
    const down = trainingForwardRef(cfg, p, x, 6, opts).loss;
    t[i] = v;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

for (
  const [arch, coefficients, extra] of [
    ["transcoder", { l1: 0.7 }, {}],
    ["transcoder", { l1: 0.5 }, { lpNorm: 1.5 }],
    ["skip_transcoder", { l1: 0.7 }, {}],
    ["jumprelu_transcoder", { l0: 0.4 }, { jumpreluSparsityLossMode: "tanh" }],
    ["jumprelu_skip_transcoder", { l0: 0.4 }, { jumpreluSparsityLossMode: "tanh" }],
  ] as const
) {
  Deno.test(`${arch} ${JSON.stringify(extra)}: training gradients match finite differences`, () => {
    const pb = trainingProblem(arch, arch.length + Object.keys(extra).length);
    const cfg = { ...pb.cfg, ...extra };
    const opts = { coefficients: coefficients as Record<string, number>, target: pb.y };
    const step = trainingStepRef(cfg, pb.p, pb.x, 6, opts);
    // The loss is the mse against the target (not against x) plus the sparsity term.
    const y = step.forward.sae_out;
    let mse = 0;
    for (let k = 0; k < 6 * 4; k++) mse += (y[k] - pb.y[k]) ** 2;
    assertClose(step.forward.losses.mse_loss, mse / 6, 1e-9, 1e-5);
    for (const name of Object.keys(pb.p)) {
      if (name === "threshold") continue; // piecewise constant: an STE, not a derivative
      assertAllClose(
        step.grads[name],
        fd(cfg, pb.p, pb.x, opts, name),
        2e-6,
        2e-5,
        `${arch} ∂/∂${name}`,
      );
    }
    assertEquals(Object.keys(step.grads).sort(), Object.keys(pb.p).sort());
  });
}

Deno.test("transcoder training: refused with run-time normalisation, b_dec on the input or a bad target", () => {
  const pb = trainingProblem("transcoder", 3);
  const opts = { coefficients: { l1: 1 }, target: pb.y };
  assertThrows(
    () =>
      trainingForwardRef({ ...pb.cfg, normalizeActivations: "layer_norm" }, pb.p, pb.x, 6, opts),
    SaeReferenceError,
    "normalizeActivations",
  );
  assertThrows(
    () => trainingForwardRef({ ...pb.cfg, applyBDecToInput: true }, pb.p, pb.x, 6, opts),
    SaeReferenceError,
    "applyBDecToInput",
  );
  assertThrows(
    () => trainingForwardRef(pb.cfg, pb.p, pb.x, 6, { ...opts, target: pb.y.subarray(1) }),
    SaeReferenceError,
    "target: expected [6, 4]",
  );
});
