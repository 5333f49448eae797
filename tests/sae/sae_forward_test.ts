// GPU SAE forward pass against the plain-TS reference (sae/reference) for every architecture,
// run-time normalisation mode and input rank; SAELens Appendix A vectors; identity SAE; hook_z
// inputs; input-shape errors. Tolerance vs the float64 reference: 1e-4 abs + 1e-4 rel (f32 GPU
// matmuls over ≤ 8 terms); Appendix A: 1e-3 (as SAELens' test) and 1e-6.
import { getGpu } from "../../gpu/device.ts";
import { decodeRef, encodeRef, forwardRef } from "../../sae/reference/mod.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeError } from "../../sae/errors.ts";
import { assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { ARCH_CASES, randomInput, randomSae, take, upload } from "./_sae_helpers.ts";

await getGpu();
const ATOL = 1e-4, RTOL = 1e-4;
const MODES = ["none", "constant_norm_rescale", "layer_norm"];

for (const arch of ARCH_CASES) {
  for (const mode of MODES) {
    Deno.test(`SAE ${arch.name} (${mode}): encode, decode, forward match the reference`, async () => {
      const { sae, params } = await randomSae({ ...arch.fields, normalizeActivations: mode }, 11);
      try {
        const [b, t, dIn] = [2, 3, sae.cfg.dIn];
        const n = b * t;
        const x = randomInput(n, dIn, 5, 1.5);
        const want = encodeRef(sae.cfg, params, x, n);
        let pre: Float32Array | null = null;
        sae.hooks.add("hook_sae_acts_pre", (h) => {
          assertEquals([...h.shape], [b, t, sae.cfg.dSae]);
          void h.clone().toArray().then((v) => (pre = v as Float32Array));
        });
        using xt = upload(x, [b, t, dIn]);
        const acts = sae.encode(xt);
        assertEquals([...acts.shape], [b, t, sae.cfg.dSae]);
        const f = await acts.toArray() as Float32Array;
        assertAllClose(f, want.featureActs, ATOL, RTOL, "featureActs");
        assertAllClose(pre!, want.hiddenPre, ATOL, RTOL, "hook_sae_acts_pre");
        sae.hooks.clear();
        // decode consumes the normalisation state of the preceding encode, as in SAELens.
        const y = sae.decode(acts);
        acts.dispose();
        const wantY = decodeRef(sae.cfg, params, want.featureActs, n, want.normState);
        const dOut = sae.cfg.dOut !== undefined && arch.name.includes("transcoder")
          ? sae.cfg.dOut
          : dIn;
        assertEquals([...y.shape], [b, t, dOut]);
        assertAllClose(await take(y), wantY, ATOL, RTOL, "decode");
        const out = sae.forwardWithActivations(xt);
        const ref = forwardRef(sae.cfg, params, x, n);
        assertAllClose(await take(out.output), ref.output, ATOL, RTOL, "forward");
        assertAllClose(await take(out.featureActs), ref.featureActs, ATOL, RTOL, "forward acts");
        if (!arch.name.includes("transcoder")) {
          sae.useErrorTerm = true;
          const e = await take(sae.forward(xt));
          const refE = forwardRef(sae.cfg, params, x, n, { useErrorTerm: true }).output;
          assertAllClose(e, refE, ATOL, RTOL, "forward with error term");
          assertAllClose(e, x, 1e-5, 1e-5, "error term reproduces the input");
        } else {
          sae.useErrorTerm = true;
          assertThrows(() => sae.forward(xt), SaeError, "useErrorTerm is not available");
        }
      } finally {
        sae.dispose();
      }
    });
  }
}

Deno.test("SAE: Appendix A gated and JumpReLU vectors on the GPU", async () => {
  const ones = [1, 1, 1, 1, 1, 1];
  const gated = await SAE.fromParams({ architecture: "gated", dIn: 2, dSae: 3 }, {
    W_enc: ones,
    W_dec: ones,
    b_dec: [0, 0],
    b_gate: [-2, 0, 1],
    r_mag: [1, 2, 3],
    b_mag: [1, 1, 1],
  });
  using x = upload([0.3, 0.3], [1, 2]);
  let pre: Float32Array = new Float32Array(0);
  gated.hooks.add(
    "hook_sae_acts_pre",
    (h) => void h.clone().toArray().then((v) => (pre = v as Float32Array)),
  );
  const g = gated.forwardWithActivations(x);
  assertAllClose(await take(g.featureActs), [0, 5.4334, 13.0513], 1e-3);
  assertAllClose(pre, [2.6310, 5.4334, 13.0513], 1e-3);
  assertAllClose(await take(g.output), [18.4848, 18.4848], 1e-3);
  gated.useErrorTerm = true;
  assertAllClose(await take(gated.forward(x)), [0.3, 0.3], 1e-5);
  gated.dispose();

  const jump = await SAE.fromParams({ architecture: "jumprelu", dIn: 2, dSae: 3 }, {
    W_enc: ones,
    W_dec: ones,
    b_enc: [0, 0, 0],
    b_dec: [0, 0],
    threshold: [1, 0.5, 0.25],
  });
  const j = jump.forwardWithActivations(x);
  assertAllClose(await take(j.featureActs), [0, 0.6, 0.6], 1e-6);
  assertAllClose(await take(j.output), [1.2, 1.2], 1e-6);
  jump.dispose();
});

Deno.test("SAE: identity SAE (W_dec = [I; −I], W_enc = W_decᵀ) reconstructs exactly, L0 = d_in", async () => {
  const d = 4;
  const wDec = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    wDec[i * d + i] = 1;
    wDec[(d + i) * d + i] = -1;
  }
  const wEnc = new Float32Array(d * 2 * d);
  for (let i = 0; i < 2 * d; i++) for (let j = 0; j < d; j++) wEnc[j * 2 * d + i] = wDec[i * d + j];
  const sae = await SAE.fromParams({ architecture: "standard", dIn: d, dSae: 2 * d }, {
    W_enc: wEnc,
    W_dec: wDec,
    b_enc: new Float32Array(2 * d),
    b_dec: new Float32Array(d),
  });
  const x = randomInput(5, d, 3);
  using xt = upload(x, [5, d]);
  const r = sae.forwardWithActivations(xt);
  assertAllClose(await take(r.output), x, 1e-6);
  const acts = await take(r.featureActs);
  for (let t = 0; t < 5; t++) {
    assertEquals(acts.subarray(t * 2 * d, (t + 1) * 2 * d).filter((v) => v !== 0).length, d);
  }
  sae.dispose();
});

