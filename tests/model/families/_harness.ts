// What every family fixture shares: the fixture interface, random HF tensors from a fixture's
// tensor list, and writing a tiny model in Hugging Face layout (config.json + safetensors, single
// or sharded, f32/bf16/f16) to a temp dir to load back through model/load/local.ts.
import { writeSafetensors } from "../../../io/safetensors.ts";
import { f32ToBf16, f32ToF16 } from "../../../io/dtypes.ts";
import type { StTensor } from "../../../io/safetensors_write.ts";
import { mulberry32 as rng } from "../../../util/rng.ts";

/** An HF tensor in float32. */
export interface HfT {
  data: Float32Array;
  shape: number[];
}

// deno-lint-ignore no-explicit-any
export type Json = Record<string, any>;

/** `[name, shape, kind]` of one HF tensor (kind: "w" weight, "b" bias, "n" norm weight). */
export type TensorSpec = [string, number[], "w" | "b" | "n"];

/** Options that deliberately deviate from HF to follow TransformerLens. */
export interface NaiveOptions {
  /** Which layers use the sliding window (default: HF's rule for the family). */
  isLocal?: (layer: number) => boolean;
}

/** Result: logits [P][V] and hidden[i] = input of layer i ([P][D]), hidden[L] = final resid. */
export interface NaiveResult {
  logits: number[][];
  hidden: number[][][];
}

/**
 * One model family's test fixture: tiny HF configs, the HF tensors a config implies, and an
 * independent, deliberately naive float64 forward written directly from the Hugging Face module
 * (one sequence at a time), against which the weight mapping + reference forward are checked.
 */
export interface FamilyFixture {
  /** Tiny HF configs by case name, one per family/mechanism (e.g. `llama`, `llama3`). */
  configs: Record<string, Json>;
  /** Every HF tensor of `cfg`, with the model prefix. */
  specs(cfg: Json): TensorSpec[];
  /** The naive HF forward of `tokens` through HF-layout tensors `w`. */
  naive(cfg: Json, w: Map<string, HfT>, tokens: number[], opts: NaiveOptions): NaiveResult;
}

/** Random tensors for `specs`: weights ±`scale`·U, biases small, norm weights near 1. */
export function randomTensors(specs: TensorSpec[], seed: number, scale = 0.5): Map<string, HfT> {
  const r = rng(seed);
  const out = new Map<string, HfT>();
  for (const [name, shape, kind] of specs) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = 2 * r() - 1;
      data[i] = kind === "w" ? scale * u : kind === "b" ? 0.3 * u : 1 + 0.3 * u;
    }
    out.set(name, { data, shape });
  }
  return out;
}

/** How {@link writeHfModel} writes: bf16 or f16 (else f32), in two shards, keys unprefixed. */
export interface WriteHfOptions {
  bf16?: boolean;
  f16?: boolean;
  sharded?: boolean;
  stripPrefix?: string;
}

/** Writes config.json + weights into a new temp dir (optionally bf16/f16 or in two shards). */
export async function writeHfModel(
  cfg: Json,
  tensors: Map<string, HfT>,
  opts: WriteHfOptions = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "saeflow_model_" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
  const st = new Map<string, StTensor>();
  for (const [name0, t] of tensors) {
    const name = opts.stripPrefix && name0.startsWith(opts.stripPrefix)
      ? name0.slice(opts.stripPrefix.length)
      : name0;
    st.set(
      name,
      opts.bf16
        ? { dtype: "BF16", shape: t.shape, data: f32ToBf16(t.data) }
        : opts.f16
        ? { dtype: "F16", shape: t.shape, data: f32ToF16(t.data) }
        : { dtype: "F32", shape: t.shape, data: t.data },
    );
  }
  if (!opts.sharded) {
    await writeSafetensors(`${dir}/model.safetensors`, st);
    return dir;
  }
  const names = [...st.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < 2; i++) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(`${dir}/${file}`, new Map(shards[i].map((n) => [n, st.get(n)!])));
    for (const n of shards[i]) weightMap[n] = file;
  }
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  return dir;
}
