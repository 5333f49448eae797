// Checkpoint folder mechanics (atomic replace, failures, validation on resume) and the final
// inference export of a trained SAE.

import { getGpu } from "../../../gpu/device.ts";
import { Tensor } from "../../../gpu/tensor.ts";
import { writeJsonAtomic } from "../../../io/atomic.ts";
import { createTrainingConfig, inferenceConfigOf, saeConfigToDict } from "../../../sae/config.ts";
import { SAE } from "../../../sae/sae.ts";
import { readCheckpointFolder, writeCheckpointFolder } from "../../../sae/training/checkpoint.ts";
import { saveInferenceModel } from "../../../sae/training/checkpoint_export.ts";
import { SAETrainer } from "../../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../../sae/training/trainer_config.ts";
import { TrainingError } from "../../../sae/training/errors.ts";
import { assert, assertAllClose, assertEquals, assertRejects } from "../../assert.ts";
import { createRng, randomArray } from "../../gpu/_ops_helpers.ts";
import { createTestSAE } from "./_sae_impls.ts";

const gpu = await getGpu();

async function trainedWithCheckpoint(dir: string, arch = "standard") {
  const cfg = createTrainingConfig({ architecture: arch, dIn: 4, dSae: 8, k: 2 });
  const sae = createTestSAE(cfg, gpu, 1);
  const rng = createRng(2);
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 16,
      trainBatchSizeSamples: 4,
      checkpointPath: dir,
      saveFinalCheckpoint: true,
      lr: 0.05,
    }),
    sae,
    Array.from({ length: 4 }, () => Tensor.from(randomArray(rng, 16), [4, 4], { gpu })),
  );
  await trainer.fit();
  return { cfg, sae, trainer };
}

Deno.test("writeCheckpointFolder replaces an existing folder; a failure keeps the old one", async () => {
  const dir = await Deno.makeTempDir();
  const { sae, trainer } = await trainedWithCheckpoint(dir);
  const target = `${dir}/final_16`;
  const before = await Deno.readFile(`${target}/sae_weights.safetensors`);
  const contents = await readCheckpointFolder(target);
  const base = {
    cfg: contents.cfg,
    weights: new Map(
      [...contents.weights].map((
        [k, v],
      ) => [k, { dtype: "F32" as const, shape: [v.length], data: v }]),
    ),
    logSparsity: new Float32Array(8),
    state: contents.state,
    scalingFactor: 2.5,
  };
  // A failing callback: nothing changes, no temporary folder is left behind.
  await assertRejects(
    () =>
      writeCheckpointFolder(target, { ...base, extra: () => Promise.reject(new Error("boom")) }),
    Error,
    "boom",
  );
  assertEquals(await Deno.readFile(`${target}/sae_weights.safetensors`), before);
  assertEquals((await readCheckpointFolder(target)).scalingFactor, null);
  // A successful rewrite replaces the folder as a whole.
  await writeCheckpointFolder(target, {
    ...base,
    extra: (f) => writeJsonAtomic(`${f}/extra.json`, 1),
  });
  assertEquals((await readCheckpointFolder(target)).scalingFactor, 2.5);
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assertEquals(names.sort(), ["final_16"], "no temporary or old folders left");
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resume recovers a checkpoint rewrite killed between its two renames", async () => {
  const dir = await Deno.makeTempDir();
  const { sae, trainer } = await trainedWithCheckpoint(dir);
  const child = new Deno.Command("true").spawn();
  await child.status; // a pid that is gone
  const ck = `${dir}/final_16`;
  // The state a kill leaves: the old folder moved aside, the complete new one not yet in place.
  await Deno.rename(ck, `${dir}/.final_16.new-${child.pid}-0011223344556677`);
  await Deno.mkdir(`${dir}/.final_16.old-${child.pid}-0011223344556677`);
  const tcfg = createTrainerConfig({ totalTrainingSamples: 32, trainBatchSizeSamples: 4 });
  const resumed = await SAETrainer.resume(ck, tcfg, sae, []);
  assertEquals(resumed.nTrainingSamples, 16);
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assertEquals(names.sort(), ["final_16"], "restored, and the old copy removed");
  resumed.dispose();
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resume refuses another SAE, a damaged state file, and a missing file", async () => {
  const dir = await Deno.makeTempDir();
  const { sae, trainer } = await trainedWithCheckpoint(dir);
  const ck = `${dir}/final_16`;
  const tcfg = createTrainerConfig({ totalTrainingSamples: 32, trainBatchSizeSamples: 4 });
  const other = createTestSAE(
    createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 16 }),
    gpu,
    1,
  );
  await assertRejects(() => SAETrainer.resume(ck, tcfg, other, []), TrainingError, "d_sae = 8");
  const badBetas = createTrainerConfig({
    totalTrainingSamples: 32,
    trainBatchSizeSamples: 4,
    adamBeta1: 0,
  });
  await assertRejects(() => SAETrainer.resume(ck, badBetas, sae, []), TrainingError, "Adam betas");
  const json = JSON.parse(await Deno.readTextFile(`${ck}/trainer_state.json`));
  await writeJsonAtomic(`${ck}/trainer_state.json`, { ...json, n_training_steps: -1 });
  await assertRejects(
    () => SAETrainer.resume(ck, tcfg, sae, []),
    TrainingError,
    "n_training_steps is -1",
  );
  await Deno.remove(`${ck}/activation_scaler.json`);
  await assertRejects(
    () => SAETrainer.resume(ck, tcfg, sae, []),
    TrainingError,
    "has no activation_scaler.json",
  );
  other.dispose();
  trainer.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

for (const arch of ["standard", "batchtopk"]) {
  Deno.test(`saveInferenceModel (${arch}): the inference folder loads as an SAE with the exported weights`, async () => {
    const dir = await Deno.makeTempDir();
    const { cfg, sae, trainer } = await trainedWithCheckpoint(`${dir}/ck`, arch);
    const logSparsity = await trainer.logFeatureSparsity();
    const paths = await saveInferenceModel(sae, `${dir}/out`, { logSparsity });
    assert(paths.sparsityPath !== undefined, "sparsity written");
    const cfgJson = JSON.parse(await Deno.readTextFile(paths.cfgPath));
    assertEquals(cfgJson, JSON.parse(JSON.stringify(saeConfigToDict(inferenceConfigOf(cfg)))));
    assertEquals(cfgJson.architecture, arch === "batchtopk" ? "jumprelu" : "standard");
    const loaded = await SAE.loadFromDisk(`${dir}/out`, { gpu });
    const exported = (await sae.exportInference()).params;
    const got = await loaded.stateDict();
    assertEquals(Object.keys(got).sort(), [...exported.keys()].sort());
    for (const [k, v] of exported) assertAllClose(got[k].data, v, 0, 0, k);
    loaded.dispose();
    trainer.dispose();
    sae.dispose();
    await Deno.remove(dir, { recursive: true });
  });
}