Deno.test("SAE: hook_z SAEs take [batch, pos, heads, d_head] and reshape the output back", async () => {
  const { sae, params } = await randomSae({
    architecture: "standard",
    reshapeActivations: "hook_z",
  }, 2);
  const x = randomInput(4, 6, 9);
  using xt = upload(x, [2, 2, 2, 3]);
  const acts = sae.encode(xt);
  assertEquals([...acts.shape], [2, 2, 8]);
  assertAllClose(await take(acts), encodeRef(sae.cfg, params, x, 4).featureActs, ATOL, RTOL);
  const y = sae.forward(xt);
  assertEquals([...y.shape], [2, 2, 2, 3]);
  assertAllClose(await take(y), forwardRef(sae.cfg, params, x, 4).output, ATOL, RTOL);
  // The flat form [..., d_in] is accepted as well.
  using flat = upload(x, [4, 6]);
  assertEquals([...sae.forward(flat).shape], [4, 6]);
  sae.dispose();
});

Deno.test("SAE: wrong input widths and misuse give errors naming the shapes", async () => {
  const { sae } = await randomSae({ architecture: "standard" }, 1);
  using bad = upload(new Float32Array(10), [2, 5]);
  assertThrows(() => sae.forward(bad), SaeError, "x has shape [2, 5], expected [..., 6] (d_in)");
  assertThrows(() => sae.decode(bad), SaeError, "expected [..., 8] (d_sae)");
  const { sae: cn } = await randomSae({
    architecture: "standard",
    normalizeActivations: "layer_norm",
  }, 1);
  using f = upload(new Float32Array(16), [2, 8]);
  assertThrows(() => cn.decode(f), SaeError, "call encode first");
  sae.dispose();
  cn.dispose();
  assertThrows(() => sae.forward(bad), SaeError, "after dispose");
});

Deno.test("SAE topk: k beyond the shared top-k kernel's limit (1024) still matches the reference", async () => {
  const { sae, params } = await randomSae({ architecture: "topk", dIn: 3, dSae: 1100, k: 1050 }, 6);
  const x = randomInput(2, 3, 1);
  using xt = upload(x, [2, 3]);
  assertAllClose(
    await take(sae.encode(xt)),
    encodeRef(sae.cfg, params, x, 2).featureActs,
    ATOL,
    RTOL,
  );
  sae.dispose();
});

Deno.test("SAE: a product large enough for the tuned matmul variant (64 × 64 × 640) matches", async () => {
  for (
    const fields of [{ architecture: "standard" }, {
      architecture: "topk",
      k: 32,
      rescaleActsByDecoderNorm: true,
    }]
  ) {
    const { sae, params } = await randomSae({ ...fields, dIn: 64, dSae: 640 }, 12);
    const x = randomInput(64, 64, 3);
    using xt = upload(x, [64, 64]);
    const r = sae.forwardWithActivations(xt);
    const ref = forwardRef(sae.cfg, params, x, 64);
    // Sums over 64 / 640 terms of O(1) values: 1e-3 abs + 1e-4 rel.
    assertAllClose(
      await take(r.featureActs),
      ref.featureActs,
      1e-3,
      1e-4,
      `${fields.architecture} acts`,
    );
    assertAllClose(await take(r.output), ref.output, 1e-3, 1e-4, `${fields.architecture} output`);
    sae.dispose();
  }
});
