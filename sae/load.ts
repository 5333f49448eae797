/**
 * Loading SAE components (config + f32 state dict + sparsity) from a folder or from the hub
 * (spec §2.5): registry lookup, conversion loader, config overrides, config defaulting, and the
 * norm scaling factor to fold. The `SAE` class turns the result into GPU tensors.
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { HubOptions } from "../hub/mod.ts";
import { recoverFolder } from "../io/atomic.ts";
import { ConfigError, configWarn } from "../config/errors.ts";
import { type SAEConfig, saeConfigFromDict, saeConfigToDict } from "./config.ts";
import { KNOWN_METADATA_KEYS } from "./metadata.ts";
import { resolvePretrained } from "./pretrained.ts";
import { checkStateDict, type HostStateDict } from "./sae_io.ts";
import { getSaeArchitecture } from "./architectures/mod.ts";
import { getSaeDiskLoader, getSaeLoader } from "./loaders/registry.ts";
import type { SaeLoader, SaeLoaderResult } from "./loaders/types.ts";
import { SaeLoadError } from "./errors.ts";

/** Options of `SAE.loadFromDisk`. */
export interface LoadFromDiskOptions {
  /** Overrides the config's dtype (the dtype files are saved in; compute is f32). */
  dtype?: string;
  /** Written into `cfg.device` (a label; tensors live on `gpu`). */
  device?: string;
  /** Fold decoder norms into the encoder after loading. */
  foldWDecNorm?: boolean;
  /** The WebGPU device (default: the shared one). */
  gpu?: Gpu;
  /** Sets `sae.useErrorTerm`. */
  useErrorTerm?: boolean;
  /** Folder format: `sae_lens` (default) or `sparsify`. */
  converter?: string;
}

/** Options of `SAE.fromPretrained` (hub settings default to the environment, see `hub/env.ts`). */
export interface PretrainedOptions extends Omit<LoadFromDiskOptions, "converter">, HubOptions {
  /** Re-download files even when cached. */
  forceDownload?: boolean;
  /** Branch, tag or commit of the repo (default `main`). */
  revision?: string;
  /** Loader name or function; default: the release's `conversion_func`, else `sae_lens`. */
  converter?: string | SaeLoader;
}

/** Loaded components. */
export interface LoadedSae {
  /** The loaded SAE config. */
  cfg: SAEConfig;
  /** The v6 cfg dict of the loaded config (before any fold). */
  cfgDict: Record<string, unknown>;
  /** The SAE's tensors by SAELens name. */
  state: HostStateDict;
  /** log10 feature sparsity, or null when the folder has none. */
  logSparsity: Float32Array | null;
  /** Weights file (path or `repo/path`) for error messages. */
  source: string;
}

/** Loaded components plus the registry's norm scaling factor to fold (or null). */
export interface PretrainedResult extends LoadedSae {
  /** Norm scaling factor from the registry, or null. */
  normScalingFactor: number | null;
}

function buildConfig(
  r: SaeLoaderResult,
  overrides: Record<string, unknown>,
  dtype: string | undefined,
): LoadedSae {
  const dict = { ...r.cfgDict };
  if (dtype !== undefined) dict.dtype = dtype;
  let cfg: SAEConfig;
  try {
    cfg = saeConfigFromDict(dict);
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new SaeLoadError(`config of ${r.source}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  // v6 configs keep metadata in `metadata`: a top-level override such as neuronpedia_id would be
  // dropped (SAELens drops it); it is put into the metadata instead.
  for (const [key, value] of Object.entries(overrides)) {
    if (KNOWN_METADATA_KEYS.includes(key)) cfg.metadata.set(key, structuredClone(value));
  }
  const impl = getSaeArchitecture(cfg.architecture, `config of ${r.source}`);
  checkStateDict(impl.paramShapes(cfg), r.state, r.source, cfg.architecture);
  if (r.logSparsity && r.logSparsity.length !== cfg.dSae) {
    throw new SaeLoadError(
      `sparsity of ${r.source}: ${r.logSparsity.length} values, expected d_sae = ${cfg.dSae}`,
    );
  }
  return {
    cfg,
    cfgDict: saeConfigToDict(cfg),
    state: r.state,
    logSparsity: r.logSparsity,
    source: r.source,
  };
}

/**
 * Reads an SAE folder: `cfg.json` (legacy layouts converted) and the weights, as f32. A save
 * that was interrupted is first finished or undone (`recoverFolder`), so what is read is always
 * one complete save.
 */
export async function loadSaeFromDisk(
  dir: string,
  options: LoadFromDiskOptions = {},
): Promise<LoadedSae> {
  await recoverFolder(dir);
  const loader = getSaeDiskLoader(options.converter ?? "sae_lens");
  const r = await loader(dir, { device: options.device });
  return buildConfig(r, {}, options.dtype);
}

/**
 * Resolves `(release, saeId)` through the registry (an unknown release containing "/" is a raw
 * repo id with `saeId` as the folder), downloads with the release's loader, applies the
 * overrides (release `config_overrides` + `neuronpedia_id`), and reports the norm scaling
 * factor to fold when the config says `expected_average_only_in` (else it warns and keeps it).
 */
export async function loadSaeFromPretrained(
  release: string,
  saeId: string,
  options: PretrainedOptions = {},
): Promise<PretrainedResult> {
  const resolved = resolvePretrained(release, saeId);
  const loader = typeof options.converter === "function"
    ? options.converter
    : getSaeLoader(options.converter ?? resolved.conversionFunc);
  const r = await loader({
    repoId: resolved.repoId,
    folder: resolved.folder,
    device: options.device,
    cfgOverrides: resolved.configOverrides,
    hub: {
      endpoint: options.endpoint,
      token: options.token,
      cacheDir: options.cacheDir,
      offline: options.offline,
      etagTimeout: options.etagTimeout,
      downloadTimeout: options.downloadTimeout,
      revision: options.revision,
      forceDownload: options.forceDownload,
    },
  });
  const loaded = buildConfig(r, resolved.configOverrides, options.dtype);
  let normScalingFactor: number | null = null;
  if (loaded.cfg.normalizeActivations === "expected_average_only_in") {
    if (resolved.normScalingFactor !== null) normScalingFactor = resolved.normScalingFactor;
    else {
      configWarn(
        `${release}/${saeId}: normalize_activations is expected_average_only_in but the ` +
          `registry has no norm_scaling_factor for it; inputs must be scaled by the caller`,
      );
    }
  }
  return { ...loaded, normScalingFactor };
}
