import {
  assert,
  assertAllClose,
  assertClose,
  assertEquals,
  assertThrows,
} from "../../../assert.ts";
import { SaeReferenceError } from "../../../../sae/reference/common.ts";
import { matryoshkaWidthsRef } from "../../../../sae/architectures/matryoshka_batchtopk/reference.ts";
import { trainingBackwardRef, trainingForwardRef } from "../../../../sae/reference/sae.ts";
import {
  auxKSurrogate,
  checkGradients,
  fdSurrogate,
  l1,
  type Params64,
  randomProblem,
  smallCfg,
} from "../../reference/_helpers.ts";

const PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"];

function cfgWith(extra: Parameters<typeof smallCfg>[1]) {
  return smallCfg("matryoshka_batchtopk", {
    k: 3,
    rescaleActsByDecoderNorm: true,
    matryoshkaWidths: [2, 4],
    ...extra,
  });
}

/** Prefix reconstruction from the first w latents: (f/n)[:, :w]·W_dec[:w] + b_dec. */
function prefixRecon(
  p: Params64,
  f: ArrayLike<number>,
  n: number,
  dIn: number,
  dSae: number,
  w: number,
  rescale: boolean,
): Float64Array {
  const out = new Float64Array(n * dIn);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < dIn; j++) {
      let s = p.b_dec[j];
      for (let i = 0; i < w; i++) {
        const norm = rescale ? Math.hypot(...p.W_dec.subarray(i * dIn, (i + 1) * dIn)) : 1;
        s += (f[b * dSae + i] / norm) * p.W_dec[i * dIn + j];
      }
      out[b * dIn + j] = s;
    }
  }
  return out;
}

Deno.test("matryoshka: widths validation (append d_sae, strictly increasing, non-empty)", () => {
  assertEquals(matryoshkaWidthsRef(cfgWith({ matryoshkaWidths: [2, 4] })), [2, 4, 7]);
  assertEquals(matryoshkaWidthsRef(cfgWith({ matryoshkaWidths: [3, 7] })), [3, 7]);
  assertThrows(
    () => matryoshkaWidthsRef(cfgWith({ matryoshkaWidths: [4, 4] })),
    SaeReferenceError,
    "strictly increasing",
  );
  assertThrows(
    () => matryoshkaWidthsRef(cfgWith({ matryoshkaWidths: [2, 9] })),
    SaeReferenceError,
    "strictly increasing",
  );
  assertThrows(
    () => matryoshkaWidthsRef(cfgWith({ matryoshkaWidths: [] })),
    SaeReferenceError,
    "empty",
  );
});

Deno.test("matryoshka: inner losses are present, correct and summed into the loss", () => {
  const cfg = cfgWith({});
  const { p, x } = randomProblem(cfg, 4, 61);
  const out = trainingForwardRef(cfg, p, x, 4, { coefficients: {} });
  assertEquals(Object.keys(out.losses), [
    "mse_loss",
    "auxiliary_reconstruction_loss",
    "inner_mse_loss_2",
    "inner_mse_loss_4",
  ]);
  for (const w of [2, 4]) {
    const rec = prefixRecon(p, out.featureActs, 4, 5, 7, w, true);
    const expected = rec.reduce((s, v, i) => s + (v - x[i]) ** 2, 0) / 4;
    assertClose(out.losses[`inner_mse_loss_${w}`], expected, 1e-9, 1e-5);
  }
  // The full-width level is the ordinary decode.
  assertAllClose(prefixRecon(p, out.featureActs, 4, 5, 7, 7, true), out.sae_out, 1e-5);
  assertClose(out.loss, Object.values(out.losses).reduce((s, v) => s + v, 0), 1e-12);
  assert(out.metrics.topk_threshold !== 0.5);
});

Deno.test("matryoshka: a single level equals BatchTopK (losses and gradients)", () => {
  const cfg = cfgWith({ matryoshkaWidths: [7] });
  const { p, x } = randomProblem(cfg, 4, 62);
  const opts = { coefficients: {}, deadMask: Uint8Array.of(1, 0, 0, 1, 0, 0, 1) };
  const m = trainingForwardRef(cfg, p, x, 4, opts);
  const b = trainingForwardRef({ ...cfg, architecture: "batchtopk" }, p, x, 4, opts);
  assertEquals(m.losses, b.losses);
  assertEquals(m.metrics, b.metrics);
  const gm = trainingBackwardRef(cfg, p, x, 4, opts),
    gb = trainingBackwardRef({ ...cfg, architecture: "batchtopk" }, p, x, 4, opts);
  for (const name of PARAMS) assertAllClose(gm[name], gb[name], 0);
});

for (const [rescale, norm] of [[true, "none"], [false, "none"], [true, "layer_norm"]] as const) {
  Deno.test(`matryoshka (rescale ${rescale}, ${norm}): gradients match finite differences incl. inner losses`, () => {
    const cfg = cfgWith({ rescaleActsByDecoderNorm: rescale, normalizeActivations: norm });
    const { p, x } = randomProblem(cfg, 4, rescale ? 63 : 64);
    const g = checkGradients(cfg, p, x, 4, { coefficients: {} }, PARAMS);
    assert(l1(g.W_enc) > 0);
  });
}

for (const perLevel of [false, true]) {
  Deno.test(`matryoshka: aux-k gradient (${perLevel ? "per-level" : "full-width"}) with frozen residuals`, () => {
    const cfg = cfgWith({ useMatryoshkaAuxLoss: perLevel, auxLossCoefficient: 0.6 });
    const { p, x } = randomProblem(cfg, 4, perLevel ? 65 : 66);
    const deadMask = Uint8Array.of(0, 1, 1, 0, 0, 1, 1); // dead in every level
    const out = trainingForwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    const levels = perLevel ? [[0, 2], [2, 4], [4, 7]] : [[0, 7]];
    const resid = levels.map(([, w]) =>
      prefixRecon(p, out.featureActs, 4, 5, 7, w, true).map((v, i) => x[i] - v)
    );
    const surrogate = () =>
      0.6 *
      levels.reduce(
        (s, [lo, hi], j) => s + auxKSurrogate(cfg, p, x, 4, deadMask, lo, hi, resid[j]),
        0,
      );
    assertClose(out.losses.auxiliary_reconstruction_loss, surrogate(), 1e-9, 1e-5);
    const g0 = trainingBackwardRef(cfg, p, x, 4, { coefficients: {} });
    const g1 = trainingBackwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    const fd = fdSurrogate(p, PARAMS, surrogate);
    for (const name of PARAMS) {
      assertAllClose(
        g1[name].map((v, i) => v - g0[name][i]),
        fd[name],
        2e-6,
        2e-5,
        `aux ∂/∂${name}`,
      );
    }
    assert(l1(fd.W_dec) > 0);
  });
}
