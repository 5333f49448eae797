/**
 * GPU training step of the Matryoshka BatchTopK SAE against `trainingStepRef`: inner losses of
 * every level from one multi-level sparse decode, cumulative level gradients, aux-k, rescaling
 * on/off, windows (relative tolerance 1e-4 of each tensor's largest value); loss keys; export.
 */
import { assertEquals, assertThrows } from "../../../assert.ts";
import { TrainingSAE } from "../../../../sae/training/train_sae.ts";
import {
  compareStep,
  deadMask,
  getGpu,
  gpuStep,
  problem,
} from "../../training/_train_sae_helpers.ts";

const cases: {
  name: string;
  fields: Record<string, unknown>;
  dead?: number[];
  windows?: number;
  /** Newest SAELens: one aux-k term per level (its dead latents against its residual). */
  perLevelAux?: boolean;
}[] = [
  { name: "widths [4, 10] (+16), rescale", fields: { matryoshkaWidths: [4, 10] } },
  {
    name: "widths [3, 5, 9, 16], no rescale, 3 dead",
    fields: { matryoshkaWidths: [3, 5, 9, 16], rescaleActsByDecoderNorm: false },
    dead: [0, 6, 12],
  },
  { name: "one level [16]", fields: { matryoshkaWidths: [16] } },
  {
    name: "widths [8], 11 dead, windows of 8 rows",
    fields: { matryoshkaWidths: [8] },
    dead: [0, 1, 2, 4, 5, 7, 8, 10, 12, 13, 15],
    windows: 8,
  },
  {
    name: "per-level aux loss, widths [4, 10] (+16), rescale, dead in every level",
    fields: { matryoshkaWidths: [4, 10] },
    dead: [1, 2, 5, 6, 7, 9, 11, 12, 13, 14, 15],
    perLevelAux: true,
  },
  {
    name: "per-level aux loss, widths [3, 5, 9, 16], no rescale, a level without dead latents",
    fields: { matryoshkaWidths: [3, 5, 9, 16], rescaleActsByDecoderNorm: false },
    dead: [0, 1, 2, 6, 7, 12],
    perLevelAux: true,
  },
  {
    name: "per-level aux loss, windows of 8 rows, empty dead mask",
    fields: { matryoshkaWidths: [8] },
    dead: [],
    windows: 8,
    perLevelAux: true,
  },
  {
    name: "per-level aux loss, no dead mask",
    fields: { matryoshkaWidths: [4, 10] },
    perLevelAux: true,
  },
];

for (const c of cases) {
  Deno.test(`matryoshka step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "matryoshka_batchtopk", k: 3, ...c.fields }, 20, 41);
    const dead = c.dead ? deadMask(16, c.dead) : null;
    const extras = c.perLevelAux ? { useMatryoshkaAuxLoss: true } : {};
    const g = await gpuStep(gpu, pb, [], dead, { maxWindowRows: c.windows, ...extras });
    compareStep(pb, g, {}, dead, extras);
    g.sae.dispose();
  });
}

Deno.test("matryoshka: loss keys, export as JumpReLU, bad widths", async () => {
  const gpu = await getGpu();
  const pb = problem(
    { architecture: "matryoshka_batchtopk", k: 2, matryoshkaWidths: [4, 10] },
    4,
    1,
  );
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assertEquals(sae.lossKeys, [
    "mse_loss",
    "auxiliary_reconstruction_loss",
    "inner_mse_loss_4",
    "inner_mse_loss_10",
  ]);
  const { cfg } = await sae.exportInference();
  assertEquals(cfg.architecture, "jumprelu");
  sae.dispose();
  assertThrows(
    () => problem({ architecture: "matryoshka_batchtopk", k: 2, matryoshkaWidths: [8, 4] }, 4, 1),
    Error,
    "increasing",
  );
});
