import { assert, assertAllClose, assertClose } from "../../assert.ts";
import {
  foldActivationNormScalingFactorRef,
  foldWDecNormRef,
} from "../../../sae/reference/fold.ts";
import { decodeRef, encodeRef, forwardRef } from "../../../sae/reference/sae.ts";
import { randomProblem, smallCfg } from "./_helpers.ts";

for (const arch of ["standard", "gated", "jumprelu"]) {
  Deno.test(`${arch}: fold_W_dec_norm — unit rows, acts scale by n, outputs unchanged`, () => {
    const cfg = smallCfg(arch);
    const { p, x } = randomProblem(cfg, 4, 81);
    const folded = foldWDecNormRef(cfg, p);
    const norms = Array.from(
      { length: 7 },
      (_, i) => Math.hypot(...p.W_dec.subarray(i * 5, i * 5 + 5)),
    );
    for (let i = 0; i < 7; i++) {
      assertClose(Math.hypot(...folded.W_dec.subarray(i * 5, i * 5 + 5)), 1, 1e-6);
    }
    const before = encodeRef(cfg, p, x, 4).featureActs,
      after = encodeRef(cfg, folded, x, 4).featureActs;
    assertAllClose(after, before.map((v, k) => v * norms[k % 7]), 1e-5);
    assert(
      before.some((v) => v !== 0) && before.some((v) => v === 0),
      "test needs active and inactive latents",
    );
    assertAllClose(after.map((v) => (v !== 0 ? 1 : 0)), before.map((v) => (v !== 0 ? 1 : 0)), 0);
    assertAllClose(forwardRef(cfg, folded, x, 4).output, forwardRef(cfg, p, x, 4).output, 1e-5);
    if (arch === "gated") assertAllClose(folded.r_mag, Float32Array.from(p.r_mag), 0);
    if (arch === "jumprelu") {
      assertAllClose(
        folded.threshold,
        p.threshold.map((t, i) => t * norms[i]),
        1e-6,
      );
    }
  });

  Deno.test(`${arch}: fold_activation_norm_scaling_factor(3) — encode(x) == new encode(x/3), decode ×3`, () => {
    const cfg = smallCfg(arch);
    const { p, x } = randomProblem(cfg, 4, 82);
    const s = 3;
    const folded = foldActivationNormScalingFactorRef(p, s);
    assertAllClose(folded.W_enc, p.W_enc.map((v) => v * s), 1e-6);
    const before = encodeRef(cfg, p, x, 4).featureActs;
    const after = encodeRef(cfg, folded, x.map((v) => v / s), 4).featureActs;
    assertAllClose(after, before, 1e-5);
    assertAllClose(
      decodeRef(cfg, folded, after, 4).map((v) => v * s),
      decodeRef(cfg, p, before, 4),
      1e-5,
    );
  });
}
