// Misuse gets a named error, never a wrong answer (issue 7 §4): use after dispose through views,
// token tensors out of range, misspelt hook names, huge configs, short training batches, sizes
// past the safe integers or the device limits, and hostile values through the public API. Each
// case asserts the SaeflowError subclass and what its message names; each would fail on the
// behaviour the issue reported (a stranger's data, a hang, a raw RangeError, "null").
import {
  getGpu,
  GpuError,
  HookedSAETransformer,
  HookedTransformer,
  ModelError,
  SAE,
  SaeflowError,
  Tensor,
} from "../mod.ts";
import { scale } from "../gpu/kernels/elementwise.ts";
import { loadConfigFile, MAX_CONFIG_BYTES, parseConfigText } from "../config/load.ts";
import { MAX_SIZE_FIELD } from "../config/fields.ts";
import { runnerConfigFromDict } from "../pipeline/runner_config.ts";
import { seqposIndices, seqposSliceLength } from "../config/seqpos.ts";
import { ConfigError } from "../config/errors.ts";
import { ActivationScaler } from "../sae/training/activation_scaler.ts";
import { TrainingError } from "../sae/training/errors.ts";
import { describeValue } from "../util/errors.ts";
import { createSAEConfig, createTrainingConfig } from "../sae/config.ts";
import { TrainingSAE, TrainSaeError } from "../sae/training/train_sae.ts";
import { SAETrainer } from "../sae/training/trainer.ts";
import { createTrainerConfig } from "../sae/training/trainer_config.ts";
import { FiringStats } from "../sae/training/firing_stats.ts";
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
} from "../io/safetensors.ts";
import { writeSafetensors } from "../io/safetensors_write.ts";
import { FileWriteError } from "../io/atomic.ts";
import { HubError, TokenizerError } from "../hub/errors.ts";
import { hubDownload } from "../hub/download.ts";
import { resolveModelName } from "../hub/aliases.ts";
import { toTokens } from "../hub/to_tokens.ts";
import { readAll } from "../gpu/tensor.ts";
import { destroyBuffer, STORAGE_USAGE } from "../gpu/pool.ts";
import { tokenRangeFlags, tokenRangeFlagsRef } from "../model/gpu/kernels/embed.ts";
import { SaeError, SaeLoadError } from "../sae/errors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";

