// The family table: unsupported architectures and malformed configs give clear errors.
import { defineModelConfig, modelConfigFromHf, ModelError } from "../../../model/mod.ts";
import { assertThrows } from "../../assert.ts";
import { CONFIGS } from "./mod.ts";

Deno.test("unsupported architectures and malformed configs give clear errors", () => {
  assertThrows(
    () => modelConfigFromHf({ model_type: "bloom", architectures: ["BloomForCausalLM"] }),
    ModelError,
    /unsupported model_type "bloom".*supported: gpt2/,
  );
  assertThrows(
    () => modelConfigFromHf({ model_type: "gpt2", n_embd: 16, n_head: 4 }),
    ModelError,
    `field "n_layer" missing`,
  );
  assertThrows(
    () => modelConfigFromHf({ ...CONFIGS.llama, rope_scaling: { rope_type: "yarn", factor: 4 } }),
    ModelError,
    "unsupported rope_scaling",
  );
  assertThrows(
    () => modelConfigFromHf({ ...CONFIGS.gpt2, activation_function: "quick_gelu" }),
    ModelError,
    "unsupported activation",
  );
  assertThrows(
    () =>
      defineModelConfig({
        nLayers: 1,
        dModel: 8,
        nHeads: 4,
        dVocab: 5,
        nCtx: 4,
        actFn: "relu",
        nKeyValueHeads: 3,
      }),
    ModelError,
    "nKeyValueHeads",
  );
});
