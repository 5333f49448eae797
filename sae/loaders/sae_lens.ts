/**
 * The native SAELens format (spec §2.1, §2.5): `{folder}/cfg.json`,
 * `{folder}/sae_weights.safetensors`, optional `{folder}/sparsity.safetensors`.
 * @module
 */

import { join } from "../../util/path.ts";
import { applyConfigOverrides } from "../pretrained.ts";
import {
  processLegacyStateDict,
  readJsonObject,
  readStateDict,
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  SPARSITY_FILENAME,
} from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";
import {
  download,
  downloadOptional,
  repoPath,
  type SaeDiskLoader,
  type SaeLoader,
  type SaeLoaderResult,
} from "./types.ts";

async function fromFiles(
  cfgPath: string,
  weightsPath: string,
  sparsityPath: string | null,
  overrides: Record<string, unknown>,
  device: string | undefined,
  source: string,
): Promise<SaeLoaderResult> {
  const cfgDict = applyConfigOverrides(await readJsonObject(cfgPath), overrides, device);
  const state = await readStateDict(weightsPath);
  processLegacyStateDict(cfgDict, state, source);
  let logSparsity: Float32Array | null = null;
  if (sparsityPath !== null) {
    const s = (await readStateDict(sparsityPath)).sparsity;
    if (!s || s.shape.length !== 1) {
      throw new SaeLoadError(`${sparsityPath}: expected one tensor "sparsity" of rank 1`);
    }
    logSparsity = s.data;
  }
  return { cfgDict, state, logSparsity, source };
}

/** Hub loader of the native format (SAELens `sae_lens_huggingface_loader`). */
export const saeLensLoader: SaeLoader = async (ctx): Promise<SaeLoaderResult> => {
  const cfgPath = await download(ctx, SAE_CFG_FILENAME);
  const weightsPath = await download(ctx, SAE_WEIGHTS_FILENAME);
  const sparsityPath = await downloadOptional(ctx, repoPath(ctx.folder, SPARSITY_FILENAME));
  const source = `${ctx.repoId}/${repoPath(ctx.folder, SAE_WEIGHTS_FILENAME)}`;
  return await fromFiles(cfgPath, weightsPath, sparsityPath, ctx.cfgOverrides, ctx.device, source);
};

/** Disk loader of the native format (SAELens `sae_lens_disk_loader`); sparsity is not read. */
export const saeLensDiskLoader: SaeDiskLoader = async (dir, options): Promise<SaeLoaderResult> => {
  const weightsPath = join(dir, SAE_WEIGHTS_FILENAME);
  return await fromFiles(
    join(dir, SAE_CFG_FILENAME),
    weightsPath,
    null,
    options.cfgOverrides ?? {},
    options.device,
    weightsPath,
  );
};