const gpu = await getGpu();
const MODEL_DIR = new URL("../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const SAE_DICT = { architecture: "standard", d_in: 4, d_sae: 8 };

// ---------------------------------------------------------------- use after dispose, views

Deno.test("misuse: a view dies with its owner; reading it never returns the next tensor's data", async () => {
  const owner = Tensor.from([1, 2, 3, 4], [2, 2]);
  const view = owner.reshape([4]);
  owner.dispose();
  assert(view.disposed, "a view of a disposed owner reports disposed");
  // The pool hands the same buffer to the next tensor of that size.
  using stranger = Tensor.from([9, 9, 9, 9], [2, 2]);
  await assertRejects(() => view.toArray(), GpuError, "owning its buffer was disposed");
  assertThrows(() => view.binding(), GpuError, "after the tensor owning its buffer was disposed");
  assertThrows(() => view.buffer, GpuError, "disposed");
  assertThrows(() => scale(view, 2), GpuError, "after dispose()");
  assertThrows(() => view.reshape([2, 2]), GpuError, "disposed");
  assertEquals([...await stranger.toArray()], [9, 9, 9, 9], "the stranger is untouched");
});

Deno.test("misuse: disposing a view ends only the view; the owner keeps its buffer", async () => {
  using owner = Tensor.from([1, 2, 3, 4], [2, 2]);
  const live = gpu.pool.liveBytes;
  const view = owner.reshape([4]);
  view.dispose();
  assertEquals(gpu.pool.liveBytes, live, "a view's dispose returns nothing to the pool");
  assert(!owner.disposed);
  await assertRejects(() => view.toArray(), GpuError, "used after dispose()");
  using other = Tensor.from([7, 7, 7, 7], [2, 2]);
  assert(other.buffer !== owner.buffer, "the owner's buffer was not handed out again");
  assertEquals([...await owner.toArray()], [1, 2, 3, 4]);
});

Deno.test("misuse: two owners of one acquisition release the buffer to the pool once", () => {
  const a = Tensor.from([1, 2, 3, 4]);
  // Ownership hand-over (as the forward passes do), then both disposed by mistake.
  const b = new Tensor(gpu, a.buffer, [2, 2], "f32", 0, true);
  a.dispose();
  assert(b.disposed, "the hand-over shares the lease");
  b.dispose();
  using x = Tensor.empty([4]);
  using y = Tensor.empty([4]);
  assert(x.buffer !== y.buffer, "the buffer sits in the free list once, not twice");
});

Deno.test("misuse: encode after W_enc.dispose() is a SaeError naming W_enc", async () => {
  const sae = await SAE.fromConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  sae.W_enc.dispose();
  using stranger = Tensor.from(new Float32Array(32).fill(7), [4, 8]);
  using x = Tensor.from([1, 2, 3, 4], [1, 4]);
  assertThrows(() => sae.encode(x), SaeError, "W_enc was disposed");
  assertThrows(() => sae.forward(x), SaeError, "W_enc was disposed");
  sae.dispose();
  assertEquals((await stranger.toArray())[0], 7);
});

Deno.test("misuse: a disposed tensor's raw buffer, even destroyed by trim(), does not poison the device", async () => {
  const t = Tensor.from([1, 2, 3, 4]);
  const raw = t.buffer;
  const view = t.reshape([2, 2]);
  t.dispose();
  gpu.trim(); // destroys the free buffer
  const pipeline = gpu.pipeline(
    "misuse_probe",
    "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n" +
      "@compute @workgroup_size(1) fn main() { x[0] = 1.0; }",
  );
  assertThrows(() => gpu.dispatch(pipeline, [raw], [1]), GpuError, "disposed tensor");
  using dst = Tensor.zeros([4]);
  assertThrows(() => gpu.copy(raw, 0, dst.buffer, 0, 16), GpuError, "disposed tensor");
  assertThrows(() => gpu.clear(raw), GpuError, "disposed tensor");
  await assertRejects(() => gpu.read(raw, 0, 16), GpuError, "disposed tensor");
  await assertRejects(() => view.toArray(), GpuError, "disposed");
  // A buffer made outside the pool and destroyed (as a trainer's dispose() does) likewise.
  const own = gpu.device.createBuffer({ size: 16, usage: STORAGE_USAGE });
  const wrapped = new Tensor(gpu, own, [4], "f32", 0, false);
  destroyBuffer(own);
  assertThrows(() => scale(wrapped, 2), GpuError, "after dispose()");
  assertThrows(() => gpu.dispatch(pipeline, [own], [1]), GpuError, "disposed tensor or object");
  assertThrows(() => gpu.write(own, 0, new Float32Array(4)), GpuError, "disposed");
  const tsae = TrainingSAE.create(
    createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 }),
    {
      gpu,
    },
  );
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 16, trainBatchSizeSamples: 4 }),
    tsae,
    [],
  );
  trainer.dispose();
  await assertRejects(
    () => trainer.step(Tensor.from(new Float32Array(16), [4, 4])),
    TrainingError,
    "the trainer was disposed",
  );
  tsae.dispose();
  // Nothing invalid reached the device: later work runs normally.
  await gpu.sync();
  using ok = Tensor.from([1, 2]);
  using doubled = scale(ok, 2);
  assertEquals([...await doubled.toArray()], [2, 4]);
});

// ---------------------------------------------------------------- token tensors

Deno.test("misuse: token-range flags on the GPU equal the reference (every position, past one workgroup)", async () => {
  const V = 50;
  const cases = [
    [1, 2, 3],
    [0, 49, 50],
    [-1, 0, 1],
    Array.from({ length: 300 }, (_, i) => (i === 77 || i === 250 ? 1000 + i : i % V)),
    Array.from({ length: 300 }, (_, i) => i % V),
  ];
  for (const ids of cases) {
    using tok = Tensor.from(Int32Array.from(ids));
    using flags = tokenRangeFlags(tok, V);
    assertEquals([...await flags.toArray()], [...tokenRangeFlagsRef(ids, V)], `ids ${ids}`);
  }
  assertEquals([...tokenRangeFlagsRef([3, 60, -2, 4], V)], [2, 3]);
});

