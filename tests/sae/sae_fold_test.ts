// Weight folds on the GPU vs the reference (sae/reference/fold.ts) and SAELens' behavioural
// checks (§8 test_standard_sae): unit decoder rows, acts scaled by the norms, unchanged outputs,
// TopK without rescaling refused, scaling-factor fold equivalence. Tolerance 1e-5 on tensors,
// 1e-4 abs + 1e-4 rel on activations and outputs.
import { getGpu } from "../../gpu/device.ts";
import { foldActivationNormScalingFactorRef, foldWDecNormRef } from "../../sae/reference/mod.ts";
import { SaeError } from "../../sae/errors.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { ARCH_CASES, randomInput, randomSae, take, upload } from "./_sae_helpers.ts";

await getGpu();
const ATOL = 1e-4, RTOL = 1e-4;

for (const arch of ARCH_CASES.filter((a) => a.name !== "topk")) {
  Deno.test(`SAE ${arch.name}: foldWDecNorm matches the reference; outputs unchanged`, async () => {
    const { sae, params } = await randomSae(arch.fields, 21);
    const x = randomInput(5, 6, 4);
    using xt = upload(x, [5, 6]);
    const before = sae.forwardWithActivations(xt);
    const acts0 = await take(before.featureActs), out0 = await take(before.output);
    const norms = sae.cfg.dOut && arch.name.includes("transcoder") ? sae.cfg.dOut : sae.cfg.dIn;
    const n = Array.from(
      { length: sae.cfg.dSae },
      (_, i) => Math.hypot(...params.W_dec.subarray(i * norms, (i + 1) * norms)),
    );
    sae.foldWDecNorm();
    const want = foldWDecNormRef(sae.cfg, params);
    const got = await sae.stateDict();
    for (const name of Object.keys(want)) {
      assertAllClose(got[name].data, want[name], 1e-5, 1e-5, name);
    }
    for (let i = 0; i < sae.cfg.dSae; i++) {
      const row = got.W_dec.data.subarray(i * norms, (i + 1) * norms);
      assertAllClose([Math.hypot(...row)], [1], 1e-6);
    }
    const after = sae.forwardWithActivations(xt);
    const acts1 = await take(after.featureActs);
    // TopK with rescaling: features unchanged; all others scale by the decoder norms.
    const scaled = arch.name === "topk-rescale"
      ? acts0
      : acts0.map((v, k) => v * n[k % sae.cfg.dSae]);
    assertAllClose(acts1, scaled, ATOL, RTOL, "acts scale by n");
    assertEquals(acts1.map((v) => (v !== 0 ? 1 : 0)), acts0.map((v) => (v !== 0 ? 1 : 0)));
    assertAllClose(await take(after.output), out0, ATOL, RTOL, "outputs unchanged");
    sae.dispose();
  });
}

Deno.test("SAE topk: foldWDecNorm without rescale_acts_by_decoder_norm is refused (like SAELens)", async () => {
  const { sae, params } = await randomSae({ architecture: "topk", k: 3 }, 2);
  assertThrows(() => sae.foldWDecNorm(), SaeError, "rescale_acts_by_decoder_norm false");
  assertThrows(() => foldWDecNormRef(sae.cfg, params));
  // Nothing was changed.
  assertAllClose((await sae.stateDict()).W_dec.data, params.W_dec, 0);
  sae.dispose();
});

for (const arch of ARCH_CASES.filter((a) => !a.name.startsWith("topk"))) {
  Deno.test(`SAE ${arch.name}: foldActivationNormScalingFactor(3)`, async () => {
    const { sae, params } = await randomSae(
      { ...arch.fields, normalizeActivations: "expected_average_only_in" },
      5,
    );
    const x = randomInput(4, 6, 8, 2);
    using xt = upload(x, [4, 6]);
    using xs = upload(x.map((v) => v / 3), [4, 6]);
    const acts0 = await take(sae.encode(xt));
    const out0 = await take(sae.forward(xt));
    sae.foldActivationNormScalingFactor(3);
    assertEquals(sae.cfg.normalizeActivations, "none");
    const got = await sae.stateDict();
    const want = foldActivationNormScalingFactorRef(params, 3);
    for (const name of Object.keys(want)) {
      assertAllClose(got[name].data, want[name], 1e-6, 1e-6, name);
    }
    assertAllClose(
      await take(sae.encode(xs)),
      acts0,
      ATOL,
      RTOL,
      "encode(x/3) after = encode(x) before",
    );
    const out1 = await take(sae.forward(xs));
    // Skip transcoders too: x/3·W_skipᵀ is a third of the skip term.
    assertAllClose(out1.map((v) => v * 3), out0, ATOL, RTOL, "decode output ×3");
    sae.dispose();
  });
}
