import { assertAllClose, assertClose, assertEquals, assertThrows } from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import { foldWDecNormRef } from "../../../../sae/reference/fold.ts";
import { createRng } from "../../../../sae/reference/rng.ts";
import {
  decodeRef,
  encodeRef,
  forwardRef,
  trainingForwardRef,
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
  assertThrows(
    () => trainingForwardRef(cfg, p, x, n, { coefficients: {} }),
    SaeReferenceError,
    "no training pass",
  );
  assertThrows(() => forwardRef({ ...cfg, dOut: undefined }, p, x, n), SaeReferenceError, "dOut");
});
