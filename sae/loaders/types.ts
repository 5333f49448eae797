/**
 * Conversion loaders: how a pretrained SAE in some format becomes a SAELens cfg dict and a
 * state dict (SAELens `NAMED_PRETRAINED_SAE_LOADERS`), and the registry of them by name.
 * @module
 */

import type { HubDownloadOptions } from "../../hub/mod.ts";
import { hubDownload, HubError } from "../../hub/mod.ts";
import type { HostStateDict } from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";

/** What a hub loader gets. */
export interface SaeLoaderContext {
  /** Hugging Face repo id. */
  repoId: string;
  /** Folder (or file) inside the repo, from the registry or the user's sae id. */
  folder: string;
  /** Written into the cfg dict's `device` when given. */
  device?: string;
  /** Release overrides + `neuronpedia_id`, applied to the cfg dict with a top-level update. */
  cfgOverrides: Record<string, unknown>;
  /** Download settings (endpoint, cache dir, token, revision, forceDownload, offline). */
  hub: HubDownloadOptions;
}

/** What every loader returns (SAELens' `(cfg_dict, state_dict, log_sparsity)`). */
export interface SaeLoaderResult {
  /** The cfg dict before `saeConfigFromDict` (legacy layouts are converted there). */
  cfgDict: Record<string, unknown>;
  /** f32 tensors under SAELens names and orientation. */
  state: HostStateDict;
  /** log10 feature sparsity `[dSae]`, when the source has it. */
  logSparsity: Float32Array | null;
  /** Where the weights came from, for error messages (a path or `repo/file`). */
  source: string;
}

/** A loader of SAEs from the hub. */
export type SaeLoader = (ctx: SaeLoaderContext) => Promise<SaeLoaderResult>;

/** A loader of SAE folders on disk. */
export type SaeDiskLoader = (
  dir: string,
  options: { device?: string; cfgOverrides?: Record<string, unknown> },
) => Promise<SaeLoaderResult>;

/** `folder/file`, or `file` for an empty folder. */
export function repoPath(folder: string, file: string): string {
  const f = folder.replace(/\/+$/, "");
  return f === "" ? file : `${f}/${file}`;
}

/** Downloads `folder/file` of the context's repo into the HF cache; returns the local path. */
export async function download(ctx: SaeLoaderContext, file: string): Promise<string> {
  return await hubDownload(ctx.repoId, repoPath(ctx.folder, file), ctx.hub);
}

/** Like {@link download}, but null when the file does not exist in the repo. */
export async function downloadOptional(
  ctx: SaeLoaderContext,
  path: string,
): Promise<string | null> {
  try {
    return await hubDownload(ctx.repoId, path, ctx.hub);
  } catch (err) {
    if (err instanceof HubError && err.kind === "not_found") return null;
    throw err;
  }
}

/** Reads a required number field of a foreign config file. */
export function numberField(dict: Record<string, unknown>, key: string, source: string): number {
  const v = dict[key];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new SaeLoadError(`${source}: field ${key} is ${JSON.stringify(v)}, expected a number`);
  }
  return v;
}

/** Reads a required string field of a foreign config file. */
export function stringField(dict: Record<string, unknown>, key: string, source: string): string {
  const v = dict[key];
  if (typeof v !== "string") {
    throw new SaeLoadError(`${source}: field ${key} is ${JSON.stringify(v)}, expected a string`);
  }
  return v;
}

/** Transposes a row-major `[rows, cols]` matrix. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  }
  return out;
}

/** Fetches tensor `name` of a foreign state dict, checking its rank. */
export function take(
  state: HostStateDict,
  name: string,
  rank: number,
  source: string,
): { shape: number[]; data: Float32Array } {
  const t = state[name];
  if (!t) {
    throw new SaeLoadError(
      `${source}: tensor ${name} is missing (found: ${Object.keys(state).join(", ") || "none"})`,
    );
  }
  if (t.shape.length !== rank) {
    throw new SaeLoadError(
      `${source}: tensor ${name} has shape [${t.shape.join(", ")}], expected rank ${rank}`,
    );
  }
  return t;
}
