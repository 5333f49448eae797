import { assert, assertAllClose, assertClose, assertEquals } from "../../../assert.ts";
import {
  batchTopKRef,
  updateTopkThresholdRef,
} from "../../../../sae/architectures/batchtopk/reference.ts";
import { exportBatchTopKRef } from "../../../../sae/reference/fold.ts";
import {
  decodeRef,
  encodeRef,
  trainingBackwardRef,
  trainingForwardRef,
} from "../../../../sae/reference/sae.ts";
import { createRng } from "../../../../util/rng.ts";
import {
  auxKSurrogate,
  checkGradients,
  fdSurrogate,
  l1,
  randomProblem,
  smallCfg,
} from "../../reference/_helpers.ts";

const PARAMS = ["W_enc", "b_enc", "W_dec", "b_dec"];

Deno.test("batchtopk: SAELens activation cases (k = 2, imbalanced, k = 1.5, few positives)", () => {
  assertAllClose(batchTopKRef([1, -2, 3, -4, -5, 6, -7, 8], 2, 4, 2), [1, 0, 3, 0, 0, 6, 0, 8]);
  assertAllClose(batchTopKRef([1, 2, 3, 4, -5, -6, 0.5, -8], 2, 4, 2), [1, 2, 3, 4, 0, 0, 0, 0]);
  const f = batchTopKRef([1, -2, 3, -4, -5, 6, -7, 8], 2, 4, 1.5);
  assertAllClose(f, [0, 0, 3, 0, 0, 6, 0, 8]);
  assertEquals(f.filter((v) => v !== 0).length, 3);
  assertAllClose(batchTopKRef([1, -2, -3, -4, -5, -6, -7, 2], 2, 4, 2), [1, 0, 0, 0, 0, 0, 0, 2]);
});

Deno.test("batchtopk: L0 over the batch equals ⌊k·n⌋ when enough activations are positive", () => {
  const rng = createRng(7);
  for (const [n, d, k] of [[3, 8, 2], [5, 6, 1.5], [4, 16, 3.25], [1, 4, 4]]) {
    const h = Float64Array.from({ length: n * d }, () => 10 + rng.normal());
    const nnz = batchTopKRef(h, n, d, k).filter((v) => v !== 0).length;
    assertEquals(nnz, Math.trunc(k * n), `n ${n} d ${d} k ${k}`);
  }
});

Deno.test("batchtopk: threshold EMA with the smallest positive activation, reported in metrics", () => {
  const cfg = smallCfg("batchtopk", { k: 2, rescaleActsByDecoderNorm: true, topkThresholdLr: 0.1 });
  const { p, x } = randomProblem(cfg, 4, 51);
  const out = trainingForwardRef(cfg, p, x, 4, { coefficients: {} });
  const minPos = Math.min(...out.featureActs.filter((v) => v > 0));
  const expected = 0.9 * 0.5 + 0.1 * minPos;
  assertClose(out.metrics.topk_threshold, expected, 1e-12);
  assertClose(out.topkThreshold!, expected, 1e-12);
  assert(out.metrics.topk_threshold !== 0.5, "threshold must move after a step");
  assertEquals(updateTopkThresholdRef(0.25, [0, 0, -1], 0.5), 0.25); // nothing fired: unchanged
  assertEquals(out.featureActs.filter((v) => v !== 0).length <= 8, true);
  assertAllClose(encodeRef(cfg, p, x, 4).featureActs, out.featureActs, 0);
});

for (const rescale of [true, false]) {
  Deno.test(`batchtopk (rescale ${rescale}): gradients match finite differences (main path and aux-k)`, () => {
    const cfg = smallCfg("batchtopk", {
      k: 2.5,
      rescaleActsByDecoderNorm: rescale,
      auxLossCoefficient: 0.7,
    });
    const { p, x } = randomProblem(cfg, 4, rescale ? 52 : 53);
    const g0 = checkGradients(cfg, p, x, 4, { coefficients: {} }, PARAMS);
    assert(l1(g0.W_enc) > 0);
    const deadMask = Uint8Array.of(0, 1, 1, 0, 1, 0, 1);
    const out = trainingForwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    const r = out.sae_out.map((v, i) => x[i] - v);
    assertClose(
      out.losses.auxiliary_reconstruction_loss,
      0.7 * auxKSurrogate(cfg, p, x, 4, deadMask, 0, 7, r),
      1e-9,
      1e-5,
    );
    const g1 = trainingBackwardRef(cfg, p, x, 4, { coefficients: {}, deadMask });
    const fd = fdSurrogate(p, PARAMS, () => 0.7 * auxKSurrogate(cfg, p, x, 4, deadMask, 0, 7, r));
    for (const name of PARAMS) {
      assertAllClose(
        g1[name].map((v, i) => v - g0[name][i]),
        fd[name],
        2e-6,
        2e-5,
        `aux-k ∂/∂${name}`,
      );
    }
  });
}

Deno.test("batchtopk: export as JumpReLU — threshold = θ·ones, norms folded, per-token inference", () => {
  const cfg = smallCfg("batchtopk", { k: 2, rescaleActsByDecoderNorm: true });
  const { p, x } = randomProblem(cfg, 4, 54);
  p.topk_threshold[0] = 0.4;
  const exported = exportBatchTopKRef(cfg, p);
  assertEquals(exported.topk_threshold, undefined);
  assertAllClose(exported.threshold, new Array(7).fill(0.4), 1e-7);
  const jr = smallCfg("jumprelu");
  const enc = encodeRef(jr, exported, x, 4);
  // Expected: ReLU(h·n)·1[h·n > θ] from the training parameters.
  const train = trainingForwardRef(cfg, p, x, 4, { coefficients: {} });
  const hs = train.hiddenPre;
  assertAllClose(enc.featureActs, hs.map((v) => (v > 0.4 ? v : 0)), 1e-5);
  // Decoding the same features agrees between the exported and training parameterisations.
  assertAllClose(
    decodeRef(jr, exported, enc.featureActs, 4),
    decodeRef(cfg, p, enc.featureActs, 4),
    1e-5,
  );
});
