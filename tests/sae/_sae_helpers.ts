/** Helpers shared by the GPU `SAE` tests: random small SAEs in every architecture. */

import { Tensor } from "../../gpu/tensor.ts";
import { createRng } from "../../util/rng.ts";
import { createSAEConfig, type SAEConfig } from "../../sae/config.ts";
import { getSaeArchitecture } from "../../sae/architectures/mod.ts";
import { SAE } from "../../sae/sae.ts";

/** Every architecture the GPU SAE implements, with the config fields a test SAE needs. */
export const ARCH_CASES: { name: string; fields: Record<string, unknown> }[] = [
  { name: "standard", fields: { architecture: "standard" } },
  { name: "gated", fields: { architecture: "gated" } },
  { name: "jumprelu", fields: { architecture: "jumprelu" } },
  { name: "topk", fields: { architecture: "topk", k: 3 } },
  { name: "topk-rescale", fields: { architecture: "topk", k: 3, rescaleActsByDecoderNorm: true } },
  { name: "transcoder", fields: { architecture: "transcoder", dOut: 4, applyBDecToInput: false } },
  {
    name: "skip_transcoder",
    fields: { architecture: "skip_transcoder", dOut: 4, applyBDecToInput: false },
  },
  {
    name: "jumprelu_transcoder",
    fields: { architecture: "jumprelu_transcoder", dOut: 4, applyBDecToInput: false },
  },
];

/** Random host tensors for `cfg` (normal entries; JumpReLU thresholds around 0.3). */
export function randomParams(cfg: SAEConfig, seed: number): Record<string, Float32Array> {
  const rng = createRng(seed);
  const shapes = getSaeArchitecture(cfg.architecture).paramShapes(cfg);
  const out: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const [mean, sd] = name === "threshold"
      ? [0.3, 0.2]
      : name.startsWith("W_")
      ? [0, 0.6]
      : [0, 0.3];
    out[name] = Float32Array.from({ length: n }, () => mean + sd * rng.normal());
  }
  return out;
}

/** A random SAE (dIn 6, dSae 8 unless overridden) and its host tensors. */
export async function randomSae(
  fields: Record<string, unknown>,
  seed: number,
): Promise<{ sae: SAE; params: Record<string, Float32Array> }> {
  const cfg = createSAEConfig({ dIn: 6, dSae: 8, ...fields });
  const params = randomParams(cfg, seed);
  return { sae: await SAE.fromParams(cfg, params), params };
}

/** Random input rows `[n, d]` (normal, scaled). */
export function randomInput(n: number, d: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * d }, () => scale * rng.normal());
}

/** Reads a tensor back and disposes it. */
export async function take(t: Tensor): Promise<Float32Array> {
  const v = await t.toArray() as Float32Array;
  t.dispose();
  return v;
}

/** Uploads `data` as an f32 tensor of `shape`. */
export function upload(data: ArrayLike<number>, shape: number[]): Tensor {
  return Tensor.from(Float32Array.from(data), shape);
}
