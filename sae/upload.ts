/**
 * `uploadSaesToHuggingface`: SAELens's `upload_saes_to_huggingface` (spec §1.12) on saeflow's
 * hub upload (`hub/upload.ts`): one folder per SAE id in a model repo, a default README, and,
 * unlike SAELens (one commit per SAE, then one for the README), one commit for everything, so a
 * failed upload leaves the repo as it was.
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import type { HubOptions } from "../hub/env.ts";
import { HubError } from "../hub/errors.ts";
import {
  checkUploadTarget,
  type HubUploadFile,
  type HubUploadProgress,
  type HubUploadResult,
  hubUploadTargetHas,
  uploadHubFiles,
} from "../hub/upload.ts";
import { recoverFolder } from "../io/atomic.ts";
import { readSafetensorsHeader } from "../io/safetensors.ts";
import type { SafetensorsHeader } from "../io/safetensors_header.ts";
import { join, unsafeRelativePath } from "../util/path.ts";
import { getSaeArchitecture } from "./architectures/mod.ts";
import { type SAEConfig, saeConfigFromDict } from "./config.ts";
import type { SAE } from "./sae.ts";
import { SaeLoadError } from "./errors.ts";
import {
  checkStateDict,
  type HostStateDict,
  readJsonObject,
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  SPARSITY_FILENAME,
} from "./sae_io.ts";

/** The runner config SAELens writes beside a trained SAE (uploaded when present). */
export const RUNNER_CFG_FILENAME = "runner_cfg.json";

/** The files of an SAE folder that an upload sends (SAELens's `allow_patterns`). */
export const SAE_UPLOAD_FILES: readonly string[] = [
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  SPARSITY_FILENAME,
  RUNNER_CFG_FILENAME,
];

/** Something whose `saveModel(dir)` writes an SAE folder (an `SAE`). */
export type SaveableSae = Pick<SAE, "saveModel">;

/** Options of {@link uploadSaesToHuggingface}. */
export interface UploadSaesOptions {
  /**
   * SAEs by id; each id becomes a folder in the repo (convention: the hook name, e.g.
   * `blocks.8.hook_resid_pre`). A value is an `SAE` (saved to a temporary folder first) or the
   * path of a folder written by `saveModel` / a training run.
   */
  saes: Record<string, SaveableSae | string> | Map<string, SaveableSae | string>;
  /** `namespace/name` of the model repo; created when missing. */
  repoId: string;
  /** Branch. Default `"main"`. */
  revision?: string;
  /** Token with write access. Default: `hub.token`, then `HF_TOKEN` and the token file. */
  token?: string;
  /** Add a README.md (front matter `library_name: saelens`) when the repo has none. Default true. */
  addDefaultReadme?: boolean;
  /** Hub settings (endpoint, timeouts); explicit values beat the environment. */
  hub?: HubOptions;
  /** Commit title. Default `"Upload SAE <id>"` (one SAE) or `"Upload <n> SAEs"`. */
  commitMessage?: string;
  /** Visibility of a repo this call creates. */
  private?: boolean;
  /** Progress reports (phases, per-file hashing and upload). */
  onProgress?: (p: HubUploadProgress) => void;
  /** Aborts the upload. */
  signal?: AbortSignal;
  /**
   * Folder under which live SAEs are saved before the upload (one temporary folder each,
   * removed at the end, also after a failure). Default: the system's temporary folder.
   */
  tempDir?: string;
}

/** Checks an SAE id: a relative path in the repo, usable in a README line. */
function checkSaeId(id: string): void {
  const why = unsafeRelativePath(id);
  if (why !== undefined || id.includes("`")) {
    throw new HubError(
      "invalid",
      `SAE id ${JSON.stringify(id)} cannot name a folder in the repo (${why ?? "it contains `"})` +
        `: expected a relative path such as "blocks.8.hook_resid_pre"`,
    );
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new SaeLoadError(`cannot read ${path}: ${String(err)}`, { cause: err });
  }
}

