// Loading a local HF folder: a missing tensor names the key and the file.
import { loadModelFromDir, ModelError } from "../../../model/mod.ts";
import { assert, assertRejects } from "../../assert.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "../families/mod.ts";

Deno.test("a missing tensor names the key and the file; untied models need lm_head", async () => {
  const t = randomHfTensors(CONFIGS.gpt2, 31);
  t.delete("transformer.h.1.mlp.c_fc.bias");
  const dir = await writeHfModel(CONFIGS.gpt2, t);
  try {
    const err = await assertRejects(
      () => loadModelFromDir(dir),
      ModelError,
      `missing tensor "transformer.h.1.mlp.c_fc.bias"`,
    );
    assert(err.message.includes(`${dir}/model.safetensors`), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const l = randomHfTensors(CONFIGS.llama, 32);
  l.delete("lm_head.weight");
  const dir2 = await writeHfModel(CONFIGS.llama, l);
  try {
    await assertRejects(
      () => loadModelFromDir(dir2),
      ModelError,
      `missing tensor "lm_head.weight"`,
    );
  } finally {
    await Deno.remove(dir2, { recursive: true });
  }
});
