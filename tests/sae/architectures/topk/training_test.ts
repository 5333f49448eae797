/**
 * GPU training step of the TopK SAE (sparse decode and backward) against `trainingStepRef`:
 * decoder-norm rescaling on/off, aux-k with no/empty/few (≤ d_in/2, all taken) and many dead
 * latents (top d_in/2 taken), b_dec on the input or not, layer_norm, micro-batched windows;
 * export against `exportTopKRef` (relative tolerance 1e-4 of each tensor's largest value).
 */
import { assertEquals } from "../../../assert.ts";
import { exportTopKRef } from "../../../../sae/reference/mod.ts";
import { refConfigOf, TrainingSAE } from "../../../../sae/training/train_sae.ts";
import {
  closeScaled,
  compareStep,
  deadMask,
  getGpu,
  gpuStep,
  problem,
} from "../../training/_train_sae_helpers.ts";

const MANY = [0, 1, 2, 4, 5, 7, 8, 10, 12, 13, 15];
const cases: {
  name: string;
  fields: Record<string, unknown>;
  dead?: number[];
  windows?: number;
}[] = [
  { name: "rescale, no dead mask", fields: {} },
  { name: "no rescale, no dead mask", fields: { rescaleActsByDecoderNorm: false } },
  { name: "rescale, empty dead mask", fields: {}, dead: [] },
  { name: "rescale, 3 dead (all taken)", fields: { auxLossCoefficient: 0.5 }, dead: [3, 6, 11] },
  { name: "rescale, 11 dead (top 4 taken)", fields: {}, dead: MANY },
  {
    name: "no rescale, 11 dead, no b_dec on input",
    fields: { rescaleActsByDecoderNorm: false, applyBDecToInput: false },
    dead: MANY,
  },
  { name: "layer_norm, 11 dead", fields: { normalizeActivations: "layer_norm" }, dead: MANY },
  { name: "windows of 8 rows, 11 dead", fields: { k: 5 }, dead: MANY, windows: 8 },
  {
    name: "scalar kernels (d_in 6, d_sae 18), 11 dead",
    fields: { dIn: 6, dSae: 18 },
    dead: [...MANY, 17],
  },
];

for (const c of cases) {
  Deno.test(`topk step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "topk", k: 3, ...c.fields }, 20, 21);
    const dead = c.dead ? deadMask(pb.cfg.dSae, c.dead) : null;
    const g = await gpuStep(gpu, pb, [], dead, { maxWindowRows: c.windows });
    compareStep(pb, g, {}, dead);
    g.sae.dispose();
  });
}

Deno.test("topk: export folds decoder norms like exportTopKRef", async () => {
  const gpu = await getGpu();
  for (const rescale of [true, false]) {
    const pb = problem({ architecture: "topk", k: 3, rescaleActsByDecoderNorm: rescale }, 4, 2);
    const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
    assertEquals(sae.coefficients(), []);
    assertEquals(sae.lossKeys, ["mse_loss", "auxiliary_reconstruction_loss"]);
    const { cfg, params } = await sae.exportInference();
    assertEquals(cfg.architecture, "topk");
    const exp = exportTopKRef(refConfigOf(pb.cfg), pb.params);
    assertEquals([...params.keys()].sort(), Object.keys(exp).sort());
    for (const [k, v] of params) closeScaled(v, exp[k], 1e-6, k);
    sae.dispose();
  }
});