/** A JSON object file, errors prefixed with `what` (the SAE). */
async function jsonObject(path: string, what: string): Promise<Record<string, unknown>> {
  try {
    return await readJsonObject(path);
  } catch (err) {
    if (!(err instanceof SaeLoadError)) throw err;
    throw new SaeLoadError(`${what}: ${err.message}`, { cause: err });
  }
}

/** The header of a safetensors file whose size matches it, or a clear error. */
async function checkedHeader(path: string, what: string): Promise<SafetensorsHeader> {
  let header: SafetensorsHeader;
  try {
    header = await readSafetensorsHeader(path);
  } catch (err) {
    throw new SaeLoadError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  const size = (await Deno.stat(path)).size;
  if (size !== header.byteLength) {
    throw new SaeLoadError(
      `${what}: ${path} is ${size} bytes but its header describes ${header.byteLength} ` +
        `(a truncated or padded file)`,
    );
  }
  for (const t of header.tensors.values()) {
    if (!["F32", "F16", "BF16", "F64"].includes(t.dtype)) {
      throw new SaeLoadError(
        `${what}: tensor ${t.name} of ${path} has dtype ${t.dtype}, expected F32, F16, BF16 or F64`,
      );
    }
  }
  return header;
}

/**
 * Checks a saved SAE folder without reading its weights: `cfg.json` is a valid SAE config
 * (legacy layouts too), `sae_weights.safetensors` has exactly the tensors and shapes the
 * config's architecture needs (legacy `log_threshold` / `scaling_factor` accepted), in a float
 * dtype, and is as long as its header says; `sparsity.safetensors`, when present, holds one
 * `sparsity` tensor `[d_sae]`; `runner_cfg.json`, when present, is a JSON object. A folder an
 * interrupted saeflow save left behind is first recovered (as loading does). Returns the files
 * to upload (names from {@link SAE_UPLOAD_FILES} that exist) and the config.
 *
 * @throws {SaeLoadError} naming the SAE id, the file and what was wrong.
 */
export async function checkSaeFolder(
  dir: string,
  saeId = dir,
): Promise<{ files: string[]; cfg: SAEConfig }> {
  const what = `SAE ${JSON.stringify(saeId)} (${dir})`;
  await recoverFolder(dir);
  const info = await statOrNull(dir);
  if (!info?.isDirectory) {
    throw new SaeLoadError(
      `${what}: ${info ? "not a folder" : "no such folder"}; expected a folder with ` +
        `${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME} (as written by saveModel)`,
    );
  }
  const files: string[] = [];
  for (const name of SAE_UPLOAD_FILES) {
    const st = await statOrNull(join(dir, name));
    if (st && !st.isFile) throw new SaeLoadError(`${what}: ${name} is not a regular file`);
    if (st) files.push(name);
  }
  for (const required of [SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME]) {
    if (!files.includes(required)) {
      throw new SaeLoadError(
        `${what}: ${required} is missing (SAE folders need both ` +
          `${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME})`,
      );
    }
  }
  const cfgPath = join(dir, SAE_CFG_FILENAME);
  const raw = await jsonObject(cfgPath, what);
  let cfg: SAEConfig;
  try {
    cfg = saeConfigFromDict(raw);
  } catch (err) {
    if (!(err instanceof ConfigError) && !(err instanceof SaeLoadError)) throw err;
    throw new SaeLoadError(`${what}: ${cfgPath}: ${err.message}`, { cause: err });
  }
  const weightsPath = join(dir, SAE_WEIGHTS_FILENAME);
  const header = await checkedHeader(weightsPath, what);
  const shapes: HostStateDict = {};
  for (const t of header.tensors.values()) {
    const name = t.name === "log_threshold" && !header.tensors.has("threshold")
      ? "threshold"
      : t.name;
    if (name === "scaling_factor") continue; // legacy: folded or dropped when loading
    shapes[name] = { shape: t.shape, data: new Float32Array(0) };
  }
  const impl = getSaeArchitecture(cfg.architecture, `config of ${what}`);
  checkStateDict(impl.paramShapes(cfg), shapes, `${what}: ${weightsPath}`, cfg.architecture);
  if (files.includes(SPARSITY_FILENAME)) {
    const sparsityPath = join(dir, SPARSITY_FILENAME);
    const s = await checkedHeader(sparsityPath, what);
    const t = s.tensors.get("sparsity");
    if (!t || s.tensors.size !== 1 || t.shape.length !== 1 || t.shape[0] !== cfg.dSae) {
      throw new SaeLoadError(
        `${what}: ${sparsityPath} must hold one tensor "sparsity" of shape [${cfg.dSae}] ` +
          `(d_sae); found ${
            [...s.tensors.values()].map((x) => `${x.name} [${x.shape.join(", ")}]`).join(", ") ||
            "no tensors"
          }`,
      );
    }
  }
  if (files.includes(RUNNER_CFG_FILENAME)) await jsonObject(join(dir, RUNNER_CFG_FILENAME), what);
  return { files, cfg };
}

/**
 * The default README of an SAE repo: YAML front matter (`library_name: saelens`, tags), the SAE
 * ids, and how to load one with SAELens and with saeflow. SAELens writes the same front matter
 * key and id list in other words.
 *
 * @example
 * ```ts
 * import { defaultSaeReadme } from "./upload.ts";
 * const md = defaultSaeReadme("me/saes", ["blocks.0.hook_resid_pre"]);
 * if (!md.startsWith("---\nlibrary_name: saelens\n")) throw new Error(md);
 * if (!md.includes('SAE.from_pretrained("me/saes", "<sae_id>")')) throw new Error(md);
 * ```
 */
export function defaultSaeReadme(repoId: string, saeIds: readonly string[]): string {
  const lines = [
    "---",
    "library_name: saelens",
    "tags:",
    "- saelens",
    "- sparse-autoencoder",
    "- mechanistic-interpretability",
    "- saeflow",
    "---",
    "",
    "# Sparse autoencoders in SAELens format",
    "",
    "Each folder of this repository is one sparse autoencoder (SAE), stored as SAELens saves",
    "it (`cfg.json`, `sae_weights.safetensors`, and `sparsity.safetensors` when feature",
    "sparsity was recorded). The SAEs here:",
    "",
    ...saeIds.map((id) => `- \`${id}\``),
    "",
    "Load one in Python with [SAELens](https://github.com/decoderesearch/SAELens):",
    "",
    "```python",
    "from sae_lens import SAE",
    "",
    `sae = SAE.from_pretrained("${repoId}", "<sae_id>")`,
    "```",
    "",
    "or in TypeScript with saeflow:",
    "",
    "```ts",
    'import { SAE } from "@saeflow/saeflow";',
    "",
    `const sae = await SAE.fromPretrained("${repoId}", "<sae_id>");`,
    "```",
    "",
  ];
  return lines.join("\n");
}

/**
 * Uploads SAEs to a Hugging Face model repo, as SAELens's `upload_saes_to_huggingface`:
 * `<id>/cfg.json`, `<id>/sae_weights.safetensors`, and `<id>/sparsity.safetensors` /
 * `<id>/runner_cfg.json` when the folder has them, for each SAE id; the repo is created when
 * missing; a README.md ({@link defaultSaeReadme}) is added when the repo has none and
 * `addDefaultReadme` is on.
 *
 * Before any request: at least one SAE, every id a safe folder name, the repo id
 * (`namespace/name`), the branch and the token (none → error, no request), and every folder
 * checked by {@link checkSaeFolder} (live SAEs are saved to temporary folders first, removed at
 * the end). Then one commit sends everything (weights through LFS): if anything fails the repo
 * is unchanged and the error names the file being sent. Unlike SAELens (one commit per SAE and
 * one for the README), a partial upload cannot happen.
 *
 * @throws {HubError} for the repo id, branch, token, ids, and every hub failure (see
 * `uploadHubFiles`); {@link SaeLoadError} for a folder that is not a valid SAE.
 *
 * @example
 * ```ts ignore
 * import { SAE, uploadSaesToHuggingface } from "@saeflow/saeflow";
 * const sae = await SAE.loadFromDisk("out/final");
 * await uploadSaesToHuggingface({
 *   saes: { "blocks.8.hook_resid_pre": sae, "blocks.9.hook_resid_pre": "out/layer9" },
 *   repoId: "my-user/gpt2-small-saes",
 * });
 * ```
 */
export async function uploadSaesToHuggingface(opts: UploadSaesOptions): Promise<HubUploadResult> {
  const entries = opts.saes instanceof Map
    ? [...opts.saes]
    : Object.entries(opts.saes ?? {}) as [string, SaveableSae | string][];
  if (entries.length === 0) throw new HubError("invalid", "No SAEs to upload: saes is empty");
  for (const [id] of entries) checkSaeId(id);
  const revision = opts.revision ?? "main";
  const hub: HubOptions = { ...opts.hub, token: opts.token ?? opts.hub?.token };
  checkUploadTarget(opts.repoId, { ...hub, revision });

  // Folders given by path first (cheap), then live SAEs saved and checked.
  const folders = new Map<string, string>();
  for (const [id, ref] of entries) {
    if (typeof ref === "string") folders.set(id, ref);
    else if (!ref || typeof ref.saveModel !== "function") {
      throw new HubError(
        "invalid",
        `SAE ${JSON.stringify(id)}: expected an SAE or the path of a saved SAE folder`,
      );
    }
  }
  const checked = new Map<string, string[]>();
  for (const [id, dir] of folders) checked.set(id, (await checkSaeFolder(dir, id)).files);
  const temps: string[] = [];
  try {
    for (const [id, ref] of entries) {
      if (typeof ref === "string") continue;
      if ((ref as { disposed?: boolean }).disposed === true) {
        throw new HubError("invalid", `SAE ${JSON.stringify(id)} was disposed: nothing to upload`);
      }
      const tmp = await Deno.makeTempDir({ prefix: "saeflow-upload-", dir: opts.tempDir });
      temps.push(tmp);
      const dir = join(tmp, "sae");
      await ref.saveModel(dir);
      folders.set(id, dir);
      checked.set(id, (await checkSaeFolder(dir, id)).files);
    }

    const files: HubUploadFile[] = [];
    for (const [id] of entries) {
      const dir = folders.get(id)!;
      for (const name of checked.get(id)!) {
        files.push({ pathInRepo: `${id}/${name}`, localPath: join(dir, name) });
      }
    }
    const uploadOpts = {
      ...hub,
      revision,
      repoType: "model" as const,
      private: opts.private,
      onProgress: opts.onProgress,
      signal: opts.signal,
      commitMessage: opts.commitMessage ??
        (entries.length === 1 ? `Upload SAE ${entries[0][0]}` : `Upload ${entries.length} SAEs`),
      commitDescription: `SAEs: ${entries.map(([id]) => id).join(", ")}`,
    };
    if (
      (opts.addDefaultReadme ?? true) &&
      !(await hubUploadTargetHas(opts.repoId, "README.md", uploadOpts))
    ) {
      files.push({
        pathInRepo: "README.md",
        content: defaultSaeReadme(opts.repoId, entries.map(([id]) => id)),
      });
    }
    return await uploadHubFiles(opts.repoId, files, uploadOpts);
  } finally {
    for (const t of temps) await Deno.remove(t, { recursive: true }).catch(() => {});
  }
}
