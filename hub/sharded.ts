/** Sharded safetensors checkpoints (`*.safetensors.index.json` + shards) from the hub. @module */

import {
  hubDownload,
  hubDownloadMany,
  type HubDownloadOptions,
  hubFileExists,
} from "./download.ts";
import { HubError } from "./errors.ts";
import { unsafeRelativePath } from "../util/path.ts";

/** Result of {@link hubDownloadSharded}. */
export interface ShardedDownload {
  /** Local path of the index JSON. */
  indexPath: string;
  /** Local paths of the distinct shard files, sorted by shard file name. */
  shardPaths: string[];
  /** The index's `weight_map`: tensor name → shard file name (relative to the index). */
  weightMap: Record<string, string>;
}

/** Commit hash inside a `snapshots/<commit>/` path returned by `hubDownload`. */
function snapshotCommit(localPath: string): string | undefined {
  return /[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]/.exec(localPath)?.[1];
}

/**
 * Downloads a sharded checkpoint as a set: the index file, then every shard its `weight_map`
 * names, all at the commit the index came from (so index and shards always match).
 *
 * @example
 * ```ts ignore
 * import { hubDownloadSharded } from "./sharded.ts";
 * const { shardPaths } = await hubDownloadSharded("google/gemma-2-2b");
 * ```
 */
export async function hubDownloadSharded(
  repoId: string,
  indexFile = "model.safetensors.index.json",
  opts: HubDownloadOptions = {},
): Promise<ShardedDownload> {
  const indexPath = await hubDownload(repoId, indexFile, opts);
  let weightMap: Record<string, string>;
  try {
    const parsed = JSON.parse(await Deno.readTextFile(indexPath));
    weightMap = parsed?.weight_map;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
      throw new Error("no weight_map object");
    }
  } catch (err) {
    throw new HubError(
      "protocol",
      `${indexFile} of model ${repoId} is not a safetensors index: expected JSON with a ` +
        `"weight_map" object (${err instanceof Error ? err.message : err})`,
    );
  }
  const dir = indexFile.includes("/") ? indexFile.slice(0, indexFile.lastIndexOf("/") + 1) : "";
  // The index comes from the server: each shard must name a file inside the repo, also after
  // a URL decodes it (`%2e%2e/` would reach another repo, with the user's token).
  for (const [tensor, s] of Object.entries(weightMap)) {
    const why = typeof s === "string" ? unsafeRelativePath(dir + s) : "it is not a string";
    if (why !== undefined) {
      throw new HubError(
        "protocol",
        `${indexFile} of model ${repoId} maps tensor ${JSON.stringify(tensor)} to shard ` +
          `${JSON.stringify(s)} (${why}): expected a file name inside the repo, such as ` +
          `"model-00001-of-00002.safetensors"`,
      );
    }
  }
  const shards = [...new Set(Object.values(weightMap))].sort();
  const commit = snapshotCommit(indexPath);
  const shardPaths = await hubDownloadMany(
    repoId,
    shards.map((s) => dir + s),
    { ...opts, revision: commit ?? opts.revision, forceDownload: opts.forceDownload },
  );
  return { indexPath, shardPaths, weightMap };
}

/**
 * Downloads a model's safetensors weights whether single-file or sharded: `filename` if the repo
 * has it, else its index (`<filename>.index.json`) and shards. Returns the local weight files.
 */
export async function hubDownloadSafetensors(
  repoId: string,
  opts: HubDownloadOptions & { filename?: string } = {},
): Promise<string[]> {
  const filename = opts.filename ?? "model.safetensors";
  if (await hubFileExists(repoId, filename, opts)) {
    return [await hubDownload(repoId, filename, opts)];
  }
  const index = `${filename}.index.json`;
  if (!await hubFileExists(repoId, index, opts)) {
    throw new HubError(
      "not_found",
      `model ${repoId} at revision ${opts.revision ?? "main"} has neither ${filename} nor ` +
        `${index}: it may only ship PyTorch .bin weights, which saeflow does not read.`,
      404,
    );
  }
  return (await hubDownloadSharded(repoId, index, opts)).shardPaths;
}
