// Child process of atomic_kill_test.ts and sae_save_atomic_test.ts. Two distinguishable SAEs
// (A: topk k=4, d_sae 256, with sparsity; B: topk k=32, d_sae 512, no sparsity) and two
// distinguishable trainers (A: standard d_sae 128, B: topk k=32 d_sae 256) are built
// deterministically, then, by mode:
//   ref <root>    writes reference copies <root>/ref{A,B}_sae and <root>/ref{A,B}_ck, and the
//                 starting folders <root>/sae and <root>/ck (A), then exits;
//   loop <root>   prints "ready", then rewrites <root>/sae (SAE.saveModel) and <root>/ck
//                 (SAETrainer.saveCheckpoint) alternating B, A, B, … until it is killed;
//   efbig <root>  saves B over <root>/sae and checkpoint B over <root>/ck (run under a file-size
//                 limit, so the weights write fails) and prints each error as a JSON line.
import { getGpu } from "../../gpu/device.ts";
import { createTrainingConfig } from "../../sae/config.ts";
import { SAE } from "../../sae/sae.ts";
import { TrainingSAE } from "../../sae/training/train_sae.ts";
import { SAETrainer } from "../../sae/training/trainer.ts";
import { createTrainerConfig } from "../../sae/training/trainer_config.ts";

const [mode, root] = Deno.args;
const gpu = await getGpu();

const D_IN = 64;
const saes = {
  A: await SAE.fromConfig({ architecture: "topk", dIn: D_IN, dSae: 256, k: 4 }, { gpu, seed: 1 }),
  B: await SAE.fromConfig({ architecture: "topk", dIn: D_IN, dSae: 512, k: 32 }, { gpu, seed: 2 }),
};
const sparsityA = Float32Array.from({ length: 256 }, (_, i) => -1 - i / 256);

function trainer(architecture: string, dSae: number, seed: number): SAETrainer {
  const cfg = createTrainingConfig({ architecture, dIn: D_IN, dSae, k: 32 });
  const sae = TrainingSAE.create(cfg, { gpu, seed });
  const tcfg = createTrainerConfig({ totalTrainingSamples: 64, trainBatchSizeSamples: 8 });
  return new SAETrainer(tcfg, sae, []);
}
const trainers = { A: trainer("standard", 128, 3), B: trainer("topk", 256, 4) };

async function save(which: "A" | "B", dir: string): Promise<void> {
  await saes[which].saveModel(dir, which === "A" ? { logSparsity: sparsityA } : {});
}

if (mode === "ref") {
  for (const which of ["A", "B"] as const) {
    await save(which, `${root}/ref${which}_sae`);
    await trainers[which].saveCheckpoint(`ref${which}_ck`, root);
  }
  await save("A", `${root}/sae`);
  await trainers.A.saveCheckpoint("ck", root);
} else if (mode === "loop") {
  console.log("ready");
  for (let i = 0;; i++) {
    const which = i % 2 === 0 ? "B" : "A";
    await save(which, `${root}/sae`);
    await trainers[which].saveCheckpoint("ck", root);
  }
} else if (mode === "efbig") {
  const report = (what: string, err: unknown) => {
    const e = err as (Error & { path?: string }) | null;
    console.log(JSON.stringify({ what, name: e?.name, path: e?.path, message: e?.message }));
  };
  await save("B", `${root}/sae`).then(() => report("sae", null), (e) => report("sae", e));
  await trainers.B.saveCheckpoint("ck", root).then(
    () => report("ck", null),
    (e) => report("ck", e),
  );
} else {
  throw new Error(`unknown mode ${mode}`);
}
