// The TL parameter set of a config: validateParams against loaded and processed parameters.
import {
  loadModelFromDir,
  modelConfigFromHf,
  ModelError,
  processWeights,
  TL_DEFAULT_PROCESSING,
  validateParams,
} from "../../model/mod.ts";
import { assert, assertThrows } from "../assert.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "./families/mod.ts";

Deno.test("validateParams catches missing, extra and misshapen parameters", async () => {
  const dir = await writeHfModel(CONFIGS.gpt2, randomHfTensors(CONFIGS.gpt2, 33));
  try {
    const { cfg, params } = await loadModelFromDir(dir);
    validateParams(cfg, params);
    const proc = processWeights(cfg, params, TL_DEFAULT_PROCESSING);
    validateParams(proc.cfg, proc.params);
    assertThrows(() => validateParams(proc.cfg, params), ModelError, "unexpected parameter");
    const bad = new Map(params);
    bad.set("blocks.0.attn.W_Q", { data: new Float32Array(16 * 16), shape: [16, 16] });
    assertThrows(() => validateParams(cfg, bad), ModelError, "blocks.0.attn.W_Q");
    // RMS models: center_writing_weights is skipped with TL's reason.
    const notes =
      processWeights(modelConfigFromHf(CONFIGS.llama), new Map(), { centerWritingWeights: true })
        .notes;
    assert(notes[0].includes("does not use LayerNorm"), notes[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
