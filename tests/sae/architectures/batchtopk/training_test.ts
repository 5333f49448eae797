/**
 * GPU training step of the BatchTopK SAE against `trainingStepRef`: the global ⌊k·B⌋ selection
 * (radix select, ties at the threshold taken in flat order), aux-k, rescaling on/off, windows;
 * the threshold EMA over two steps against `updateTopkThresholdRef`; JumpReLU export against
 * `exportBatchTopKRef` (relative tolerance 1e-4 of each tensor's largest value).
 */
import { assertClose, assertEquals } from "../../../assert.ts";
import { Tensor } from "../../../../gpu/tensor.ts";
import {
  exportBatchTopKRef,
  trainingForwardRef,
  updateTopkThresholdRef,
} from "../../../../sae/reference/mod.ts";
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
  { name: "k 3, rescale", fields: { k: 3 } },
  {
    name: "k 2.5, no rescale, 3 dead",
    fields: { k: 2.5, rescaleActsByDecoderNorm: false },
    dead: [1, 2, 9],
  },
  {
    name: "k 4, 11 dead, no b_dec on input",
    fields: { k: 4, applyBDecToInput: false },
    dead: MANY,
  },
  { name: "k 9 (more than the positives)", fields: { k: 9 } },
  { name: "windows of 8 rows, 11 dead", fields: { k: 3 }, dead: MANY, windows: 8 },
  { name: "scalar kernels (d_in 6, d_sae 18)", fields: { k: 3, dIn: 6, dSae: 18 }, dead: MANY },
];

for (const c of cases) {
  Deno.test(`batchtopk step vs reference: ${c.name}`, async () => {
    const gpu = await getGpu();
    const pb = problem({ architecture: "batchtopk", ...c.fields }, 20, 31);
    const dead = c.dead ? deadMask(pb.cfg.dSae, c.dead) : null;
    const g = await gpuStep(gpu, pb, [], dead, { maxWindowRows: c.windows });
    compareStep(pb, g, {}, dead);
    g.sae.dispose();
  });
}

Deno.test("batchtopk: ties at the threshold are taken in flat index order", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "batchtopk", k: 1.5 }, 4, 3);
  // Four identical tokens: every value appears 4 times; ⌊1.5·4⌋ = 6 = 4 + 2 ties.
  for (let t = 1; t < 4; t++) pb.x.copyWithin(t * 8, 0, 8);
  const g = await gpuStep(gpu, pb, [], null);
  compareStep(pb, g, {}, null);
  assertEquals(g.l0Sum, 6);
  g.sae.dispose();
});

Deno.test("batchtopk: threshold EMA over two steps", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "batchtopk", k: 2, topkThresholdLr: 0.3 }, 12, 8);
  const g = await gpuStep(gpu, pb, [], null, { steps: 2 });
  const f = trainingForwardRef(refConfigOf(pb.cfg), pb.params, pb.x, pb.n, { coefficients: {} });
  const theta1 = updateTopkThresholdRef(pb.params.topk_threshold[0], f.featureActs, 0.3);
  const theta2 = updateTopkThresholdRef(theta1, f.featureActs, 0.3);
  assertClose(g.metrics[0], theta2, 1e-6, 1e-5, "metrics.topk_threshold");
  assertClose(g.state.get("topk_threshold")![0], theta2, 1e-6, 1e-5, "buffer");
  g.sae.dispose();
});

Deno.test("batchtopk: nothing fired leaves the threshold unchanged", async () => {
  const gpu = await getGpu();
  const pb = problem({ architecture: "batchtopk", k: 2 }, 4, 8);
  pb.params.b_enc.fill(-100);
  const g = await gpuStep(gpu, pb, [], null);
  assertEquals(g.l0Sum, 0);
  assertEquals(g.metrics[0], pb.params.topk_threshold[0]);
  g.sae.dispose();
});

Deno.test("batchtopk: export as JumpReLU like exportBatchTopKRef; state round trip", async () => {
  const gpu = await getGpu();
  for (const rescale of [true, false]) {
    const pb = problem(
      { architecture: "batchtopk", k: 2, rescaleActsByDecoderNorm: rescale },
      4,
      2,
    );
    const sae = TrainingSAE.fromParams(pb.cfg, pb.params, { gpu });
    assertEquals(sae.metricKeys, ["topk_threshold"]);
    const state = await sae.stateDict();
    assertEquals([...state.keys()], ["W_enc", "b_enc", "W_dec", "b_dec", "topk_threshold"]);
    const { cfg, params } = await sae.exportInference();
    assertEquals(cfg.architecture, "jumprelu");
    const exp = exportBatchTopKRef(refConfigOf(pb.cfg), pb.params);
    assertEquals([...params.keys()].sort(), Object.keys(exp).sort());
    for (const [k, v] of params) closeScaled(v, exp[k], 1e-6, k);
    state.set("topk_threshold", Float32Array.of(0.75));
    sae.loadStateDict(state);
    const [theta] = await sae.buffers.get("topk_threshold")!.toArray();
    assertEquals(theta, 0.75);
    sae.dispose();
  }
  void Tensor;
});
