/**
 * GPU training step of the transcoders against `trainingStepRef` (relative tolerance 1e-4):
 * input x at `hook_name`, target y at `hook_name_out` (d_out ≠ d_in), ReLU and JumpReLU, with
 * and without the skip connection, windows; the refusals (no target, a wrong target, run-time
 * normalisation, ghost grads); and the export as an inference transcoder that `SAE` runs.
 */
import { assert, assertEquals, assertThrows } from "../../../assert.ts";
import { Tensor } from "../../../../gpu/tensor.ts";
import { createTrainingConfig } from "../../../../sae/config.ts";
import { SAE } from "../../../../sae/sae.ts";
import { TrainingSAE, TrainSaeError } from "../../../../sae/training/train_sae.ts";
import {
  compareStep,
  deadMask,
  getGpu,
  gpuStep,
  problem,
} from "../../training/_train_sae_helpers.ts";

const cases: {
  arch: string;
  fields?: Record<string, unknown>;
  coef: [string, number];
  dead?: number[];
  windows?: number;
  ste?: boolean;
}[] = [
  { arch: "transcoder", coef: ["l1", 0.6] },
  { arch: "transcoder", fields: { lpNorm: 1.5 }, coef: ["l1", 0.6], windows: 8 },
  { arch: "skip_transcoder", coef: ["l1", 0.6] },
  { arch: "skip_transcoder", coef: ["l1", 0.4], windows: 8 },
  {
    arch: "jumprelu_transcoder",
    fields: { preActLossCoefficient: 0.5 },
    coef: ["l0", 0.8],
    dead: [0, 3, 5, 9],
  },
  {
    arch: "jumprelu_transcoder",
    fields: { jumpreluSparsityLossMode: "tanh" },
    coef: ["l0", 0.8],
    ste: true,
    windows: 8,
  },
  { arch: "jumprelu_skip_transcoder", coef: ["l0", 0.5] },
];

for (const c of cases) {
  const name = `${c.arch} step vs reference: ${JSON.stringify(c.fields ?? {})}` +
    `${c.dead ? ", dead" : ""}${c.ste ? ", straight-through" : ""}` +
    `${c.windows ? `, windows of ${c.windows}` : ""}`;
  Deno.test(name, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: c.arch, ...c.fields }, 20, 17);
    assertEquals([pb.cfg.dIn, pb.cfg.dOut], [8, 6]);
    const dead = c.dead ? deadMask(16, c.dead) : null;
    const extras = c.ste ? { jumpreluSteToInput: true } : {};
    const g = await gpuStep(gpu, pb, [c.coef[1]], dead, { maxWindowRows: c.windows, ...extras });
    compareStep(pb, g, { [c.coef[0]]: c.coef[1] }, dead, extras);
    g.sae.dispose();
  });
}

Deno.test("transcoder training: keys, parameters and refusals", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "skip_transcoder" }, 4, 1);
  const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
  assert(sae.needsTarget);
  assertEquals(sae.lossKeys, ["mse_loss", "l1_loss"]);
  assertEquals([...sae.params.keys()], ["W_enc", "b_enc", "W_dec", "b_dec", "W_skip"]);
  assertEquals([...sae.params.get("W_skip")!.shape], [6, 8]);
  using x = Tensor.from(pb.x, [4, 8], { gpu });
  using c = Tensor.from(Float32Array.of(1));
  assertThrows(() => sae.recordStep(x, c, null), TrainSaeError, "needs the target activations");
  using bad = Tensor.zeros([4, 8], "f32", { gpu });
  assertThrows(() => sae.recordStep(x, c, null, bad), TrainSaeError, "target must be f32 [4, 6]");
  sae.dispose();
  const base = { dIn: 8, dSae: 16, dOut: 6, applyBDecToInput: false };
  assertThrows(
    () =>
      TrainingSAE.create(
        createTrainingConfig({
          architecture: "transcoder",
          ...base,
          normalizeActivations: "layer_norm",
        }),
        { gpu },
      ),
    TrainSaeError,
    'normalize_activations: "layer_norm" cannot train a transcoder',
  );
  assertThrows(
    () =>
      TrainingSAE.create(createTrainingConfig({ architecture: "transcoder", ...base }), {
        gpu,
        useGhostGrads: true,
      }),
    TrainSaeError,
    "useGhostGrads: the transcoder architecture does not train with it (only standard)",
  );
});

Deno.test("transcoder training: create, export and run as an inference transcoder", async () => {
  const gpu = await getGpu();
  const cfg = createTrainingConfig({
    architecture: "jumprelu_skip_transcoder",
    dIn: 8,
    dSae: 16,
    dOut: 6,
    applyBDecToInput: false,
  });
  const sae = TrainingSAE.create(cfg, { gpu, seed: 4 });
  const st = await sae.stateDict();
  // decoder_init_norm (0.1) rescales the decoder rows; θ starts at jumprelu_init_threshold.
  const row = st.get("W_dec")!.subarray(0, 6);
  assert(Math.abs(Math.hypot(...row) - 0.1) < 1e-6, "decoder row norm 0.1");
  assert(st.get("threshold")!.every((v) => Math.abs(v - 0.01) < 1e-9));
  const { cfg: inf, params } = await sae.exportInference();
  assertEquals([inf.architecture, inf.dOut], ["jumprelu_skip_transcoder", 6]);
  const model = await SAE.fromParams(inf, Object.fromEntries(params));
  using x = Tensor.from(new Float32Array(16).fill(0.5), [2, 8], { gpu });
  const y = model.forward(x);
  assertEquals([...y.shape], [2, 6]);
  y.dispose();
  model.dispose();
  sae.dispose();
});
