/**
 * GPU training step of the gated SAE against `trainingStepRef` (relative tolerance 1e-4):
 * main and auxiliary paths through one stacked decoder GEMM, with and without b_dec on the
 * input, and micro-batched windows; run-time normalisation is refused with a clear error.
 */
import { assertEquals, assertThrows } from "../../assert.ts";
import { TrainingSAE } from "../../../sae/training/train_sae.ts";
import { compareStep, getGpu, gpuStep, problem } from "./_train_sae_helpers.ts";

const cases: { name: string; fields: Record<string, unknown>; windows?: number }[] = [
  { name: "defaults", fields: {} },
  { name: "no b_dec on input", fields: { applyBDecToInput: false } },
  {
    name: "expected_average_only_in, windows of 8 rows",
    fields: { normalizeActivations: "expected_average_only_in" },
    windows: 8,
  },
];

for (const c of cases) {
  Deno.test(`gated step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "gated", ...c.fields }, 20, 13);
    const g = await gpuStep(gpu, pb, [0.6], null, { maxWindowRows: c.windows });
    compareStep(pb, g, { l1: 0.6 }, null);
    g.sae.dispose();
  });
}

Deno.test("gated: keys and the run-time normalisation error", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "gated" }, 4, 1);
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assertEquals(sae.lossKeys, ["mse_loss", "l1_loss", "auxiliary_reconstruction_loss"]);
  assertEquals([...sae.params.keys()], ["W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"]);
  sae.dispose();
  const ln = problem({ architecture: "gated", normalizeActivations: "layer_norm" }, 4, 1);
  assertThrows(() => TrainingSAE.fromParams(ln.cfg, ln.params, { gpu }), Error, "layer_norm");
});
