/**
 * SAE folders on disk (spec §2.1–§2.4): `cfg.json`, `sae_weights.safetensors`,
 * `sparsity.safetensors`. Reading converts every float tensor to f32 and applies SAELens'
 * legacy state-dict rules; writing validates everything first, stores tensors in the config's
 * dtype and replaces the folder in one recoverable step (`io/atomic.ts`); readers run
 * `recoverFolder` first (`load.ts`).
 * @module
 */

import { readSafetensors, type StTensor, toFloat32 } from "../io/safetensors.ts";
import { serializeTo } from "../io/safetensors_write.ts";
import { f32ToBf16, f32ToF16 } from "../io/dtypes.ts";
import { writeFolderAtomic } from "../io/atomic.ts";
import { join } from "../util/path.ts";
import { configWarn } from "../config/errors.ts";
import type { Dtype, SAEConfig } from "./config_types.ts";
import { SaeLoadError } from "./errors.ts";
import type { HostTensor } from "../util/host_tensor.ts";
import { readRegularTextFile } from "../util/files.ts";

/** File names of an SAE folder (SAELens constants). */
export const SAE_CFG_FILENAME = "cfg.json";
/** Weights file of an SAE folder. */
export const SAE_WEIGHTS_FILENAME = "sae_weights.safetensors";
/** Optional log10 feature sparsity file of an SAE folder. */
export const SPARSITY_FILENAME = "sparsity.safetensors";

/** One f32 tensor on the host: the same type the model code uses. */
export type { HostTensor };

/** Tensors by name on the host (a state dict). */
export type HostStateDict = Record<string, HostTensor>;

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);

/**
 * Reads a JSON object file; errors name the file (missing, unreadable, not an object).
 *
 * @example
 * ```ts ignore
 * const cfg = await readJsonObject("my_sae/cfg.json");
 * ```
 */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  // A FIFO would block the read forever: only regular files are read.
  const text = await readRegularTextFile(path, (m, cause) => new SaeLoadError(m, { cause }));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SaeLoadError(`${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SaeLoadError(`${path}: expected a JSON object at the top level`);
  }
  return value as Record<string, unknown>;
}

/** Converts one safetensors tensor to f32; only float dtypes are accepted. */
export function floatTensor(name: string, t: StTensor, source: string): HostTensor {
  if (!FLOAT_DTYPES.has(t.dtype)) {
    throw new SaeLoadError(
      `${source}: tensor ${name} has dtype ${t.dtype}, expected F32, F16, BF16 or F64`,
    );
  }
  return { shape: [...t.shape], data: toFloat32(t) };
}

/** Reads a safetensors file as an f32 state dict (all tensors must be float). */
export async function readStateDict(path: string): Promise<HostStateDict> {
  try {
    await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new SaeLoadError(`${path}: file not found`, { cause: err });
    }
    throw err;
  }
  const { tensors } = await readSafetensors(path);
  const out: HostStateDict = {};
  for (const [name, t] of tensors) out[name] = floatTensor(name, t, path);
  return out;
}

/**
 * SAELens' state-dict rules for older files, in place:
 * - `log_threshold` (6.18 JumpReLU training checkpoints) → `threshold = exp(log_threshold)`;
 * - `scaling_factor` (v3–v5 finetuning scale): dropped when all ones; otherwise the raw
 *   config's `finetuning_scaling_factor` must be true (else an error, as SAELens) and the factor
 *   is folded into W_dec's rows (v5 decoded (f·s)·W_dec). Deviation: SAELens 6 cannot hold this
 *   tensor at all and fails to load such files.
 */
export function processLegacyStateDict(
  rawCfg: Record<string, unknown>,
  state: HostStateDict,
  source: string,
): void {
  if (state.log_threshold && !state.threshold) {
    const lt = state.log_threshold;
    state.threshold = { shape: lt.shape, data: lt.data.map(Math.exp) };
    delete state.log_threshold;
  }
  const s = state.scaling_factor;
  if (!s) return;
  delete state.scaling_factor;
  if (s.data.every((v) => Math.abs(v - 1) <= 1e-8 + 1e-5)) return;
  if (rawCfg.finetuning_scaling_factor !== true) {
    throw new SaeLoadError(
      `${source}: tensor scaling_factor is not all ones but the config's ` +
        `finetuning_scaling_factor is ${JSON.stringify(rawCfg.finetuning_scaling_factor ?? null)}`,
    );
  }
  const wDec = state.W_dec;
  if (!wDec || wDec.shape.length !== 2 || wDec.shape[0] !== s.data.length) {
    throw new SaeLoadError(
      `${source}: scaling_factor [${s.shape.join(", ")}] does not match W_dec ` +
        `[${wDec?.shape.join(", ") ?? "missing"}]`,
    );
  }
  const cols = wDec.shape[1];
  for (let i = 0; i < s.data.length; i++) {
    for (let j = 0; j < cols; j++) wDec.data[i * cols + j] *= s.data[i];
  }
  configWarn(`${source}: folded the legacy finetuning scaling_factor into W_dec`);
}

/**
 * Checks that `state` has exactly the tensors `expected` (name → shape) describes; errors name
 * the tensor, the expected and actual shapes, and `source`.
 */
