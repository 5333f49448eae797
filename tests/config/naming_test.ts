import { assertEquals, assertThrows } from "../assert.ts";
import { camelizeKeys, deepEqual, snakeizeKeys, toCamel, toSnake } from "../../config/naming.ts";
import { ConfigError } from "../../config/errors.ts";
import { LOGGER_FIELDS, RUNNER_FIELDS } from "../../pipeline/runner_fields.ts";
import { fieldNames } from "../../sae/config.ts";
import { listArchitectures } from "../../sae/registry.ts";
import { KNOWN_METADATA_KEYS } from "../../sae/metadata.ts";

Deno.test("toCamel / toSnake: generic rule on SAELens names", () => {
  const pairs: [string, string][] = [
    ["apply_b_dec_to_input", "applyBDecToInput"],
    ["d_in", "dIn"],
    ["d_sae", "dSae"],
    ["l1_coefficient", "l1Coefficient"],
    ["l0_warm_up_steps", "l0WarmUpSteps"],
    ["n_batches_in_buffer", "nBatchesInBuffer"],
    ["hook_name_out", "hookNameOut"],
    ["adam_beta1", "adamBeta1"],
    ["lr", "lr"],
    ["l0", "l0"],
    ["k", "k"],
    ["sae_lens_training_version", "saeLensTrainingVersion"],
    ["eval_every_n_wandb_logs", "evalEveryNWandbLogs"],
  ];
  for (const [snake, camel] of pairs) {
    assertEquals(toCamel(snake), camel, snake);
    assertEquals(toSnake(camel), snake, camel);
    // Already-converted names are left alone.
    assertEquals(toCamel(camel), camel, `toCamel(${camel})`);
    assertEquals(toSnake(snake), snake, `toSnake(${snake})`);
  }
});

Deno.test("toCamel / toSnake: exceptions and verbatim keys", () => {
  for (const tensor of ["W_enc", "W_dec", "W_skip", "b_enc", "b_dec", "b_gate", "r_mag", "b_mag"]) {
    assertEquals(toCamel(tensor), tensor);
    assertEquals(toSnake(tensor), tensor);
  }
  assertEquals(toCamel("log_threshold"), "log_threshold");
  // A part that starts with a digit keeps its underscore, so the round trip is exact.
  assertEquals(toCamel("layer_0"), "layer_0");
  assertEquals(toSnake("layer_0"), "layer_0");
  assertEquals(toCamel("below_1e_5_bar"), "below_1e_5Bar");
  assertEquals(toSnake("below_1e_5Bar"), "below_1e_5_bar");
  // Hook names, repo paths and odd keys are not identifiers: verbatim both ways.
  for (const key of ["blocks.0.hook_resid_pre", "google/gemma", "a__b", "_private", "x-y", "Foo"]) {
    assertEquals(toCamel(key), key);
    assertEquals(toSnake(key), key);
  }
});

Deno.test("every known config key round-trips snake → camel → snake", () => {
  const keys = new Set<string>([
    ...RUNNER_FIELDS.map((f) => f.name),
    ...LOGGER_FIELDS.map((f) => f.name),
    ...KNOWN_METADATA_KEYS,
  ]);
  for (const arch of listArchitectures()) {
    for (const training of [false, true]) for (const k of fieldNames(arch, training)) keys.add(k);
  }
  for (const key of keys) {
    assertEquals(toSnake(toCamel(key)), key, key);
    assertEquals(toCamel(toSnake(toCamel(key))), toCamel(key), key);
  }
});

Deno.test("camelizeKeys keeps free-form dicts verbatim and converts metadata keys", () => {
  const input = {
    d_in: 768,
    model_from_pretrained_kwargs: { center_writing_weights: true },
    metadata: { hook_name: "blocks.0.hook_z", model_from_pretrained_kwargs: { fold_ln: false } },
    nested_list: [{ hook_name: "a" }],
  };
  const out = camelizeKeys(input, { deep: true });
  assertEquals(out, {
    dIn: 768,
    modelFromPretrainedKwargs: { center_writing_weights: true },
    metadata: { hookName: "blocks.0.hook_z", modelFromPretrainedKwargs: { fold_ln: false } },
    nestedList: [{ hookName: "a" }],
  });
  const shallow = camelizeKeys({ metadata: { hook_name: "x" } });
  assertEquals(shallow, { metadata: { hook_name: "x" } });
  const custom = camelizeKeys({ my_dict: { a_b: 1 } }, {
    deep: true,
    keepInner: new Set(["my_dict"]),
  });
  assertEquals(custom, { myDict: { a_b: 1 } });
  assertEquals(snakeizeKeys(out, { deep: true }), input);
});

Deno.test("conflicting duplicate spellings throw, equal duplicates are accepted", () => {
  const err = assertThrows(() => snakeizeKeys({ d_in: 768, dIn: 512 }), ConfigError);
  assertEquals(err.message.includes('"d_in"') && err.message.includes('"dIn"'), true);
  assertEquals(err.message.includes("768") && err.message.includes("512"), true);
  assertEquals(snakeizeKeys({ d_in: 768, dIn: 768 }), { d_in: 768 });
  assertThrows(() => camelizeKeys({ lrEnd: 1, lr_end: 2 }), ConfigError, "lr_end");
  assertEquals(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), true);
  assertEquals(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] }), false);
});
