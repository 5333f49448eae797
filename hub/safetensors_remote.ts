/**
 * Read a safetensors file's header without downloading its tensors (SAELens
 * `get_safetensors_tensor_shapes`): an HTTP Range request for the 8-byte little-endian header
 * length, then one for the JSON header itself.
 * @module
 */

import { cachedFilePath, checkRepoPath, checkRevision, type RepoType } from "./cache.ts";
import { type HubOptions, type HubSettings, resolveHubSettings } from "./env.ts";
import { HubError } from "./errors.ts";
import { describeRepo, makeHubFetch, probeFile, type RequestContext, toHubError } from "./http.ts";

/** One tensor entry of a safetensors header. */
export interface SafetensorsTensorInfo {
  /** Safetensors dtype string, e.g. `"F32"`. */
  dtype: string;
  /** Tensor shape. */
  shape: number[];
  /** Byte range `[begin, end)` relative to the start of the data section. */
  data_offsets: [number, number];
}

/** A parsed safetensors header. */
export interface SafetensorsHeaderInfo {
  /** Tensors by name (`__metadata__` excluded). */
  tensors: Record<string, SafetensorsTensorInfo>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
  /** Header JSON length in bytes (data starts at 8 + this). */
  headerLength: number;
}

/** Options of the remote header functions. */
export interface RemoteHeaderOptions extends HubOptions {
  /** Git revision (branch, tag or commit). */
  revision?: string;
  /** Repository type. */
  repoType?: RepoType;
}

/** Largest header accepted (the format itself caps it at 100 MB). */
const MAX_HEADER = 100_000_000;

function parseHeader(
  bytes: Uint8Array,
  where: string,
  headerLength: number,
): SafetensorsHeaderInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new HubError("protocol", `${where}: header is not valid JSON (${err})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new HubError("protocol", `${where}: header is not a JSON object`);
  }
  const tensors: Record<string, SafetensorsTensorInfo> = {};
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as Partial<SafetensorsTensorInfo> | null;
    const shapeOk = Array.isArray(e?.shape) &&
      e!.shape.every((d) => Number.isInteger(d) && d >= 0);
    if (!e || typeof e.dtype !== "string" || !shapeOk || !Array.isArray(e.data_offsets)) {
      throw new HubError(
        "protocol",
        `${where}: tensor ${name} needs {dtype, shape: int[], data_offsets}, got ` +
          JSON.stringify(v),
      );
    }
    tensors[name] = { dtype: e.dtype, shape: e.shape!, data_offsets: e.data_offsets };
  }
  return { tensors, metadata, headerLength };
}

function headerLengthOf(bytes8: Uint8Array, where: string, fileSize?: number): number {
  if (bytes8.length !== 8) {
    throw new HubError(
      "protocol",
      `${where}: expected 8 header-length bytes, got ${bytes8.length}`,
    );
  }
  const n = new DataView(bytes8.buffer, bytes8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER) || (fileSize !== undefined && Number(n) + 8 > fileSize)) {
    throw new HubError(
      "protocol",
      `${where}: header length ${n} is impossible (file size ${fileSize ?? "unknown"}, ` +
        `limit ${MAX_HEADER}): not a safetensors file?`,
    );
  }
  return Number(n);
}

async function readLocalHeader(path: string, where: string): Promise<SafetensorsHeaderInfo> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const readExactly = async (n: number) => {
      const buf = new Uint8Array(n);
      let off = 0;
      while (off < n) {
        const r = await file.read(buf.subarray(off));
        if (r === null) break;
        off += r;
      }
      return buf.subarray(0, off);
    };
    const n = headerLengthOf(await readExactly(8), where, size);
    return parseHeader(await readExactly(n), where, n);
  } finally {
    file.close();
  }
}

async function rangeGet(
  fetchFn: typeof fetch,
  url: string,
  start: number,
  length: number,
  where: string,
): Promise<Uint8Array> {
  const resp = await fetchFn(url, { headers: { Range: `bytes=${start}-${start + length - 1}` } });
  if (resp.status !== 206 || !resp.body) {
    await resp.body?.cancel();
    throw new HubError(
      "protocol",
      `${where}: the server answered HTTP ${resp.status} to a Range request (expected 206); ` +
        `it does not support byte ranges, download the file instead`,
      resp.status,
    );
  }
  // Read at most `length` bytes: a server sending more is cut off, not buffered.
  const bytes = new Uint8Array(length);
  let got = 0;
  const reader = resp.body.getReader();
  let done = false;
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        break;
      }
      if (got + r.value.length > length) {
        throw new HubError(
          "protocol",
          `${where}: asked ${url} for ${length} bytes, got more (${got + r.value.length})`,
        );
      }
      bytes.set(r.value, got);
      got += r.value.length;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
  if (got !== length) {
    throw new HubError("protocol", `${where}: asked ${url} for ${length} bytes, got ${got}`);
  }
  return bytes;
}

/**
 * The full header (dtype, shape, offsets per tensor, metadata) of a safetensors file on the hub,
 * read with two Range requests. If the file is already in the cache (or in offline mode) the
 * header is read from the local copy instead.
 *
 * @throws {HubError} `not_found`, `unauthorized`, `unreachable`, `offline`, or `protocol` (no
 * Range support, not a safetensors file).
 */
export async function getRemoteSafetensorsHeader(
  repoId: string,
  path: string,
  opts: RemoteHeaderOptions = {},
): Promise<SafetensorsHeaderInfo> {
  checkRepoPath(repoId, path);
  checkRevision(opts.revision ?? "main");
  const settings: HubSettings = resolveHubSettings(opts);
  const ctx: RequestContext = {
    repoId,
    repoType: opts.repoType ?? "model",
    revision: opts.revision ?? "main",
    path,
  };
  const where = `${path} of ${describeRepo(ctx)} (revision ${ctx.revision})`;
  const cached = await cachedFilePath(settings.cacheDir, repoId, path, ctx);
  if (settings.offline) {
    if (cached) return readLocalHeader(cached, where);
    throw new HubError(
      "offline",
      `Offline mode and ${where} is not in the cache ${settings.cacheDir}.`,
    );
  }
  const fetchFn = makeHubFetch(settings, ctx);
  try {
    const info = await probeFile(settings, ctx, ctx.revision);
    if (!info) {
      throw new HubError("not_found", `File not found on ${settings.endpoint}: ${where}.`, 404);
    }
    const n = headerLengthOf(await rangeGet(fetchFn, info.url, 0, 8, where), where, info.size);
    return parseHeader(await rangeGet(fetchFn, info.url, 8, n, where), where, n);
  } catch (err) {
    const e = toHubError(err, settings, ctx);
    if ((e.kind === "unreachable" || e.kind === "timeout") && cached) {
      return readLocalHeader(cached, where);
    }
    throw e;
  }
}

/**
 * `{tensorName: shape}` of a safetensors file on the hub, reading only its header (SAELens
 * `get_safetensors_tensor_shapes`; `__metadata__` excluded).
 *
 * @example
 * ```ts ignore
 * import { getRemoteSafetensorsShapes } from "./safetensors_remote.ts";
 * const shapes = await getRemoteSafetensorsShapes("org/saes", "layer_0/sae_weights.safetensors");
 * // { W_enc: [768, 24576], ... }
 * ```
 */
export async function getRemoteSafetensorsShapes(
  repoId: string,
  path: string,
  opts: RemoteHeaderOptions = {},
): Promise<Record<string, number[]>> {
  const { tensors } = await getRemoteSafetensorsHeader(repoId, path, opts);
  return Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.shape]));
}
