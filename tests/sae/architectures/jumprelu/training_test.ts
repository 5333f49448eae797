/**
 * GPU training step of the JumpReLU SAE (θ trained directly) against `trainingStepRef`: step
 * and tanh L0 modes, the pre-activation loss with and without dead latents, the straight-through
 * option, run-time normalisation and micro-batched windows (relative tolerance 1e-4).
 */
import { assert, assertEquals } from "../../../assert.ts";
import { TrainingSAE } from "../../../../sae/training/train_sae.ts";
import {
  closeScaled,
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
  ste?: boolean;
  windows?: number;
}[] = [
  { name: "step mode", fields: {} },
  { name: "tanh mode", fields: { jumpreluSparsityLossMode: "tanh", jumpreluTanhScale: 3 } },
  {
    name: "step, pre-act loss, dead latents",
    fields: { preActLossCoefficient: 0.7 },
    dead: [0, 3, 5, 6, 11],
  },
  {
    name: "tanh, pre-act loss, empty dead mask",
    fields: { jumpreluSparsityLossMode: "tanh", preActLossCoefficient: 0.7 },
    dead: [],
  },
  { name: "pre-act loss, no dead mask", fields: { preActLossCoefficient: 0.7 } },
  { name: "straight-through to the input", fields: { jumpreluBandwidth: 0.4 }, ste: true },
  {
    name: "wide bandwidth, layer_norm",
    fields: { jumpreluBandwidth: 0.5, normalizeActivations: "layer_norm" },
  },
  {
    name: "tanh, pre-act, windows of 8 rows",
    fields: {
      jumpreluSparsityLossMode: "tanh",
      preActLossCoefficient: 0.3,
      jumpreluBandwidth: 0.3,
    },
    dead: [2, 7],
    windows: 8,
  },
];

for (const c of cases) {
  Deno.test(`jumprelu step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "jumprelu", ...c.fields }, 20, 5);
    const dead = c.dead ? deadMask(16, c.dead) : null;
    const extras = { jumpreluSteToInput: c.ste };
    const g = await gpuStep(gpu, pb, [0.8], dead, { ...extras, maxWindowRows: c.windows });
    compareStep(pb, g, { l0: 0.8 }, dead, extras);
    // The θ gradient must be exercised by these problems.
    assert(g.grads.threshold.some((v) => v !== 0), "threshold gradient is nonzero");
    g.sae.dispose();
  });
}

Deno.test("jumprelu: loss keys, coefficients, export keeps threshold", async () => {
  const gpu = await getGpu();
  const pb = problem(
    { architecture: "jumprelu", preActLossCoefficient: 1, l0Coefficient: 2 },
    4,
    1,
  );
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assertEquals(sae.lossKeys, ["mse_loss", "l0_loss", "pre_act_loss"]);
  assertEquals(sae.coefficients(), [{ name: "l0", value: 2, warmUpSteps: 0 }]);
  const { cfg, params } = await sae.exportInference();
  assertEquals(cfg.architecture, "jumprelu");
  closeScaled(params.get("threshold")!, pb.params.threshold, 0, "threshold");
  sae.dispose();
});
