/**
 * GPU training step of the gated SAE against `trainingStepRef` (relative tolerance 1e-4):
 * main and auxiliary paths through one stacked decoder GEMM, with and without b_dec on the
 * input, micro-batched windows, and run-time normalisation (constant_norm_rescale, layer_norm),
 * where the aux path re-encodes the un-normalised input like SAELens.
 */
import { assertEquals } from "../../../assert.ts";
import { TrainingSAE } from "../../../../sae/training/train_sae.ts";
import { compareStep, getGpu, gpuStep, problem } from "../../training/_train_sae_helpers.ts";

const cases: { name: string; fields: Record<string, unknown>; windows?: number }[] = [
  { name: "defaults", fields: {} },
  { name: "no b_dec on input", fields: { applyBDecToInput: false } },
  {
    name: "expected_average_only_in, windows of 8 rows",
    fields: { normalizeActivations: "expected_average_only_in" },
    windows: 8,
  },
  { name: "constant_norm_rescale", fields: { normalizeActivations: "constant_norm_rescale" } },
  { name: "layer_norm", fields: { normalizeActivations: "layer_norm" } },
  {
    name: "layer_norm, no b_dec on input, windows of 8 rows",
    fields: { normalizeActivations: "layer_norm", applyBDecToInput: false },
    windows: 8,
  },
  {
    name: "constant_norm_rescale, windows of 8 rows",
    fields: { normalizeActivations: "constant_norm_rescale" },
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

Deno.test("gated: keys and parameter names", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "gated" }, 4, 1);
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assertEquals(sae.lossKeys, ["mse_loss", "l1_loss", "auxiliary_reconstruction_loss"]);
  assertEquals([...sae.params.keys()], ["W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"]);
  sae.dispose();
});