export function checkStateDict(
  expected: Record<string, number[]>,
  state: HostStateDict,
  source: string,
  architecture: string,
): void {
  for (const [name, shape] of Object.entries(expected)) {
    const t = state[name];
    if (!t) {
      throw new SaeLoadError(
        `${source}: tensor ${name} is missing (expected shape [${shape.join(", ")}] for a ` +
          `${architecture} SAE; found: ${Object.keys(state).join(", ") || "none"})`,
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new SaeLoadError(
        `${source}: tensor ${name} has shape [${t.shape.join(", ")}], expected ` +
          `[${shape.join(", ")}] from the config (${architecture})`,
      );
    }
  }
  const extra = Object.keys(state).filter((k) => !(k in expected));
  if (extra.length > 0) {
    throw new SaeLoadError(
      `${source}: unexpected tensor(s) ${extra.join(", ")} for a ${architecture} SAE ` +
        `(expected ${Object.keys(expected).join(", ")})`,
    );
  }
}

function toStored(t: HostTensor, dtype: Dtype): StTensor {
  switch (dtype) {
    case "float16":
      return { dtype: "F16", shape: t.shape, data: f32ToF16(t.data) };
    case "bfloat16":
      return { dtype: "BF16", shape: t.shape, data: f32ToBf16(t.data) };
    case "float64":
      return { dtype: "F64", shape: t.shape, data: Float64Array.from(t.data) };
    default:
      return { dtype: "F32", shape: t.shape, data: t.data };
  }
}

/** Paths written by {@link writeSaeFolder}. */
export interface SavedSaePaths {
  /** Path of the written weights file. */
  weightsPath: string;
  /** Path of the written config file. */
  cfgPath: string;
  /** Present when a sparsity tensor was written. */
  sparsityPath?: string;
}

/** The entries of an SAE folder that a save owns: replaced, or removed when not written. */
export const SAE_FOLDER_FILES: readonly string[] = [
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  SPARSITY_FILENAME,
];

/**
 * Writes an SAE folder: `sae_weights.safetensors` (tensors in `cfg.dtype`), `cfg.json` and, when
 * `logSparsity` is given, `sparsity.safetensors` (`{sparsity: F32 [dSae]}`). Everything is
 * validated and serialised before the disk is touched; the folder is then replaced in one
 * recoverable step (`writeFolderAtomic`), so a failure or a kill leaves the previous folder
 * whole, and a `sparsity.safetensors` of an earlier save never stays beside new weights. Other
 * files in an existing folder are kept. Write failures throw `FileWriteError` naming the file.
 * `extraFiles` (name → bytes, e.g. a runner's `runner_cfg.json`) go into the same write.
 */
export async function writeSaeFolder(
  dir: string,
  cfg: SAEConfig,
  cfgDict: Record<string, unknown>,
  tensors: HostStateDict,
  logSparsity?: Float32Array,
  extraFiles: ReadonlyMap<string, Uint8Array> = new Map(),
): Promise<SavedSaePaths> {
  if (logSparsity && logSparsity.length !== cfg.dSae) {
    throw new SaeLoadError(
      `saveModel: sparsity has ${logSparsity.length} values, expected d_sae = ${cfg.dSae}; ` +
        `nothing was written to ${dir}`,
    );
  }
  const weightsPath = join(dir, SAE_WEIGHTS_FILENAME);
  const cfgPath = join(dir, SAE_CFG_FILENAME);
  const stored: Record<string, StTensor> = {};
  for (const [name, t] of Object.entries(tensors)) stored[name] = toStored(t, cfg.dtype);
  const files = new Map<string, Uint8Array>([
    [SAE_WEIGHTS_FILENAME, serializeTo(weightsPath, stored)],
    [SAE_CFG_FILENAME, new TextEncoder().encode(JSON.stringify(cfgDict, null, 2) + "\n")],
  ]);
  const sparsityPath = logSparsity ? join(dir, SPARSITY_FILENAME) : undefined;
  if (sparsityPath) {
    const sparsity: StTensor = { dtype: "F32", shape: [cfg.dSae], data: logSparsity! };
    files.set(SPARSITY_FILENAME, serializeTo(sparsityPath, { sparsity }));
  }
  for (const [name, bytes] of extraFiles) files.set(name, bytes);
  await writeFolderAtomic(dir, async (w) => {
    for (const [name, bytes] of files) await w.writeFile(name, bytes);
  }, { owned: [...SAE_FOLDER_FILES, ...extraFiles.keys()] });
  return sparsityPath ? { weightsPath, cfgPath, sparsityPath } : { weightsPath, cfgPath };
}

/** log10(fraction + 1e-10) per latent: what `sparsity.safetensors` stores. */
export function logSparsityOf(firingFraction: ArrayLike<number>): Float32Array {
  return Float32Array.from(firingFraction, (f) => Math.log10(f + 1e-10));
}

/** Reads `sparsity.safetensors` (tensor `sparsity`, `[dSae]`) as f32. */
export async function readSparsity(path: string, dSae: number): Promise<Float32Array> {
  const state = await readStateDict(path);
  const t = state.sparsity;
  if (!t || t.shape.length !== 1 || t.shape[0] !== dSae) {
    throw new SaeLoadError(
      `${path}: expected tensor sparsity of shape [${dSae}], found ${
        t ? `[${t.shape.join(", ")}]` : `tensors ${Object.keys(state).join(", ")}`
      }`,
    );
  }
  return t.data;
}
