/**
 * From sparse ground-truth codes to activations on the GPU: x = codes · dictionary + bias +
 * noise. The codes go up as a padded `[rows, kMax]` list (kMax = the block's largest row) and
 * the shared sparse decoder (`gatherRowsWeighted`, the TopK SAE's decoder kernel) sums the
 * dictionary rows; Gaussian noise, when asked for, comes from a counter-based hash of (block
 * key, element), so every block is reproducible on its own. {@link decodeCodesRef} is the
 * plain-TS reference of the whole path.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { grid1d, WGSL_MAIN_ARGS, WGSL_WG_INDEX } from "../gpu/kernel.ts";
import { gatherRowsWeighted } from "../gpu/kernels/scatter.ts";
import { Tensor } from "../gpu/tensor.ts";
import { SyntheticError } from "./errors.ts";
import { mix32, type SparseCodes, type SyntheticModel } from "./model.ts";

/** The codes as a padded row list: `idx [rows, k]` (−1 = empty slot) and `vals [rows, k]`. */
export function paddedCodes(
  codes: SparseCodes,
): { idx: Int32Array; vals: Float32Array; k: number } {
  const { rows, rowPtr } = codes;
  let k = 1;
  for (let r = 0; r < rows; r++) k = Math.max(k, rowPtr[r + 1] - rowPtr[r]);
  const idx = new Int32Array(rows * k).fill(-1);
  const vals = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let e = rowPtr[r], s = r * k; e < rowPtr[r + 1]; e++, s++) {
      idx[s] = codes.index[e];
      vals[s] = codes.value[e];
    }
  }
  return { idx, vals, k };
}

/**
 * The noise of element `e` (row-major index in the block) of the block with key `key`: a
 * standard normal from two 24-bit uniforms of a hash chain (Box–Muller). The GPU kernel computes
 * the same in f32.
 *
 * @example
 * ```ts
 * import { noiseValue } from "./decode.ts";
 * let s = 0, s2 = 0;
 * for (let e = 0; e < 20000; e++) { const z = noiseValue(7, e); s += z; s2 += z * z; }
 * if (Math.abs(s / 20000) > 0.05 || Math.abs(s2 / 20000 - 1) > 0.05) throw new Error();
 * ```
 */