Deno.test("misuse: token ids in an i32 Tensor are range-checked like number[][]", async () => {
  const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR);
  const V = model.cfg.dVocab;
  try {
    using bad = Tensor.from(Int32Array.from([1, 2, 3, V, -1, 5]), [2, 3]);
    await assertRejects(
      () => model.loss(bad),
      ModelError,
      `2 token ids in Tensor(i32, [2, 3]) outside [0, ${V}) (d_vocab); the first at [1, 0]`,
    );
    await assertRejects(
      async () => {
        using logits = await model.forward(bad);
        await logits.toArray();
      },
      ModelError,
      "outside [0, ",
    );
    // The error is reported once; the device and the model stay usable.
    using good = Tensor.from(Int32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const fromTensor = await model.loss(good);
    const fromHost = await model.loss([[1, 2, 3], [4, 5, 6]]);
    assertEquals(fromTensor, fromHost);
    await assertRejects(() => model.loss([[1, V]]), ModelError, `token ${V} at [0,1]`);
  } finally {
    model.dispose();
  }
});

// ---------------------------------------------------------------- hook names

Deno.test("misuse: a misspelt fwdHooks name is a ModelError with close matches; predicates may match nothing", async () => {
  const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR);
  try {
    const tokens = [[1, 2, 3]];
    let fired = 0;
    const hook = () => void fired++;
    const err = await assertRejects(
      () => model.runWithHooks(tokens, { fwdHooks: [["blocks.0.hook_resid_psot", hook]] }),
      ModelError,
      'no hook point "blocks.0.hook_resid_psot" (did you mean blocks.0.hook_resid_post',
    );
    assert(err.message.includes("model.hookNames()"));
    await assertRejects(
      () => model.runWithCache(tokens, { fwdHooks: [["hook_embedding", hook]] }),
      ModelError,
      "did you mean hook_embed",
    );
    await assertRejects(() => model.loss(tokens, { fwdHooks: [["nope", hook]] }), ModelError);
    // A flag-gated hook whose flag is off does not exist (TL's add_hook asserts the flag).
    await assertRejects(
      () => model.forward(tokens, { fwdHooks: [["blocks.0.attn.hook_result", hook]] }),
      ModelError,
      "blocks.0.attn.hook_result",
    );
    await assertRejects(
      () => model.forward(tokens, { bwdHooks: [["hook_embed", hook]] } as never),
      ModelError,
      "backward hooks are not supported",
    );
    assertEquals(fired, 0);
    using _out = await model.runWithHooks(tokens, {
      fwdHooks: [["blocks.0.hook_resid_post", hook], [(n: string) => n === "none", hook]],
    });
    assertEquals(fired, 1, "a valid name fires; a predicate matching nothing is fine");
  } finally {
    model.dispose();
  }
});

Deno.test("misuse: an SAE whose hook the model lacks is a ModelError unless skipMissingHooks", async () => {
  const model = await HookedSAETransformer.fromPretrainedNoProcessing(MODEL_DIR);
  const D = model.cfg.dModel;
  const good = await SAE.fromConfig({
    architecture: "standard",
    dIn: D,
    dSae: 8,
    metadata: { hookName: "blocks.0.hook_resid_pre" },
  });
  const bad = await SAE.fromConfig({
    architecture: "standard",
    dIn: D,
    dSae: 8,
    metadata: { hookName: "blocks.0.hook_resid_pr" },
  });
  try {
    const tokens = [[1, 2, 3]];
    await assertRejects(
      () => model.runWithSaes(tokens, { saes: [good, bad] }),
      ModelError,
      'no hook point "blocks.0.hook_resid_pr" (the SAE\'s metadata.hook_name) ' +
        "(did you mean blocks.0.hook_resid_pre",
    );
    assertEquals(model.actsToSaes.size, 0, "the SAEs attached before the error are removed");
    const warn = console.warn;
    const seen: string[] = [];
    console.warn = (m: string) => void seen.push(m);
    try {
      using out = await model.runWithSaes(tokens, { saes: [good, bad], skipMissingHooks: true });
      assertEquals(out.shape[2], model.cfg.dVocab);
    } finally {
      console.warn = warn;
    }
    assert(seen.some((m) => m.includes("blocks.0.hook_resid_pr")), "skipped with a warning");
    // With an SAE spliced in, its hook names are valid and the replaced hook point is not.
    let fired = 0;
    using _y = await model.runWithHooksWithSaes(tokens, {
      saes: [good],
      fwdHooks: [["blocks.0.hook_resid_pre.hook_sae_acts_post", () => void fired++]],
    });
    assertEquals(fired, 1);
    await assertRejects(
      () =>
        model.runWithHooksWithSaes(tokens, {
          saes: [good],
          fwdHooks: [["blocks.0.hook_resid_pre", () => {}]],
        }),
      ModelError,
      "blocks.0.hook_resid_pre.hook_sae_input",
    );
  } finally {
    good.dispose();
    bad.dispose();
    model.dispose();
  }
});

