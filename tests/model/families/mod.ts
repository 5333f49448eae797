// The family fixtures, one file each, registered in FIXTURES; their tiny configs by case name
// (CONFIGS) and the fixture-level helpers every model test uses: the HF tensors of a config,
// random weights for it, and its naive HF forward.
import {
  type FamilyFixture,
  type HfT,
  type Json,
  type NaiveOptions,
  type NaiveResult,
  randomTensors,
  type TensorSpec,
} from "./_harness.ts";
import { GEMMA_FIXTURE } from "./gemma.ts";
import { GPT2_FIXTURE } from "./gpt2.ts";
import { LLAMA_FIXTURE } from "./llama.ts";
import { NEO_FIXTURE } from "./neo.ts";
import { NEOX_FIXTURE } from "./neox.ts";

export { type HfT, type Json, writeHfModel, type WriteHfOptions } from "./_harness.ts";

/** Every family fixture (the order of {@link CONFIGS}). */
export const FIXTURES: readonly FamilyFixture[] = [
  GPT2_FIXTURE,
  NEO_FIXTURE,
  NEOX_FIXTURE,
  LLAMA_FIXTURE,
  GEMMA_FIXTURE,
];

/** Tiny HF configs, one per family/mechanism, by case name. */
export const CONFIGS: Record<string, Json> = Object.assign(
  {},
  ...FIXTURES.map((f) => f.configs),
);

/** The fixture that has a config of `cfg.model_type`. */
function fixtureOf(cfg: Json): FamilyFixture {
  const f = FIXTURES.find((f) =>
    Object.values(f.configs).some((c) => c.model_type === cfg.model_type)
  );
  if (!f) throw new Error(`no family fixture for model_type ${cfg.model_type}`);
  return f;
}

/** `[name, shape, kind]` of every HF tensor of `cfg` (kind: "w" weight, "b" bias, "n" norm). */
export function hfTensorSpecs(cfg: Json): TensorSpec[] {
  return fixtureOf(cfg).specs(cfg);
}

/** Random HF tensors for `cfg`: weights ±`scale`·U, biases small, norm weights near 1. */
export function randomHfTensors(cfg: Json, seed: number, scale = 0.5): Map<string, HfT> {
  return randomTensors(hfTensorSpecs(cfg), seed, scale);
}

/** The naive HF forward of one sequence (see {@link FamilyFixture.naive}). */
export function naiveForward(
  cfg: Json,
  w: Map<string, HfT>,
  tokens: number[],
  opts: NaiveOptions = {},
): NaiveResult {
  return fixtureOf(cfg).naive(cfg, w, tokens, opts);
}