export function noiseValue(key: number, e: number): number {
  const h1 = mix32((key ^ mix32(e >>> 0)) >>> 0);
  const h2 = mix32((h1 ^ 0x68e31da4) >>> 0);
  const u1 = ((h1 >>> 8) + 1) / 16777216;
  const u2 = (h2 >>> 8) / 16777216;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Plain-TS reference of {@link SyntheticDecoder.decode}: row r of the result is
 * bias + Σ_e value[e]·dictionary[index[e]] + noiseStd·{@link noiseValue}(noiseKey, r·dIn + c).
 *
 * @example
 * ```ts
 * import { decodeCodesRef } from "./decode.ts";
 * const codes = {
 *   rows: 2, rowPtr: Uint32Array.of(0, 2, 2), index: Uint32Array.of(0, 1),
 *   value: Float32Array.of(2, 3), block: 0, stream: 0, noiseKey: 0,
 * };
 * const dictionary = Float32Array.of(1, 0, 0, 1); // two features in 2 dims
 * const x = decodeCodesRef(codes, { dictionary, dIn: 2, bias: Float32Array.of(0.5, 0) });
 * if (x.join() !== "2.5,3,0.5,0") throw new Error(`${x}`);
 * ```
 */
export function decodeCodesRef(
  codes: SparseCodes,
  model: { dictionary: Float32Array; dIn: number; bias?: Float32Array; noiseStd?: number },
): Float32Array {
  const d = model.dIn, { rows, rowPtr, index, value } = codes;
  const out = new Float32Array(rows * d);
  const acc = new Float64Array(d);
  const sigma = model.noiseStd ?? 0;
  for (let r = 0; r < rows; r++) {
    if (model.bias) { for (let c = 0; c < d; c++) acc[c] = model.bias[c]; }
    else acc.fill(0);
    for (let e = rowPtr[r]; e < rowPtr[r + 1]; e++) {
      const v = value[e], o = index[e] * d;
      for (let c = 0; c < d; c++) acc[c] += v * model.dictionary[o + c];
    }
    if (sigma > 0) {
      for (let c = 0; c < d; c++) acc[c] += sigma * noiseValue(codes.noiseKey, r * d + c);
    }
    out.set(acc, r * d);
  }
  return out;
}

const WG = 256;

const NOISE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<u32>; // count, key, sigma bits, pad
${WGSL_WG_INDEX}
fn mix32(x0: u32) -> u32 {
  var x = x0;
  x = x ^ (x >> 16u); x = x * 0x7feb352du;
  x = x ^ (x >> 15u); x = x * 0x846ca68bu;
  return x ^ (x >> 16u);
}
@compute @workgroup_size(${WG})
fn main(${WGSL_MAIN_ARGS}) {
  let e = wgIndex(wid, nwg) * ${WG}u + lid;
  if (e >= p[0]) { return; }
  let h1 = mix32(p[1] ^ mix32(e));
  let h2 = mix32(h1 ^ 0x68e31da4u);
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777216.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  out[e] = out[e] + bitcast<f32>(p[2]) * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}`;

/**
 * The GPU side of a {@link SyntheticModel}: its dictionary (and bias) uploaded once, decoding
 * blocks of codes into `[rows, dIn]` activations.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { decodeCodesRef, SyntheticDecoder } from "./decode.ts";
 * import { SyntheticModel } from "./model.ts";
 * const gpu = await getGpu();
 * const model = new SyntheticModel({ dIn: 8, nFeatures: 32, noiseStd: 0.1, biasNorm: 1, seed: 1 });
 * using dec = new SyntheticDecoder(model, gpu);
 * const codes = model.sampleBlock(0, 64);
 * using x = dec.decode(codes);
 * const got = await x.toArray(), want = decodeCodesRef(codes, model);
 * for (let i = 0; i < want.length; i++) {
 *   if (Math.abs(got[i] - want[i]) > 1e-4) throw new Error(`element ${i}: ${got[i]} vs ${want[i]}`);
 * }
 * ```
 */
export class SyntheticDecoder {
  /** `[nFeatures, dIn]` dictionary on the GPU. */
  readonly dictionary: Tensor;
  /** `[dIn]` bias on the GPU, or null when the model has none. */
  readonly bias: Tensor | null;
  /** Width of the decoded rows. */
  readonly dIn: number;
  /** Noise standard deviation. */
  readonly noiseStd: number;
  /** The device. */
  readonly gpu: Gpu;

  /** Uploads the model's dictionary (and bias). */
  constructor(model: SyntheticModel, gpu: Gpu) {
    this.gpu = gpu;
    this.dIn = model.dIn;
    this.noiseStd = model.noiseStd;
    this.dictionary = Tensor.from(model.dictionary, [model.nFeatures, model.dIn], { gpu });
    this.bias = model.bias.some((v) => v !== 0)
      ? Tensor.from(model.bias, [model.dIn], { gpu })
      : null;
  }

  /** Records the decoding of `codes` into a new `[rows, dIn]` tensor (the caller owns it). */
  decode(codes: SparseCodes): Tensor {
    const { gpu, dIn } = this;
    const nFeatures = this.dictionary.shape[0];
    if (codes.rows * dIn >= 2 ** 32) {
      throw new SyntheticError(
        `decode: ${codes.rows} rows × ${dIn} values exceed 2^32 elements; use smaller blocks`,
      );
    }
    for (let e = 0; e < codes.index.length; e++) {
      if (codes.index[e] >= nFeatures) {
        throw new SyntheticError(
          `decode: code entry ${e} names feature ${codes.index[e]}, the model has ${nFeatures}`,
        );
      }
    }
    const { idx, vals, k } = paddedCodes(codes);
    using idxT = Tensor.from(idx, [codes.rows, k], { gpu });
    using valsT = Tensor.from(vals, [codes.rows, k], { gpu });
    const out = gatherRowsWeighted(
      this.dictionary,
      idxT,
      valsT,
      this.bias ? { bias: this.bias } : {},
    );
    if (this.noiseStd > 0) {
      const count = codes.rows * dIn;
      const p = new Uint32Array(4);
      p[0] = count;
      p[1] = codes.noiseKey >>> 0;
      new Float32Array(p.buffer)[2] = this.noiseStd;
      using params = Tensor.from(p, [4], { gpu });
      gpu.dispatch(
        gpu.pipeline("synthetic_noise", NOISE_WGSL),
        [out.binding(), params.binding()],
        grid1d(gpu, Math.ceil(count / WG)),
      );
    }
    return out;
  }

  /** Frees the GPU tensors. */
  dispose(): void {
    this.dictionary.dispose();
    this.bias?.dispose();
  }

  /** Same as {@link dispose} (for `using`). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
