/**
 * GPU training step of the standard SAE against the reference `trainingStepRef`: losses, x̂, f,
 * every gradient, firing counts, recon sums and l0 (relative tolerance 1e-4 of each tensor's
 * largest value), for p-norms, run-time normalisations, b_dec application, legacy ghost grads
 * and micro-batched windows; plus state round trip, scaling-factor folding and export.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../../../assert.ts";
import { foldActivationNormScalingFactorRef } from "../../../../sae/reference/mod.ts";
import { TrainingSAE } from "../../../../sae/training/train_sae.ts";
import {
  closeScaled,
  compareStep,
  deadMask,
  getGpu,
  gpuStep,
  problem,
} from "../../training/_train_sae_helpers.ts";

const cases: { name: string; fields: Record<string, unknown>; dead?: number[]; ghost?: boolean }[] =
  [
    { name: "l1, defaults", fields: {} },
    { name: "lp_norm 2", fields: { lpNorm: 2 } },
    { name: "lp_norm 1.5, no b_dec on input", fields: { lpNorm: 1.5, applyBDecToInput: false } },
    { name: "constant_norm_rescale", fields: { normalizeActivations: "constant_norm_rescale" } },
    { name: "layer_norm", fields: { normalizeActivations: "layer_norm" } },
    {
      name: "expected_average_only_in",
      fields: { normalizeActivations: "expected_average_only_in" },
    },
    { name: "ghost grads, dead latents", fields: {}, dead: [1, 4, 9, 15], ghost: true },
    { name: "ghost grads, empty dead mask", fields: {}, dead: [], ghost: true },
    { name: "ghost grads, no dead mask", fields: {}, ghost: true },
  ];

for (const c of cases) {
  Deno.test(`standard step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "standard", ...c.fields }, 12, 7);
    const dead = c.dead ? deadMask(16, c.dead) : null;
    const extras = { useGhostGrads: c.ghost };
    const g = await gpuStep(gpu, pb, [3], dead, extras);
    compareStep(pb, g, { l1: 3 }, dead, extras);
    if (c.ghost && c.dead?.length) assert(g.losses[3] > 0, "ghost loss is active");
    g.sae.dispose();
  });
}

Deno.test("standard step: micro-batched windows equal the single pass", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "standard", lpNorm: 2 }, 20, 3);
  const dead = deadMask(16, [2, 3]);
  const extras = { useGhostGrads: true };
  const one = await gpuStep(gpu, pb, [2], dead, extras);
  const win = await gpuStep(gpu, pb, [2], dead, { ...extras, maxWindowRows: 8 });
  assertEquals(win.featureActs, null, "windowed run reports no whole f");
  closeScaled(win.losses, one.losses, 1e-5, "losses");
  for (const k of Object.keys(one.grads)) closeScaled(win.grads[k], one.grads[k], 1e-5, k);
  assertAllClose(win.firedCounts, one.firedCounts, 0, 0, "fired");
  closeScaled(win.recon, one.recon, 1e-5, "recon");
  compareStep(pb, win, { l1: 2 }, dead, extras);
  one.sae.dispose();
  win.sae.dispose();
});

Deno.test("standard step: a second step gives the same results (no stale state)", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "standard" }, 12, 11);
  const g = await gpuStep(gpu, pb, [1.5], deadMask(16, [0]), { useGhostGrads: true, steps: 2 });
  compareStep(pb, g, { l1: 1.5 }, deadMask(16, [0]), { useGhostGrads: true });
  g.sae.dispose();
});

Deno.test("TrainingSAE: stateDict / loadStateDict round trip, coefficients", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "standard", l1Coefficient: 4, l1WarmUpSteps: 10 }, 4, 1);
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assertEquals(sae.coefficients(), [{ name: "l1", value: 4, warmUpSteps: 10 }]);
  assertEquals(sae.lossKeys, ["mse_loss", "l1_loss"]);
  const state = await sae.stateDict();
  assertEquals([...state.keys()], ["W_enc", "b_enc", "W_dec", "b_dec"]);
  for (const [k, v] of state) assertEquals(v, pb.params[k], k);
  const other = TrainingSAE.create(pb.cfg, { gpu, seed: 5 });
  other.loadStateDict(state);
  for (const [k, v] of await other.stateDict()) assertEquals(v, pb.params[k], `reloaded ${k}`);
  state.delete("b_dec");
  assertThrows(() => other.loadStateDict(state), Error, "b_dec is missing");
  sae.dispose();
  other.dispose();
});

Deno.test("TrainingSAE: create follows the reference init; fold of the scaling factor", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "standard" }, 4, 1);
  const sae = TrainingSAE.create(pb.cfg, { gpu, seed: 9 });
  const init = await sae.stateDict();
  const row0 = Math.hypot(...init.get("W_dec")!.subarray(0, 8));
  assertAllClose([row0], [0.1], 1e-6);
  assertEquals(init.get("W_enc")![1 * 16 + 0], init.get("W_dec")![0 * 8 + 1], "W_enc = W_decᵀ");
  sae.loadStateDict(new Map(Object.entries(pb.params)));
  sae.foldActivationNormScalingFactor(2.5);
  const folded = await sae.stateDict();
  const exp = foldActivationNormScalingFactorRef(pb.params, 2.5);
  for (const [k, v] of folded) closeScaled(v, exp[k], 1e-6, `folded ${k}`);
  assertEquals(sae.cfg.normalizeActivations, "none");
  const { cfg, params } = await sae.exportInference();
  assertEquals(cfg.architecture, "standard");
  assertEquals([...params.keys()].sort(), ["W_dec", "W_enc", "b_dec", "b_enc"]);
  sae.dispose();
});

Deno.test("TrainingSAE: argument errors name what was wrong", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "standard" }, 4, 1);
  assertThrows(
    () => TrainingSAE.fromParams(pb.cfg, { ...pb.params, b_enc: new Float32Array(3) }, { gpu }),
    Error,
    "params.b_enc: expected [16]",
  );
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  const { Tensor } = await import("../../../../gpu/tensor.ts");
  using x = Tensor.from(new Float32Array(12), [4, 3], { gpu });
  using c = Tensor.from([1], [1], { gpu });
  assertThrows(() => sae.recordStep(x, c, null), Error, "x must be f32 [rows ≥ 1, 8]");
  using c2 = Tensor.from([1, 2], [2], { gpu });
  using x8 = Tensor.from(new Float32Array(32), [4, 8], { gpu });
  assertThrows(() => sae.recordStep(x8, c2, null), Error, "coefficientValues must be f32 [1]");
  sae.dispose();
});

Deno.test("every architecture: the same step twice gives bit-identical outputs", async () => {
  const gpu = await getGpu();
  const archs: [string, Record<string, unknown>, number[]][] = [
    ["standard", {}, [2]],
    ["gated", {}, [2]],
    ["jumprelu", { jumpreluSparsityLossMode: "tanh", preActLossCoefficient: 0.5 }, [0.5]],
    ["topk", { k: 3 }, []],
    ["batchtopk", { k: 3 }, []],
    ["matryoshka_batchtopk", { k: 3, matryoshkaWidths: [4, 8] }, []],
  ];
  for (const [architecture, fields, coef] of archs) {
    const pb = problem({ architecture, ...fields }, 40, 17);
    const dead = deadMask(16, [1, 5, 6, 9, 12]);
    const a = await gpuStep(gpu, pb, coef, dead, { maxWindowRows: 16 });
    const b = await gpuStep(gpu, pb, coef, dead, { maxWindowRows: 16 });
    assertEquals(a.losses, b.losses, `${architecture} losses`);
    for (const k of Object.keys(a.grads)) {
      assertEquals(a.grads[k], b.grads[k], `${architecture} ${k}`);
    }
    assertEquals(a.metrics, b.metrics, `${architecture} metrics`);
    a.sae.dispose();
    b.sae.dispose();
  }
});