// ---------------------------------------------------------------- configs

Deno.test("misuse: a config over 1 MiB is refused before parsing; YAML keys are checked linearly", async () => {
  let big = "";
  for (let i = 0; big.length <= MAX_CONFIG_BYTES; i++) big += `key_${i}: ${i}\n`;
  assertThrows(() => parseConfigText(big, "yaml", "big.yaml"), ConfigError, "1 MiB");
  assertThrows(() => parseConfigText(big, "json", "big.json"), ConfigError, "1 MiB");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/big.yaml`, big);
    await assertRejects(
      () => loadConfigFile(`${dir}/big.yaml`),
      ConfigError,
      `${dir}/big.yaml: is ${big.length} bytes, more than the ${MAX_CONFIG_BYTES} bytes`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // 4000 keys: the yaml package's pairwise check took seconds here; a duplicate is still found,
  // with its line.
  let many = "";
  for (let i = 0; i < 4000; i++) many += `key_${i}: ${i}\n`;
  assertEquals(Object.keys(parseConfigText(many, "yaml", "many.yaml")).length, 4000);
  assertThrows(
    () => parseConfigText(many + "key_17: 1\n", "yaml", "many.yaml"),
    ConfigError,
    'many.yaml: invalid YAML at line 4001, column 1: duplicate key "key_17"',
  );
  // Nested mappings and flow maps are checked too; `1` and `"1"` are different keys.
  assertThrows(() => parseConfigText("a:\n  b: 1\n  b: 2\n", "yaml", "n"), ConfigError, '"b"');
  assertThrows(() => parseConfigText("a: {x: 1, x: 2}\n", "yaml", "f"), ConfigError, '"x"');
  assertEquals(parseConfigText('a: {1: x, "1": y}\n', "yaml", "t").a, { 1: "y" });
});

Deno.test("misuse: deeply nested configs are ConfigErrors, not stack overflows", () => {
  const deep = [
    ["yaml", "a: " + "[".repeat(50_000)],
    ["yaml", "a: " + "[".repeat(100) + "]".repeat(100)],
    ["json", '{"a":' + "[".repeat(100) + "]".repeat(100) + "}"],
    ["json", '{"a":' + "[".repeat(200_000)],
  ] as const;
  for (const [format, text] of deep) {
    const err = assertThrows(() => parseConfigText(text, format, "deep"), ConfigError);
    assert(/nested|invalid JSON/.test(err.message), err.message);
  }
});

Deno.test("misuse: a FIFO, a directory or a missing file as a config is a ConfigError (no hang)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/cfg.yaml`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(made.success, "mkfifo");
    await assertRejects(() => loadConfigFile(fifo), ConfigError, "is a FIFO (named pipe)");
    await Deno.mkdir(`${dir}/d.json`);
    await assertRejects(() => loadConfigFile(`${dir}/d.json`), ConfigError, "is a directory");
    await assertRejects(() => loadConfigFile(`${dir}/none.json`), ConfigError, "not found");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("misuse: non-finite values print as NaN / Infinity in error messages, not null", () => {
  assertEquals(describeValue([1, NaN, -Infinity]), "[1,NaN,-Infinity]");
  assertEquals(describeValue({ lr: Infinity }), '{"lr":Infinity}');
  assertThrows(
    () => createSAEConfig({ architecture: "standard", dIn: NaN, dSae: 4 }),
    ConfigError,
    "d_in is NaN",
  );
  assertThrows(
    () => runnerConfigFromDict({ sae: SAE_DICT, lr: Infinity }),
    ConfigError,
    "lr is Infinity",
  );
  assertThrows(
    () => ActivationScaler.fromJSON({ scaling_factor: NaN }),
    TrainingError,
    "scaling_factor is NaN",
  );
});

// ---------------------------------------------------------------- short batches

Deno.test("misuse: short batches count their real rows in feature sparsity", async () => {
  const cfg = createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  const sae = TrainingSAE.create(cfg, { gpu, seed: 3 });
  const trainer = new SAETrainer(
    createTrainerConfig({
      totalTrainingSamples: 64,
      trainBatchSizeSamples: 8,
      featureSamplingWindow: 100,
    }),
    sae,
    [],
  );
  try {
    // Every row equal: each latent fires on all rows or on none, so sparsity is exactly 0 or 1.
    const row = [0.9, -0.4, 0.3, 0.7];
    for (const rows of [3, 5, 2]) {
      await trainer.step(Tensor.from(Array.from({ length: rows }, () => row).flat(), [rows, 4]));
    }
    assertEquals(trainer.nFracActiveSamples, 10, "3 + 5 + 2 rows, not 3 × 8");
    const sparsity = await trainer.featureSparsity();
    const { actFreq } = await trainer.gpuState.read();
    assert(sparsity.every((s) => s === 0 || s === 1), `sparsity ${sparsity}`);
    assert(sparsity.some((s) => s === 1), "some latent fired on every row");
    for (let i = 0; i < 8; i++) assertEquals(actFreq[i], 10 * sparsity[i]);
  } finally {
    trainer.dispose();
    sae.dispose();
  }
  // The host reference counts rows the same way.
  const stats = new FiringStats(2, 8);
  stats.update(Float32Array.of(1, 0, 1, 0, 1, 0), 3);
  assertEquals(stats.nFracActiveSamples, 3);
  assertEquals([...stats.featureSparsity()], [1, 0]);
});

// ---------------------------------------------------------------- sizes

Deno.test("misuse: integer fields are safe integers within the kernels' index range", () => {
  for (
    const [field, value] of [["dSae", 1e308], ["dSae", 2 ** 53], ["dIn", 2 ** 31], ["k", 1e20]]
  ) {
    assertThrows(
      () => createSAEConfig({ architecture: "topk", dIn: 4, dSae: 8, k: 2, [field]: value }),
      ConfigError,
      `is ${value}, expected a positive integer ≤ ${MAX_SIZE_FIELD}`,
    );
  }
  for (const [key, value] of [["context_size", 1e308], ["train_batch_size_tokens", 2 ** 40]]) {
    assertThrows(
      () => runnerConfigFromDict({ sae: SAE_DICT, [key]: value }),
      ConfigError,
      `${key} is ${value}`,
    );
  }
  assertThrows(
    () => runnerConfigFromDict({ sae: SAE_DICT, training_tokens: 1e300 }),
    ConfigError,
    "training_tokens is 1e+300, expected a positive integer (safe",
  );
  // A large (valid) context is sliced arithmetically, not by building the index list.
  const big = runnerConfigFromDict({ sae: SAE_DICT, context_size: MAX_SIZE_FIELD });
  assertEquals(big.contextSize, MAX_SIZE_FIELD);
  for (const n of [0, 1, 7, 10]) {
    for (const a of [null, -11, -3, 0, 2, 9, 12]) {
      for (const b of [null, -11, -1, 0, 3, 10, 12]) {
        for (const c of [null, 2, 3, -1, -2]) {
          assertEquals(seqposSliceLength(n, [a, b, c]), seqposIndices(n, [a, b, c]).length);
        }
      }
    }
  }
  assertThrows(() => Tensor.empty([2 ** 53, 1]), GpuError, "dims must be");
});

Deno.test("misuse: an SAE too large for the device fails before any host initialisation", async () => {
  // W_enc one row past maxBufferSize: the host init alone would be 2 GiB of random numbers.
  const dSae = Math.ceil(gpu.maxBufferSize / 4 / 1024) + 1;
  const fields = { architecture: "topk", dIn: 1024, dSae, k: 8 };
  assertThrows(
    () => TrainingSAE.create(createTrainingConfig(fields), { gpu }),
    GpuError,
    `TrainingSAE W_enc [1024, ${dSae}] needs ${1024 * dSae * 4} bytes, more than this ` +
      `device's maxBufferSize of ${gpu.maxBufferSize} bytes`,
  );
  await assertRejects(() => SAE.fromConfig(fields), GpuError, "SAE W_enc [1024");
  // Past one storage binding (but within a buffer): inference splits, training cannot.
  const wide = Math.floor(gpu.maxBindingSize / 4 / 64) + 1;
  if (wide * 64 * 4 <= gpu.maxBufferSize) {
    assertThrows(
      () => TrainingSAE.create(createTrainingConfig({ ...fields, dIn: 64, dSae: wide }), { gpu }),
      TrainSaeError,
      `maxStorageBufferBindingSize of ${gpu.maxBindingSize} bytes`,
    );
  }
});

// ---------------------------------------------------------------- hostile values, public API

/** Runs `f` with a deadline; resolves to what it threw (a hang is a failure, not a pass). */
async function thrown(f: () => unknown, ms = 10_000): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (a hang)`)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(f), deadline]);
  } catch (err) {
    return err;
  } finally {
    clearTimeout(timer);
  }
  return undefined;
}

Deno.test("misuse: files, paths and values through the public API give named errors, never raw ones or hangs", async () => {
  const dir = await Deno.makeTempDir();
  const sae = await SAE.fromConfig({ architecture: "standard", dIn: 4, dSae: 8 });
  const tsae = TrainingSAE.create(
    createTrainingConfig({ architecture: "standard", dIn: 4, dSae: 8 }),
    {
      gpu,
    },
  );
  const trainer = new SAETrainer(
    createTrainerConfig({ totalTrainingSamples: 16, trainBatchSizeSamples: 4 }),
    tsae,
    [],
  );
  const model = await HookedTransformer.fromPretrainedNoProcessing(MODEL_DIR);
  const mkfifo = async (path: string) =>
    assert((await new Deno.Command("mkfifo", { args: [path] }).output()).success, "mkfifo");
  try {
    await sae.saveModel(`${dir}/good`);
    for (const name of ["fifo_weights", "fifo_cfg", "dir_weights"]) {
      await Deno.mkdir(`${dir}/${name}`);
    }
    await Deno.copyFile(`${dir}/good/cfg.json`, `${dir}/fifo_weights/cfg.json`);
    await mkfifo(`${dir}/fifo_weights/sae_weights.safetensors`);
    await mkfifo(`${dir}/fifo_cfg/cfg.json`);
    await Deno.copyFile(`${dir}/good/cfg.json`, `${dir}/dir_weights/cfg.json`);
    await Deno.mkdir(`${dir}/dir_weights/sae_weights.safetensors`);
    await mkfifo(`${dir}/fifo.safetensors`);
    await Deno.writeTextFile(`${dir}/file`, "x");
    await Deno.mkdir(`${dir}/model`);
    await mkfifo(`${dir}/model/config.json`);
    const st = { x: { dtype: "F32" as const, shape: [1], data: new Float32Array(1) } };
    const cases: [string, () => unknown, new (...a: never[]) => SaeflowError, string][] = [
      // A FIFO as a weights or config file blocked forever; a directory gave a raw read error.
      ["fifo weights", () => SAE.loadFromDisk(`${dir}/fifo_weights`), SafetensorsError, "FIFO"],
      ["fifo cfg.json", () => SAE.loadFromDisk(`${dir}/fifo_cfg`), SaeLoadError, "FIFO"],
      [
        "dir as weights",
        () => SAE.loadFromDisk(`${dir}/dir_weights`),
        SafetensorsError,
        "directory",
      ],
      [
        "readSafetensors fifo",
        () => readSafetensors(`${dir}/fifo.safetensors`),
        SafetensorsError,
        "FIFO",
      ],
      [
        "readSafetensorsHeader fifo",
        () => readSafetensorsHeader(`${dir}/fifo.safetensors`),
        SafetensorsError,
        "FIFO",
      ],
      [
        "model config.json fifo",
        () => HookedTransformer.fromPretrainedNoProcessing(`${dir}/model`),
        ModelError,
        "FIFO",
      ],
      ["loadFromDisk number", () => SAE.loadFromDisk(5 as never), SaeLoadError, "expected a path"],
      [
        "resume from a file",
        () => SAETrainer.resume(`${dir}/file`, trainer.cfg, tsae, []),
        TrainingError,
        "has no cfg.json",
      ],
      // Writes onto a file or with a NUL byte: raw AlreadyExists / NotADirectory / TypeError.
      [
        "saveModel onto a file",
        () => sae.saveModel(`${dir}/file`),
        FileWriteError,
        `cannot write ${dir}/file`,
      ],
      [
        "saveModel under a file",
        () => sae.saveModel(`${dir}/file/sub`),
        FileWriteError,
        "cannot write",
      ],
      ["saveModel NUL", () => sae.saveModel(`${dir}/a\0b`), SaeError, "expected a path"],
      [
        "writeSafetensors onto a dir",
        () => writeSafetensors(dir, st),
        FileWriteError,
        `cannot write ${dir}`,
      ],
      [
        "checkpoint onto a file",
        () => trainer.saveCheckpoint("x", `${dir}/file`),
        FileWriteError,
        "cannot write",
      ],
      // Invalid URLs: a raw TypeError "Invalid URL".
      [
        "hub endpoint",
        () => hubDownload("gpt2", "config.json", { endpoint: "not a url" }),
        HubError,
        '"not a url": expected an http(s) URL',
      ],
      [
        "pretrained endpoint",
        () =>
          SAE.fromPretrained(
            "gpt2-small-res-jb",
            "blocks.0.hook_resid_pre",
            { endpoint: "::" } as never,
          ),
        HubError,
        "http(s) URL",
      ],
      // Values of the wrong type (from JavaScript or parsed JSON).
      ["Tensor.from(null)", () => Tensor.from(null as never), GpuError, "data is null"],
      ["Tensor.from(string)", () => Tensor.from("abc" as never), GpuError, "data is string"],
      [
        "i32 from 1.5",
        () => Tensor.from([1.5], undefined, { dtype: "i32" }),
        GpuError,
        "value 1.5 at index 0 is not an i32",
      ],
      ["u32 from -1", () => Tensor.from([-1], undefined, { dtype: "u32" }), GpuError, "not a u32"],
      ["readAll([null])", () => readAll([null as never]), GpuError, "array of Tensors"],
      [
        "parseSafetensors(null)",
        () => parseSafetensors(null as never),
        SafetensorsError,
        "got null",
      ],
      [
        "parseConfigText(null)",
        () => parseConfigText(null as never, "yaml", "x"),
        ConfigError,
        "expected a string",
      ],
      [
        "parseConfigText toml",
        () => parseConfigText("{}", "toml" as never, "x"),
        ConfigError,
        '"json" or "yaml"',
      ],
      ["decode({})", () => sae.decode({} as never), SaeError, "expected a live f32 Tensor"],
      ["loss(null)", () => model.loss(null as never), ModelError, "tokens must be ids"],
      [
        "stopAtLayer 1.5",
        () => model.forward([[1, 2]], { stopAtLayer: 1.5 }),
        ModelError,
        "stopAtLayer is 1.5",
      ],
      [
        "namesFilter 5",
        () => model.runWithCache([[1, 2]], { namesFilter: 5 as never }),
        ModelError,
        "namesFilter is number",
      ],
      [
        "toTokens(null)",
        () => toTokens(null as never, "hi"),
        TokenizerError,
        "expected a Tokenizer",
      ],
      [
        "resolveModelName(null)",
        () => resolveModelName(null as never),
        HubError,
        "model name is null",
      ],
      [
        "trainer(null provider)",
        () => new SAETrainer(trainer.cfg, tsae, null as never),
        TrainingError,
        "data provider is null",
      ],
      [
        "createTrainerConfig(null)",
        () => createTrainerConfig(null as never),
        TrainingError,
        "trainer config is null",
      ],
      [
        "TrainingSAE.create(null)",
        () => TrainingSAE.create(null as never, { gpu }),
        TrainSaeError,
        "cfg is null",
      ],
      [
        "TrainingSAE no gpu",
        () => TrainingSAE.create(tsae.cfg, undefined as never),
        TrainSaeError,
        "options.gpu",
      ],
      [
        "ActivationScaler(NaN)",
        () => new ActivationScaler(NaN),
        TrainingError,
        "scaling factor NaN",
      ],
    ];
    for (const [name, f, cls, includes] of cases) {
      const err = await thrown(f);
      assert(
        err instanceof cls,
        `${name}: expected ${cls.name}, got ${err} (${(err as Error)?.name})`,
      );
      assert(
        (err as Error).message.includes(includes),
        `${name}: message ${JSON.stringify((err as Error).message)} lacks ${
          JSON.stringify(includes)
        }`,
      );
    }
    // Nothing above poisoned the device.
    using x = Tensor.from([1, 2, 3, 4], [1, 4]);
    using y = sae.forward(x);
    assertEquals(y.shape, [1, 4]);
  } finally {
    trainer.dispose();
    tsae.dispose();
    sae.dispose();
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("misuse: every error above is a SaeflowError", () => {
  for (
    const cls of [
      GpuError,
      ModelError,
      SaeError,
      SaeLoadError,
      ConfigError,
      TrainingError,
      TrainSaeError,
      SafetensorsError,
      HubError,
      TokenizerError,
    ]
  ) {
    assert(cls.prototype instanceof SaeflowError, cls.name);
  }
});
